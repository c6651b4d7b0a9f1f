// Row history (row:history: every version, shown newest first, any earlier one restorable
// with row:restore) and table history (table:history: every change, newest first, paged;
// the whole table can be put back as it was right after any change with table:restore).
// Restoring is itself recorded as new changes, so nothing is lost by it.
import { h } from '../../lib.js';
import { clip, exactTime, formatDateValue, formatNumber, plural, relativeTime } from './format.js';
import { messageLine } from './messages.js';
import { createDialog } from './popups.js';
import { isMasked } from './values.js';

const VERB = { add: 'added', import: 'imported', update: 'edited', delete: 'deleted',
  restore: 'restored' };

function valueText(column, v) {
  if (v === null || v === undefined) return 'empty';
  if (!column || isMasked(column, v)) return String(v);
  if (column.type === 'bool') return v ? 'Yes' : 'No';
  if (column.type === 'number') return formatNumber(v);
  if (column.type === 'datetime') return formatDateValue(v);
  return `“${clip(v, 60)}”`;
}

/** "pnl: 12.5 → 99" for each column a change touched (all set ones for a new row). */
function changeLines(table, change) {
  const before = change.before || {};
  const after = change.after || {};
  const lines = [];
  for (const column of table.columns) {
    const a = before[column.name] ?? null;
    const b = after[column.name] ?? null;
    if (change.after === null || JSON.stringify(a) === JSON.stringify(b)) continue;
    lines.push(change.before === null
      ? `${column.name}: ${valueText(column, b)}`
      : `${column.name}: ${valueText(column, a)} → ${valueText(column, b)}`);
  }
  return lines;
}

function rowName(table, change) {
  const values = change.after || change.before || {};
  const first = table.columns.find((c) => !c.secret && c.type === 'text' && values[c.name]);
  return first ? `row “${clip(values[first.name], 30)}”` : 'a row';
}

function when(iso) {
  return h('time', { datetime: iso, title: exactTime(iso) }, relativeTime(iso));
}

/** opts: {app, host, rowset, names() → Promise<Map userId → username>, canWrite(),
 *  onRowRestored(row), onTableRestored(result)} */
export function createHistory(opts) {
  const { app, rowset } = opts;

  // -- row history ------------------------------------------------------------------------

  const rowDialog = createDialog(opts.host, { testid: 'row-history', title: 'Row history' });
  const rowMsg = messageLine('row-history-message');
  const rowList = h('ol', { class: 'history-list', 'data-testid': 'row-history-list' });
  rowDialog.body.append(rowMsg.el, rowList);
  let rowTarget = null;

  async function showRow(rowId, label) {
    rowTarget = { rowId, label };
    rowDialog.setTitle(`History of ${label}`);
    rowMsg.clear();
    rowList.replaceChildren(h('li', { class: 'muted' }, 'Loading history…'));
    rowDialog.show();
    await loadRow();
  }

  async function loadRow() {
    const table = rowset.table;
    const { rowId } = rowTarget;
    let changes;
    let names;
    try {
      [changes, names] = await Promise.all([
        app.call('row:history', { tableId: table.id, rowId }), opts.names()]);
    } catch (err) {
      rowList.replaceChildren();
      rowMsg.error(err);
      return;
    }
    if (!rowTarget || rowTarget.rowId !== rowId) return;
    const latest = changes.length ? changes[changes.length - 1].version : 0;
    rowList.replaceChildren(...[...changes].reverse().map((c) => {
      const who = names.get(c.userId) || 'someone';
      const restorable = c.after !== null && c.version !== latest && opts.canWrite();
      const lines = changeLines(table, c);
      return h('li', { class: 'history-item', 'data-testid': 'history-item',
        'data-version': String(c.version), 'data-op': c.op },
      h('div', { class: 'history-head' },
        h('strong', {}, `Version ${c.version}`), ` · ${VERB[c.op] || c.op} by ${who} · `,
        when(c.at)),
      lines.length ? h('ul', { class: 'history-diff' }, lines.map((l) => h('li', {}, l))) : null,
      restorable ? h('button', { type: 'button', class: 'small', 'data-testid': 'history-restore',
        'aria-label': `Restore this version (${c.version})`,
        onclick: (e) => restoreRow(c.version, e.currentTarget) }, 'Restore this version')
        : null);
    }));
  }

  async function restoreRow(version, button) {
    const table = rowset.table;
    const { rowId } = rowTarget;
    button.disabled = true;
    try {
      const row = await app.call('row:restore', { tableId: table.id, rowId, version });
      opts.onRowRestored(row);
      rowMsg.info(`Restored version ${version} (saved as version ${row.version}).`);
      await loadRow();
    } catch (err) {
      rowMsg.error(err);
      button.disabled = false;
    }
  }

  // -- table history ----------------------------------------------------------------------

  const tableDialog = createDialog(opts.host, { testid: 'table-history', title: 'Table history' });
  const tableMsg = messageLine('table-history-message');
  const tableList = h('ol', { class: 'history-list', 'data-testid': 'table-history-list' });
  const older = h('button', { type: 'button', class: 'small', 'data-testid': 'table-history-more',
    hidden: true, onclick: () => loadTable(false) }, 'Show older changes');
  tableDialog.body.append(tableMsg.el, tableList);
  tableDialog.footer.append(older);
  let cursor = null;
  let names = new Map();

  async function showTable() {
    tableDialog.setTitle(`History of “${rowset.table.name}”`);
    tableMsg.clear();
    tableList.replaceChildren(h('li', { class: 'muted' }, 'Loading history…'));
    tableDialog.show();
    await loadTable(true);
  }

  async function loadTable(first) {
    const table = rowset.table;
    older.disabled = true;
    try {
      const q = { tableId: table.id, limit: 50 };
      if (!first && cursor) q.cursor = cursor;
      const [page, known] = await Promise.all([app.call('table:history', q), opts.names()]);
      names = known;
      if (first) tableList.replaceChildren();
      if (first && !page.items.length) {
        tableList.append(h('li', { class: 'muted' }, 'No changes yet.'));
      }
      tableList.append(...page.items.map((c) => tableItem(table, c)));
      cursor = page.nextCursor || null;
      older.hidden = cursor === null;
    } catch (err) {
      if (first) tableList.replaceChildren();
      tableMsg.error(err);
    } finally {
      older.disabled = false;
    }
  }

  function tableItem(table, c) {
    const who = names.get(c.userId) || 'someone';
    const lines = changeLines(table, c);
    const actions = h('div', { class: 'row history-actions' });
    const li = h('li', { class: 'history-item', 'data-testid': 'history-item',
      'data-op': c.op, 'data-seq': String(c.seq) },
    h('div', { class: 'history-head' }, `${who} ${VERB[c.op] || c.op} ${rowName(table, c)} · `,
      when(c.at)),
    lines.length ? h('ul', { class: 'history-diff' }, lines.map((l) => h('li', {}, l))) : null,
    actions);
    if (opts.canWrite()) {
      const ask = h('button', { type: 'button', class: 'small', 'data-testid': 'table-restore',
        onclick: () => confirm() }, 'Restore table to here');
      actions.append(ask);
      if (c.op === 'delete') {
        actions.append(h('button', { type: 'button', class: 'small',
          'data-testid': 'row-undelete', onclick: (e) => undelete(c, e.currentTarget) },
        'Restore this row'));
      }
      const confirm = () => {
        const yes = h('button', { type: 'button', class: 'small danger',
          'data-testid': 'table-restore-confirm', onclick: () => restoreTable(c, yes) },
        'Restore the table');
        const no = h('button', { type: 'button', class: 'small',
          'data-testid': 'table-restore-cancel', onclick: () => {
            actions.replaceChildren(...kept);
            ask.focus();
          } }, 'Cancel');
        const kept = [...actions.children];
        actions.replaceChildren(h('span', { class: 'confirm' },
          'Put every row back as it was right after this change? '
          + 'The restore is recorded as new changes.'), yes, no);
        no.focus();
      };
    }
    return li;
  }

  async function restoreTable(change, button) {
    const table = rowset.table;
    button.disabled = true;
    try {
      const result = await app.call('table:restore', { tableId: table.id, at: change.at });
      tableMsg.info(`Restored the table as of ${exactTime(change.at)}: `
        + `${plural(result.restored, 'row')} put back, ${plural(result.deleted, 'row')} removed.`);
      await opts.onTableRestored(result);
      await loadTable(true);
    } catch (err) {
      tableMsg.error(err);
      button.disabled = false;
    }
  }

  async function undelete(change, button) {
    const table = rowset.table;
    button.disabled = true;
    try {
      const row = await app.call('row:restore', { tableId: table.id, rowId: change.rowId,
        version: change.version - 1 });
      opts.onRowRestored(row);
      tableMsg.info(`Restored ${rowName(table, change)}.`);
      await loadTable(true);
    } catch (err) {
      tableMsg.error(err);
      button.disabled = false;
    }
  }

  return {
    showRow,
    showTable,
    closeAll() {
      rowDialog.close();
      tableDialog.close();
      rowTarget = null;
    },
  };
}

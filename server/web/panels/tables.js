// Tables: the open project's tables — list (live through table:created|updated|deleted),
// create (typed columns, optionally secret), import from CSV (REST upload, then table:import;
// bad lines are listed), export to CSV (REST download). The selected table's rows are paged
// ("load more"), sortable by any non-secret column, and live: row:added|updated|deleted and
// row:locked|unlocked pushes. Secret values arrive masked (••••1234) for viewers who may not
// see them, and are never written back unless retyped.
//
// Editing a row takes its lock (row:lock → lockToken); Save sends row:update with the row's
// version and the token, then row:unlock; Cancel unlocks; a heartbeat keeps the lock while
// the editor is open. Rows another user holds show who holds them and cannot be edited or
// deleted (owners may break the lock). A refused or stale edit says why (code: message) and
// offers to reload the table.
import { AckError, act, authorizedFetch, field, h, messageBox, plural } from '../lib.js';

export default { id: 'tables', title: 'Tables', slot: 'main', mount };

const TYPES = ['text', 'number', 'bool', 'datetime'];
const MASK = '••••'; // server/crypto.py: how a secret value reads for those who may not see it
const PAGE = 50;
const HEARTBEAT_MS = 60_000; // well inside LOCK_EDIT_TIMEOUT_S (900 s by default)
const LOCK_ENDED = {
  timeout: 'timed out (no save or heartbeat in time)',
  owner_override: 'was broken by a project owner',
  disconnect: 'ended when your connection dropped',
  deleted: 'ended because the row was deleted',
  released: 'was released',
};

const isMasked = (column, value) => column.secret && typeof value === 'string'
  && value.startsWith(MASK);

function mount(root, app) {
  let me = null; // the signed-in user
  let project = null; // {id, name, role}: the open project, from the projects panel
  const tables = new Map(); // id → table view
  let table = null; // the selected table's view
  let rows = new Map(); // id → row, in display order
  let locks = new Map(); // rowId → {userId, username, expiresAt}
  let nextCursor = null;
  let rowCount = 0;
  let sort = null; // {column, order: 'asc' | 'desc'}
  let editing = null; // {rowId, token, base, inputs, tr, status, timer, busy, lost}
  let confirmDeleteId = null;
  let busyRowId = null;
  let replay = null; // pushes applied while the table loads, re-applied after it
  let generation = 0; // bumped on every table switch/reload: stale answers are dropped
  const rowEls = new Map(); // rowId → {tr, sig}: rows are re-rendered only when they change

  const canWrite = () => Boolean(project && project.role !== 'viewer');
  const isOwner = () => Boolean(project && project.role === 'owner');

  // -- messages ---------------------------------------------------------------------------

  const msg = messageBox('table-error');
  const reloadButton = h('button', { type: 'button', 'data-testid': 'table-reload', hidden: true,
    onclick: () => reloadAfterProblem() }, 'Reload table');
  const say = {
    error(err, offerReload = false) {
      msg.error(err);
      reloadButton.hidden = !offerReload;
    },
    info(text) {
      msg.info(text);
      reloadButton.hidden = true;
    },
    clear() {
      msg.clear();
      reloadButton.hidden = true;
    },
  };

  // -- the table list ---------------------------------------------------------------------

  const tableList = h('ul', { class: 'table-list', 'data-testid': 'table-list',
    'aria-label': 'Tables in this project' });
  const noTables = h('p', { class: 'muted', 'data-testid': 'table-empty' },
    'No tables yet.');

  function renderList() {
    const items = [...tables.values()].sort((a, b) => a.name.localeCompare(b.name));
    tableList.replaceChildren(...items.map((t) => {
      const active = Boolean(table && table.id === t.id);
      return h('li', { 'data-testid': 'table-item', 'data-table-id': t.id,
        'data-table-name': t.name, class: active ? 'active' : '' },
      h('button', { type: 'button', class: 'table-open', 'data-testid': 'table-open',
        'aria-current': active ? 'true' : null, onclick: () => select(t.id) },
      t.name, h('small', { class: 'muted' }, ` · ${plural(t.columns.length, 'column')}`)));
    }));
    noTables.hidden = items.length > 0;
  }

  async function loadTables() {
    const pid = project.id;
    try {
      const list = await app.call('table:list', { projectId: pid });
      if (!project || project.id !== pid) return;
      tables.clear();
      for (const t of Array.isArray(list) ? list : list.items) tables.set(t.id, t);
    } catch (err) {
      say.error(err);
    }
    renderList();
  }

  // -- create a table ---------------------------------------------------------------------

  const createMsg = messageBox('table-create-error');
  const createName = h('input', { type: 'text', name: 'name', required: true, maxlength: 100,
    'data-testid': 'table-create-name' });
  const columnList = h('ol', { class: 'column-list', 'data-testid': 'column-list' });

  function columnEditor() {
    const li = h('li', { class: 'column-editor', 'data-testid': 'column-editor' });
    const n = () => [...columnList.children].indexOf(li) + 1;
    const name = h('input', { type: 'text', required: true, maxlength: 100,
      'data-testid': 'column-name', 'aria-label': 'Column name' });
    const type = h('select', { 'data-testid': 'column-type', 'aria-label': 'Column type' },
      TYPES.map((t) => h('option', { value: t }, t)));
    const secret = h('input', { type: 'checkbox', 'data-testid': 'column-secret' });
    const remove = h('button', { type: 'button', class: 'link danger',
      'data-testid': 'column-remove', onclick: () => {
        li.remove();
        relabelColumns();
      } }, 'Remove');
    li.append(name, type, h('label', { class: 'check' }, secret, 'secret'), remove);
    li.relabel = () => {
      name.setAttribute('aria-label', `Column ${n()} name`);
      type.setAttribute('aria-label', `Column ${n()} type`);
      secret.setAttribute('aria-label', `Column ${n()} is secret`);
      remove.setAttribute('aria-label', `Remove column ${n()}`);
      remove.disabled = columnList.children.length < 2;
    };
    li.read = () => ({ name: name.value.trim(), type: type.value, secret: secret.checked });
    return li;
  }

  function relabelColumns() {
    for (const li of columnList.children) li.relabel();
  }

  function addColumn() {
    const li = columnEditor();
    columnList.append(li);
    relabelColumns();
    return li;
  }

  const createControls = h('fieldset', { class: 'stack' },
    h('legend', { class: 'visually-hidden' }, 'New table'),
    field('Table name', createName),
    h('div', { class: 'field' }, h('span', { class: 'field-label', id: 'table-columns-label' },
      'Columns'), columnList),
    h('div', { class: 'row' },
      h('button', { type: 'button', 'data-testid': 'column-add', onclick: () => {
        addColumn().querySelector('input').focus();
      } }, 'Add column'),
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'table-create' },
        'Create table')));
  columnList.setAttribute('aria-labelledby', 'table-columns-label');
  const createForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    act(createControls, createMsg, async () => {
      const payload = { projectId: project.id, name: createName.value.trim(),
        columns: [...columnList.children].map((li) => li.read()) };
      const created = await app.call('table:create', payload);
      tables.set(created.id, created);
      createName.value = '';
      columnList.replaceChildren();
      addColumn();
      createSection.open = false;
      renderList();
      await select(created.id);
      say.info(`Created table “${created.name}”.`);
    });
  } }, createControls, createMsg.el);
  addColumn();
  const createSection = h('details', { class: 'tool', 'data-testid': 'table-create-section' },
    h('summary', { 'data-testid': 'table-create-toggle' }, 'New table'), createForm);

  // -- import a CSV -----------------------------------------------------------------------

  const importMsg = messageBox('table-import-error');
  const importFile = h('input', { type: 'file', name: 'file', required: true,
    accept: '.csv,text/csv', 'data-testid': 'table-import-file' });
  const importName = h('input', { type: 'text', name: 'name', maxlength: 100,
    'data-testid': 'table-import-name' });
  const importSkip = h('input', { type: 'checkbox', name: 'skipBadRows',
    'data-testid': 'table-import-skip' });
  const badLines = h('ul', { class: 'bad-lines', 'data-testid': 'import-bad-lines', hidden: true,
    'aria-label': 'Lines that could not be imported' });
  let uploaded = null; // {file, fileId}: a retry (e.g. skipping bad rows) reuses the upload

  function showBadLines(lines, total) {
    const items = (lines || []).map((b) => h('li', { 'data-testid': 'import-bad-line',
      'data-line': b.line }, `line ${b.line}: ${b.problem || 'could not be read'}`));
    const more = total - items.length;
    if (more > 0) items.push(h('li', { class: 'muted' }, `… ${more} more`));
    badLines.replaceChildren(...items);
    badLines.hidden = items.length === 0;
  }

  const importControls = h('fieldset', { class: 'stack' },
    h('legend', { class: 'visually-hidden' }, 'Import a CSV file'),
    field('CSV file', importFile),
    field('Table name', importName, '(optional: the file name)'),
    h('label', { class: 'check' }, importSkip, 'Skip rows with the wrong number of fields'),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'table-import' }, 'Import'));
  const importForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    showBadLines([], 0);
    act(importControls, importMsg, async () => {
      const file = importFile.files[0];
      if (!file) throw new AckError({ code: 'bad_request', message: 'choose a CSV file' });
      const projectId = project.id;
      if (!uploaded || uploaded.file !== file || uploaded.projectId !== projectId) {
        const record = await upload(projectId, file);
        uploaded = { file, projectId, fileId: record.id };
      }
      const payload = { projectId, fileId: uploaded.fileId };
      if (importName.value.trim()) payload.name = importName.value.trim();
      if (importSkip.checked) payload.skipBadRows = true;
      let result;
      try {
        result = await app.call('table:import', payload);
      } catch (err) {
        const d = err.details || {};
        if (d.badLines) showBadLines(d.badLines, d.badCount || d.badLines.length);
        else if (d.line) showBadLines([{ line: d.line, problem: err.message }], 1);
        throw err;
      }
      tables.set(result.table.id, result.table);
      uploaded = null;
      importForm.reset();
      renderList();
      const skipped = result.skipped || { count: 0, lines: [] };
      showBadLines(skipped.lines, skipped.count);
      const notes = [`Imported ${plural(result.rows, 'row')} into “${result.table.name}”`];
      if (skipped.count) notes.push(`skipped ${plural(skipped.count, 'bad row')}`);
      for (const w of result.warnings || []) notes.push(w);
      importMsg.info(`${notes.join('; ')}.`);
      await select(result.table.id);
    });
  } }, importControls, importMsg.el, badLines);
  const importSection = h('details', { class: 'tool', 'data-testid': 'table-import-section' },
    h('summary', { 'data-testid': 'table-import-toggle' }, 'Import CSV'), importForm);

  // -- REST: upload and export (lib.authorizedFetch: Bearer token, refreshed once) --------

  async function upload(projectId, file) {
    const form = new FormData();
    form.append('file', file, file.name);
    const res = await authorizedFetch(app, `/api/projects/${encodeURIComponent(projectId)}/files`,
      { method: 'POST', body: form });
    return (await res.json()).data;
  }

  async function exportCsv() {
    const t = table;
    const res = await authorizedFetch(app, `/api/tables/${encodeURIComponent(t.id)}/export.csv`);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: `${t.name}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  // -- the selected table -----------------------------------------------------------------

  const tableTitle = h('h3', { tabindex: '-1', id: 'tables-current-title',
    'data-testid': 'table-title' });
  const tableCount = h('span', { class: 'muted', 'data-testid': 'table-count' });
  const readOnly = h('span', { class: 'badge', 'data-testid': 'table-read-only', hidden: true },
    'read only');
  const exportButton = h('button', { type: 'button', 'data-testid': 'table-export',
    onclick: () => act(exportButton, say, exportCsv) },
  'Export CSV');
  const thead = h('thead');
  const tbody = h('tbody', { 'data-testid': 'table-rows' });
  const noRows = h('p', { class: 'muted', 'data-testid': 'rows-empty', hidden: true },
    'No rows yet.');
  const moreButton = h('button', { type: 'button', 'data-testid': 'rows-more', hidden: true,
    onclick: () => loadMore() }, 'Load more');
  const grid = h('table', { class: 'grid', 'data-testid': 'table-grid',
    'aria-labelledby': 'tables-current-title' }, thead, tbody);
  const addRowMsg = messageBox('row-add-error');
  const addRowControls = h('fieldset', { class: 'row add-row' });
  const addRowForm = h('form', { 'data-testid': 'row-add-form', onsubmit: (e) => {
    e.preventDefault();
    act(addRowControls, addRowMsg, addRow);
  } }, h('h4', {}, 'Add a row'), addRowControls, addRowMsg.el);
  let addInputs = []; // [{column, el}]

  const view = h('div', { class: 'table-view', 'data-testid': 'table-view', hidden: true },
    h('div', { class: 'row spread' },
      h('div', { class: 'row' }, tableTitle, tableCount, readOnly), exportButton),
    h('div', { class: 'row msg-row' }, msg.el, reloadButton),
    h('div', { class: 'grid-scroll' }, grid),
    noRows,
    moreButton,
    addRowForm);
  const pick = h('p', { class: 'muted', 'data-testid': 'table-pick' },
    'Choose a table, create one, or import a CSV file.');

  function renderHead() {
    const cols = table.columns.map((c) => {
      const sorted = sort && sort.column === c.name;
      const label = [c.name, ' ', h('small', { class: 'col-type' }, c.type)];
      return h('th', { scope: 'col', 'data-column': c.name, class: `t-${c.type}`,
        'aria-sort': sorted ? (sort.order === 'asc' ? 'ascending' : 'descending') : null },
      c.secret
        ? h('span', { class: 'col-head', title: 'secret: cannot be sorted' }, label,
          h('span', { class: 'badge secret' }, 'secret'))
        : h('button', { type: 'button', class: 'sort', 'data-testid': 'column-sort',
          'data-column': c.name, title: `Sort by ${c.name}`, onclick: () => toggleSort(c.name) },
        label, h('span', { class: 'arrow', 'aria-hidden': 'true' },
          sorted ? (sort.order === 'asc' ? '▲' : '▼') : '')));
    });
    thead.replaceChildren(h('tr', {}, cols,
      h('th', { scope: 'col' }, 'Lock'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions'))));
  }

  function renderMeta() {
    const total = nextCursor === null ? rows.size : Math.max(rowCount, rows.size);
    tableCount.textContent = nextCursor === null ? plural(total, 'row')
      : `${rows.size} of ${plural(total, 'row')}`;
    noRows.hidden = rows.size > 0;
    moreButton.hidden = nextCursor === null;
  }

  function renderTable() {
    view.hidden = !table;
    pick.hidden = Boolean(table) || tables.size === 0;
    if (!table) return;
    view.dataset.tableId = table.id;
    tableTitle.textContent = table.name;
    readOnly.hidden = canWrite();
    addRowForm.hidden = !canWrite();
    renderHead();
    renderRows();
  }

  // -- rows: display ----------------------------------------------------------------------

  function display(column, value) {
    if (value === null || value === undefined) return h('span', { class: 'null' }, '—');
    if (isMasked(column, value)) {
      return h('span', { class: 'masked', title: 'secret: hidden from you' }, value);
    }
    if (column.type === 'bool') return value ? 'true' : 'false';
    return String(value);
  }

  function rowLabel(row, i) {
    const first = table.columns.find((c) => !c.secret && row.values[c.name] !== null
      && row.values[c.name] !== undefined && row.values[c.name] !== '');
    const text = first ? String(row.values[first.name]) : '';
    if (!text) return `row ${i + 1}`;
    return `row “${text.length > 30 ? `${text.slice(0, 30)}…` : text}”`;
  }

  function lockOf(rowId) {
    const lock = locks.get(rowId);
    if (!lock) return { lock: null, mine: false, other: false };
    const mine = Boolean(me && lock.userId === me.id);
    return { lock, mine, other: !mine };
  }

  function viewRow(row, i) {
    const { lock, mine, other } = lockOf(row.id);
    const label = rowLabel(row, i);
    const busy = busyRowId === row.id;
    const lockCell = h('td', { class: 'lock-cell', 'data-testid': 'row-lock' },
      lock ? h('span', { class: `lock-badge ${mine ? 'mine' : ''}`,
        title: lock.expiresAt
          ? `held until ${new Date(lock.expiresAt).toLocaleTimeString()}` : null },
      mine ? 'locked by you' : `locked by ${lock.username}`) : null);
    const actions = [];
    if (canWrite()) {
      actions.push(h('button', { type: 'button', class: 'link', 'data-testid': 'row-edit',
        'aria-label': `Edit ${label}`, disabled: other || Boolean(editing) || busy,
        title: other ? `${lock.username} is editing this row` : null,
        onclick: () => startEdit(row.id) }, 'Edit'));
      if (confirmDeleteId === row.id) {
        actions.push(h('span', { class: 'confirm' }, 'Delete?'),
          h('button', { type: 'button', class: 'link danger', 'data-testid': 'row-delete-confirm',
            'aria-label': `Confirm deleting ${label}`, disabled: busy,
            onclick: () => deleteRow(row.id) }, 'Yes'),
          h('button', { type: 'button', class: 'link', 'data-testid': 'row-delete-cancel',
            onclick: () => { confirmDeleteId = null; renderRows(); } }, 'No'));
      } else {
        actions.push(h('button', { type: 'button', class: 'link danger',
          'data-testid': 'row-delete', 'aria-label': `Delete ${label}`,
          disabled: other || Boolean(editing) || busy,
          title: other ? `${lock.username} is editing this row` : null,
          onclick: () => { confirmDeleteId = row.id; renderRows(); } }, 'Delete'));
      }
      if (other && isOwner()) {
        actions.push(h('button', { type: 'button', class: 'link danger',
          'data-testid': 'row-break-lock',
          'aria-label': `Break ${lock.username}'s lock on ${label}`,
          disabled: busy, onclick: () => breakLock(row.id) }, 'Break lock'));
      }
    }
    return h('tr', { 'data-testid': 'table-row', 'data-row-id': row.id,
      'data-version': row.version, 'data-locked-by': lock ? lock.username : '',
      class: other ? 'locked' : (mine ? 'locked mine' : '') },
    table.columns.map((c) => h('td', { 'data-testid': 'cell', 'data-column': c.name,
      class: `t-${c.type}` }, display(c, row.values[c.name]))),
    lockCell,
    h('td', { class: 'actions' }, actions));
  }

  function rowSig(row, i) {
    const lock = locks.get(row.id);
    return JSON.stringify([row.version, row.values, lock ? [lock.userId, lock.username] : null,
      Boolean(editing), confirmDeleteId === row.id, busyRowId === row.id, i,
      project && project.role]);
  }

  /** Keyed re-render: only rows whose content changed are rebuilt, and the row being edited
   *  keeps its element (its inputs, what was typed, and focus) whatever the pushes do. */
  function renderRows() {
    if (!table) return;
    const wanted = [];
    let i = 0;
    for (const row of rows.values()) {
      let entry = rowEls.get(row.id);
      if (editing && editing.rowId === row.id) {
        if (!editing.tr) editing.tr = editRow(row, i);
        entry = { tr: editing.tr, sig: 'editing' };
      } else {
        const sig = rowSig(row, i);
        if (!entry || entry.sig !== sig) entry = { tr: viewRow(row, i), sig };
      }
      rowEls.set(row.id, entry);
      wanted.push(entry.tr);
      i += 1;
    }
    for (const id of [...rowEls.keys()]) if (!rows.has(id)) rowEls.delete(id);
    const keep = new Set(wanted);
    for (const tr of [...tbody.children]) if (!keep.has(tr)) tr.remove();
    let cursor = tbody.firstElementChild;
    for (const tr of wanted) {
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else tbody.insertBefore(tr, cursor);
    }
    renderMeta();
  }

  // -- typed inputs (editing and adding) --------------------------------------------------

  function valueInput(column, value, label, testid) {
    const common = { 'aria-label': label, 'data-testid': testid, 'data-column': column.name };
    if (isMasked(column, value)) {
      return h('input', { type: 'text', ...common, value: '', autocomplete: 'off',
        placeholder: `${value} (hidden: type to replace)` });
    }
    if (column.type === 'number') {
      return h('input', { type: 'number', step: 'any', ...common,
        value: value === null || value === undefined ? '' : String(value) });
    }
    if (column.type === 'bool') {
      return h('select', common, [['', '—'], ['true', 'true'], ['false', 'false']].map(
        ([v, text]) => h('option', { value: v,
          selected: v === (value === true ? 'true' : value === false ? 'false' : '') }, text)));
    }
    return h('input', { type: 'text', ...common, autocomplete: 'off',
      placeholder: column.type === 'datetime' ? 'YYYY-MM-DD or YYYY-MM-DDTHH:MM' : null,
      value: value === null || value === undefined ? '' : String(value) });
  }

  /** What an input means for its column: {changed, value}; a value the column can't take
   *  is refused here with the server's wording (bad_request naming the column). */
  function readInput(column, el, base) {
    const raw = el.value;
    const kind = { number: 'a number', datetime: 'a datetime' }[column.type] || 'a valid';
    const bad = () => new AckError({ code: 'bad_request',
      message: `column '${column.name}' takes ${kind} value`, details: { column: column.name } });
    if (isMasked(column, base)) return { changed: raw !== '', value: raw };
    let value;
    if (column.type === 'number') {
      if (el.validity && el.validity.badInput) throw bad();
      value = raw.trim() === '' ? null : Number(raw);
      if (value !== null && !Number.isFinite(value)) throw bad();
    } else if (column.type === 'bool') {
      value = raw === '' ? null : raw === 'true';
    } else if (column.type === 'datetime') {
      value = raw.trim() === '' ? null : raw.trim();
      if (value !== null && Number.isNaN(Date.parse(value))) throw bad();
    } else {
      value = raw === '' && (base === null || base === undefined) ? null : raw;
    }
    const before = base === undefined ? null : base;
    return { changed: value !== before, value };
  }

  // -- rows: editing ----------------------------------------------------------------------

  function editRow(row, i) {
    const label = rowLabel(row, i);
    const inputs = table.columns.map((c) => ({ column: c,
      el: valueInput(c, row.values[c.name], `${c.name} (${c.type}) of ${label}`, 'row-input') }));
    editing.inputs = inputs;
    editing.status = h('span', { class: 'lock-badge mine' }, 'editing (locked by you)');
    const save = h('button', { type: 'button', class: 'primary small', 'data-testid': 'row-save',
      onclick: () => saveEdit() }, 'Save');
    const cancel = h('button', { type: 'button', class: 'small', 'data-testid': 'row-cancel',
      onclick: () => cancelEdit() }, 'Cancel');
    editing.buttons = [save, cancel];
    const tr = h('tr', { 'data-testid': 'table-row', 'data-row-id': row.id, 'data-editing': 'true',
      'data-version': row.version, 'data-locked-by': me ? me.username : '', class: 'editing',
      onkeydown: (e) => {
        if (e.key === 'Escape') { e.preventDefault(); cancelEdit(); }
        if (e.key === 'Enter' && e.target.tagName === 'INPUT') { e.preventDefault(); saveEdit(); }
      } },
    inputs.map(({ column, el }) => h('td', { 'data-testid': 'cell', 'data-column': column.name,
      class: `t-${column.type}` }, el)),
    h('td', { class: 'lock-cell', 'data-testid': 'row-lock' }, editing.status),
    h('td', { class: 'actions' }, save, cancel));
    return tr;
  }

  function setEditBusy(busy) {
    if (!editing) return;
    editing.busy = busy;
    for (const b of editing.buttons || []) b.disabled = busy;
  }

  async function startEdit(rowId) {
    if (editing || !table) return;
    const tableId = table.id;
    const gen = generation;
    say.clear();
    busyRowId = rowId;
    renderRows();
    let lock;
    try {
      lock = await app.call('row:lock', { tableId, rowId });
    } catch (err) {
      if (err.code === 'locked' && err.details && err.details.holder) {
        locks.set(rowId, err.details.holder);
      }
      say.error(err, err.code === 'not_found');
      return;
    } finally {
      busyRowId = null;
      renderRows();
    }
    if (gen !== generation || !rows.has(rowId)) {
      // The table changed (or the row went away) while the lock was on its way.
      app.call('row:unlock', { tableId, rowId }).catch(() => {});
      return;
    }
    editing = { tableId, rowId, token: lock.lockToken, base: rows.get(rowId), tr: null,
      timer: setInterval(heartbeat, HEARTBEAT_MS), busy: false, lost: false };
    locks.set(rowId, { tableId, rowId, userId: me.id, username: me.username,
      expiresAt: lock.expiresAt });
    renderRows();
    const first = editing.tr && editing.tr.querySelector('input, select');
    if (first) first.focus();
  }

  async function heartbeat() {
    const ed = editing;
    if (!ed || ed.busy) return;
    try {
      const { expiresAt } = await app.call('row:heartbeat',
        { tableId: ed.tableId, rowId: ed.rowId, lockToken: ed.token });
      const lock = locks.get(ed.rowId);
      if (lock) lock.expiresAt = expiresAt;
    } catch (err) {
      if (editing !== ed) return;
      if (err.code === 'conflict') lockLost(ed, null, err);
      else say.error(err);
    }
  }

  /** Our lock ended without us (timeout, owner override, disconnect): keep what was typed,
   *  say so, and offer a reload — a save would be refused as stale. */
  function lockLost(ed, reason, err) {
    ed.lost = true;
    if (ed.status) {
      ed.status.textContent = 'lock lost';
      ed.status.classList.add('lost');
    }
    const how = LOCK_ENDED[reason] || `ended (${reason})`;
    say.error(err || new AckError({ code: 'unlocked', message: `your lock on this row ${how}: `
      + 'saving will be refused; reload to see the row as it is now' }), true);
  }

  function collect(ed) {
    const values = {};
    for (const { column, el } of ed.inputs) {
      const { changed, value } = readInput(column, el, ed.base.values[column.name]);
      if (changed) values[column.name] = value;
    }
    return values;
  }

  async function saveEdit() {
    const ed = editing;
    if (!ed || ed.busy) return;
    let values;
    try {
      values = collect(ed);
    } catch (err) {
      say.error(err);
      return;
    }
    say.clear();
    setEditBusy(true);
    let saved = null;
    try {
      if (Object.keys(values).length) {
        saved = await app.call('row:update', { tableId: ed.tableId, rowId: ed.rowId,
          version: ed.base.version, lockToken: ed.token, values });
      }
    } catch (err) {
      setEditBusy(false);
      if (err.details && err.details.reason === 'stale_lock') ed.lost = true; // nothing to unlock
      say.error(err, err.code === 'conflict' || err.code === 'not_found');
      return;
    }
    if (saved && table && table.id === ed.tableId) rows.set(saved.id, saved);
    await endEdit(ed);
    if (!msg.el.dataset.code) say.info(saved ? 'Saved.' : 'No changes to save.');
  }

  function cancelEdit() {
    const ed = editing;
    if (!ed || ed.busy) return;
    say.clear();
    endEdit(ed);
  }

  /** Close the editor and release the lock (unless it is gone already). */
  async function endEdit(ed, unlock = true) {
    clearInterval(ed.timer);
    if (editing === ed) editing = null;
    const lock = locks.get(ed.rowId);
    if (lock && me && lock.userId === me.id) locks.delete(ed.rowId);
    renderRows();
    if (!unlock || ed.lost) return;
    try {
      await app.call('row:unlock', { tableId: ed.tableId, rowId: ed.rowId });
    } catch (err) {
      if (err.code !== 'not_found') say.error(err);
    }
  }

  async function reloadAfterProblem() {
    say.clear();
    const ed = editing;
    if (ed) {
      ed.busy = false;
      await endEdit(ed, !ed.lost);
    }
    if (!table) return;
    await loadTable();
    if (!msg.el.dataset.code) say.info('Reloaded: the rows are as they are now.');
  }

  // -- rows: add, delete, break a lock ----------------------------------------------------

  function buildAddForm() {
    addInputs = table.columns.map((c) => ({ column: c,
      el: valueInput(c, null, `${c.name} (${c.type})`, 'row-add-input') }));
    addRowControls.replaceChildren(
      h('legend', { class: 'visually-hidden' }, 'New row values'),
      ...addInputs.map(({ column, el }) => field(column.name, el,
        column.secret ? `(${column.type}, secret)` : `(${column.type})`)),
      h('button', { type: 'submit', 'data-testid': 'row-add' }, 'Add row'));
  }

  async function addRow() {
    const values = {};
    for (const { column, el } of addInputs) {
      const { value } = readInput(column, el, null);
      if (value !== null) values[column.name] = value;
    }
    const tableId = table.id;
    const row = await app.call('row:add', { tableId, values });
    if (!table || table.id !== tableId) return;
    rows.set(row.id, row);
    rowCount += 1;
    buildAddForm();
    renderRows();
    addRowMsg.info('Row added.');
    addInputs[0].el.focus();
  }

  async function deleteRow(rowId) {
    const row = rows.get(rowId);
    if (!row || !table) return;
    busyRowId = rowId;
    renderRows();
    try {
      await app.call('row:delete', { tableId: table.id, rowId, version: row.version });
      removeRow(rowId);
      say.info('Row deleted.');
    } catch (err) {
      say.error(err, err.code === 'conflict' || err.code === 'not_found');
    } finally {
      busyRowId = null;
      if (confirmDeleteId === rowId) confirmDeleteId = null;
      renderRows();
    }
  }

  async function breakLock(rowId) {
    const lock = locks.get(rowId);
    busyRowId = rowId;
    renderRows();
    try {
      await app.call('row:unlock', { tableId: table.id, rowId, force: true });
      locks.delete(rowId);
      say.info(`Broke ${lock ? `${lock.username}'s` : 'the'} lock.`);
    } catch (err) {
      say.error(err);
    } finally {
      busyRowId = null;
      renderRows();
    }
  }

  function removeRow(rowId) {
    // A row beyond the loaded pages still leaves the count.
    if (rows.delete(rowId) || nextCursor !== null) rowCount = Math.max(0, rowCount - 1);
    locks.delete(rowId);
    if (confirmDeleteId === rowId) confirmDeleteId = null;
  }

  // -- loading ----------------------------------------------------------------------------

  async function select(tableId) {
    if (table && table.id === tableId) return;
    if (editing) await endEdit(editing);
    table = tables.get(tableId) || null;
    sort = null;
    resetRows();
    say.clear();
    renderList();
    if (!table) {
      renderTable();
      return;
    }
    buildAddForm();
    addRowMsg.clear();
    renderTable();
    await loadTable();
  }

  function resetRows() {
    generation += 1;
    replay = null;
    rows = new Map();
    locks = new Map();
    rowEls.clear();
    tbody.replaceChildren();
    nextCursor = null;
    rowCount = 0;
    confirmDeleteId = null;
    busyRowId = null;
  }

  function rowsQuery(cursor) {
    const q = { tableId: table.id, limit: PAGE };
    if (cursor) q.cursor = cursor;
    if (sort) {
      q.sort = sort.column;
      q.order = sort.order;
    }
    return q;
  }

  /** The table's lock holders and first page of rows; pushes that land meanwhile are
   *  re-applied on top, so nothing is lost between the two answers. */
  async function loadTable() {
    const gen = ++generation;
    const tableId = table.id;
    replay = [];
    try {
      const info = await app.call('table:get', { tableId });
      const page = await app.call('table:rows', rowsQuery(null));
      if (gen !== generation) return;
      table = info.table;
      tables.set(table.id, table);
      rowCount = info.rowCount;
      locks = new Map((info.locks || []).map((l) => [l.rowId, l]));
      rows = new Map(page.items.map((r) => [r.id, r]));
      nextCursor = page.nextCursor || null;
      if (editing && editing.tableId === tableId && !rows.has(editing.rowId)) {
        rows.set(editing.rowId, editing.base); // keep the open editor on screen
      }
      for (const op of replay) op();
    } catch (err) {
      if (gen !== generation) return;
      if (err.code === 'not_found') {
        tables.delete(tableId);
        table = null;
        renderList();
      }
      say.error(err);
    } finally {
      if (gen === generation) replay = null;
    }
    renderList();
    renderTable();
  }

  async function loadMore() {
    if (!table || nextCursor === null) return;
    const gen = generation;
    moreButton.disabled = true;
    try {
      const page = await app.call('table:rows', rowsQuery(nextCursor));
      if (gen !== generation) return;
      for (const r of page.items) if (!rows.has(r.id)) rows.set(r.id, r);
      nextCursor = page.nextCursor || null;
      renderRows();
    } catch (err) {
      say.error(err);
    } finally {
      moreButton.disabled = false;
    }
  }

  function toggleSort(column) {
    const flip = sort && sort.column === column && sort.order === 'asc';
    sort = { column, order: flip ? 'desc' : 'asc' };
    renderHead();
    resetView();
  }

  async function resetView() {
    rows = new Map();
    rowEls.clear();
    tbody.replaceChildren();
    await loadTable();
  }

  // -- pushes -----------------------------------------------------------------------------

  const here = (d) => Boolean(project && d && (!d.projectId || d.projectId === project.id));
  const onTable = (d) => Boolean(table && d && d.tableId === table.id);

  function apply(op) {
    if (replay) replay.push(op);
    op();
    renderRows();
  }

  app.on('table:created', (d) => {
    if (!here(d) || !d.table) return;
    tables.set(d.table.id, d.table);
    renderList();
    renderTable();
  });
  app.on('table:updated', (d) => {
    if (!here(d) || !d.table) return;
    tables.set(d.table.id, d.table);
    if (table && table.id === d.table.id) {
      table = d.table;
      tableTitle.textContent = table.name;
    }
    renderList();
  });
  app.on('table:deleted', (d) => {
    if (!here(d)) return;
    const gone = tables.get(d.tableId);
    tables.delete(d.tableId);
    if (table && table.id === d.tableId) {
      if (editing) {
        clearInterval(editing.timer);
        editing = null;
      }
      table = null;
      resetRows();
      say.info(`Table “${gone ? gone.name : d.tableId}” was deleted.`);
    }
    renderList();
    renderTable();
  });

  app.on('row:added', (d) => {
    if (!onTable(d)) return;
    apply(() => {
      if (!rows.has(d.row.id)) {
        rows.set(d.row.id, d.row);
        rowCount += 1;
      }
    });
  });
  app.on('row:updated', (d) => {
    if (!onTable(d)) return;
    apply(() => {
      const known = rows.get(d.row.id);
      if (known && known.version <= d.row.version) rows.set(d.row.id, d.row);
      else if (!known && nextCursor === null) rows.set(d.row.id, d.row); // e.g. restored
    });
  });
  app.on('row:deleted', (d) => {
    if (!onTable(d)) return;
    apply(() => {
      removeRow(d.rowId);
      if (editing && editing.rowId === d.rowId) {
        clearInterval(editing.timer);
        editing = null;
        say.error(new AckError({ code: 'not_found',
          message: 'the row you were editing was deleted by someone else' }));
      }
    });
  });
  app.on('row:locked', (d) => {
    if (!onTable(d)) return;
    apply(() => locks.set(d.rowId, d));
  });
  app.on('row:unlocked', (d) => {
    if (!onTable(d)) return;
    apply(() => {
      const lock = locks.get(d.rowId);
      if (!lock || !d.userId || lock.userId === d.userId) locks.delete(d.rowId);
      const ed = editing;
      if (ed && ed.rowId === d.rowId && me && d.userId === me.id && d.reason !== 'released'
          && d.reason !== 'deleted' && !ed.lost) {
        lockLost(ed, d.reason);
      }
    });
  });

  // -- session and project ----------------------------------------------------------------

  const idle = h('p', { class: 'muted', 'data-testid': 'tables-idle' },
    'Open a project to see its tables.');
  const layout = h('div', { class: 'tables-layout', 'data-testid': 'tables', hidden: true },
    h('div', { class: 'tables-bar' },
      h('h3', { class: 'visually-hidden' }, 'Tables in this project'),
      tableList, noTables),
    h('div', { class: 'tables-tools row' }, createSection, importSection),
    pick, view);
  root.append(idle, layout);

  function reset() {
    if (editing) {
      const ed = editing;
      clearInterval(ed.timer);
      editing = null;
      if (!ed.lost) {
        app.call('row:unlock', { tableId: ed.tableId, rowId: ed.rowId }).catch(() => {});
      }
    }
    tables.clear();
    table = null;
    sort = null;
    uploaded = null;
    resetRows();
    say.clear();
    createMsg.clear();
    importMsg.clear();
    showBadLines([], 0);
  }

  function renderAll() {
    idle.hidden = Boolean(project);
    layout.hidden = !project;
    createSection.hidden = !canWrite();
    importSection.hidden = !canWrite();
    renderList();
    renderTable();
  }

  app.bus.on('session', (user) => {
    if (!user || (me && me.id !== user.id)) {
      project = null;
      reset();
      renderAll();
    }
    me = user;
  });

  app.bus.on('project', async (p) => {
    const before = project;
    project = p;
    if (!p || !before || before.id !== p.id) {
      reset();
      renderAll();
      if (!p) return;
      await loadTables();
      renderTable();
      return;
    }
    // The same project again: the projects panel re-entered its room, or our role changed.
    await reloadProject();
    await reclaimLock();
    renderAll();
  });

  /** The open project's tables and the selected table's rows, as they are now. */
  async function reloadProject() {
    renderAll();
    await loadTables();
    if (table && !tables.has(table.id)) {
      table = null;
      resetRows();
    }
    if (table) await loadTable();
    renderAll();
  }

  /** The row being edited keeps its lock across a reconnect only if the new socket claims it
   *  within the server's grace (LOCK_GRACE_S). */
  async function reclaimLock() {
    const ed = editing;
    if (!ed || ed.lost) return;
    try {
      const lock = await app.call('row:lock', { tableId: ed.tableId, rowId: ed.rowId });
      ed.token = lock.lockToken;
    } catch (err) {
      if (editing === ed) lockLost(ed, null, err);
    }
  }

  // After a reconnect the room's missed pushes are replayed; only what could not be (a new
  // epoch, a gap older than the server's buffer) is reloaded.
  app.bus.on('resync', ({ room, error }) => {
    if (project && !error && room === `project:${project.id}`) reloadProject();
  });
  let wasOffline = false;
  app.bus.on('connection', (status) => {
    if (status === 'offline') wasOffline = true;
    if (status === 'online' && wasOffline) {
      wasOffline = false;
      reclaimLock();
    }
  });

  renderAll();
}

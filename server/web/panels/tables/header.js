// The open table's header line: its name (renamed in place with table:rename: Enter saves,
// Escape cancels), how many rows it holds or match, a read-only badge for viewers, and its
// History and Export CSV actions.
import { act, authorizedFetch, h } from '../../lib.js';
import { messageLine } from './messages.js';

/** opts: {app, say, table() → the open table, onRenamed(table), onHistory()} */
export function createHeader(opts) {
  const { app } = opts;
  const title = h('h3', { tabindex: '-1', id: 'tables-current-title',
    'data-testid': 'table-title' });
  const count = h('span', { class: 'muted count', 'data-testid': 'table-count',
    'aria-live': 'polite' });
  const readOnly = h('span', { class: 'badge', 'data-testid': 'table-read-only', hidden: true },
    'read only');
  const renameButton = h('button', { type: 'button', class: 'small', 'data-testid': 'table-rename',
    onclick: () => startRename() }, 'Rename');
  const input = h('input', { type: 'text', required: true, maxlength: 100,
    'data-testid': 'table-rename-input', 'aria-label': 'New table name' });
  const msg = messageLine('table-rename-error');
  const controls = h('fieldset', { class: 'row rename' },
    h('legend', { class: 'visually-hidden' }, 'Rename the table'), input,
    h('button', { type: 'submit', class: 'small primary', 'data-testid': 'table-rename-save' },
      'Save'),
    h('button', { type: 'button', class: 'small', 'data-testid': 'table-rename-cancel',
      onclick: () => endRename() }, 'Cancel'));
  const form = h('form', { class: 'rename-form', hidden: true, onsubmit: (e) => {
    e.preventDefault();
    act(controls, msg, rename);
  }, onkeydown: (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      endRename();
    }
  } }, controls, msg.el);
  const historyButton = h('button', { type: 'button', class: 'small',
    'data-testid': 'table-history-open', onclick: () => opts.onHistory() }, 'History');
  const exportButton = h('button', { type: 'button', class: 'small', 'data-testid': 'table-export',
    onclick: () => act(exportButton, opts.say, exportCsv) }, 'Export CSV');
  const titleLine = h('div', { class: 'title-line' }, title, renameButton, count, readOnly);

  function startRename() {
    input.value = opts.table().name;
    msg.clear();
    titleLine.hidden = true;
    form.hidden = false;
    input.focus();
    input.select();
  }

  function endRename() {
    form.hidden = true;
    titleLine.hidden = false;
    renameButton.focus();
  }

  async function rename() {
    const table = opts.table();
    const name = input.value.trim();
    if (name === table.name) {
      endRename();
      return;
    }
    const renamed = await app.call('table:rename', { tableId: table.id, name });
    opts.onRenamed(renamed);
    endRename();
    opts.say.info(`Renamed the table to “${renamed.name}”.`);
  }

  async function exportCsv() {
    const t = opts.table();
    const res = await authorizedFetch(app, `/api/tables/${encodeURIComponent(t.id)}/export.csv`);
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: `${t.name}.csv`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  return {
    el: h('div', { class: 'table-head' }, titleLine, form,
      h('div', { class: 'table-actions' }, historyButton, exportButton)),
    labelId: title.id,
    setName(name) { title.textContent = name; },
    setCount(text) { count.textContent = text; },
    setWritable(writable) {
      readOnly.hidden = writable;
      renameButton.hidden = !writable;
    },
    /** Another table: no rename form left open. */
    reset() {
      form.hidden = true;
      titleLine.hidden = false;
    },
  };
}

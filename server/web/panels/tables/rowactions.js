// A row's actions, from the ⋯ button (or Enter) in its pinned cell: edit, history, delete
// (confirmed in a dialog; undone from the table history), and for project owners breaking
// someone else's lock on it.
import { h } from '../../lib.js';
import { createDialog, createMenu } from './popups.js';

/** opts: {app, host, rowset, grid, editor, history, say, lockOf(rowId), canWrite(),
 *  isOwner(), locks (Map rowId → holder)} */
export function createRowActions(opts) {
  const { app, rowset, grid, editor, say } = opts;
  const menu = createMenu(opts.host);

  const dialog = createDialog(opts.host, { testid: 'row-delete-dialog',
    title: 'Delete this row?' });
  const text = h('p', {});
  // Focused when the dialog opens: the reader chose "Delete row" a moment ago.
  const yes = h('button', { type: 'button', class: 'danger', autofocus: true,
    'data-testid': 'row-delete-confirm' }, 'Delete row');
  dialog.body.append(text);
  dialog.footer.append(yes, h('button', { type: 'button', 'data-testid': 'row-delete-cancel',
    onclick: () => dialog.close() }, 'Cancel'));
  let deleting = null;
  yes.addEventListener('click', () => {
    const rowId = deleting;
    dialog.close();
    if (rowId) remove(rowId);
  });

  function open(rowId, button) {
    const row = rowset.get(rowId);
    const table = rowset.table;
    if (!row || !table) return;
    const lock = opts.lockOf(rowId);
    const other = lock && !lock.mine ? lock : null;
    const busy = other ? `(${other.username} is editing)` : '';
    const label = grid.rowLabel(rowId);
    const first = table.columns[0].name;
    const entries = [];
    if (opts.canWrite()) {
      entries.push({ label: 'Edit', testid: 'row-edit', disabled: Boolean(other), hint: busy,
        onSelect: () => grid.focusCell(rowId, first).then(() => editor.open(rowId, first)) });
    }
    entries.push({ label: 'History', testid: 'row-history-open',
      onSelect: () => opts.history.showRow(rowId, label) });
    if (opts.canWrite()) {
      entries.push({ label: 'Delete row', testid: 'row-delete', danger: true,
        disabled: Boolean(other), hint: busy, onSelect: () => {
          deleting = rowId;
          text.textContent = `Delete ${label}? You can bring it back from the table's history.`;
          dialog.show();
        } });
    }
    if (other && opts.isOwner()) {
      entries.push({ label: `Break ${other.username}'s lock`, testid: 'row-break-lock',
        danger: true, onSelect: () => breakLock(rowId) });
    }
    menu.open(button, entries, `Actions for ${label}`);
  }

  async function remove(rowId) {
    const row = rowset.get(rowId);
    if (!row) return;
    if (editor.rowId === rowId || (editor.lock && editor.lock.rowId === rowId)) {
      await editor.drop();
    }
    try {
      await app.call('row:delete', { tableId: rowset.table.id, rowId, version: row.version });
      rowset.deleted(rowId);
      opts.locks.delete(rowId);
      say.info('Row deleted. You can restore it from the table history.');
      grid.focus();
    } catch (err) {
      say.error(err, err.code === 'conflict' || err.code === 'not_found');
    }
  }

  async function breakLock(rowId) {
    const held = opts.locks.get(rowId);
    try {
      await app.call('row:unlock', { tableId: rowset.table.id, rowId, force: true });
      opts.locks.delete(rowId);
      grid.schedule();
      say.info(`Broke ${held ? `${held.username}'s` : 'the'} lock.`);
    } catch (err) {
      say.error(err);
    }
  }

  return {
    open,
    close() {
      menu.close(false);
      dialog.close();
      deleting = null;
    },
  };
}

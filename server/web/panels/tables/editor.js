// Editing a cell in place, under the row's lock: opening an editor takes the lock (row:lock)
// unless this tab holds it already, heartbeats keep it while the editor is open, and it is
// released (row:unlock) once no editor is open on the row — Escape, Enter, a click elsewhere.
// Tab moves to the next cell of the same row and keeps the lock. Enter, Tab and leaving the
// cell save the value (row:update with the row's version and the lock token); Escape drops it.
//
// A lock that ends without us (timed out, broken by an owner, lost with the connection)
// keeps what was typed, says so and offers a reload; a save would be refused as stale.
import { readInput, valueInput } from './values.js';
import { lockEndedText } from './messages.js';

const HEARTBEAT_MAX_MS = 60_000;
const HEARTBEAT_MIN_MS = 1_000;

/** opts: {app, rowset, grid, say, me(), canWrite(), locks (rowId → holder of others),
 *  onChange()} */
export function createEditor(opts) {
  const { app, rowset, say } = opts;
  let lock = null; // {tableId, rowId, token, expiresAt, timer, lost, ready (Promise<bool>)}
  let cell = null; // {rowId, column, input, closing}
  let chain = Promise.resolve(); // lock and unlock calls, one after the other

  const serial = (fn) => {
    const next = chain.then(fn, fn);
    chain = next.catch(() => {});
    return next;
  };

  function gridOf() { return opts.grid(); }

  /** How the pinned column shows this tab's own lock. */
  function mine(rowId) {
    if (!lock || lock.rowId !== rowId || (!lock.token && !lock.lost)) return null;
    const me = opts.me();
    return { userId: me ? me.id : '', username: me ? me.username : 'you', mine: true,
      lost: lock.lost };
  }

  function heartbeatEvery(expiresAt) {
    const left = Date.parse(expiresAt) - Date.now();
    if (Number.isNaN(left)) return HEARTBEAT_MAX_MS;
    return Math.min(HEARTBEAT_MAX_MS, Math.max(HEARTBEAT_MIN_MS, left / 3));
  }

  function startHeartbeat() {
    clearTimeout(lock.timer);
    const held = lock;
    held.timer = setTimeout(async () => {
      if (lock !== held || held.lost) return;
      try {
        const { expiresAt } = await app.call('row:heartbeat',
          { tableId: held.tableId, rowId: held.rowId, lockToken: held.token });
        if (lock !== held) return;
        held.expiresAt = expiresAt;
        startHeartbeat();
      } catch (err) {
        if (lock !== held) return;
        if (err.code === 'conflict') lost(null, err);
        else {
          say.error(err);
          startHeartbeat();
        }
      }
    }, heartbeatEvery(held.expiresAt));
  }

  /** Take the row's lock (once per row: Tab between its cells keeps it). */
  function acquire(tableId, rowId) {
    if (lock && lock.rowId === rowId && lock.tableId === tableId) return lock.ready;
    const held = { tableId, rowId, token: null, expiresAt: null, timer: 0, lost: false };
    lock = held;
    held.ready = serial(async () => {
      if (lock !== held) return false;
      try {
        const granted = await app.call('row:lock', { tableId, rowId });
        if (lock !== held) {
          // Given up (Escape, another table) while the lock was on its way: hand it back.
          app.call('row:unlock', { tableId, rowId }).catch(() => {});
          return false;
        }
        held.token = granted.lockToken;
        held.expiresAt = granted.expiresAt;
        startHeartbeat();
        opts.onChange();
        return true;
      } catch (err) {
        if (lock === held) lock = null;
        if (err.code === 'locked' && err.details && err.details.holder) {
          opts.locks.set(rowId, err.details.holder);
        }
        say.error(err, err.code === 'not_found');
        if (cell && cell.rowId === rowId) close();
        opts.onChange();
        return false;
      }
    });
    opts.onChange();
    return held.ready;
  }

  /** Hand the lock back once no editor is open on its row. */
  function releaseSoon() {
    setTimeout(() => {
      const held = lock;
      if (!held || (cell && cell.rowId === held.rowId)) return;
      release(held);
    }, 0);
  }

  function release(held) {
    clearTimeout(held.timer);
    if (lock === held) lock = null;
    opts.onChange();
    if (held.lost) return Promise.resolve();
    return serial(async () => {
      if (!(await held.ready)) return;
      try {
        await app.call('row:unlock', { tableId: held.tableId, rowId: held.rowId });
      } catch (err) {
        // Said only while its table is still on screen (not after a sign-out, say).
        const shown = rowset.table && rowset.table.id === held.tableId;
        if (err.code !== 'not_found' && shown) say.error(err);
      }
    });
  }

  function lost(reason, err) {
    if (!lock) return;
    lock.lost = true;
    clearTimeout(lock.timer);
    if (err) say.error(err, true);
    else say.problem(lockEndedText(reason), 'unlocked', true);
    opts.onChange();
  }

  // -- the cell editor --------------------------------------------------------------------

  async function open(rowId, column, initial = null) {
    const table = rowset.table;
    const row = rowset.get(rowId);
    const col = table && table.columns.find((c) => c.name === column);
    if (!row || !col) return;
    if (!opts.canWrite()) {
      say.info('You can read this table but not change it (your role is viewer).');
      return;
    }
    const holder = opts.locks.get(rowId);
    const me = opts.me();
    if (holder && me && holder.userId !== me.id && !(lock && lock.rowId === rowId)) {
      say.problem(`${holder.username} is editing this row right now; try again when they are `
        + 'done.', 'locked');
      return;
    }
    if (cell) {
      if (cell.rowId === rowId && cell.column === column) return;
      if (!(await commit(null))) return;
    }
    if (lock && lock.rowId !== rowId) release(lock);
    const td = gridOf().cell(rowId, column);
    if (!td) return;
    say.clear();
    const label = `${col.name} of ${gridOf().rowLabel(rowId)}`;
    const input = valueInput(col, row.values[col.name], label, 'row-input');
    input.classList.add('cell-editor');
    if (initial !== null && input.tagName === 'INPUT') input.value = initial;
    const mine = { rowId, column, col, input, base: row.values[col.name], closing: false,
      done: null };
    cell = mine;
    input.addEventListener('keydown', (e) => onKey(e, mine));
    input.addEventListener('blur', () => {
      // Switching windows blurs too: the editor stays open for the reader's return.
      if (cell === mine && !mine.closing && document.hasFocus()) commit(null);
    });
    td.classList.add('editing');
    td.replaceChildren(input);
    const tr = td.parentElement;
    tr.dataset.editing = 'true';
    input.focus();
    if (input.tagName === 'INPUT' && initial === null) input.select();
    acquire(table.id, rowId);
  }

  function onKey(e, mine) {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      cancel(mine);
    } else if (e.key === 'Enter' && !e.isComposing) {
      e.preventDefault();
      commit('stay');
    } else if (e.key === 'Tab') {
      e.preventDefault();
      commit(e.shiftKey ? 'prev' : 'next');
    }
  }

  /** Save the open cell if it changed, close it, and go on: 'stay' focuses its cell, 'next'
   *  and 'prev' open the neighbouring cell of the row, null leaves focus where it went.
   *  False when the value could not be saved (the editor stays open). */
  function commit(move) {
    const c = cell;
    if (!c) return Promise.resolve(true);
    if (c.closing) return c.done || Promise.resolve(false); // a save already on its way
    c.closing = true;
    c.done = save(c, move);
    return c.done;
  }

  async function save(c, move) {
    let change;
    try {
      change = readInput(c.col, c.input, c.base);
    } catch (err) {
      c.closing = false;
      say.error(err);
      if (move) c.input.focus();
      return false;
    }
    const held = lock;
    const ok = held && held.rowId === c.rowId ? await held.ready : false;
    if (cell !== c) return false; // closed meanwhile (the lock was refused)
    if (change.changed) {
      if (!ok || !held.token) {
        c.closing = false;
        if (held && held.lost) say.problem(lockEndedText(null), 'unlocked', true);
        return false;
      }
      const row = rowset.get(c.rowId);
      try {
        const saved = await app.call('row:update', { tableId: held.tableId, rowId: c.rowId,
          version: row ? row.version : 1, lockToken: held.token,
          values: { [c.column]: change.value } });
        rowset.updated(saved);
        say.info('Saved.');
      } catch (err) {
        if (cell !== c) return false;
        c.closing = false;
        if (err.details && err.details.reason === 'stale_lock') {
          held.lost = true;
          clearTimeout(held.timer);
          opts.onChange();
        }
        say.error(err, err.code === 'conflict' || err.code === 'not_found');
        if (move) c.input.focus();
        return false;
      }
    }
    if (cell !== c) return true;
    close();
    const next = move === 'next' || move === 'prev'
      ? gridOf().columnsAfter(c.column, move === 'next' ? 1 : -1) : null;
    if (next) {
      await gridOf().focusCell(c.rowId, next);
      await open(c.rowId, next);
    } else {
      if (move) await gridOf().focusCell(c.rowId, c.column);
      releaseSoon();
    }
    return true;
  }

  function cancel(c = cell) {
    if (!c || cell !== c) return;
    c.closing = true;
    close();
    say.clear();
    gridOf().focusCell(c.rowId, c.column);
    releaseSoon();
  }

  /** Take the editor out of its cell; the grid draws the row afresh. */
  function close() {
    const c = cell;
    if (!c) return;
    cell = null;
    c.closing = true;
    const tr = c.input.closest('tr');
    if (tr) delete tr.dataset.editing;
    gridOf().redraw(c.rowId);
  }

  // -- what happens around us -------------------------------------------------------------

  return {
    mine,
    get rowId() { return cell ? cell.rowId : null; },
    get lock() { return lock; },
    open,
    commit,
    cancel: () => cancel(),
    /** A row:unlocked push: ours ended without us? */
    unlocked(push) {
      const me = opts.me();
      if (!lock || lock.rowId !== push.rowId || lock.lost || !me || push.userId !== me.id) return;
      if (push.reason === 'released' || push.reason === 'deleted') return;
      lost(push.reason);
    },
    /** The row under the editor was deleted by someone else. */
    deleted(rowId) {
      if (lock && lock.rowId === rowId) {
        clearTimeout(lock.timer);
        lock = null;
      }
      if (cell && cell.rowId === rowId) {
        cell = null;
        say.problem('The row you were editing was deleted by someone else.', 'not_found');
      }
    },
    /** Drop the editor and the lock (another table, project or user; a reload). */
    async drop({ unlock = true } = {}) {
      if (cell) close();
      const held = lock;
      if (!held) return;
      if (unlock) await release(held);
      else {
        clearTimeout(held.timer);
        lock = null;
      }
    },
    /** After a reconnect the lock survives only if this socket claims it within the
     *  server's grace (LOCK_GRACE_S). */
    async reclaim() {
      const held = lock;
      if (!held || held.lost || !held.token) return;
      try {
        const granted = await app.call('row:lock', { tableId: held.tableId, rowId: held.rowId });
        held.token = granted.lockToken;
        held.expiresAt = granted.expiresAt;
        startHeartbeat();
      } catch (err) {
        if (lock === held) lost(null, err);
      }
    },
  };
}

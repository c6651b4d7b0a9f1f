// The open table's rows as the grid shows them: the query (sort and filters), the rows loaded
// so far in server order, keyset paging on demand (the grid asks for rows up to an index as
// the reader scrolls), and live pushes folded in where the next page would have put them.
import { matches, rowOrder } from './values.js';

export const PAGE = 100;

export class RowSet {
  constructor(app) {
    this.app = app;
    this.table = null;
    this.sort = null; // {column, order: 'asc' | 'desc'}
    this.filters = []; // [{column, op, value}]
    this.ids = [];
    this.byId = new Map();
    this.nextCursor = null;
    this.count = 0; // the table's row count, unfiltered (table:get, then pushes)
    this.status = 'idle'; // idle | loading | ready | error
    this.error = null;
    this.generation = 0;
    this.paging = null; // the page on its way
    this.pending = null; // pushes applied while the first page loads, applied again after it
    this.pinned = () => false; // rows kept whatever the filters say (the one being edited)
    this.listeners = new Set();
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    for (const fn of this.listeners) fn();
  }

  get loaded() { return this.ids.length; }

  get filtered() { return this.filters.length > 0; }

  /** How many rows the view holds, when known (filtered and not all loaded: unknown). */
  get total() {
    if (this.nextCursor === null) return this.ids.length;
    return this.filtered ? null : Math.max(this.count, this.ids.length);
  }

  at(i) { return this.byId.get(this.ids[i]) || null; }

  get(id) { return this.byId.get(id) || null; }

  indexOf(id) { return this.ids.indexOf(id); }

  /** Another table (or none): forget everything. */
  reset(table = null, count = 0) {
    this.generation += 1;
    this.table = table;
    this.count = count;
    this.ids = [];
    this.byId = new Map();
    this.nextCursor = null;
    this.paging = null;
    this.pending = null;
    this.status = table ? 'loading' : 'idle';
    this.error = null;
  }

  setQuery({ sort = this.sort, filters = this.filters } = {}) {
    this.sort = sort;
    this.filters = filters;
  }

  query(cursor) {
    const q = { tableId: this.table.id, limit: PAGE };
    if (cursor) q.cursor = cursor;
    if (this.sort) {
      q.sort = this.sort.column;
      q.order = this.sort.order;
    }
    if (this.filters.length) {
      q.filter = this.filters.map(({ column, op, value }) => ({ column, op, value }));
    }
    return q;
  }

  /** The first page again (then as many as held `keep` rows before, so a reload keeps the
   *  reader's place). Pushes landing meanwhile are applied on top of the answer. */
  async reload(keep = 0) {
    const gen = ++this.generation;
    this.status = 'loading';
    this.error = null;
    this.paging = null;
    this.pending = [];
    this.changed();
    try {
      const page = await this.app.call('table:rows', this.query(null));
      if (gen !== this.generation) return;
      this.ids = [];
      this.byId = new Map();
      this.take(page);
      const ops = this.pending;
      this.pending = null;
      for (const op of ops) op();
      this.status = 'ready';
    } catch (err) {
      if (gen !== this.generation) return;
      this.pending = null;
      this.status = 'error';
      this.error = err;
    }
    this.changed();
    if (keep > this.loaded && this.status === 'ready') await this.loadUntil(keep - 1);
  }

  take(page) {
    for (const r of page.items) {
      if (!this.byId.has(r.id)) this.ids.push(r.id);
      this.byId.set(r.id, r);
    }
    this.nextCursor = page.nextCursor || null;
  }

  /** The next page (one at a time); resolves when it has been folded in. */
  more() {
    if (this.paging) return this.paging;
    if (this.nextCursor === null || this.status !== 'ready') return Promise.resolve();
    const gen = this.generation;
    const cursor = this.nextCursor;
    this.paging = (async () => {
      try {
        const page = await this.app.call('table:rows', this.query(cursor));
        if (gen === this.generation) this.take(page);
      } catch (err) {
        if (gen === this.generation) {
          this.status = 'error';
          this.error = err;
        }
      } finally {
        if (gen === this.generation) {
          this.paging = null;
          this.changed();
        }
      }
    })();
    this.changed();
    return this.paging;
  }

  /** Page on until row `index` is loaded (or the rows end). */
  async loadUntil(index) {
    const gen = this.generation;
    while (gen === this.generation && this.status === 'ready' && this.loaded <= index
           && this.nextCursor !== null) {
      await this.more();
    }
  }

  // -- pushes (and our own acks: the server does not echo a change to its sender) --------

  apply(op) {
    op();
    if (this.pending) this.pending.push(op);
    this.changed();
  }

  /** Put a row the loaded pages lack where the server's order puts it; a row past the last
   *  loaded one comes with a later page instead. */
  place(row) {
    const before = rowOrder(this.sort);
    const i = this.ids.findIndex((id) => before(row, this.byId.get(id)) < 0);
    if (i >= 0) this.ids.splice(i, 0, row.id);
    else if (this.nextCursor === null) this.ids.push(row.id);
    else return false;
    this.byId.set(row.id, row);
    return true;
  }

  added(row) {
    this.apply(() => {
      if (this.byId.has(row.id)) return;
      this.count += 1;
      if (matches(row, this.filters)) this.place(row);
    });
  }

  /** A changed row keeps its place (rows do not jump under the reader); one that no longer
   *  passes the filters leaves, unless pinned. */
  updated(row) {
    this.apply(() => {
      const known = this.byId.get(row.id);
      if (known) {
        if (known.version > row.version) return;
        if (matches(row, this.filters) || this.pinned(row.id)) this.byId.set(row.id, row);
        else this.drop(row.id);
      } else if (matches(row, this.filters) && this.place(row) && !this.filtered
                 && this.nextCursor === null) {
        this.count += 1; // e.g. a deleted row restored
      }
    });
  }

  deleted(rowId) {
    this.apply(() => {
      // A row beyond the loaded pages still leaves the count.
      if (this.drop(rowId) || this.nextCursor !== null) this.count = Math.max(0, this.count - 1);
    });
  }

  drop(rowId) {
    if (!this.byId.delete(rowId)) return false;
    const i = this.ids.indexOf(rowId);
    if (i >= 0) this.ids.splice(i, 1);
    return true;
  }
}

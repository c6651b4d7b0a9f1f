// Tables: the open project's tables — a list (live through table:created|updated|deleted),
// new tables and CSV imports (tables/tools.js), and the selected table as a grid
// (tables/grid.js): pinned row column showing who holds each row's lock, sticky header,
// virtual scrolling over keyset pages (tables/rowset.js), filters and sort
// (tables/querybar.js), in-cell editing under the row lock (tables/editor.js), row and table
// history with restore (tables/history.js), rename and CSV export. Rows and locks are live:
// row:added|updated|deleted and row:locked|unlocked pushes. Secret values arrive masked
// (••••1234) for viewers who may not see them, and are never written back unless retyped.
import { act, field, h } from '../lib.js';
import { formatNumber, plural } from './tables/format.js';
import { createEditor } from './tables/editor.js';
import { createGrid } from './tables/grid.js';
import { createHeader } from './tables/header.js';
import { createHistory } from './tables/history.js';
import { messageLine } from './tables/messages.js';
import { createQueryBar } from './tables/querybar.js';
import { createRowActions } from './tables/rowactions.js';
import { RowSet } from './tables/rowset.js';
import { createTools } from './tables/tools.js';
import { readInput, valueInput } from './tables/values.js';

export default { id: 'tables', title: 'Tables', slot: 'main', mount };

function mount(root, app) {
  let me = null; // the signed-in user
  let project = null; // {id, name, role}: the open project, from the projects panel
  const tables = new Map(); // id → table
  let table = null; // the selected table
  let locks = new Map(); // rowId → {userId, username, expiresAt}: held in other tabs
  let lockOps = null; // lock pushes landing while table:get is on its way, applied after it
  let loadGen = 0;
  let tablesState = 'idle'; // idle | loading | ready | error
  let memberNames = null; // Promise<Map userId → username> for history entries

  const canWrite = () => Boolean(project && project.role !== 'viewer');
  const isOwner = () => Boolean(project && project.role === 'owner');
  const rowset = new RowSet(app);
  const say = messageLine('table-message', () => reloadAfterProblem());

  // -- the table list ---------------------------------------------------------------------

  const tableList = h('ul', { class: 'table-list', 'data-testid': 'table-list',
    'aria-label': 'Tables in this project' });
  const listNote = h('p', { class: 'muted', 'data-testid': 'table-empty' });
  const listMsg = messageLine('table-list-message');

  function renderList() {
    const items = [...tables.values()].sort((a, b) => a.name.localeCompare(b.name));
    tableList.replaceChildren(...items.map((t) => {
      const current = Boolean(table && table.id === t.id);
      return h('li', { 'data-testid': 'table-item', 'data-table-id': t.id,
        'data-table-name': t.name, class: current ? 'active' : '' },
      h('button', { type: 'button', class: 'table-open', 'data-testid': 'table-open',
        'aria-current': current ? 'true' : null, onclick: () => select(t.id) },
      t.name, h('small', { class: 'muted' }, ` · ${plural(t.columns.length, 'column')}`)));
    }));
    listNote.hidden = items.length > 0 || tablesState === 'error';
    listNote.textContent = tablesState === 'loading' ? 'Loading tables…' : 'No tables yet.';
  }

  async function loadTables() {
    const pid = project.id;
    tablesState = 'loading';
    renderList();
    try {
      const list = await app.call('table:list', { projectId: pid });
      if (!project || project.id !== pid) return;
      tables.clear();
      for (const t of Array.isArray(list) ? list : list.items) tables.set(t.id, t);
      tablesState = 'ready';
      listMsg.clear();
    } catch (err) {
      tablesState = 'error';
      listMsg.error(err);
    }
    renderList();
  }

  const tools = createTools({ app, project: () => project, onMade: async (created, note) => {
    tables.set(created.id, created);
    renderList();
    await select(created.id);
    if (note) say.info(note);
  } });

  // -- the selected table: header ---------------------------------------------------------

  const header = createHeader({ app, say, table: () => table,
    onRenamed: (t) => tableChanged(t), onHistory: () => history.showTable() });

  function tableChanged(t) {
    tables.set(t.id, t);
    if (table && table.id === t.id) {
      table = t;
      rowset.table = t;
      header.setName(t.name);
    }
    renderList();
  }

  // -- the grid, its editor and its popups ------------------------------------------------

  function lockOf(rowId) {
    const own = editor.mine(rowId);
    if (own) return own;
    const held = locks.get(rowId);
    if (!held) return null;
    return { userId: held.userId, username: held.username,
      mine: Boolean(me && held.userId === me.id), lost: false };
  }

  const grid = createGrid({
    rowset, labelId: header.labelId, lockOf, canWrite,
    editingRowId: () => editor.rowId,
    onEdit: (rowId, column, initial) => editor.open(rowId, column, initial),
    onMenu: (rowId, button) => actions.open(rowId, button),
    onSort: (column) => querybar.cycleSort(column),
    onLeaveEdited: () => editor.commit(null),
  });
  const editor = createEditor({ app, rowset, grid: () => grid, say, me: () => me, canWrite,
    locks: { get: (id) => locks.get(id), set: (id, holder) => locks.set(id, holder) },
    onChange: () => grid.schedule() });
  rowset.pinned = (id) => editor.rowId === id;

  const querybar = createQueryBar({ onChange: async (query) => {
    if (editor.rowId) await editor.commit(null);
    rowset.setQuery(query);
    grid.setTable(table);
    await rowset.reload();
  } });

  const popupHost = h('div', { class: 'tables-popups' });
  const history = createHistory({ app, host: popupHost, rowset, canWrite,
    names: () => names(),
    onRowRestored: (row) => {
      rowset.updated(row);
      grid.reveal(row.id);
    },
    onTableRestored: () => loadTable({ keep: rowset.loaded }),
  });

  const actions = createRowActions({ app, host: popupHost, rowset, grid, editor, history, say,
    lockOf, canWrite, isOwner, locks: {
      get: (id) => locks.get(id), delete: (id) => locks.delete(id) } });

  function names() {
    if (!memberNames && project) {
      const pid = project.id;
      memberNames = app.call('project:get', { id: pid }).then((p) => {
        const known = new Map((p.members || []).map((m) => [m.userId,
          m.username || m.email || 'a member']));
        if (me) known.set(me.id, 'you');
        return known;
      }, () => {
        memberNames = null;
        return new Map(me ? [[me.id, 'you']] : []);
      });
    }
    return memberNames || Promise.resolve(new Map());
  }

  // -- the grid's states: loading, empty, error, more on its way --------------------------

  const status = h('div', { class: 'grid-status', 'data-testid': 'grid-status',
    role: 'status' });

  function renderStatus() {
    if (!table) return;
    const total = rowset.total;
    if (rowset.status === 'loading' && rowset.loaded === 0) header.setCount('loading rows…');
    else if (!rowset.filtered) header.setCount(plural(total ?? rowset.count, 'row'));
    else if (total === null) {
      header.setCount(`${formatNumber(rowset.loaded)}+ of ${plural(rowset.count, 'row')}`);
    } else header.setCount(`${formatNumber(total)} of ${plural(rowset.count, 'row')}`);
    let content = [];
    status.dataset.state = rowset.status;
    if (rowset.status === 'loading' && rowset.loaded === 0) {
      content = [h('span', { 'data-testid': 'rows-loading' }, 'Loading rows…')];
    } else if (rowset.status === 'error') {
      content = [h('span', { class: 'error', 'data-testid': 'rows-error' },
        'The rows could not be loaded. '),
      h('button', { type: 'button', class: 'small', 'data-testid': 'rows-retry',
        onclick: () => rowset.reload(rowset.loaded) }, 'Try again')];
    } else if (rowset.status === 'ready' && rowset.loaded === 0) {
      content = rowset.filtered
        ? [h('span', { 'data-testid': 'rows-empty' }, 'No rows match these filters. '),
          h('button', { type: 'button', class: 'small', 'data-testid': 'filters-clear',
            onclick: () => querybar.clearFilters() }, 'Clear filters')]
        : [h('span', { 'data-testid': 'rows-empty' },
          canWrite() ? 'No rows yet: add one below.' : 'No rows yet.')];
    } else if (rowset.paging) {
      content = [h('span', { 'data-testid': 'rows-paging' }, 'Loading more rows…')];
    }
    status.replaceChildren(...content);
    status.hidden = content.length === 0;
    if (rowset.status === 'error' && rowset.error) say.error(rowset.error);
  }

  rowset.onChange(() => {
    grid.schedule();
    renderStatus();
  });

  // -- adding rows ------------------------------------------------------------------------

  const addMsg = messageLine('row-add-error');
  const addControls = h('fieldset', { class: 'row add-row' });
  const addForm = h('form', { 'data-testid': 'row-add-form', onsubmit: (e) => {
    e.preventDefault();
    act(addControls, addMsg, addRow);
  } }, h('h4', {}, 'Add a row'), addControls, addMsg.el);
  let addInputs = []; // [{column, el}]

  function buildAddForm() {
    addInputs = table.columns.map((c) => ({ column: c,
      el: valueInput(c, null, `${c.name} (${c.type})`, 'row-add-input') }));
    addControls.replaceChildren(
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
    rowset.added(row);
    grid.reveal(row.id);
    buildAddForm();
    addMsg.info(rowset.get(row.id) ? 'Row added.'
      : 'Row added (it is outside the current filters or further down).');
    addInputs[0].el.focus();
  }

  // -- the view ---------------------------------------------------------------------------

  const view = h('div', { class: 'table-view', 'data-testid': 'table-view', hidden: true },
    header.el,
    querybar.el,
    say.el,
    grid.el,
    status,
    addForm);
  const pick = h('p', { class: 'muted', 'data-testid': 'table-pick' },
    'Choose a table, create one, or import a CSV file.');

  function renderView() {
    view.hidden = !table;
    pick.hidden = Boolean(table) || tables.size === 0;
    if (!table) return;
    view.dataset.tableId = table.id;
    header.setName(table.name);
    header.setWritable(canWrite());
    addForm.hidden = !canWrite();
    grid.setReadOnly(!canWrite());
    renderStatus();
  }

  // -- loading ----------------------------------------------------------------------------

  async function select(tableId) {
    if (table && table.id === tableId) return;
    await editor.drop();
    actions.close();
    history.closeAll();
    table = tables.get(tableId) || null;
    locks = new Map();
    say.clear();
    addMsg.clear();
    if (tablesState === 'ready') listMsg.clear();
    header.reset();
    rowset.reset(table);
    rowset.setQuery({ sort: null, filters: [] });
    renderList();
    if (!table) {
      renderView();
      return;
    }
    querybar.setTable(table);
    grid.setTable(table);
    buildAddForm();
    renderView();
    await loadTable();
  }

  /** The table, its lock holders and its rows (keeping `keep` rows loaded, so a reload keeps
   *  the reader's place); lock pushes that land meanwhile are applied on top. */
  async function loadTable({ keep = 0 } = {}) {
    const gen = ++loadGen;
    const tableId = table.id;
    lockOps = [];
    const rows = rowset.reload(keep);
    try {
      const info = await app.call('table:get', { tableId });
      if (gen !== loadGen) return;
      locks = new Map((info.locks || []).map((l) => [l.rowId, l]));
      for (const op of lockOps) op();
      rowset.count = info.rowCount;
      if (JSON.stringify(info.table.columns) !== JSON.stringify(table.columns)) {
        tableChanged(info.table);
        grid.setTable(table, { keepScroll: true });
      } else tableChanged(info.table);
    } catch (err) {
      if (gen !== loadGen) return;
      if (err.code === 'not_found') {
        tables.delete(tableId);
        table = null;
        rowset.reset(null);
        renderList();
      }
      say.error(err);
    } finally {
      if (gen === loadGen) lockOps = null;
    }
    renderView();
    await rows;
    grid.schedule();
  }

  async function reloadAfterProblem() {
    say.clear();
    await editor.drop({ unlock: !(editor.lock && editor.lock.lost) });
    if (!table) return;
    await loadTable({ keep: rowset.loaded });
    if (!say.code) say.info('Reloaded: the rows are as they are now.');
  }

  // -- pushes -----------------------------------------------------------------------------

  const here = (d) => Boolean(project && d && (!d.projectId || d.projectId === project.id));
  const onTable = (d) => Boolean(table && d && d.tableId === table.id);

  function lockOp(op) {
    op();
    if (lockOps) lockOps.push(op);
    grid.schedule();
  }

  app.on('table:created', (d) => {
    if (!here(d) || !d.table) return;
    tables.set(d.table.id, d.table);
    renderList();
    renderView();
  });
  app.on('table:updated', (d) => {
    if (!here(d) || !d.table) return;
    tableChanged(d.table);
  });
  app.on('table:deleted', (d) => {
    if (!here(d)) return;
    const gone = tables.get(d.tableId);
    tables.delete(d.tableId);
    if (table && table.id === d.tableId) {
      editor.drop({ unlock: false });
      history.closeAll();
      table = null;
      rowset.reset(null);
      listMsg.info(`The table “${gone ? gone.name : ''}” was deleted.`);
    }
    renderList();
    renderView();
  });

  app.on('row:added', (d) => { if (onTable(d)) rowset.added(d.row); });
  app.on('row:updated', (d) => { if (onTable(d)) rowset.updated(d.row); });
  app.on('row:deleted', (d) => {
    if (!onTable(d)) return;
    editor.deleted(d.rowId);
    locks.delete(d.rowId);
    rowset.deleted(d.rowId);
  });
  app.on('row:locked', (d) => {
    if (onTable(d)) lockOp(() => locks.set(d.rowId, d));
  });
  app.on('row:unlocked', (d) => {
    if (!onTable(d)) return;
    lockOp(() => {
      const held = locks.get(d.rowId);
      if (held && (!d.userId || held.userId === d.userId)) locks.delete(d.rowId);
    });
    editor.unlocked(d);
  });

  // -- session and project ----------------------------------------------------------------

  const idle = h('p', { class: 'muted', 'data-testid': 'tables-idle' },
    'Open a project to see its tables.');
  const layout = h('div', { class: 'tables-layout', 'data-testid': 'tables', hidden: true },
    h('div', { class: 'tables-bar' },
      h('h3', { class: 'visually-hidden' }, 'Tables in this project'),
      tableList, listNote, listMsg.el),
    tools.el, pick, view, popupHost);
  root.append(idle, layout);

  function reset() {
    editor.drop();
    actions.close();
    history.closeAll();
    tables.clear();
    table = null;
    locks = new Map();
    memberNames = null;
    tablesState = 'idle';
    rowset.reset(null);
    say.clear();
    tools.reset();
  }

  function renderAll() {
    idle.hidden = Boolean(project);
    layout.hidden = !project;
    tools.setWritable(canWrite());
    renderList();
    renderView();
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
    memberNames = null;
    if (!p || !before || before.id !== p.id) {
      reset();
      renderAll();
      if (!p) return;
      await loadTables();
      renderView();
      return;
    }
    // The same project again: the projects panel re-entered its room, or our role changed.
    await reloadProject();
    await editor.reclaim();
    renderAll();
  });

  /** The open project's tables and the selected table's rows, as they are now. */
  async function reloadProject() {
    renderAll();
    await loadTables();
    if (table && !tables.has(table.id)) {
      await editor.drop({ unlock: false });
      table = null;
      rowset.reset(null);
    }
    if (table) await loadTable({ keep: rowset.loaded });
    renderAll();
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
      editor.reclaim();
    }
  });

  renderAll();
}

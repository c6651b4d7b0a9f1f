// The grid: a <table role="grid"> whose header sticks to the top and whose first column (row
// number, who holds the row's lock, the row's actions) sticks to the left, over a scroll area
// of its own. Only the rows in view (and a margin) are in the DOM: spacer rows stand in for
// the rest, and the next keyset page is asked for as the reader nears the loaded end.
//
// Keyboard (the ARIA grid pattern): the grid is one tab stop; arrows move between cells and
// the header, Home/End (with Ctrl: first/last row), PageUp/PageDown; Enter or F2 edits a
// cell, typing starts editing with that character; Enter or Space on the first column opens
// the row's actions.
import { h } from '../../lib.js';
import { display } from './values.js';
import { hueOf, initials } from './format.js';

const OVERSCAN = 8; // rows drawn beyond the visible ones, each way
const PREFETCH = 40; // ask for the next page this many rows before the loaded end
const KEEP_EDITED = 300; // an edited row further than this from view is committed and let go
const WIDTH_REM = { text: 12, number: 8, bool: 7, datetime: 11 }; // as in tables.css
const FALLBACK_ROW_PX = 36;
// Headers are narrow: the type as a short mark (spelled out for screen readers).
const TYPE_MARK = { text: 'abc', number: '123', bool: 'y/n', datetime: 'date' };

/** opts: {rowset, labelId, lockOf(rowId) → {username, userId, mine, lost} | null,
 *  canWrite(), editingRowId(), onEdit(rowId, column, initial?), onMenu(rowId, button),
 *  onSort(column), onLeaveEdited()} */
export function createGrid(opts) {
  const { rowset } = opts;
  let table = null;
  let columns = [];
  let rowPx = FALLBACK_ROW_PX;
  let active = { row: 0, col: 1 }; // row -1: the header; col 0: the pinned column
  let tabStop = null;
  let frame = 0;
  const rowEls = new Map(); // rowId → {tr, sig}

  const colgroup = h('colgroup');
  const headRow = h('tr', { 'aria-rowindex': '1' });
  const thead = h('thead', {}, headRow);
  const topSpacer = spacer();
  const bottomSpacer = spacer();
  const tbody = h('tbody', { 'data-testid': 'table-rows' }, topSpacer, bottomSpacer);
  const gridEl = h('table', { class: 'grid', role: 'grid', 'data-testid': 'table-grid',
    'aria-labelledby': opts.labelId }, colgroup, thead, tbody);
  const scroller = h('div', { class: 'grid-scroll', 'data-testid': 'grid-scroll' }, gridEl);

  function spacer() {
    const td = h('td', {});
    return h('tr', { class: 'spacer', 'aria-hidden': 'true' }, td);
  }

  // -- header -----------------------------------------------------------------------------

  function renderHead() {
    if (!table) return;
    const sort = rowset.sort;
    colgroup.replaceChildren(h('col', { class: 'pin' }),
      ...columns.map((c) => h('col', { class: `t-${c.type}` })));
    const sum = columns.reduce((n, c) => n + (WIDTH_REM[c.type] || 10), 0);
    gridEl.style.width = `calc(var(--pin-w) + ${sum}rem)`;
    headRow.replaceChildren(
      h('th', { scope: 'col', class: 'pin', 'data-col': '0', tabindex: '-1' },
        h('span', { 'aria-hidden': 'true' }, '#'), h('span', { class: 'visually-hidden' },
          'Row, lock and actions')),
      ...columns.map((c, j) => {
        const sorted = sort && sort.column === c.name;
        const label = [h('span', { class: 'col-name' }, c.name),
          h('small', { class: 'col-type', 'aria-hidden': 'true' }, TYPE_MARK[c.type] || c.type),
          h('span', { class: 'visually-hidden' }, ` (${c.type})`)];
        return h('th', { scope: 'col', 'data-column': c.name, 'data-col': String(j + 1),
          class: `t-${c.type}`, tabindex: c.secret ? '-1' : null,
          'aria-sort': sorted ? (sort.order === 'asc' ? 'ascending' : 'descending') : null },
        c.secret
          ? h('span', { class: 'col-head', title: 'Secret column: cannot be sorted or filtered' },
            label, h('span', { class: 'badge secret' }, 'secret'))
          : h('button', { type: 'button', class: 'sort', tabindex: '-1',
            'data-testid': 'column-sort', 'data-column': c.name,
            title: sorted && sort.order === 'desc' ? `Stop sorting by ${c.name}`
              : `Sort by ${c.name}${sorted ? ', descending' : ''}`,
            onclick: () => opts.onSort(c.name) },
          label, h('span', { class: 'arrow', 'aria-hidden': 'true' },
            sorted ? (sort.order === 'asc' ? '▲' : '▼') : '')));
      }));
    gridEl.setAttribute('aria-colcount', String(columns.length + 1));
    placeTabStop();
  }

  // -- rows -------------------------------------------------------------------------------

  function lockSig(rowId) {
    const lock = opts.lockOf(rowId);
    return lock ? [lock.userId, lock.username, lock.mine, lock.lost] : null;
  }

  function pinCell(row, i) {
    const lock = opts.lockOf(row.id);
    const badge = h('span', { class: 'lock', 'data-testid': 'row-lock' });
    if (lock) {
      const name = lock.mine ? 'you' : lock.username;
      const avatar = h('span', { class: 'avatar', 'aria-hidden': 'true' },
        initials(lock.username));
      avatar.style.setProperty('--hue', String(hueOf(lock.userId || lock.username)));
      badge.classList.add(lock.lost ? 'lost' : lock.mine ? 'mine' : 'other');
      badge.title = lock.lost ? 'Your lock on this row ended'
        : lock.mine ? 'You are editing this row' : `${lock.username} is editing this row`;
      badge.append(avatar, h('span', { class: 'who' }, lock.lost ? 'lock lost' : name),
        h('span', { class: 'visually-hidden' }, lock.lost ? ''
          : lock.mine ? ' (you are editing)' : ' is editing'));
    }
    const label = rowLabel(row, i);
    return h('td', { class: 'pin', 'data-testid': 'row-pin', 'data-col': '0', tabindex: '-1' },
      h('span', { class: 'rownum', 'aria-hidden': 'true' }, String(i + 1)),
      h('span', { class: 'visually-hidden' }, `Row ${i + 1}`),
      badge,
      h('button', { type: 'button', class: 'row-menu', tabindex: '-1', 'data-testid': 'row-menu',
        'aria-haspopup': 'menu', 'aria-label': `Actions for ${label}`, title: 'Row actions',
        onclick: (e) => opts.onMenu(row.id, e.currentTarget) }, '⋯'));
  }

  function dataCell(row, c, j) {
    const { node, title } = display(c, row.values[c.name]);
    return h('td', { 'data-testid': 'cell', 'data-column': c.name, 'data-col': String(j),
      class: `t-${c.type}`, tabindex: '-1', title }, node);
  }

  function rowEl(row, i) {
    const lock = opts.lockOf(row.id);
    return h('tr', { 'data-testid': 'table-row', 'data-row-id': row.id, 'data-index': String(i),
      'aria-rowindex': String(i + 2), 'data-version': String(row.version),
      'data-locked-by': lock && !lock.lost ? lock.username : '',
      class: lock ? (lock.mine ? 'locked mine' : 'locked') : '' },
    pinCell(row, i), columns.map((c, j) => dataCell(row, c, j + 1)));
  }

  /** The edited row keeps its element (its input, what was typed, focus); only its place
   *  and lock status follow. */
  function patchEdited(entry, row, i) {
    const { tr } = entry;
    const lock = opts.lockOf(row.id);
    tr.dataset.index = String(i);
    tr.setAttribute('aria-rowindex', String(i + 2));
    tr.dataset.version = String(row.version);
    tr.dataset.lockedBy = lock && !lock.lost ? lock.username : '';
    tr.dataset.editing = 'true';
    const sig = JSON.stringify([i, lockSig(row.id)]);
    if (entry.pinSig !== sig) {
      entry.pinSig = sig;
      tr.firstElementChild.replaceWith(pinCell(row, i));
    }
  }

  function virtualCount() {
    const total = rowset.total;
    return total === null ? rowset.loaded + 1 : total;
  }

  function windowOf(n) {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 600;
    let first = Math.max(0, Math.floor(top / rowPx) - OVERSCAN);
    let last = Math.min(n - 1, Math.ceil((top + height) / rowPx) + OVERSCAN);
    const edited = opts.editingRowId();
    if (edited) {
      const i = rowset.indexOf(edited);
      if (i >= 0 && (i < first - KEEP_EDITED || i > last + KEEP_EDITED)) opts.onLeaveEdited();
      else if (i >= 0) {
        first = Math.min(first, i);
        last = Math.max(last, i);
      }
    }
    return [first, last];
  }

  function render() {
    frame = 0;
    if (!table) return;
    const n = virtualCount();
    const [first, last] = windowOf(n);
    const lastLoaded = Math.min(last, rowset.loaded - 1);
    const hadFocus = gridEl.contains(document.activeElement);
    const edited = opts.editingRowId();
    const wanted = [];
    const seen = new Set();
    for (let i = first; i <= lastLoaded; i += 1) {
      const row = rowset.at(i);
      if (!row) continue;
      let entry = rowEls.get(row.id);
      if (edited === row.id && entry) {
        patchEdited(entry, row, i);
      } else {
        const sig = JSON.stringify([row.version, row.values, lockSig(row.id), i,
          opts.canWrite()]);
        if (!entry || entry.sig !== sig) entry = { tr: rowEl(row, i), sig };
      }
      rowEls.set(row.id, entry);
      seen.add(row.id);
      wanted.push(entry.tr);
    }
    for (const id of [...rowEls.keys()]) if (!seen.has(id)) rowEls.delete(id);
    const drawnFirst = wanted.length ? first : Math.min(first, n);
    setSpacer(topSpacer, drawnFirst * rowPx);
    setSpacer(bottomSpacer, Math.max(0, n - drawnFirst - wanted.length) * rowPx);
    const keep = new Set([topSpacer, ...wanted, bottomSpacer]);
    for (const tr of [...tbody.children]) if (!keep.has(tr)) tr.remove();
    let cursor = topSpacer.nextElementSibling;
    for (const tr of wanted) {
      if (tr === cursor) cursor = cursor.nextElementSibling;
      else tbody.insertBefore(tr, cursor);
    }
    gridEl.setAttribute('aria-rowcount', rowset.total === null ? '-1' : String(n + 1));
    measure(wanted[0]);
    placeTabStop();
    if (hadFocus && !gridEl.contains(document.activeElement)) {
      const target = focusTarget(active);
      if (target) target.focus({ preventScroll: true });
    }
    if (last >= rowset.loaded - PREFETCH && rowset.nextCursor !== null
        && rowset.status === 'ready') {
      rowset.more();
    }
  }

  function setSpacer(tr, px) {
    tr.hidden = px <= 0;
    tr.firstElementChild.colSpan = columns.length + 1;
    tr.firstElementChild.style.height = `${px}px`;
  }

  /** Rows are one line high by CSS; the real height (fonts, zoom) is read off a drawn row. */
  function measure(tr) {
    if (!tr) return;
    const px = tr.getBoundingClientRect().height;
    if (px > 4 && Math.abs(px - rowPx) > 0.5) {
      rowPx = px;
      schedule();
    }
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(render);
  }

  scroller.addEventListener('scroll', schedule, { passive: true });
  if (typeof ResizeObserver === 'function') new ResizeObserver(schedule).observe(scroller);

  // -- focus and keyboard -----------------------------------------------------------------

  function rowLabel(row, i) {
    const first = columns.find((c) => !c.secret && row.values[c.name] !== null
      && row.values[c.name] !== undefined && row.values[c.name] !== '');
    const text = first ? String(row.values[first.name]) : '';
    if (!text) return `row ${i + 1}`;
    return `row ${i + 1} “${text.length > 30 ? `${text.slice(0, 30)}…` : text}”`;
  }

  function cellAt(pos) {
    if (pos.row < 0) return headRow.children[pos.col] || null;
    const row = rowset.at(pos.row);
    const entry = row && rowEls.get(row.id);
    if (!entry || !entry.tr.isConnected) return null;
    return entry.tr.children[pos.col] || null;
  }

  function focusTarget(pos) {
    const cell = cellAt(pos);
    if (!cell) return null;
    if (pos.row < 0) return cell.querySelector('button.sort') || cell;
    return cell;
  }

  /** One cell of the grid is in the tab order: the active one, or its header when the
   *  active row is scrolled out of the DOM. */
  function placeTabStop() {
    const target = focusTarget(active) || focusTarget({ row: -1, col: active.col })
      || headRow.firstElementChild;
    if (target === tabStop && target && target.tabIndex === 0) return;
    if (tabStop) tabStop.tabIndex = -1;
    tabStop = target;
    if (tabStop) tabStop.tabIndex = 0;
  }

  function posOf(el) {
    const cell = el && el.closest && el.closest('th, td');
    if (!cell || !gridEl.contains(cell) || cell.dataset.col === undefined) return null;
    const tr = cell.parentElement;
    const row = tr.parentElement === thead ? -1 : Number(tr.dataset.index);
    if (Number.isNaN(row)) return null;
    return { row, col: Number(cell.dataset.col) };
  }

  function revealRow(i) {
    const headPx = thead.offsetHeight;
    const top = i * rowPx;
    const band = scroller.clientHeight - headPx;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + rowPx > scroller.scrollTop + band) scroller.scrollTop = top + rowPx - band;
  }

  function revealColumn(cell, col) {
    if (!cell || col === 0) return;
    const pinPx = headRow.firstElementChild.offsetWidth;
    const left = cell.offsetLeft;
    const right = left + cell.offsetWidth;
    if (left < scroller.scrollLeft + pinPx) scroller.scrollLeft = left - pinPx;
    else if (right > scroller.scrollLeft + scroller.clientWidth) {
      scroller.scrollLeft = right - scroller.clientWidth;
    }
  }

  /** Make (row, col) the active cell, bring it into view and focus it. */
  async function focusAt(row, col) {
    const ncols = columns.length + 1;
    let r = Math.max(-1, row);
    const c = Math.min(Math.max(0, col), ncols - 1);
    if (r >= rowset.loaded) {
      await rowset.loadUntil(r);
      r = Math.min(r, rowset.loaded - 1);
    }
    active = { row: r, col: c };
    if (r >= 0) revealRow(r);
    render();
    const target = focusTarget(active);
    if (target) {
      target.focus({ preventScroll: true });
      revealColumn(cellAt(active), c);
    }
  }

  function pageRows() {
    return Math.max(1, Math.floor((scroller.clientHeight - thead.offsetHeight) / rowPx) - 1);
  }

  gridEl.addEventListener('focusin', (e) => {
    const pos = posOf(e.target);
    if (!pos) return;
    active = pos;
    placeTabStop();
  });

  gridEl.addEventListener('keydown', (e) => {
    if (e.target.closest('.cell-editor')) return; // the editor has its own keys
    const pos = posOf(e.target);
    if (!pos) return;
    const last = Math.max(-1, (rowset.total ?? rowset.loaded + 1) - 1);
    const lastCol = columns.length;
    const ctrl = e.ctrlKey || e.metaKey;
    let to = null;
    switch (e.key) {
      case 'ArrowUp': to = [pos.row - 1, pos.col]; break;
      case 'ArrowDown': to = [Math.min(pos.row + 1, last), pos.col]; break;
      case 'ArrowLeft': to = [pos.row, pos.col - 1]; break;
      case 'ArrowRight': to = [pos.row, pos.col + 1]; break;
      case 'Home': to = [ctrl ? 0 : pos.row, 0]; break;
      case 'End': to = [ctrl ? last : pos.row, lastCol]; break;
      case 'PageUp': to = [Math.max(0, pos.row - pageRows()), pos.col]; break;
      case 'PageDown': to = [Math.min(last, pos.row + pageRows()), pos.col]; break;
      case 'Enter':
      case 'F2':
      case ' ':
        if (pos.row < 0) return; // the header's sort buttons answer by themselves
        e.preventDefault();
        if (pos.col === 0) {
          const button = cellAt(pos)?.querySelector('.row-menu');
          if (button) opts.onMenu(rowset.at(pos.row).id, button);
        } else if (e.key !== ' ') {
          opts.onEdit(rowset.at(pos.row).id, columns[pos.col - 1].name);
        }
        return;
      default:
        if (pos.row >= 0 && pos.col > 0 && e.key.length === 1 && !ctrl && !e.altKey) {
          e.preventDefault();
          opts.onEdit(rowset.at(pos.row).id, columns[pos.col - 1].name, e.key);
        }
        return;
    }
    e.preventDefault();
    if (to[0] === pos.row && to[1] === pos.col) return;
    if (to[0] < 0 && to[1] === pos.col && pos.row < 0) return;
    focusAt(to[0], to[1]);
  });

  gridEl.addEventListener('dblclick', (e) => {
    const pos = posOf(e.target);
    if (!pos || pos.row < 0 || pos.col === 0 || e.target.closest('.cell-editor')) return;
    opts.onEdit(rowset.at(pos.row).id, columns[pos.col - 1].name);
  });

  // -- the API ----------------------------------------------------------------------------

  return {
    el: scroller,
    grid: gridEl,
    setTable(t, { keepScroll = false } = {}) {
      const same = table && t && table.id === t.id;
      table = t;
      columns = t ? t.columns : [];
      rowEls.clear();
      for (const tr of [...tbody.children]) {
        if (tr !== topSpacer && tr !== bottomSpacer) tr.remove();
      }
      if (!same || !keepScroll) {
        scroller.scrollTop = 0;
        scroller.scrollLeft = 0;
        active = { row: 0, col: Math.min(1, columns.length) };
      }
      renderHead();
      render();
    },
    setReadOnly(readOnly) {
      if (readOnly) gridEl.setAttribute('aria-readonly', 'true');
      else gridEl.removeAttribute('aria-readonly');
    },
    renderHead,
    render,
    schedule,
    /** Forget a row's drawn element so the next render rebuilds it (an editor closed). */
    redraw(rowId) {
      rowEls.delete(rowId);
      render();
    },
    cell(rowId, column) {
      const entry = rowEls.get(rowId);
      if (!entry || !entry.tr.isConnected) return null;
      return entry.tr.querySelector(`td[data-column="${CSS.escape(column)}"]`);
    },
    async focusCell(rowId, column) {
      const i = rowset.indexOf(rowId);
      if (i < 0) return;
      const col = column === null ? 0 : columns.findIndex((c) => c.name === column) + 1;
      await focusAt(i, col);
    },
    reveal(rowId) {
      const i = rowset.indexOf(rowId);
      if (i >= 0) {
        revealRow(i);
        render();
      }
    },
    focus() {
      const target = focusTarget(active) || tabStop;
      if (target) target.focus();
    },
    rowLabel(rowId) {
      const i = rowset.indexOf(rowId);
      const row = rowset.get(rowId);
      return row ? rowLabel(row, i) : 'this row';
    },
    columnsAfter(column, step) {
      const i = columns.findIndex((c) => c.name === column);
      const next = columns[i + step];
      return next ? next.name : null;
    },
  };
}

// The packet list: a fixed-layout grid with a sticky header in its own scroll area, rendered
// virtually (only the rows in view, between two spacer rows) over the server's keyset pages
// of pcap:packets, fetched as the reader scrolls towards the end. ↑/↓/PageUp/PageDown/
// Home/End move the selection, Enter opens the selected packet's detail.
import { AckError, h, messageBox } from '../../lib.js';
import { count, seconds } from './format.js';

const PAGE = 200;
const OVERSCAN = 12;
const COLUMNS = [['number', 'No.'], ['time', 'Time'], ['source', 'Source'],
  ['destination', 'Destination'], ['protocol', 'Protocol'], ['length', 'Length'], ['info', 'Info']];

/** packetList(app, {onSelect(packet), onOpen(packet), onUnfilter(key)}) → see the returned
 *  object (onUnfilter: the reader removed the filter chip another view had set). */
export function packetList(app, { onSelect, onOpen, onUnfilter = () => {} }) {
  const msg = messageBox('pcap-packets-error');
  let fileId = null;
  let filter = {}; // what the server filters on (PacketFilterIn)
  let chips = {}; // filters set from other views: key → {label, fields}
  let rows = [];
  let cursor = null; // the next page's cursor; null once the end was reached
  let lastCursor = null; // the cursor of the last page fetched (to look for new frames)
  let loading = null;
  let selected = -1;
  let total = null; // packets in the capture, when known and unfiltered
  let rowHeight = 0;
  let gen = 0;
  let rendered = [-1, -1];
  let pending = 0; // the timer of a selection made with the keyboard

  // -- filters ----------------------------------------------------------------------------

  const input = (key, label, attrs) => h('label', { class: 'cap-filter' },
    h('span', { class: 'visually-hidden' }, label),
    h('input', { 'data-testid': `pcap-filter-${key}`, 'data-key': key, placeholder: label,
      autocomplete: 'off', ...attrs }));
  const fields = [input('protocol', 'Protocol', { size: 8 }),
    input('address', 'Address', { size: 14 }),
    input('port', 'Port', { size: 5, inputmode: 'numeric', pattern: '[0-9]*' }),
    input('text', 'Text in Info', { size: 14 })];
  const controls = Object.fromEntries(fields.map((f) => {
    const el = f.querySelector('input');
    return [el.dataset.key, el];
  }));
  const chipList = h('span', { class: 'cap-chips', 'data-testid': 'pcap-filter-chips' });
  const form = h('form', { class: 'cap-filters', role: 'search', 'aria-label': 'Filter packets',
    onsubmit: (e) => { e.preventDefault(); applyForm(); } },
  fields,
  h('button', { type: 'submit', 'data-testid': 'pcap-filter-apply' }, 'Filter'),
  h('button', { type: 'button', 'data-testid': 'pcap-filter-clear',
    onclick: () => { for (const c of Object.values(controls)) c.value = ''; setFilter({}, {}); } }, 'Clear'),
  chipList);

  function applyForm() {
    const next = {};
    const typed = {};
    for (const [key, el] of Object.entries(controls)) {
      const v = el.value.trim();
      if (!v) continue;
      if (key === 'port') {
        const port = Number(v);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          msg.error(new AckError({ code: 'bad_request', message: 'a port is a whole number from 0 to 65535' }));
          el.focus();
          return;
        }
        typed.port = port;
      } else typed[key] = v;
    }
    // Filters set from other views stay, unless the form now sets one of their fields.
    const kept = Object.fromEntries(Object.entries(chips)
      .filter(([, chip]) => !chip.fields.some((f) => f in typed)));
    for (const chip of Object.values(kept)) for (const f of chip.fields) next[f] = filter[f];
    setFilter({ ...next, ...typed }, kept);
  }

  function renderChips() {
    chipList.replaceChildren(...Object.entries(chips).map(([key, chip]) => h('span', {
      class: 'cap-chip', 'data-testid': 'pcap-filter-chip', 'data-key': key }, chip.label,
    h('button', { type: 'button', class: 'link', 'aria-label': `Remove filter: ${chip.label}`,
      onclick: () => {
        const rest = { ...chips };
        delete rest[key];
        const next = { ...filter };
        for (const f of chip.fields) delete next[f];
        setFilter(next, rest);
        onUnfilter(key);
      } }, '×'))));
  }

  // -- the grid ---------------------------------------------------------------------------

  const spacerTop = h('tr', { class: 'cap-spacer', 'aria-hidden': 'true' }, h('td', { colspan: 7 }));
  const spacerBottom = h('tr', { class: 'cap-spacer', 'aria-hidden': 'true' }, h('td', { colspan: 7 }));
  const body = h('tbody', {}, spacerTop, spacerBottom);
  const grid = h('table', { class: 'cap-packets', role: 'grid', tabindex: 0,
    'aria-label': 'Packets', 'aria-readonly': 'true', 'aria-multiselectable': 'false',
    'data-testid': 'pcap-packets' },
  h('colgroup', {}, COLUMNS.map(([key]) => h('col', { class: `cap-col-${key}` }))),
  h('thead', {}, h('tr', { 'aria-rowindex': 1 }, COLUMNS.map(([key, label]) => h('th', {
    scope: 'col', class: `cap-c-${key}` }, label)))),
  body);
  const scroller = h('div', { class: 'cap-packets-scroll', 'data-testid': 'pcap-packets-scroll' }, grid);
  const status = h('p', { class: 'cap-packets-status muted', 'data-testid': 'pcap-packets-status',
    role: 'status' });
  const el = h('div', { class: 'cap-packets-view' }, form, msg.el, scroller, status);

  const headHeight = () => grid.tHead.offsetHeight;

  function measure() {
    if (rowHeight || !rows.length) return;
    const probe = body.querySelector('tr[data-number]');
    if (probe) rowHeight = probe.getBoundingClientRect().height || 0;
  }

  function rowEl(p, i) {
    const sel = i === selected;
    return h('tr', { id: `cap-pkt-${p.number}`, class: sel ? 'selected' : null,
      'aria-selected': String(sel), 'aria-rowindex': i + 2, 'data-testid': 'pcap-packet-row',
      'data-number': p.number, 'data-time': p.relativeTime ?? '', 'data-index': i,
      'data-protocol': p.protocol || '' },
    h('td', { class: 'cap-c-number' }, String(p.number)),
    h('td', { class: 'cap-c-time' }, seconds(p.relativeTime)),
    h('td', { class: 'cap-c-source', title: p.source || '' }, p.source || ''),
    h('td', { class: 'cap-c-destination', title: p.destination || '' }, p.destination || ''),
    h('td', { class: 'cap-c-protocol' }, p.protocol || ''),
    h('td', { class: 'cap-c-length' }, String(p.length ?? '')),
    h('td', { class: 'cap-c-info', title: p.info || '' }, p.info || ''));
  }

  function render(force = false) {
    const rh = rowHeight || 28;
    const view = scroller.clientHeight || 400;
    const top = Math.max(0, scroller.scrollTop - headHeight());
    const start = Math.max(0, Math.floor(top / rh) - OVERSCAN);
    const end = Math.min(rows.length, Math.ceil((top + view) / rh) + OVERSCAN);
    if (!force && start === rendered[0] && end === rendered[1]) return maybeMore(end);
    rendered = [start, end];
    const items = [];
    for (let i = start; i < end; i += 1) items.push(rowEl(rows[i], i));
    spacerTop.firstChild.style.height = `${start * rh}px`;
    spacerBottom.firstChild.style.height = `${(rows.length - end) * rh}px`;
    spacerTop.hidden = start === 0;
    spacerBottom.hidden = end === rows.length;
    body.replaceChildren(spacerTop, ...items, spacerBottom);
    if (!rowHeight && rows.length) {
      measure();
      if (rowHeight && Math.abs(rowHeight - rh) > 0.5) return render(true);
    }
    if (selected >= start && selected < end) grid.setAttribute('aria-activedescendant', `cap-pkt-${rows[selected].number}`);
    else grid.removeAttribute('aria-activedescendant');
    return maybeMore(end);
  }

  function maybeMore(end) {
    if (cursor && !loading && end >= rows.length - OVERSCAN) more();
  }

  function showStatus() {
    const filtered = Object.keys(filter).length > 0;
    let text;
    if (!fileId) text = '';
    else if (!rows.length && !cursor) text = loading ? 'Loading packets…'
      : filtered ? 'No packets match the filter.' : 'No packets yet.';
    else if (total !== null && !filtered) {
      text = cursor ? `${count(rows.length)} of ${count(total)} packets loaded; more load as you scroll`
        : `${count(rows.length)} packet${rows.length === 1 ? '' : 's'}`;
    } else {
      text = `${count(rows.length)} ${filtered ? 'matching ' : ''}packet${rows.length === 1 ? '' : 's'}`
        + (cursor ? ' loaded; more load as you scroll' : '');
    }
    status.textContent = text;
    status.dataset.loaded = String(rows.length);
    status.dataset.complete = String(Boolean(fileId) && !cursor && !loading);
  }

  async function fetchPage(from) {
    const mine = gen;
    const page = await app.call('pcap:packets', { fileId, limit: PAGE, ...(from ? { cursor: from } : {}),
      ...(Object.keys(filter).length ? { filter } : {}) });
    if (mine !== gen) return false;
    const last = rows.length ? rows[rows.length - 1].number : 0;
    rows.push(...page.items.filter((p) => p.number > last));
    lastCursor = from;
    cursor = page.nextCursor;
    return true;
  }

  function more(from = cursor) {
    if (!fileId || loading) return loading;
    const mine = gen;
    loading = fetchPage(from).then((fresh) => { if (fresh) render(true); })
      .catch((err) => { if (mine === gen) msg.error(err); })
      .finally(() => {
        if (mine !== gen) return;
        loading = null;
        showStatus();
        render(); // the view may want the next page already
      });
    showStatus();
    return loading;
  }

  function reset() {
    gen += 1;
    clearTimeout(pending);
    rows = [];
    cursor = null;
    lastCursor = null;
    loading = null;
    selected = -1;
    rendered = [-1, -1];
    scroller.scrollTop = 0;
    grid.setAttribute('aria-rowcount', '-1');
    render(true);
  }

  function setFilter(next, nextChips) {
    filter = next;
    chips = nextChips;
    const fromChips = new Set(Object.values(chips).flatMap((c) => c.fields));
    for (const [key, c] of Object.entries(controls)) {
      c.value = filter[key] !== undefined && !fromChips.has(key) ? String(filter[key]) : '';
    }
    renderChips();
    reload();
  }

  function reload() {
    msg.clear();
    reset();
    if (!fileId) { showStatus(); return Promise.resolve(); }
    return more(null);
  }

  // -- selection and keys -----------------------------------------------------------------

  function select(i, { scroll = true, notify = true } = {}) {
    if (!rows.length) return;
    const next = Math.max(0, Math.min(rows.length - 1, i));
    selected = next;
    if (scroll) {
      const rh = rowHeight || 28;
      const top = headHeight() + next * rh;
      const view = scroller.clientHeight - headHeight();
      if (top - headHeight() < scroller.scrollTop) scroller.scrollTop = top - headHeight();
      else if (top + rh > scroller.scrollTop + headHeight() + view) scroller.scrollTop = top + rh - view - headHeight();
    }
    render(true);
    grid.dataset.selected = String(rows[next].number);
    clearTimeout(pending);
    // A key held down moves through many rows: dissect only where it stops.
    if (notify === 'later') pending = setTimeout(() => onSelect(rows[selected]), 150);
    else if (notify) onSelect(rows[next]);
  }

  const pageRows = () => Math.max(1, Math.floor((scroller.clientHeight - headHeight()) / (rowHeight || 28)) - 1);

  grid.addEventListener('keydown', (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: pageRows(), PageUp: -pageRows() }[e.key];
    const later = { notify: 'later' };
    if (step !== undefined) {
      e.preventDefault();
      select(selected < 0 ? 0 : selected + step, later);
    } else if (e.key === 'Home') {
      e.preventDefault();
      select(0, later);
    } else if (e.key === 'End') {
      e.preventDefault();
      select(rows.length - 1, later);
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      if (selected < 0) select(0, { notify: false });
      clearTimeout(pending);
      if (selected >= 0) onOpen(rows[selected]);
    }
  });
  // Tabbing in selects the first packet; a click selects the one clicked instead.
  grid.addEventListener('focus', () => {
    if (selected < 0 && rows.length && grid.matches(':focus-visible')) select(0, { scroll: false });
  });
  body.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-index]');
    if (!tr) return;
    select(Number(tr.dataset.index), { scroll: false });
    grid.focus({ preventScroll: true });
  });
  body.addEventListener('dblclick', (e) => {
    const tr = e.target.closest('tr[data-index]');
    if (tr) onOpen(rows[Number(tr.dataset.index)]);
  });
  scroller.addEventListener('scroll', () => render());
  new ResizeObserver(() => { if (rows.length) render(); }).observe(scroller);

  return {
    el,
    /** Show a capture's packets (total: its packet count when the ingest is done). */
    load(id, knownTotal = null) {
      fileId = id;
      total = knownTotal;
      filter = {};
      chips = {};
      for (const c of Object.values(controls)) c.value = '';
      renderChips();
      return reload();
    },
    /** Set (or with a null label, remove) a filter from another view — a time range, a
     *  stream, an address — shown as a removable chip under `key`; it replaces any filter on
     *  the same fields. */
    narrow(key, values, label) {
      const next = { ...filter };
      const nextChips = {};
      const fields = Object.keys(values);
      for (const [k, chip] of Object.entries(chips)) {
        if (k === key || chip.fields.some((f) => fields.includes(f))) {
          for (const f of chip.fields) delete next[f];
        } else nextChips[k] = chip;
      }
      for (const f of fields) delete next[f];
      if (label) {
        Object.assign(next, values);
        nextChips[key] = { label, fields };
      }
      setFilter(next, nextChips);
    },
    hasChip: (key) => key in chips,
    /** The ingest stored more frames: fetch them if the list had reached its end. */
    grow(knownTotal = total) {
      total = knownTotal;
      if (fileId && !cursor && !loading) more(lastCursor);
      else showStatus();
    },
    setTotal(n) { total = n; showStatus(); },
    focus() { grid.focus(); },
    clear() { fileId = null; total = null; clearTimeout(pending); reset(); showStatus(); },
    rows: () => rows,
  };
}

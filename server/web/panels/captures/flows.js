// Conversations and Endpoints (Wireshark's Statistics tables): one kind at a time (Ethernet,
// IPv4, IPv6, TCP, UDP), sorted by the server on a column header, paged with "Load more".
// TCP/UDP rows offer their packets and Follow Stream.
import { act, h, messageBox } from '../../lib.js';
import { bytes, count, duration, seconds } from './format.js';
import { note, scrollBox } from './stats.js';

const KINDS = [['tcp', 'TCP'], ['udp', 'UDP'], ['ip', 'IPv4'], ['ipv6', 'IPv6'], ['eth', 'Ethernet']];
const PAGE = 100;

const withPort = (address, port) => (port === undefined || port === null ? address
  : address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
const split = (frames, size) => `${count(frames)} · ${bytes(size)}`;

const VIEWS = {
  conversations: {
    event: 'pcap:conversations',
    noun: 'conversation',
    columns: [
      { label: 'Address A', sort: 'address', cell: (c) => withPort(c.a, c.portA), cls: 'cap-addr' },
      { label: 'Address B', cell: (c) => withPort(c.b, c.portB), cls: 'cap-addr' },
      { label: 'Packets', sort: 'frames', cell: (c) => count(c.frames), cls: 'cap-num' },
      { label: 'Bytes', sort: 'bytes', cell: (c) => bytes(c.bytes), cls: 'cap-num' },
      { label: 'A → B', cell: (c) => split(c.framesAB, c.bytesAB), cls: 'cap-num' },
      { label: 'B → A', cell: (c) => split(c.framesBA, c.bytesBA), cls: 'cap-num' },
      { label: 'Start', sort: 'start', cell: (c) => `${seconds(c.start, 3)} s`, cls: 'cap-num' },
      { label: 'Duration', sort: 'duration', cell: (c) => duration(c.duration), cls: 'cap-num' },
    ],
  },
  endpoints: {
    event: 'pcap:endpoints',
    noun: 'endpoint',
    columns: [
      { label: 'Address', sort: 'address', cell: (e) => e.address, cls: 'cap-addr' },
      { label: 'Port', cell: (e) => (e.port === undefined || e.port === null ? '' : String(e.port)),
        cls: 'cap-num' },
      { label: 'Packets', sort: 'frames', cell: (e) => count(e.frames), cls: 'cap-num' },
      { label: 'Bytes', sort: 'bytes', cell: (e) => bytes(e.bytes), cls: 'cap-num' },
      { label: 'Sent', cell: (e) => split(e.txFrames, e.txBytes), cls: 'cap-num' },
      { label: 'Received', cell: (e) => split(e.rxFrames, e.rxBytes), cls: 'cap-num' },
    ],
  },
};

/** flowTable(app, 'conversations' | 'endpoints', {onPackets(filter, label), onFollow(kind,
 *  index)}) → {el, load(fileId), clear()} */
export function flowTable(app, which, { onPackets, onFollow }) {
  const view = VIEWS[which];
  const testid = which === 'conversations' ? 'pcap-conv' : 'pcap-endp';
  const msg = messageBox(`${testid}-error`);
  let fileId = null;
  let sort = 'bytes';
  let order = 'desc';
  let cursor = null;
  let gen = 0;

  const kind = h('select', { 'data-testid': `${testid}-kind`, id: `${testid}-kind` },
    KINDS.map(([value, label]) => h('option', { value }, label)));
  kind.addEventListener('change', () => reload());
  const status = h('span', { class: 'muted', 'data-testid': `${testid}-count` });
  const body = h('tbody');
  const headRow = h('tr');
  const table = h('table', { class: `cap-table cap-${which}`, 'data-testid': `pcap-${which}` },
    h('caption', { class: 'visually-hidden' }, which === 'conversations' ? 'Conversations' : 'Endpoints'),
    h('thead', {}, headRow), body);
  const more = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': `${testid}-more`, onclick: () => act(more, msg, () => page(false)) }, 'Load more');
  const empty = note('', `${testid}-empty`);
  empty.hidden = true;
  const el = h('div', { class: 'cap-flows' },
    h('div', { class: 'cap-toolbar' },
      h('label', { class: 'cap-inline', for: kind.id }, 'Kind', kind), status),
    msg.el, scrollBox(which === 'conversations' ? 'Conversations' : 'Endpoints', table), empty, more);

  function header() {
    headRow.replaceChildren(...view.columns.map((col) => {
      if (!col.sort) return h('th', { scope: 'col', class: col.cls }, col.label);
      const active = sort === col.sort;
      return h('th', { scope: 'col', class: col.cls,
        'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'cap-sort', 'data-sort': col.sort,
        onclick: () => {
          order = active ? (order === 'asc' ? 'desc' : 'asc')
            : (col.sort === 'address' || col.sort === 'start' ? 'asc' : 'desc');
          sort = col.sort;
          reload();
        } }, col.label, h('span', { class: 'cap-arrow', 'aria-hidden': 'true' },
        active ? (order === 'asc' ? '▲' : '▼') : '')));
    }), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')));
  }

  function actions(item) {
    const k = kind.value;
    const buttons = [];
    if (which === 'conversations' && (k === 'tcp' || k === 'udp') && item.stream !== undefined
      && item.stream !== null) {
      const name = `${k.toUpperCase()} stream ${item.stream}`;
      const filter = k === 'tcp' ? { tcpStream: item.stream } : { udpStream: item.stream };
      buttons.push(
        h('button', { type: 'button', class: 'small', 'data-testid': `${testid}-packets`,
          'aria-label': `Packets of ${name}`, onclick: () => onPackets(filter, name) }, 'Packets'),
        h('button', { type: 'button', class: 'small', 'data-testid': `${testid}-follow`,
          'aria-label': `Follow ${name}`, onclick: () => onFollow(k, item.stream) }, 'Follow'));
    } else if (which === 'endpoints' && k !== 'eth') {
      const filter = { address: item.address };
      if (item.port !== undefined && item.port !== null) filter.port = item.port;
      const name = withPort(item.address, item.port);
      buttons.push(h('button', { type: 'button', class: 'small', 'data-testid': `${testid}-packets`,
        'aria-label': `Packets of ${name}`, onclick: () => onPackets(filter, name) }, 'Packets'));
    }
    return h('td', { class: 'cap-actions' }, buttons);
  }

  async function page(first) {
    const mine = gen;
    const data = await app.call(view.event, { fileId, kind: kind.value, sort, order,
      limit: PAGE, ...(first || !cursor ? {} : { cursor }) });
    if (mine !== gen) return;
    if (first) body.replaceChildren();
    body.append(...data.items.map((item) => h('tr', { 'data-testid': `${testid}-row` },
      view.columns.map((col) => h('td', { class: col.cls }, col.cell(item))), actions(item))));
    cursor = data.nextCursor;
    more.hidden = !cursor;
    const shown = body.children.length;
    status.textContent = `${count(shown)} ${shown === 1 ? view.noun : `${view.noun}s`}`
      + (cursor ? ' shown, more to load' : '');
    empty.hidden = shown > 0;
    empty.textContent = `No ${kind.selectedOptions[0].textContent} ${view.noun}s in this capture.`;
  }

  function reload() {
    gen += 1;
    cursor = null;
    header();
    if (!fileId) return Promise.resolve();
    return act(kind, msg, () => page(true));
  }

  header();
  return {
    el,
    load(id) { fileId = id; return reload(); },
    clear() { fileId = null; gen += 1; body.replaceChildren(); status.textContent = ''; more.hidden = true; },
  };
}

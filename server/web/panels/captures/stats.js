// The capture's statistics views: Summary (like capinfos), the protocol hierarchy and the
// packet-length histogram, as tables with percent bars.
import { h } from '../../lib.js';
import { bitRate, bytes, count, dateTime, duration, percent, plural, rate } from './format.js';

/** A horizontal bar for a share (the width goes through the CSSOM, which the CSP allows)
 *  followed by its percentage as text. */
export function shareBar(part, whole) {
  const width = whole ? Math.min(100, (100 * part) / whole) : 0;
  return h('span', { class: 'cap-share' },
    h('span', { class: 'cap-bar', 'aria-hidden': 'true' },
      h('span', { class: 'cap-bar-fill', style: `width:${width.toFixed(2)}%` })),
    h('span', { class: 'cap-share-text' }, percent(part, whole)));
}

/** A scroll area for a wide or long table; focusable so the keyboard can scroll it. */
export function scrollBox(label, table) {
  return h('div', { class: 'cap-table-scroll', tabindex: 0, role: 'region', 'aria-label': label }, table);
}

/** A placeholder paragraph for loading, empty and unavailable states. */
export function note(text, testid) {
  return h('p', { class: 'cap-note muted', 'data-testid': testid }, text);
}

export function renderSummary(el, s, file) {
  if (!s) return;
  const when = (iso) => h('time', { datetime: iso, title: iso }, dateTime(iso));
  const rows = [
    ['File', file ? file.name : s.name],
    ['Format', `${s.format}${s.compressed ? ' (gzip-compressed)' : ''}`],
    ['Encapsulation', s.linkTypes.map((l) => l.name).join(', ') || '—'],
    ['Packets', count(s.packets)],
    ['Packet data', `${bytes(s.bytes)} (${count(s.bytes)} bytes)`],
    ['First packet', when(s.firstTime)],
    ['Last packet', when(s.lastTime)],
    ['Elapsed', duration(s.duration)],
    ['Average rate', s.averagePacketRate === null ? '—'
      : `${rate(s.averagePacketRate, 'packets')} · ${bitRate(s.dataBitRate)}`],
    ['Average packet', s.averagePacketSize === null ? '—' : bytes(s.averagePacketSize)],
    ['Interfaces', `${count(s.interfaces)} in ${plural(s.sections, 'section')}`],
    ['Time order', s.strictTimeOrder ? 'strictly increasing' : 'not in time order'],
    ['Truncated', s.truncated ? `yes — ${(s.warnings || []).join('; ')}` : 'no'],
  ];
  el.replaceChildren(h('dl', { class: 'cap-summary', 'data-testid': 'pcap-summary' },
    rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-key': k }, v)])));
}

export function renderProtocols(el, data) {
  const body = h('tbody');
  const total = data.total || { frames: 0, bytes: 0 };
  const walk = (nodes, depth) => {
    for (const n of nodes) {
      body.append(h('tr', { 'data-testid': 'pcap-proto-row', 'data-name': n.name,
        'data-frames': n.frames },
      h('th', { scope: 'row', class: 'cap-proto-name' },
        h('span', { class: 'cap-indent', style: `padding-left:${depth * 1.1}rem` }, n.name)),
      h('td', { class: 'cap-num' }, shareBar(n.frames, total.frames)),
      h('td', { class: 'cap-num' }, count(n.frames)),
      h('td', { class: 'cap-num' }, shareBar(n.bytes, total.bytes)),
      h('td', { class: 'cap-num' }, bytes(n.bytes))));
      walk(n.children || [], depth + 1);
    }
  };
  walk(data.tree, 0);
  el.replaceChildren(scrollBox('Protocol hierarchy',
    h('table', { class: 'cap-table cap-protocols', 'data-testid': 'pcap-protocols' },
      h('caption', { class: 'visually-hidden' }, 'Protocol hierarchy'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Protocol'),
        h('th', { scope: 'col', class: 'cap-num' }, 'Packets %'),
        h('th', { scope: 'col', class: 'cap-num' }, 'Packets'),
        h('th', { scope: 'col', class: 'cap-num' }, 'Bytes %'),
        h('th', { scope: 'col', class: 'cap-num' }, 'Bytes'))),
      body)));
}

export function renderSizes(el, data) {
  const total = data.buckets.reduce((n, b) => n + b.packets, 0);
  const label = (b) => (b.max === null ? `${count(b.min)} or more` : `${count(b.min)}–${count(b.max)}`);
  el.replaceChildren(
    h('p', { class: 'cap-facts', 'data-testid': 'pcap-sizes-facts' },
      `Shortest ${bytes(data.minLength)} · longest ${bytes(data.maxLength)} · average `
      + `${data.averageLength === null ? '—' : bytes(data.averageLength)}`),
    scrollBox('Packet lengths',
      h('table', { class: 'cap-table cap-sizes', 'data-testid': 'pcap-sizes' },
        h('caption', { class: 'visually-hidden' }, 'Packet lengths'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Length (bytes)'),
          h('th', { scope: 'col', class: 'cap-num' }, 'Packets'),
          h('th', { scope: 'col', class: 'cap-num' }, 'Share'),
          h('th', { scope: 'col', class: 'cap-num' }, 'Bytes'))),
        h('tbody', {}, data.buckets.map((b) => h('tr', { 'data-testid': 'pcap-size-row',
          'data-min': b.min, 'data-packets': b.packets },
        h('th', { scope: 'row' }, label(b)),
        h('td', { class: 'cap-num' }, count(b.packets)),
        h('td', { class: 'cap-num' }, shareBar(b.packets, total)),
        h('td', { class: 'cap-num' }, bytes(b.bytes))))))));
}

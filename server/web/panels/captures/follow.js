// Follow Stream: one TCP/UDP stream's payload, both directions in order, in a modal dialog
// (Escape closes it), as text (non-printable bytes shown as dots) or as a hex dump.
import { act, h, messageBox } from '../../lib.js';
import { bytes, count } from './format.js';

const SHOWN_BYTES = 1 << 20; // what one view renders; the rest is summarised

const decode = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));

function printable(data) {
  let out = '';
  for (const b of data) {
    out += b === 0x0a || b === 0x09 ? String.fromCharCode(b) : b === 0x0d ? ''
      : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
  }
  return out;
}

function hexDump(data) {
  const lines = [];
  for (let off = 0; off < data.length; off += 16) {
    const part = data.subarray(off, off + 16);
    lines.push(`${off.toString(16).padStart(8, '0')}  ${[...part].map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(47)}  ${printable(part).replace(/[\n\t]/g, '.')}`);
  }
  return lines.join('\n');
}

/** followStream(app, {onPackets(filter, label)}) → {el, open(fileId, kind, index)} */
export function followStream(app, { onPackets }) {
  const msg = messageBox('pcap-follow-error');
  let segments = [];
  let shown = null; // {kind, index}

  const heading = h('h3', { id: 'cap-follow-title', 'data-testid': 'pcap-follow-title' }, 'Follow stream');
  const facts = h('p', { class: 'muted', 'data-testid': 'pcap-follow-facts' });
  const mode = h('select', { id: 'cap-follow-mode', 'data-testid': 'pcap-follow-mode' },
    h('option', { value: 'text' }, 'Text'), h('option', { value: 'hex' }, 'Hex dump'));
  mode.addEventListener('change', () => render());
  const out = h('div', { class: 'cap-follow-out', tabindex: 0, role: 'region',
    'aria-label': 'Stream content', 'data-testid': 'pcap-follow-content' });
  const packets = h('button', { type: 'button', 'data-testid': 'pcap-follow-packets' }, 'Show these packets');
  const close = h('button', { type: 'button', class: 'primary', 'data-testid': 'pcap-follow-close',
    onclick: () => dialog.close() }, 'Close');
  const dialog = h('dialog', { class: 'cap-follow', 'aria-labelledby': 'cap-follow-title',
    'data-testid': 'pcap-follow-dialog' },
  h('div', { class: 'cap-follow-head' }, heading,
    h('label', { class: 'cap-inline', for: mode.id }, 'Show as', mode)),
  facts, msg.el, out, h('div', { class: 'cap-follow-foot' }, packets, close));
  packets.addEventListener('click', () => {
    if (!shown) return;
    dialog.close();
    onPackets(shown.kind === 'tcp' ? { tcpStream: shown.index } : { udpStream: shown.index },
      `${shown.kind.toUpperCase()} stream ${shown.index}`);
  });

  function render() {
    let budget = SHOWN_BYTES;
    const blocks = [];
    for (const seg of segments) {
      if (budget <= 0) break;
      const data = seg.bytes.subarray(0, budget);
      budget -= data.length;
      blocks.push(h('pre', { class: `cap-seg dir${seg.dir}`, 'data-testid': 'pcap-follow-segment',
        'data-dir': seg.dir }, mode.value === 'hex' ? hexDump(data) : printable(data)));
    }
    const total = segments.reduce((n, s) => n + s.bytes.length, 0);
    if (total > SHOWN_BYTES) {
      blocks.push(h('p', { class: 'muted' }, `Showing the first ${bytes(SHOWN_BYTES)} of ${bytes(total)}.`));
    }
    out.replaceChildren(...blocks);
  }

  async function open(fileId, kind, index) {
    shown = { kind, index };
    segments = [];
    heading.textContent = `Follow ${kind.toUpperCase()} stream ${index}`;
    facts.textContent = 'Loading…';
    out.replaceChildren();
    dialog.dataset.stream = `${kind}:${index}`;
    delete dialog.dataset.loaded;
    if (!dialog.open) dialog.showModal();
    await act(packets, msg, async () => {
      const data = await app.call('pcap:follow', { fileId, stream: kind, index });
      if (!dialog.open || dialog.dataset.stream !== `${kind}:${index}`) return;
      segments = data.segments.map((s) => ({ dir: s.dir, bytes: decode(s.data) }));
      const sum = (dir) => segments.filter((s) => s.dir === dir).reduce((n, s) => n + s.bytes.length, 0);
      const [a, b] = data.nodes;
      facts.replaceChildren(
        h('span', { class: 'cap-seg-key dir0' }, `${a} → ${b}: ${bytes(sum(0))}`), ' · ',
        h('span', { class: 'cap-seg-key dir1' }, `${b} → ${a}: ${bytes(sum(1))}`),
        ` · ${count(segments.length)} segment${segments.length === 1 ? '' : 's'}`
        + (data.truncated ? ' (cut short: the stream is larger than the server returns)' : ''));
      render();
      if (!segments.length) out.replaceChildren(h('p', { class: 'muted' }, 'This stream carries no payload.'));
      dialog.dataset.loaded = 'true';
    });
    if (msg.el.textContent) facts.textContent = '';
  }

  return { el: dialog, open };
}

// One packet's detail: the dissection as a collapsible ARIA tree (←/→ fold, ↑/↓ move) beside
// its bytes in hex and ASCII. Selecting a field highlights its bytes; clicking a byte selects
// the most specific field covering it (the dissection gives each field's offset and size).
import { h, messageBox } from '../../lib.js';
import { bytes as human } from './format.js';

const PER_LINE = 16;

/** Scroll `box` (not the page) so that `target` inside it is in view. */
const bytesOf = (hexText) => new Uint8Array((hexText.match(/../g) || [])
  .map((x) => parseInt(x, 16)));

function scrollWithin(box, target) {
  const b = box.getBoundingClientRect();
  const t = target.getBoundingClientRect();
  if (t.top < b.top) box.scrollTop -= b.top - t.top;
  else if (t.bottom > b.bottom) box.scrollTop += Math.min(t.bottom - b.bottom, t.top - b.top);
}

/** packetDetail(app, {onFollow(kind, index), onBack()}) → {el, show(fileId, packet), clear(), focus()} */
export function packetDetail(app, { onFollow, onBack }) {
  const msg = messageBox('pcap-detail-error');
  const expanded = new Set(); // field names left open, kept from packet to packet
  let gen = 0;
  let nodes = []; // {li, node, parent, depth}
  let current = null; // the selected entry of nodes
  // Per byte source ('f': the frame; 0, 1…: bytes a dissector built, e.g. a reassembled
  // TCP payload): offset → [hex span, ascii span].
  let cellsBy = { f: [] };
  let sources = [];
  const srcOf = (node) => (node.source === undefined || node.source === null ? 'f' : String(node.source));
  let lit = [];
  let waiting = null; // {fileId, packet} asked for before the ingest finished

  const title = h('h3', { class: 'cap-detail-title', 'data-testid': 'pcap-detail-title', tabindex: -1 },
    'No packet selected');
  const HINT = 'Choose a packet in the list (click it, or ↑/↓ then Enter) to see its layers and bytes.';
  const hint = h('p', { class: 'muted cap-hint', 'data-testid': 'pcap-detail-hint' }, HINT);
  const follow = h('button', { type: 'button', class: 'small', hidden: true, 'data-testid': 'pcap-follow' });
  const tree = h('ul', { class: 'cap-tree', role: 'tree', 'aria-label': 'Packet layers',
    'data-testid': 'pcap-layers' });
  const hex = h('div', { class: 'cap-hex', 'data-testid': 'pcap-hex' });
  const field = h('p', { class: 'cap-field muted', 'data-testid': 'pcap-field' });
  const treeBox = h('div', { class: 'cap-tree-scroll' }, tree);
  const hexBox = h('div', { class: 'cap-hex-scroll', tabindex: 0, role: 'region',
    'aria-label': 'Packet bytes' }, hex);
  const el = h('section', { class: 'cap-detail', 'aria-label': 'Packet detail', 'data-testid': 'pcap-detail' },
    h('div', { class: 'cap-detail-head' }, title, follow), hint, msg.el,
    h('div', { class: 'cap-detail-body' }, treeBox, h('div', { class: 'cap-hex-side' }, hexBox, field)));

  // -- tree -------------------------------------------------------------------------------

  function build(list, parent, depth, into) {
    for (const node of list) {
      const kids = node.children && node.children.length ? node.children : null;
      const open = kids && expanded.has(node.name);
      const li = h('li', { role: 'treeitem', 'aria-level': depth, 'aria-selected': 'false',
        tabindex: -1, 'data-field': node.name, 'aria-expanded': kids ? String(Boolean(open)) : null,
        'data-pos': node.pos ?? '', 'data-size': node.size ?? '',
        title: srcOf(node) !== 'f' && sources[node.source] && node.size
          ? `bytes ${node.pos}–${node.pos + node.size} of ${sources[node.source].name}` : null },
      h('span', { class: 'cap-node' },
        h('span', { class: 'cap-caret', 'aria-hidden': 'true' }, kids ? '' : ' '),
        h('span', { class: 'cap-label' }, node.label || node.name)));
      const entry = { li, node, parent, depth };
      nodes.push(entry);
      into.append(li);
      if (kids) {
        const group = h('ul', { role: 'group' });
        li.append(group);
        build(kids, entry, depth + 1, group);
      }
    }
  }

  const visible = () => nodes.filter((e) => {
    for (let p = e.parent; p; p = p.parent) if (p.li.getAttribute('aria-expanded') !== 'true') return false;
    return true;
  });

  function toggle(entry, open) {
    if (!entry.li.hasAttribute('aria-expanded')) return;
    const now = open ?? entry.li.getAttribute('aria-expanded') !== 'true';
    entry.li.setAttribute('aria-expanded', String(now));
    if (now) expanded.add(entry.node.name); else expanded.delete(entry.node.name);
  }

  function choose(entry, { focus = true, open = false } = {}) {
    if (current) {
      current.li.setAttribute('aria-selected', 'false');
      current.li.tabIndex = -1;
    }
    current = entry;
    if (!entry) return;
    if (open) for (let p = entry.parent; p; p = p.parent) toggle(p, true);
    entry.li.setAttribute('aria-selected', 'true');
    entry.li.tabIndex = 0;
    if (focus) entry.li.focus({ preventScroll: true });
    scrollWithin(treeBox, entry.li.firstChild);
    light(entry.node);
  }

  tree.addEventListener('click', (e) => {
    const li = e.target.closest('li[role="treeitem"]');
    if (!li) return;
    const entry = nodes.find((x) => x.li === li);
    if (e.target.closest('.cap-caret') || e.detail === 2) toggle(entry);
    choose(entry);
  });
  tree.addEventListener('keydown', (e) => {
    if (!current) return;
    const shown = visible();
    const at = shown.indexOf(current);
    const open = current.li.getAttribute('aria-expanded');
    let next = null;
    if (e.key === 'ArrowDown') next = shown[at + 1];
    else if (e.key === 'ArrowUp') next = shown[at - 1];
    else if (e.key === 'Home') next = shown[0];
    else if (e.key === 'End') next = shown[shown.length - 1];
    else if (e.key === 'ArrowRight') {
      if (open === 'false') toggle(current, true);
      else if (open === 'true') next = shown[at + 1];
    } else if (e.key === 'ArrowLeft') {
      if (open === 'true') toggle(current, false);
      else next = current.parent;
    } else if (e.key === 'Enter' || e.key === ' ') toggle(current);
    else if (e.key === 'Escape') { onBack(); } else return;
    e.preventDefault();
    if (next) choose(next);
  });

  // -- bytes ------------------------------------------------------------------------------

  function hexLines(data, src, cells) {
    const lines = [];
    for (let off = 0; off < data.length; off += PER_LINE) {
      const hexes = [];
      const chars = [];
      for (let i = off; i < Math.min(off + PER_LINE, data.length); i += 1) {
        const b = data[i];
        const x = h('span', { class: 'b', 'data-off': i, 'data-src': src },
          b.toString(16).padStart(2, '0'));
        const c = h('span', { class: 'c', 'data-off': i, 'data-src': src },
          b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.');
        cells[i] = [x, c];
        hexes.push(x, i % 8 === 7 ? '  ' : ' ');
        chars.push(c);
      }
      lines.push(h('div', { class: 'cap-hex-line' },
        h('span', { class: 'o' }, off.toString(16).padStart(4, '0')), '  ',
        h('span', { class: 'x' }, hexes), ' ', h('span', { class: 'a' }, chars)));
    }
    return lines;
  }

  /** The frame's bytes, then each source a dissector built (under its name). */
  function renderHex(data) {
    cellsBy = { f: [] };
    const lines = hexLines(data, 'f', cellsBy.f);
    sources.forEach((s, i) => {
      cellsBy[i] = [];
      lines.push(h('div', { class: 'cap-hex-source' }, s.name, '\n'),
        ...hexLines(bytesOf(s.bytes), String(i), cellsBy[i]));
    });
    hex.replaceChildren(...lines);
  }

  function light(node) {
    for (const [src, off] of lit) {
      for (const span of cellsBy[src][off] || []) span.classList.remove('hl');
    }
    lit = [];
    const src = srcOf(node);
    const cells = cellsBy[src] || [];
    const { pos, size } = node;
    if (pos === undefined || pos === null || !size) {
      field.textContent = `${node.name}: no bytes of its own`;
      delete hex.dataset.from;
      delete hex.dataset.to;
      return;
    }
    const end = Math.min(pos + size, cells.length);
    for (let off = pos; off < end; off += 1) {
      for (const span of cells[off] || []) span.classList.add('hl');
      lit.push([src, off]);
    }
    hex.dataset.from = String(pos);
    hex.dataset.to = String(end);
    const where = src === 'f' ? '' : ` of ${sources[node.source].name}`;
    field.textContent = `${node.name}: ${human(size)} at offset ${pos}${where}`;
    if (cells[pos]) scrollWithin(hexBox, cells[pos][0]);
  }

  hex.addEventListener('click', (e) => {
    const span = e.target.closest('[data-off]');
    if (!span) return;
    const off = Number(span.dataset.off);
    const src = span.dataset.src || 'f';
    // The most specific field covering the byte: the smallest, first in tree order.
    let best = null;
    for (const entry of nodes) {
      const { pos, size } = entry.node;
      if (srcOf(entry.node) !== src) continue;
      if (pos === undefined || pos === null || !size || off < pos || off >= pos + size) continue;
      if (!best || size < best.node.size) best = entry;
    }
    if (best) choose(best, { focus: false, open: true });
  });

  // -- one packet -------------------------------------------------------------------------

  async function show(fileId, packet) {
    const mine = ++gen;
    msg.clear();
    hint.hidden = true;
    title.textContent = `Frame ${packet.number} · loading…`;
    el.dataset.number = String(packet.number);
    el.setAttribute('aria-busy', 'true');
    let one;
    try {
      one = await app.call('pcap:packet', { fileId, number: packet.number });
    } catch (err) {
      if (mine !== gen) return;
      el.removeAttribute('aria-busy');
      title.textContent = `Frame ${packet.number}`;
      tree.replaceChildren();
      hex.replaceChildren();
      follow.hidden = true;
      if (err.code === 'conflict' && err.details && ['queued', 'running'].includes(err.details.state)) {
        // The server dissects single frames once the ingest has indexed the whole file.
        waiting = { fileId, packet };
        el.dataset.waiting = String(packet.number);
        hint.textContent = 'Its layers and bytes can be shown once the ingest finishes.';
        hint.hidden = false;
      } else msg.error(err);
      return;
    }
    waiting = null;
    delete el.dataset.waiting;
    if (mine !== gen) return;
    el.removeAttribute('aria-busy');
    const p = one.packet;
    title.textContent = `Frame ${p.number} · ${human(p.length)} · ${p.protocol || ''}`;
    nodes = [];
    current = null;
    sources = one.sources || [];
    const list = document.createDocumentFragment();
    build(one.layers, null, 1, list);
    tree.replaceChildren(list);
    renderHex(bytesOf(one.bytes));
    lit = [];
    field.textContent = '';
    if (nodes.length) {
      nodes[0].li.tabIndex = 0;
      const deepest = [...one.layers].reverse().find((n) => n.name !== 'frame');
      choose(nodes.find((x) => x.node === deepest) || nodes[0], { focus: false });
    }
    el.dataset.loaded = String(p.number);
    const stream = p.stream;
    follow.hidden = !stream;
    if (stream) {
      follow.textContent = `Follow ${stream.kind.toUpperCase()} stream ${stream.index}`;
      follow.onclick = () => onFollow(stream.kind, stream.index);
    }
  }

  return {
    el,
    show,
    /** The ingest finished: show the packet that was waiting for it. */
    retry() { if (waiting) show(waiting.fileId, waiting.packet); },
    clear() {
      gen += 1;
      nodes = [];
      current = null;
      cellsBy = { f: [] };
      sources = [];
      lit = [];
      title.textContent = 'No packet selected';
      hint.textContent = HINT;
      hint.hidden = false;
      waiting = null;
      delete el.dataset.waiting;
      delete el.dataset.loaded;
      delete el.dataset.number;
      tree.replaceChildren();
      hex.replaceChildren();
      field.textContent = '';
      follow.hidden = true;
      msg.clear();
    },
    /** Move the keyboard into the tree (Enter in the packet list). */
    focus() {
      el.scrollIntoView({ block: 'nearest' });
      const target = current || nodes[0];
      if (target) target.li.focus({ preventScroll: true }); else title.focus();
    },
  };
}

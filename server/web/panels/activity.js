// Protocol log (the developer drawer, drawer.js): the last pushes received and calls made on
// this socket, newest first — the console's window onto the protocol. Call payloads are never
// shown (they carry passwords).
import { h } from '../lib.js';

export default { id: 'activity', title: 'Protocol log', slot: 'aside', mount };

const KEEP = 60;

function mount(root, app) {
  const list = h('ol', { class: 'activity', 'data-testid': 'activity-log', 'aria-live': 'off' });
  const add = (kind, text, detail, failed = false) => {
    const time = new Date().toLocaleTimeString([], { hour12: false });
    const summary = h('span', {}, h('time', {}, time), ' ', h('span', { class: 'arrow' }, kind),
      ' ', text);
    const item = h('li', { class: failed ? 'failed' : '', 'data-kind': kind === '→' ? 'call' : 'push' },
      detail ? h('details', {}, h('summary', {}, summary), h('pre', {}, detail)) : summary);
    list.prepend(item);
    while (list.children.length > KEEP) list.lastElementChild.remove();
  };

  app.bus.on('push', ({ event, data }) => add('←', event, preview(data)));
  app.bus.on('call', ({ event, ok, code, ms }) => add('→', `${event} ${ok ? 'ok' : code} · ${ms} ms`,
    '', !ok));
  app.bus.on('connection', (status) => add('•', status, ''));

  root.append(
    h('div', { class: 'row spread' },
      h('p', { class: 'muted' }, '→ calls, ← pushes on this socket'),
      h('button', { type: 'button', class: 'link', onclick: () => list.replaceChildren() }, 'Clear')),
    list);
}

function preview(data) {
  if (data === undefined) return '';
  const text = JSON.stringify(data, null, 2);
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

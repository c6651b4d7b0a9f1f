// Captures: upload a .pcap/.pcapng with a progress bar (the upload's own bytes, then the
// server's ingest through pcap:progress), then the capture's summary, protocol hierarchy,
// conversations, an I/O chart, the packet list (filters, paging) and one packet's layer
// tree with its bytes in hex.
import { AckError, act, h, messageBox, plural } from '../lib.js';

export default { id: 'pcap', title: 'Captures', slot: 'main', mount };

const CAPTURE = /\.(pcap|pcapng|cap)(\.gz)?$/i;
const PAGE = 50;

function mount(root, app) {
  const msg = messageBox('pcap-error');
  let project = null;
  let file = null; // the selected capture's file id
  let cursors = [null]; // packet-list page starts (for Previous)

  // -- upload with progress ---------------------------------------------------------------

  const bar = h('progress', { max: 100, value: 0, 'data-testid': 'pcap-progress',
    'data-percent': '0', 'data-phase': 'idle' });
  const barText = h('span', { class: 'muted', 'data-testid': 'pcap-progress-text' });
  const input = h('input', { type: 'file', accept: '.pcap,.pcapng,.cap,.gz',
    'data-testid': 'pcap-upload' });
  const setBar = (phase, percent, text) => {
    bar.value = percent;
    bar.dataset.percent = String(Math.round(percent));
    bar.dataset.phase = phase;
    barText.textContent = text;
  };

  function uploadWithProgress(f) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      const form = new FormData();
      form.append('file', f, f.name);
      xhr.open('POST', `/api/projects/${encodeURIComponent(project.id)}/files`);
      xhr.setRequestHeader('Authorization', `Bearer ${app.tokens && app.tokens.accessToken}`);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) setBar('upload', (100 * e.loaded) / e.total, `uploading ${Math.round((100 * e.loaded) / e.total)} %`);
      };
      xhr.onload = () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body.data);
        else reject(new AckError(body.error || { code: 'internal', message: xhr.statusText }));
      };
      xhr.onerror = () => reject(new AckError({ code: 'unavailable', message: 'upload failed' }));
      xhr.send(form);
    });
  }

  input.addEventListener('change', () => act(input, msg, async () => {
    const f = input.files[0];
    if (!f) return;
    setBar('upload', 0, 'uploading');
    const record = await uploadWithProgress(f);
    input.value = '';
    file = record.id;
    setBar('ingest', 0, 'ingesting');
    await refreshList();
  }));

  // -- the project's captures -------------------------------------------------------------

  const list = h('select', { 'data-testid': 'pcap-files' });
  list.addEventListener('change', () => select(list.value));

  async function refreshList() {
    const page = await app.call('file:list', { projectId: project.id, limit: 200 });
    list.replaceChildren(h('option', { value: '' }, '— choose a capture —'),
      ...page.items.filter((x) => CAPTURE.test(x.name) || x.mime.includes('pcap'))
        .map((x) => h('option', { value: x.id, selected: x.id === file }, x.name)));
    if (file) await select(file);
  }

  // -- views ------------------------------------------------------------------------------

  const summaryEl = h('dl', { class: 'kv', 'data-testid': 'pcap-summary' });
  const protoEl = h('ul', { class: 'tree', 'data-testid': 'pcap-protocols' });
  const convKind = h('select', { 'data-testid': 'pcap-conv-kind' },
    ['tcp', 'udp', 'ip', 'ipv6', 'eth'].map((k) => h('option', { value: k }, k)));
  const convBody = h('tbody');
  const convTable = h('table', { 'data-testid': 'pcap-conversations' },
    h('thead', {}, h('tr', {}, ['A', 'B', 'Frames A→B', 'Bytes A→B', 'Frames B→A',
      'Bytes B→A', 'Start', 'Duration'].map((t) => h('th', {}, t)))), convBody);
  convKind.addEventListener('change', () => act(convKind, msg, loadConversations));
  const ioEl = h('div', { class: 'io-chart', 'data-testid': 'pcap-io' });
  const filters = {
    protocol: h('input', { placeholder: 'protocol', size: 8, 'data-testid': 'pcap-filter-protocol' }),
    address: h('input', { placeholder: 'address', size: 14, 'data-testid': 'pcap-filter-address' }),
    port: h('input', { placeholder: 'port', size: 5, 'data-testid': 'pcap-filter-port' }),
    text: h('input', { placeholder: 'text in Info', size: 14, 'data-testid': 'pcap-filter-text' }),
  };
  const packetBody = h('tbody');
  const packetTable = h('table', { class: 'packets', 'data-testid': 'pcap-packets' },
    h('thead', {}, h('tr', {}, ['No.', 'Time', 'Source', 'Destination', 'Protocol', 'Length',
      'Info'].map((t) => h('th', {}, t)))), packetBody);
  const prev = h('button', { type: 'button', 'data-testid': 'pcap-prev' }, 'Previous');
  const next = h('button', { type: 'button', 'data-testid': 'pcap-next' }, 'Next');
  const apply = h('button', { type: 'submit', 'data-testid': 'pcap-filter-apply' }, 'Filter');
  const detailTree = h('ul', { class: 'tree', 'data-testid': 'pcap-layers' });
  const hex = h('pre', { class: 'hex', 'data-testid': 'pcap-hex' });
  const details = h('div', { class: 'pcap-details', hidden: true }, summaryEl,
    h('h4', {}, 'Protocol hierarchy'), protoEl,
    h('h4', {}, 'Conversations ', convKind), convTable,
    h('h4', {}, 'I/O (packets per interval)'), ioEl,
    h('h4', {}, 'Packets'),
    h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); cursors = [null]; act(apply, msg, () => loadPackets(null)); } },
      Object.values(filters), apply),
    packetTable, h('div', { class: 'row' }, prev, next),
    h('h4', {}, 'Packet'), detailTree, hex);
  prev.addEventListener('click', () => act(prev, msg, () => {
    cursors.pop();
    return loadPackets(cursors[cursors.length - 1], true);
  }));
  next.addEventListener('click', () => act(next, msg, () => loadPackets(next.dataset.cursor)));

  async function select(id) {
    file = id || null;
    details.hidden = true;
    if (!file) return;
    const data = await app.call('pcap:summary', { fileId: file }).catch((err) => {
      if (err.code === 'not_found') return null;
      throw err;
    });
    if (!data) return;
    const { job } = data;
    if (job.state === 'done') {
      setBar('done', 100, 'done');
      await showCapture(data.summary);
    } else if (job.state === 'failed') {
      setBar('failed', 0, `failed: ${job.error && job.error.message}`);
    } else if (job.state === 'queued') {
      setBar('ingest', 0, `queued (position ${job.position})`);
    }
  }

  async function showCapture(s) {
    summaryEl.replaceChildren(...[
      ['Format', `${s.format}${s.compressed ? ' (gzip)' : ''}`],
      ['Link types', s.linkTypes.map((l) => l.name).join(', ')],
      ['Packets', s.packets], ['Bytes', s.bytes], ['First', s.firstTime], ['Last', s.lastTime],
      ['Duration', `${s.duration} s`], ['Truncated', s.truncated ? `yes — ${s.warnings[0]}` : 'no'],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', { 'data-key': k }, String(v))]));
    const tree = await app.call('pcap:protocols', { fileId: file });
    const node = (n) => h('li', {}, `${n.name} — ${plural(n.frames, 'frame')}, ${n.bytes} bytes`,
      n.children.length ? h('ul', {}, n.children.map(node)) : null);
    protoEl.replaceChildren(...tree.tree.map(node));
    await loadConversations();
    const io = await app.call('pcap:io', { fileId: file });
    const max = Math.max(1, ...io.items.map((x) => x.packets));
    ioEl.replaceChildren(...io.items.slice(0, 400).map((x) => h('span', { class: 'bar',
      title: `${x.t} s: ${x.packets} packets, ${x.bytes} bytes`,
      style: 'display:inline-block;vertical-align:bottom;width:3px;margin-right:1px;'
        + `background:#4a7fb5;height:${Math.max(1, Math.round((60 * x.packets) / max))}px` })));
    cursors = [null];
    await loadPackets(null);
    details.hidden = false;
  }

  async function loadConversations() {
    const page = await app.call('pcap:conversations', { fileId: file, kind: convKind.value,
      limit: 100 });
    const addr = (a, p) => (p === undefined || p === null ? a : `${a}:${p}`);
    convBody.replaceChildren(...page.items.map((c) => h('tr', { 'data-testid': 'pcap-conv-row' },
      [addr(c.a, c.portA), addr(c.b, c.portB), c.framesAB, c.bytesAB, c.framesBA, c.bytesBA,
        c.start.toFixed(6), c.duration.toFixed(4)].map((v) => h('td', {}, String(v))))));
  }

  async function loadPackets(cursor, back = false) {
    const filter = {};
    for (const [key, el] of Object.entries(filters)) {
      const v = el.value.trim();
      if (v) filter[key] = key === 'port' ? Number(v) : v;
    }
    const page = await app.call('pcap:packets', { fileId: file, limit: PAGE,
      ...(cursor ? { cursor } : {}), ...(Object.keys(filter).length ? { filter } : {}) });
    if (!back && cursor) cursors.push(cursor);
    packetBody.replaceChildren(...page.items.map((p) => h('tr', {
      'data-testid': 'pcap-packet-row', 'data-number': p.number, tabindex: 0,
      onclick: () => act(packetTable, msg, () => showPacket(p.number)),
    }, [p.number, p.relativeTime, p.source, p.destination, p.protocol, p.length, p.info]
      .map((v) => h('td', {}, String(v ?? ''))))));
    next.disabled = !page.nextCursor;
    next.dataset.cursor = page.nextCursor || '';
    prev.disabled = cursors.length <= 1;
  }

  async function showPacket(number) {
    const one = await app.call('pcap:packet', { fileId: file, number });
    // A node's bytes lie in the frame or, with `source`, in bytes a dissector built (the
    // reassembled TCP segments of an HTTP response, say): both are shown below the tree.
    const where = (n) => (n.source === undefined ? '' : ` of ${one.sources[n.source].name}`);
    const node = (n) => h('li', { 'data-field': n.name,
      title: n.pos !== undefined ? `bytes ${n.pos}–${n.pos + (n.size || 0)}${where(n)}` : '' },
    n.label, n.children ? h('ul', {}, n.children.map(node)) : null);
    detailTree.replaceChildren(...one.layers.map(node));
    const dump = (bytes) => (bytes.match(/.{1,32}/g) || []).map((line, i) =>
      `${(i * 16).toString(16).padStart(4, '0')}  ${line.replace(/(..)/g, '$1 ')}`).join('\n');
    hex.textContent = [dump(one.bytes), ...one.sources.map((s) =>
      `\n${s.name}${s.truncated ? ` (first ${s.bytes.length / 2} of ${s.length} bytes)` : ''}`
      + `\n${dump(s.bytes)}`)].join('\n');
  }

  // -- pushes -----------------------------------------------------------------------------

  app.on('pcap:progress', (d) => {
    if (d.fileId !== file) return;
    if (d.percent !== null && d.percent !== undefined) {
      setBar(d.percent >= 100 ? 'done' : 'ingest', d.percent,
        `ingesting ${Math.round(d.percent)} % · ${plural(d.packets, 'packet')}`);
    }
  });
  app.on('pcap:done', (d) => {
    if (d.fileId !== file) return;
    setBar('done', 100, `done · ${plural(d.summary.packets, 'packet')}`);
    act(details, msg, () => showCapture(d.summary));
  });
  app.on('pcap:failed', (d) => {
    if (d.fileId === file) setBar('failed', 0, `failed: ${d.message}`);
  });
  app.on('pcap:queued', (d) => {
    if (d.fileId === file) setBar('ingest', 0, `queued (position ${d.position})`);
  });

  const body = h('div', { hidden: true, 'data-testid': 'pcap-panel' },
    h('div', { class: 'row' }, input, list), h('div', { class: 'row' }, bar, barText),
    msg.el, details);
  root.append(body);
  // After a reconnect, pushes the server could not replay (pcap:progress, pcap:done...) are
  // made up for by reading the captures and the selected one's state again.
  app.bus.on('resync', ({ room, error }) => {
    if (project && !error && room === `project:${project.id}`) act(list, msg, refreshList);
  });
  app.bus.on('project', (p) => {
    project = p;
    file = null;
    body.hidden = !p;
    details.hidden = true;
    setBar('idle', 0, '');
    if (p) act(list, msg, refreshList);
  });
}

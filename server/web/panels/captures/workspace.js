// The Captures workspace: the project's captures (live for every member), upload with
// progress, and the chosen capture in tabs — Summary, Protocols, Conversations, Endpoints,
// I/O, Lengths, Packets — with Follow Stream. Packets are browsable while the ingest runs;
// the statistics arrive with pcap:done.
import { act, h, messageBox } from '../../lib.js';
import { flowTable } from './flows.js';
import { followStream } from './follow.js';
import { bytes, seconds } from './format.js';
import { captureList, isCapture, jobPercent, jobText, phase, uploadText } from './files.js';
import { uploadFile } from '../../upload.js';
import { ioChart } from './io.js';
import { packetDetail } from './detail.js';
import { packetList } from './packets.js';
import { note, renderProtocols, renderSizes, renderSummary } from './stats.js';
import { tabs } from './tabs.js';

const TABS = [['summary', 'Summary'], ['protocols', 'Protocols'], ['conversations', 'Conversations'],
  ['endpoints', 'Endpoints'], ['io', 'I/O'], ['lengths', 'Lengths'], ['packets', 'Packets']];
const STATS_TABS = ['protocols', 'conversations', 'endpoints', 'io', 'lengths'];
const EDITORS = ['owner', 'editor'];

export function mountCaptures(root, app) {
  const msg = messageBox('pcap-error');
  let project = null;
  let selected = null; // the chosen capture's file id
  let gen = 0; // bumped when the chosen capture changes: late answers about it are dropped
  let opened = 0; // bumped when the project changes: late answers about its list are dropped
  let statsFor = null; // the capture whose statistics the tabs show
  let uploading = null; // {name, text, percent} while an upload runs
  const entries = new Map(); // file id → {file, job, summary, seen}

  const busy = {}; // act() marks its controls disabled; these loads have none
  const canEdit = () => Boolean(project && EDITORS.includes(project.role));
  const entry = () => (selected ? entries.get(selected) : null);

  // -- upload -------------------------------------------------------------------------------

  const input = h('input', { type: 'file', accept: '.pcap,.pcapng,.cap,.gz', class: 'visually-hidden',
    'data-testid': 'pcap-upload' });
  const uploadLabel = h('label', { class: 'cap-upload button primary' }, 'Upload capture…', input);
  input.addEventListener('change', () => {
    const f = input.files[0];
    input.value = '';
    const into = project; // the project open when the file was chosen
    if (!f) return;
    if (!into) {
      msg.info('Open a project to upload a capture into it.');
      return;
    }
    act(input, msg, async () => {
      uploading = { name: f.name, text: 'Uploading', percent: 0 };
      renderHeader();
      try {
        const record = await uploadFile(app, into.id, f, (p) => {
          uploading = { name: f.name, text: uploadText(p), percent: (100 * p.loaded) / p.total };
          renderHeader();
        });
        if (!project || project.id !== into.id) return; // the project closed meanwhile
        remember(record);
        choose(record.id);
      } finally {
        uploading = null;
        renderHeader();
      }
    });
  });

  // -- capture list ------------------------------------------------------------------------

  const files = captureList({ onChoose: (id) => choose(id) });
  const renderList = () => files.render([...entries.values()], selected);

  function remember(file) {
    if (!entries.has(file.id)) entries.set(file.id, { file, job: null, summary: null, seen: 0 });
    renderList();
    return entries.get(file.id);
  }

  /** Update a capture's job from a push (newer than any answer still on its way). */
  function jobPush(fileId, change) {
    const e = entries.get(fileId);
    if (!e) return null;
    e.job = { ...(e.job || {}), ...change };
    e.seen += 1;
    renderList();
    if (fileId === selected) renderHeader();
    return e;
  }

  async function loadState(e) {
    const seen = e.seen;
    const data = await app.call('pcap:summary', { fileId: e.file.id }).catch((err) => {
      if (err.code === 'not_found') return { job: null, summary: null };
      throw err;
    });
    if (e.seen !== seen) return; // a push got here first and is newer
    e.job = data.job;
    e.summary = data.summary || e.summary;
  }

  async function refreshList() {
    const mine = opened;
    const found = [];
    let cursor = null;
    do {
      const page = await app.call('file:list', { projectId: project.id, limit: 200,
        ...(cursor ? { cursor } : {}) });
      found.push(...page.items.filter(isCapture));
      cursor = page.nextCursor;
    } while (cursor && mine === opened);
    if (mine !== opened) return;
    const ids = new Set(found.map((f) => f.id));
    for (const id of [...entries.keys()]) if (!ids.has(id)) entries.delete(id);
    for (const f of found) remember(f);
    await Promise.all(found.map((f) => loadState(entries.get(f.id))));
    if (mine !== opened) return;
    renderList();
    if (selected && !entries.has(selected)) forget();
    else if (selected) {
      renderHeader();
      // A pcap:done missed while offline: the statistics and the rest of the packets.
      const e = entry();
      if (e.job && e.job.state === 'done' && statsFor !== selected) {
        packets.grow(e.summary ? e.summary.packets : null);
        detail.retry();
        await loadStats();
      }
    }
  }

  // -- the chosen capture ------------------------------------------------------------------

  const title = h('h3', { class: 'cap-title', 'data-testid': 'pcap-title' });
  const bar = h('progress', { max: 100, value: 0, 'data-testid': 'pcap-progress',
    'data-percent': '0', 'data-phase': 'idle', 'aria-label': 'Ingest progress' });
  const barText = h('span', { class: 'cap-progress-text', 'data-testid': 'pcap-progress-text',
    role: 'status' });
  const cancel = h('button', { type: 'button', class: 'danger small', hidden: true,
    'data-testid': 'pcap-cancel' }, 'Cancel ingest');
  cancel.addEventListener('click', () => act(cancel, msg, async () => {
    const id = selected;
    await app.call('pcap:cancel', { fileId: id });
    jobPush(id, { state: 'cancelled' });
  }));
  const again = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': 'pcap-ingest' }, 'Ingest again');
  again.addEventListener('click', () => act(again, msg, async () => {
    const id = selected;
    const job = await app.call('pcap:ingest', { fileId: id });
    const e = entries.get(id);
    if (e) { e.job = job; e.seen += 1; }
    renderList();
    renderHeader();
    detail.clear();
    packets.load(id);
  }));

  function renderHeader() {
    const e = entry();
    let ph;
    let pc;
    let text;
    if (uploading) {
      ph = 'upload';
      pc = uploading.percent;
      text = `${uploading.name}: ${uploading.text}`;
    } else if (e) {
      ph = phase(e.job);
      pc = jobPercent(e.job);
      text = jobText(e.job, e.summary);
    } else {
      ph = 'idle';
      pc = 0;
      text = '';
    }
    if (pc === null) bar.removeAttribute('value'); else bar.value = pc;
    bar.dataset.percent = String(Math.round(pc || 0));
    bar.dataset.phase = ph;
    bar.hidden = ph === 'idle' || ph === 'done'; // a full bar on every finished capture is noise
    barText.textContent = text;
    barText.dataset.phase = ph;
    title.textContent = e ? e.file.name : uploading ? uploading.name : '';
    title.title = e ? `${e.file.name} · ${bytes(e.file.size)}` : '';
    const running = e && e.job && (e.job.state === 'queued' || e.job.state === 'running');
    cancel.hidden = !(running && canEdit() && !uploading);
    again.hidden = !(e && canEdit() && !running && !uploading && ph !== 'done');
    again.textContent = ph === 'none' ? 'Ingest' : 'Ingest again';
    work.hidden = !e && !uploading; // an upload's progress shows before anything is chosen
    views.hidden = !e;
    uploadLabel.hidden = !canEdit();
  }

  // -- tabs ---------------------------------------------------------------------------------

  const follow = followStream(app, { onPackets: (filter, label) => narrowToStream(filter, label) });
  const detail = packetDetail(app, {
    onFollow: (kind, index) => follow.open(selected, kind, index),
    onBack: () => packets.focus(),
  });
  const packets = packetList(app, {
    onSelect: (p) => detail.show(selected, p),
    onUnfilter: (key) => { if (key === 'time') io.unbrush(); },
    onOpen: (p) => {
      if (String(detail.el.dataset.number) !== String(p.number)) detail.show(selected, p);
      detail.focus();
    },
  });
  const conversations = flowTable(app, 'conversations', {
    onPackets: (filter, label) => narrowToStream(filter, label),
    onFollow: (kind, index) => follow.open(selected, kind, index),
  });
  const endpoints = flowTable(app, 'endpoints', {
    onPackets: (filter, label) => {
      packets.narrow('endpoint', filter, label);
      view.show('packets');
    },
  });
  const io = ioChart(app, {
    onBrush: (range) => {
      const e = entry();
      if (!range || !e || !e.summary) {
        if (packets.hasChip('time')) packets.narrow('time', { timeFrom: null, timeTo: null }, null);
        return;
      }
      const first = e.summary.firstEpoch;
      packets.narrow('time', { timeFrom: first + range[0], timeTo: first + range[1] },
        `Time ${seconds(range[0], 3)}–${seconds(range[1], 3)} s`);
    },
    onShowPackets: () => view.show('packets'),
  });

  function narrowToStream(filter, label) {
    packets.narrow('stream', filter, label);
    view.show('packets');
  }

  const boxes = {
    summary: h('div', { class: 'cap-box' }),
    protocols: h('div', { class: 'cap-box' }),
    lengths: h('div', { class: 'cap-box' }),
  };
  const pending = Object.fromEntries(['summary', ...STATS_TABS].map((id) => [id, note('', `pcap-pending-${id}`)]));
  const view = tabs(TABS.map(([id, label]) => ({ id, label })), (id) => {
    if (id === 'io') io.shown();
  });
  view.panel('summary').append(pending.summary, boxes.summary);
  view.panel('protocols').append(pending.protocols, boxes.protocols);
  view.panel('conversations').append(pending.conversations, conversations.el);
  view.panel('endpoints').append(pending.endpoints, endpoints.el);
  view.panel('io').append(pending.io, io.el);
  view.panel('lengths').append(pending.lengths, boxes.lengths);
  view.panel('packets').append(packets.el, detail.el);
  const statsParts = { protocols: boxes.protocols, conversations: conversations.el,
    endpoints: endpoints.el, io: io.el, lengths: boxes.lengths, summary: boxes.summary };

  /** Statistics exist once the ingest is done; until then each tab says why it is empty. */
  function statsState(e) {
    const done = e && e.job && e.job.state === 'done';
    const why = !e ? '' : e.job && (e.job.state === 'queued' || e.job.state === 'running')
      ? 'The statistics appear when the ingest finishes; the Packets tab already lists the packets read so far.'
      : `No statistics: ${jobText(e.job, e.summary).toLowerCase()}.`;
    for (const [id, part] of Object.entries(statsParts)) {
      part.hidden = !done;
      pending[id].hidden = Boolean(done);
      pending[id].textContent = why;
    }
    return done;
  }

  async function loadStats() {
    const mine = gen;
    const e = entry();
    if (!statsState(e)) return;
    const id = e.file.id;
    statsFor = id;
    for (const box of [boxes.protocols, boxes.lengths]) box.replaceChildren(note('Loading…', 'pcap-loading'));
    renderSummary(boxes.summary, e.summary, e.file);
    const live = () => mine === gen;
    await Promise.all([
      act(busy, msg, async () => {
        const data = await app.call('pcap:protocols', { fileId: id });
        if (live()) renderProtocols(boxes.protocols, data);
      }),
      act(busy, msg, async () => {
        const data = await app.call('pcap:sizes', { fileId: id });
        if (live()) renderSizes(boxes.lengths, data);
      }),
      conversations.load(id),
      endpoints.load(id),
      io.load(id),
    ]);
  }

  function clearViews() {
    statsFor = null;
    conversations.clear();
    endpoints.clear();
    io.clear();
    detail.clear();
    packets.clear();
    for (const box of Object.values(boxes)) box.replaceChildren();
  }

  /** Open a capture: its state, its packets (also while ingesting) and its statistics. */
  async function choose(id) {
    const e = entries.get(id);
    if (!e) return;
    gen += 1;
    const mine = gen;
    selected = id;
    clearViews();
    renderList();
    renderHeader();
    if (!view.current()) view.show('packets');
    await act(busy, msg, async () => {
      await loadState(e);
      if (mine !== gen) return;
      renderList();
      renderHeader();
      const done = e.job && e.job.state === 'done';
      packets.load(id, done && e.summary ? e.summary.packets : null);
      await loadStats();
    });
  }

  function forget() {
    gen += 1;
    selected = null;
    clearViews();
    renderList();
    renderHeader();
  }

  const views = h('div', { class: 'cap-views' }, view.el, view.panels);
  const work = h('div', { class: 'cap-work', hidden: true, 'data-testid': 'pcap-workspace' },
    h('div', { class: 'cap-head' }, title,
      h('div', { class: 'cap-progress' }, bar, barText, cancel, again)),
    views);

  // -- pushes (the project room: every member sees every capture and its progress) ----------

  app.on('file:added', (d) => {
    const f = d && d.file;
    if (!project || !f || f.projectId !== project.id || !isCapture(f)) return;
    remember(f);
  });
  app.on('file:deleted', (d) => {
    if (!d || !entries.has(d.id)) return;
    entries.delete(d.id);
    if (d.id === selected) {
      forget();
      msg.info('The capture you were looking at was deleted.');
    }
    renderList();
  });
  app.on('pcap:queued', (d) => jobPush(d.fileId, { state: 'queued', position: d.position }));
  app.on('pcap:progress', (d) => {
    const { fileId, room, epoch, seq, projectId, ...progress } = d;
    const e = entries.get(fileId);
    if (!e || (e.job && ['done', 'cancelled', 'failed'].includes(e.job.state))) return;
    jobPush(fileId, { state: 'running', progress });
    if (fileId === selected) packets.grow();
  });
  app.on('pcap:done', (d) => {
    const e = jobPush(d.fileId, { state: 'done', progress: { percent: 100 }, error: null });
    if (!e) return;
    e.summary = d.summary;
    renderList();
    if (d.fileId === selected) {
      renderHeader();
      packets.grow(d.summary.packets);
      detail.retry();
      act(busy, msg, loadStats);
    }
  });
  app.on('pcap:failed', (d) => {
    jobPush(d.fileId, { state: 'failed', error: { code: d.code, reason: d.reason, message: d.message } });
    if (d.fileId === selected) { statsState(entry()); detail.clear(); packets.load(d.fileId); }
  });
  app.on('pcap:cancelled', (d) => {
    jobPush(d.fileId, { state: 'cancelled' });
    // The server removes the frames an ingest stored when it is cancelled.
    if (d.fileId === selected) { statsState(entry()); detail.clear(); packets.load(d.fileId); }
  });

  const body = h('div', { class: 'cap-root', hidden: true, 'data-testid': 'pcap-panel' },
    h('div', { class: 'cap-top' }, h('p', { class: 'muted' },
      'Shared with everyone in the project: .pcap, .pcapng, gzipped too.'), uploadLabel),
    msg.el, files.el, work, follow.el);
  root.append(body);

  // After a reconnect, pushes the server could not replay (progress, done...) are made up
  // for by reading the captures and their states again.
  app.bus.on('resync', ({ room, error }) => {
    if (project && !error && room === `project:${project.id}`) act(busy, msg, refreshList);
  });
  app.bus.on('project', (p) => {
    const same = p && project && p.id === project.id;
    project = p;
    if (same) { renderHeader(); return; } // a rename or a role change
    opened += 1;
    entries.clear();
    forget();
    msg.clear();
    body.hidden = !p;
    if (p) act(busy, msg, refreshList);
  });
}

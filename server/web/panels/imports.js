// Imported chats: chat histories exported from other platforms (WhatsApp, Telegram, Discord,
// Slack, ChatGPT, Messenger/Instagram) brought into the open project.
//
// Import: the file goes up through the REST upload (with its own progress), then chat:import
// {projectId, fileId, platform?, timezone?} queues a job; the project room hears
// chat:import:queued → chat:import:progress {percent, messages, rate, etaSeconds} →
// chat:imported {chats} (or chat:import:failed {code, reason, message, details?} /
// chat:import:cancelled). A failed import keeps the upload, so it can be retried with another
// platform or zone without sending the file again.
//
// Browse: the project's chats (participants with their counts; live through chat:imported,
// chat:updated, chat:deleted), and the open chat's messages, oldest first, loaded a page at a
// time in both directions ("Load older" / "Load newer"), optionally one author's only.
// Search: chat:search over the project (or the open chat); the server marks hits with « »,
// shown as <mark> (text is only ever set as text, never parsed as HTML); a result opens its
// chat around that message. Rename, delete, and export as JSON, CSV, Markdown or text (REST,
// Bearer token, downloaded as a file).
import { AckError, act, authorizedFetch, field, h, messageBox } from '../lib.js';
import { duration, exactTime, number, plural } from '../format.js';
import { uploadFile } from '../upload.js';

export default { id: 'imports', title: 'Imported chats', slot: 'main', mount };

const PLATFORMS = [['', 'Auto-detect'], ['whatsapp', 'WhatsApp'],
  ['telegram', 'Telegram'], ['discord', 'Discord'], ['slack', 'Slack'],
  ['chatgpt', 'ChatGPT'], ['messenger', 'Messenger / Instagram']];
const PLATFORM_NAMES = Object.fromEntries(PLATFORMS.filter(([k]) => k));
const FORMATS = [['json', 'JSON'], ['csv', 'CSV'], ['md', 'Markdown'], ['txt', 'Text']];
const ACCEPT = '.txt,.zip,.json,.html,.htm,.csv';
const PAGE = 50; // messages per load
const RESULTS = 20; // search results per load
const CHATS = 100; // chats per chat:list page
const SHOWN_PARTICIPANTS = 6;

/** '1 message', '2,504 messages'. */
const count = (n, word) => plural(Number(n || 0), word);
const pad = (n) => String(n).padStart(2, '0');

/** An ISO time as 'YYYY-MM-DD HH:MM' in the browser's zone. */
function stamp(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `
    + `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function span(first, last) {
  const a = stamp(first).slice(0, 10);
  const b = stamp(last).slice(0, 10);
  if (!a) return '';
  return a === b ? a : `${a} – ${b}`;
}

function eta(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return duration(Math.max(1, Math.round(seconds)));
}

/** A search snippet as nodes: «hit» → <mark>hit</mark>, everything else as plain text. */
export function markedSnippet(snippet) {
  const out = [];
  const re = /«([^«»]*)»/g;
  let at = 0;
  for (let m = re.exec(snippet); m; m = re.exec(snippet)) {
    if (m.index > at) out.push(snippet.slice(at, m.index));
    out.push(h('mark', {}, m[1]));
    at = m.index + m[0].length;
  }
  if (at < snippet.length) out.push(snippet.slice(at));
  return out;
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || '';
  } catch {
    return '';
  }
}

function mount(root, app) {
  let project = null; // {id, name, role}
  const chats = new Map(); // id → chat view
  let chatsCursor = null; // chat:list's next page
  let importing = null; // {fileId, name}: the import this tab started
  let uploaded = null; // {file, fileId}: a retry reuses the upload
  let open = null; // {chat, author, first, last, bottomCursor, target}
  let search = null; // {query, chatId, nextCursor}
  let generation = 0; // bumped on every chat switch / project change: stale answers drop

  const canWrite = () => Boolean(project && project.role !== 'viewer');

  // -- REST: lib.authorizedFetch (Bearer access token, refreshed once if it expired) ------

  // -- import -----------------------------------------------------------------------------

  const importMsg = messageBox('imports-import-error');
  const importDetails = h('ul', { class: 'bad-lines', 'data-testid': 'imports-failure-details',
    hidden: true, 'aria-label': 'About the failure' });
  const fileInput = h('input', { type: 'file', name: 'file', required: true, accept: ACCEPT,
    'data-testid': 'imports-file' });
  const platformSelect = h('select', { name: 'platform', 'data-testid': 'imports-platform' },
    PLATFORMS.map(([value, label]) => h('option', { value }, label)));
  const zones = h('datalist', { id: 'imports-zones' });
  const zoneInput = h('input', { type: 'text', name: 'timezone', list: 'imports-zones',
    maxlength: 64, value: browserZone(), placeholder: 'UTC', autocomplete: 'off',
    spellcheck: 'false', 'data-testid': 'imports-timezone' });
  const startButton = h('button', { type: 'submit', class: 'primary',
    'data-testid': 'imports-start' }, 'Import');
  const cancelButton = h('button', { type: 'button', class: 'danger', hidden: true,
    'data-testid': 'imports-cancel', onclick: () => cancelImport() }, 'Cancel import');
  const bar = h('progress', { max: 100, value: 0, 'data-testid': 'imports-progress',
    'data-percent': '0', 'data-phase': 'idle', 'aria-label': 'Import progress' });
  const barText = h('span', { class: 'muted', 'data-testid': 'imports-progress-text',
    'aria-live': 'polite' });
  const barRow = h('div', { class: 'row import-progress', hidden: true }, bar, barText);
  const importControls = h('fieldset', { class: 'row' },
    h('legend', { class: 'visually-hidden' }, 'Import a chat export'),
    field('Chat export', fileInput, '.txt, .zip, .json, .html'),
    field('Platform', platformSelect),
    field('Time zone', zoneInput, 'for WhatsApp times'),
    startButton);
  const importForm = h('form', { class: 'imports-import', 'data-testid': 'imports-form',
    onsubmit: (e) => {
      e.preventDefault();
      startImport();
    } },
  importControls, h('div', { class: 'row' }, barRow, cancelButton), importMsg.el,
  importDetails, zones);
  const clearImportMsg = () => {
    importMsg.clear();
    delete importMsg.el.dataset.reason;
    showDetails(null);
  };
  fileInput.addEventListener('change', clearImportMsg);
  zoneInput.addEventListener('focus', () => {
    if (zones.childElementCount || typeof Intl.supportedValuesOf !== 'function') return;
    try {
      zones.replaceChildren(...Intl.supportedValuesOf('timeZone')
        .map((z) => h('option', { value: z })));
    } catch { /* an old browser: free text only */ }
  }, { once: true });

  function setBar(phase, percent, text) {
    const p = Math.max(0, Math.min(100, Number(percent) || 0));
    bar.value = p;
    bar.dataset.percent = String(Math.round(p));
    bar.dataset.phase = phase;
    barText.textContent = text;
    barRow.hidden = phase === 'idle';
    const running = ['upload', 'starting', 'queued', 'running'].includes(phase);
    cancelButton.hidden = !running || phase === 'upload' || phase === 'starting';
    startButton.disabled = running;
  }

  function showDetails(details) {
    const entries = details && typeof details === 'object' ? Object.entries(details) : [];
    importDetails.replaceChildren(...entries.map(([key, value]) => h('li', {
      'data-key': key }, `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)));
    importDetails.hidden = entries.length === 0;
  }

  async function startImport() {
    const file = fileInput.files[0];
    clearImportMsg();
    if (!file) {
      importMsg.error(new AckError({ code: 'bad_request',
        message: 'choose a chat export file first' }));
      return;
    }
    const pid = project.id;
    importControls.disabled = true;
    try {
      let fileId = uploaded && uploaded.file === file && uploaded.projectId === pid
        ? uploaded.fileId : null;
      if (!fileId) {
        setBar('upload', 0, 'uploading…');
        const record = await uploadFile(app, pid, file, ({ loaded, total }) => setBar(
          'upload', (100 * loaded) / total, `uploading ${Math.round((100 * loaded) / total)} %`));
        fileId = record.id;
        uploaded = { file, fileId, projectId: pid };
      }
      if (!project || project.id !== pid) return;
      // Pushes may beat the ack: the import is ours from now on.
      importing = { fileId, name: file.name };
      setBar('starting', 0, 'starting…');
      const payload = { projectId: pid, fileId };
      if (platformSelect.value) payload.platform = platformSelect.value;
      const zone = zoneInput.value.trim();
      if (zone) payload.timezone = zone;
      const job = await app.call('chat:import', payload);
      if (importing && importing.fileId === fileId && bar.dataset.phase === 'starting') {
        if (job.state === 'queued') {
          setBar('queued', 0, job.position ? `queued (position ${job.position})` : 'queued');
        } else if (job.state === 'running') {
          setBar('running', 0, 'importing…');
        }
      }
    } catch (err) {
      if (!importing || bar.dataset.phase === 'upload' || bar.dataset.phase === 'starting') {
        importing = null;
        setBar('idle', 0, '');
      }
      importMsg.error(err);
    } finally {
      importControls.disabled = false;
      startButton.disabled = ['upload', 'starting', 'queued', 'running']
        .includes(bar.dataset.phase);
    }
  }

  function cancelImport() {
    if (!importing) return;
    const { fileId } = importing;
    act(cancelButton, importMsg, async () => {
      await app.call('chat:import:cancel', { fileId });
      if (importing && importing.fileId === fileId) importCancelled();
    });
  }

  function importCancelled() {
    importing = null;
    setBar('cancelled', 0, 'cancelled');
    importMsg.info('Import cancelled: nothing of it was kept.');
  }

  const ours = (d) => Boolean(importing && d && d.fileId === importing.fileId);

  app.on('chat:import:queued', (d) => {
    if (ours(d)) setBar('queued', 0, `queued (position ${d.position ?? '?'})`);
  });
  app.on('chat:import:progress', (d) => {
    if (!ours(d) || bar.dataset.phase === 'done') return;
    const bits = [`${Math.floor(d.percent || 0)} %`, `${number(d.messages)} messages`];
    if (d.rate) bits.push(`${number(Math.round(d.rate))} msg/s`);
    if (d.percent < 100 && d.etaSeconds !== null && d.etaSeconds !== undefined) {
      bits.push(`about ${eta(d.etaSeconds)} left`);
    }
    setBar('running', d.percent, `importing · ${bits.join(' · ')}`);
  });
  app.on('chat:imported', (d) => {
    const made = (d && d.chats) || [];
    for (const c of made) chats.set(c.id, c);
    renderChats();
    if (!ours(d)) return;
    importing = null;
    uploaded = null;
    fileInput.value = '';
    const messages = made.reduce((n, c) => n + (c.messageCount || 0), 0);
    setBar('done', 100, `done · ${number(messages)} messages`);
    importMsg.info(`Imported ${count(made.length, 'chat')}: `
      + `${made.map((c) => `“${c.name}”`).join(', ')}.`);
    act(chatList, listMsg, loadChats);
    if (made.length && !open) openChat(made[0].id);
  });
  app.on('chat:import:failed', (d) => {
    if (!ours(d)) return;
    importing = null;
    setBar('failed', 0, 'failed');
    importMsg.error(new AckError({ code: d.code || 'internal',
      message: d.message || d.reason || 'the import failed', details: d.details }));
    if (d.reason) importMsg.el.dataset.reason = d.reason;
    showDetails(d.details);
  });
  app.on('chat:import:cancelled', (d) => {
    if (ours(d)) importCancelled();
  });

  // -- the project's chats ----------------------------------------------------------------

  const listMsg = messageBox('imports-error');
  const chatList = h('ul', { class: 'imports-chats', 'data-testid': 'imports-chat-list',
    'aria-label': 'Imported chats' });
  const noChats = h('p', { class: 'muted', 'data-testid': 'imports-empty' },
    'No imported chats yet.');
  const moreChats = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': 'imports-chats-more',
    onclick: () => act(moreChats, listMsg, () => loadChats(chatsCursor)) }, 'More chats');

  function participantsText(c, limit = SHOWN_PARTICIPANTS) {
    const list = c.participants || [];
    const shown = list.slice(0, limit).map((p) => `${p.name} (${number(p.messages)})`);
    if (list.length > limit) shown.push(`${list.length - limit} more`);
    return shown.join(', ');
  }

  function renderChats() {
    const items = [...chats.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1
      : a.createdAt > b.createdAt ? -1 : a.name.localeCompare(b.name)));
    chatList.replaceChildren(...items.map((c) => {
      const active = Boolean(open && open.chat.id === c.id);
      return h('li', { 'data-testid': 'imports-chat-item', 'data-chat-id': c.id,
        'data-chat-name': c.name, class: active ? 'active' : '' },
      h('button', { type: 'button', class: 'imports-chat-open', 'data-testid': 'imports-chat-open',
        'aria-current': active ? 'true' : null, onclick: () => openChat(c.id) },
      h('span', { class: 'name' }, c.name),
      h('span', { class: 'badge' }, PLATFORM_NAMES[c.platform] || c.platform)),
      h('small', { class: 'muted', 'data-testid': 'imports-chat-counts' },
        `${count(c.messageCount, 'message')} · ${count((c.participants || []).length,
          'participant')}`),
      c.firstTime ? h('small', { class: 'muted', 'data-testid': 'imports-chat-span' },
        span(c.firstTime, c.lastTime)) : null,
      h('small', { class: 'participants', 'data-testid': 'imports-chat-participants' },
        participantsText(c)));
    }));
    noChats.hidden = items.length > 0;
  }

  async function loadChats(cursor = null) {
    const pid = project.id;
    const page = await app.call('chat:list', { projectId: pid, limit: CHATS,
      ...(cursor ? { cursor } : {}) });
    if (!project || project.id !== pid) return;
    if (!cursor) chats.clear();
    for (const c of page.items) chats.set(c.id, c);
    chatsCursor = page.nextCursor || null;
    moreChats.hidden = !chatsCursor;
    renderChats();
  }

  app.on('chat:updated', (d) => {
    const c = d && d.chat;
    if (!c || !project || c.projectId !== project.id) return;
    chats.set(c.id, c);
    renderChats();
    if (open && open.chat.id === c.id) {
      open.chat = c;
      renderHeader();
    }
  });
  app.on('chat:deleted', (d) => {
    if (!d || !chats.has(d.id)) return;
    chats.delete(d.id);
    renderChats();
    if (open && open.chat.id === d.id) {
      closeChat();
      listMsg.info('The open chat was deleted.');
    }
    dropResults(d.id);
  });

  // -- the open chat ----------------------------------------------------------------------

  const viewMsg = messageBox('imports-view-error');
  const title = h('h3', { tabindex: '-1', id: 'imports-chat-title',
    'data-testid': 'imports-chat-title' });
  const meta = h('p', { class: 'muted', 'data-testid': 'imports-chat-meta' });
  const people = h('p', { class: 'participants', 'data-testid': 'imports-chat-people' });
  const exportButtons = FORMATS.map(([fmt, label]) => h('button', { type: 'button',
    class: 'small', 'data-testid': 'imports-export', 'data-format': fmt,
    title: `Download the whole chat as ${label}`,
    onclick: (e) => act(e.currentTarget, viewMsg, () => exportChat(fmt)) }, label));
  const renameToggle = h('button', { type: 'button', class: 'small',
    'data-testid': 'imports-rename-toggle', onclick: () => {
      renameForm.hidden = !renameForm.hidden;
      if (!renameForm.hidden) {
        renameInput.value = open ? open.chat.name : '';
        renameInput.focus();
        renameInput.select();
      }
    } }, 'Rename');
  const renameInput = h('input', { type: 'text', required: true, maxlength: 200,
    'aria-label': 'New name', 'data-testid': 'imports-rename-name' });
  const renameControls = h('fieldset', { class: 'row' }, renameInput,
    h('button', { type: 'submit', class: 'primary small', 'data-testid': 'imports-rename' },
      'Save name'),
    h('button', { type: 'button', class: 'small', onclick: () => { renameForm.hidden = true; } },
      'Cancel'));
  const renameForm = h('form', { class: 'imports-rename', hidden: true, onsubmit: (e) => {
    e.preventDefault();
    act(renameControls, viewMsg, async () => {
      const c = await app.call('chat:rename', { id: open.chat.id,
        name: renameInput.value.trim() });
      chats.set(c.id, c);
      if (open && open.chat.id === c.id) open.chat = c;
      renameForm.hidden = true;
      renderChats();
      renderHeader();
      viewMsg.info(`Renamed to “${c.name}”.`);
    });
  } }, renameControls);
  const deleteButton = h('button', { type: 'button', class: 'small danger',
    'data-testid': 'imports-delete', onclick: () => { confirmDelete.hidden = false; } },
  'Delete…');
  const confirmDelete = h('span', { class: 'row confirm', hidden: true },
    h('span', {}, 'Delete this chat and its messages?'),
    h('button', { type: 'button', class: 'small danger', 'data-testid': 'imports-delete-confirm',
      onclick: (e) => act(e.currentTarget, viewMsg, async () => {
        const { id, name } = open.chat;
        await app.call('chat:delete', { id });
        chats.delete(id);
        closeChat();
        dropResults(id);
        renderChats();
        listMsg.info(`Deleted “${name}”.`);
      }) }, 'Delete'),
    h('button', { type: 'button', class: 'small', onclick: () => { confirmDelete.hidden = true; } },
      'Keep'));

  const authorSelect = h('select', { 'data-testid': 'imports-author',
    'aria-label': 'Show messages by' });
  authorSelect.addEventListener('change', () => {
    if (!open) return;
    open.author = authorSelect.value || null;
    open.target = null;
    act(authorSelect, viewMsg, () => loadMessages());
  });
  const shown = h('span', { class: 'muted', 'data-testid': 'imports-shown' });
  const olderButton = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': 'imports-older', onclick: () => act(olderButton, viewMsg, loadOlder) },
  '↑ Load older');
  const newerButton = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': 'imports-newer', onclick: () => act(newerButton, viewMsg, loadNewer) },
  'Load newer ↓');
  const firstButton = h('button', { type: 'button', class: 'small link', hidden: true,
    'data-testid': 'imports-first', onclick: () => {
      open.target = null;
      act(firstButton, viewMsg, () => loadMessages());
    } }, 'Back to the start');
  const log = h('ol', { class: 'imports-log', 'data-testid': 'imports-messages',
    'aria-labelledby': 'imports-chat-title', tabindex: '0' });
  const noMessages = h('p', { class: 'muted', 'data-testid': 'imports-no-messages', hidden: true },
    'No messages here.');

  const view = h('div', { class: 'imports-view', 'data-testid': 'imports-view', hidden: true },
    h('div', { class: 'row spread' }, title,
      h('div', { class: 'row' }, h('span', { class: 'muted' }, 'Export:'), exportButtons)),
    meta, people,
    h('div', { class: 'row' }, renameToggle, deleteButton, confirmDelete), renameForm,
    viewMsg.el,
    h('div', { class: 'row spread' }, h('div', { class: 'row' },
      h('label', { class: 'inline' }, h('span', {}, 'Author'), authorSelect), shown), firstButton),
    olderButton, log, noMessages, newerButton);
  const pick = h('p', { class: 'muted imports-pick', 'data-testid': 'imports-pick' },
    'Import a chat export, then choose a chat to read it, or search across them.');

  function renderHeader() {
    const c = open.chat;
    title.textContent = c.name;
    title.dataset.chatId = c.id;
    meta.textContent = [PLATFORM_NAMES[c.platform] || c.platform,
      count(c.messageCount, 'message'),
      c.systemCount ? count(c.systemCount, 'system message') : null,
      c.firstTime ? span(c.firstTime, c.lastTime) : null].filter(Boolean).join(' · ');
    people.textContent = `Participants: ${participantsText(c, 50) || 'none'}`;
    const current = open.author || '';
    authorSelect.replaceChildren(h('option', { value: '' }, 'everyone'),
      ...(c.participants || []).map((p) => h('option', { value: p.name,
        selected: p.name === current }, `${p.name} (${number(p.messages)})`)));
    authorSelect.value = current;
    const write = canWrite();
    renameToggle.hidden = !write;
    deleteButton.hidden = !write;
    if (!write) {
      renameForm.hidden = true;
      confirmDelete.hidden = true;
    }
  }

  function messageEl(m) {
    const classes = ['imp-msg', m.kind === 'system' ? 'system' : '',
      m.deleted ? 'deleted' : '', open && open.target === m.id ? 'target' : ''];
    const extras = [];
    for (const a of m.attachments || []) {
      extras.push(h('span', { class: 'chip', 'data-testid': 'imports-attachment' },
        `${a.kind || 'file'}${a.name ? `: ${a.name}` : ''}`));
    }
    for (const r of m.reactions || []) {
      extras.push(h('span', { class: 'chip reaction' }, `${r.emoji}${r.count > 1
        ? ` ${r.count}` : ''}`));
    }
    if (m.edited) extras.push(h('span', { class: 'chip' }, 'edited'));
    if (m.deleted) extras.push(h('span', { class: 'chip' }, 'deleted'));
    return h('li', { class: classes.filter(Boolean).join(' '), 'data-testid': 'imports-message',
      'data-message-id': m.id, 'data-seq': m.seq, 'data-author': m.author,
      'data-kind': m.kind, 'data-target': open && open.target === m.id ? 'true' : null },
    h('div', { class: 'imp-head' },
      m.kind === 'system' ? null : h('strong', { 'data-testid': 'imports-message-author' },
        m.author),
      h('time', { datetime: m.time, title: exactTime(m.time) }, stamp(m.time)),
      m.replyTo ? h('button', { type: 'button', class: 'link small',
        'data-testid': 'imports-reply-to', title: 'Show the message this one answers',
        onclick: () => openChat(m.chatId || open.chat.id, { around: m.replyTo }) },
      '↩ in reply') : null,
      h('small', { class: 'muted seq' }, `#${m.seq}`)),
    m.text ? h('div', { class: 'imp-text', 'data-testid': 'imports-message-text' }, m.text)
      : null,
    extras.length ? h('div', { class: 'imp-extras' }, extras) : null);
  }

  function renderShown() {
    const items = [...log.children];
    noMessages.hidden = items.length > 0;
    if (!items.length) {
      shown.textContent = '';
      return;
    }
    const total = open.author
      ? ((open.chat.participants || []).find((p) => p.name === open.author) || {}).messages
      : (open.chat.messageCount || 0) + (open.chat.systemCount || 0);
    shown.textContent = `${number(items.length)} shown · #${items[0].dataset.seq}–`
      + `#${items[items.length - 1].dataset.seq}${total ? ` of ${number(total)}` : ''}`;
  }

  async function openChat(id, { around = null } = {}) {
    const gen = ++generation;
    viewMsg.clear();
    try {
      let c = chats.get(id);
      if (!c) c = await app.call('chat:get', { id });
      if (gen !== generation) return;
      const same = open && open.chat.id === id;
      open = { chat: c, author: same && !around ? open.author : null, target: around,
        olderDone: false, bottomCursor: null };
      if (around) open.author = null; // the hit may be anyone's
      renameForm.hidden = true;
      confirmDelete.hidden = true;
      pick.hidden = true;
      view.hidden = false;
      renderHeader();
      renderChats();
      await loadMessages(gen);
    } catch (err) {
      if (gen === generation) viewMsg.error(err);
      if (err.code === 'not_found' && gen === generation) {
        chats.delete(id);
        renderChats();
        listMsg.error(err);
      }
    }
  }

  function closeChat() {
    generation += 1;
    open = null;
    view.hidden = true;
    pick.hidden = false;
    log.replaceChildren();
    renderChats();
  }

  function query(extra) {
    return { chatId: open.chat.id, ...(open.author ? { author: open.author } : {}), ...extra };
  }

  /** The first page (from the start, or around the target message). */
  async function loadMessages(gen = generation) {
    const o = open;
    const page = await app.call('chat:messages', query({ limit: PAGE,
      ...(o.target ? { around: o.target } : {}) }));
    if (gen !== generation || o !== open) return;
    log.replaceChildren(...page.items.map(messageEl));
    o.bottomCursor = page.nextCursor || null;
    const first = page.items[0];
    o.olderDone = !first || first.seq <= 1 || !o.target;
    olderButton.hidden = o.olderDone;
    newerButton.hidden = !o.bottomCursor;
    firstButton.hidden = !o.target;
    renderShown();
    const target = o.target && log.querySelector('[data-target="true"]');
    if (target) {
      const box = log.getBoundingClientRect();
      const at = target.getBoundingClientRect();
      log.scrollTop = Math.max(0, log.scrollTop + at.top - box.top - log.clientHeight / 3);
    } else {
      log.scrollTop = 0;
    }
  }

  async function loadNewer() {
    const o = open;
    if (!o || !o.bottomCursor) return;
    const gen = generation;
    const page = await app.call('chat:messages', query({ limit: PAGE, cursor: o.bottomCursor }));
    if (gen !== generation || o !== open) return;
    const have = new Set([...log.children].map((li) => li.dataset.messageId));
    log.append(...page.items.filter((m) => !have.has(m.id)).map(messageEl));
    o.bottomCursor = page.nextCursor || null;
    newerButton.hidden = !o.bottomCursor;
    renderShown();
  }

  /** The page before the first shown message: chat:messages can only page forward, but
   *  `around` a message with twice the page size starts one page before it. */
  async function loadOlder() {
    const o = open;
    const firstEl = log.firstElementChild;
    if (!o || !firstEl) return;
    const gen = generation;
    const firstSeq = Number(firstEl.dataset.seq);
    const page = await app.call('chat:messages', query({ limit: 2 * PAGE,
      around: firstEl.dataset.messageId }));
    if (gen !== generation || o !== open) return;
    const older = page.items.filter((m) => m.seq < firstSeq);
    const before = log.scrollHeight;
    log.prepend(...older.map(messageEl));
    log.scrollTop += log.scrollHeight - before; // keep the reader's place
    o.olderDone = older.length < PAGE || older[0].seq <= 1;
    olderButton.hidden = o.olderDone;
    renderShown();
  }

  async function exportChat(fmt) {
    const c = open.chat;
    const res = await authorizedFetch(app, exportUrl(c.id, fmt));
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: `${c.name}.${fmt}`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  const exportUrl = (id, fmt) => `/api/chats/${encodeURIComponent(id)}/export.${fmt}`;

  // -- search -----------------------------------------------------------------------------

  const searchMsg = messageBox('imports-search-error');
  const searchInput = h('input', { type: 'search', required: true, maxlength: 500,
    placeholder: 'words, "a phrase", pref*', 'aria-label': 'Search the imported chats',
    'data-testid': 'imports-search-query' });
  const thisChat = h('input', { type: 'checkbox', 'data-testid': 'imports-search-this-chat' });
  const thisChatLabel = h('label', { class: 'check' }, thisChat, 'only the open chat');
  const searchButton = h('button', { type: 'submit', 'data-testid': 'imports-search' },
    'Search');
  const searchControls = h('fieldset', { class: 'row' }, searchInput, searchButton);
  const results = h('ol', { class: 'imports-results', 'data-testid': 'imports-results',
    'aria-label': 'Search results' });
  const resultCount = h('p', { class: 'muted', 'data-testid': 'imports-results-count' });
  const moreResults = h('button', { type: 'button', class: 'small', hidden: true,
    'data-testid': 'imports-results-more',
    onclick: () => act(moreResults, searchMsg, () => runSearch(true)) }, 'More results');
  const searchForm = h('form', { class: 'imports-search', role: 'search',
    'data-testid': 'imports-search-form', onsubmit: (e) => {
      e.preventDefault();
      act(searchControls, searchMsg, () => runSearch(false));
    } },
  searchControls, thisChatLabel, searchMsg.el, resultCount, results, moreResults);

  function resultEl(r) {
    const c = chats.get(r.chatId);
    return h('li', { 'data-testid': 'imports-result', 'data-chat-id': r.chatId,
      'data-message-id': r.messageId },
    h('button', { type: 'button', class: 'imports-result-open',
      'data-testid': 'imports-result-open',
      title: 'Open the chat at this message',
      onclick: () => openChat(r.chatId, { around: r.messageId }) },
    h('span', { class: 'imp-head' }, h('strong', {}, r.author),
      h('time', { datetime: r.time, title: exactTime(r.time) }, stamp(r.time)),
      h('small', { class: 'muted' }, c ? c.name : '')),
    h('span', { class: 'snippet', 'data-testid': 'imports-snippet' },
      markedSnippet(r.snippet || r.text || ''))));
  }

  async function runSearch(more) {
    const pid = project.id;
    let s = search;
    if (!more) {
      const q = searchInput.value.trim();
      if (!q) throw new AckError({ code: 'bad_request', message: 'type something to search for' });
      s = { query: q, chatId: thisChat.checked && open ? open.chat.id : null, nextCursor: null,
        count: 0 };
    }
    const page = await app.call('chat:search', { projectId: pid, query: s.query, limit: RESULTS,
      ...(s.chatId ? { chatId: s.chatId } : {}),
      ...(more && s.nextCursor ? { cursor: s.nextCursor } : {}) });
    if (!project || project.id !== pid) return;
    search = s;
    if (!more) results.replaceChildren();
    results.append(...page.items.map(resultEl));
    s.nextCursor = page.nextCursor || null;
    s.count += page.items.length;
    moreResults.hidden = !s.nextCursor;
    resultCount.textContent = s.count
      ? `${count(s.count, 'message')}${s.nextCursor ? ' so far' : ''} for “${s.query}”`
      : `No messages match “${s.query}”.`;
  }

  function dropResults(chatId) {
    for (const li of [...results.children]) if (li.dataset.chatId === chatId) li.remove();
  }

  thisChat.addEventListener('change', () => {
    if (searchInput.value.trim()) act(searchControls, searchMsg, () => runSearch(false));
  });

  // -- layout and lifecycle ---------------------------------------------------------------

  const idle = h('p', { class: 'muted', 'data-testid': 'imports-idle' },
    'Open a project to import and read chat histories.');
  const body = h('div', { class: 'imports', 'data-testid': 'imports-panel', hidden: true },
    importForm,
    h('div', { class: 'imports-layout' },
      h('div', { class: 'imports-side' },
        h('h4', {}, 'Chats'), chatList, noChats, moreChats, listMsg.el,
        h('h4', {}, 'Search'), searchForm),
      h('div', { class: 'imports-main' }, pick, view)));
  root.append(idle, body);

  function reset() {
    generation += 1;
    chats.clear();
    chatsCursor = null;
    importing = null;
    uploaded = null;
    open = null;
    search = null;
    view.hidden = true;
    pick.hidden = false;
    log.replaceChildren();
    results.replaceChildren();
    resultCount.textContent = '';
    moreResults.hidden = true;
    moreChats.hidden = true;
    fileInput.value = '';
    setBar('idle', 0, '');
    for (const m of [listMsg, viewMsg, searchMsg]) m.clear();
    clearImportMsg();
    renderChats();
  }

  function renderAll() {
    idle.hidden = Boolean(project);
    body.hidden = !project;
    importForm.hidden = !canWrite();
    thisChatLabel.hidden = false;
  }

  app.bus.on('session', (user) => {
    if (!user) {
      project = null;
      reset();
      renderAll();
    }
  });

  app.bus.on('project', async (p) => {
    const before = project;
    project = p;
    if (!p || !before || before.id !== p.id) {
      reset();
      renderAll();
      if (p) await act(chatList, listMsg, () => loadChats());
      return;
    }
    // The same project again (the projects panel re-entered its room, or our role changed).
    await reloadProject();
  });

  /** The project's chats and the open one's header, as they are now. */
  async function reloadProject() {
    renderAll();
    await act(chatList, listMsg, () => loadChats());
    if (open) {
      if (!chats.has(open.chat.id)) closeChat();
      else {
        open.chat = chats.get(open.chat.id);
        renderHeader();
      }
    }
  }

  // After a reconnect the missed pushes (chat:imported, chat:updated...) are replayed; what
  // could not be is reloaded.
  app.bus.on('resync', ({ room, error }) => {
    if (project && !error && room === `project:${project.id}`) reloadProject();
  });

  renderAll();
  renderChats();
}

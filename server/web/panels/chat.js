// Chat: the open project's conversations (live through conversation:created|updated|deleted),
// new conversation, and the selected one's messages. Joining a conversation (its room) makes
// replies stream in as they arrive: message:started adds the question and an empty reply,
// message:delta appends text in index order (a gap is healed by message:done, which carries
// the whole text), message:done / message:error settle it. Stop sends message:cancel; what
// was streamed stays. Files can be attached (uploaded to the project first) and the
// project's files offered as context. Without ANTHROPIC_API_KEY the server answers with its
// offline analyst, which says so itself.
import { AckError, act, h, messageBox } from '../lib.js';

export default { id: 'chat', title: 'Chat', slot: 'main', mount };

function mount(root, app) {
  let project = null; // {id, name, role}
  const conversations = new Map(); // id → conversation view
  let current = null; // the open conversation's id
  const messages = new Map(); // id → {view, el, body, index}
  let attachments = []; // [{id, name}] uploaded, to go with the next message
  let generating = null; // reply id streaming in the open conversation
  let generation = 0; // bumped on every switch: stale answers are dropped

  const canWrite = () => Boolean(project && project.role !== 'viewer');
  const msg = messageBox('chat-error');

  // -- the conversation list --------------------------------------------------------------

  const list = h('ul', { class: 'table-list', 'data-testid': 'chat-list',
    'aria-label': 'Conversations in this project' });
  const empty = h('p', { class: 'muted', 'data-testid': 'chat-empty' }, 'No conversations yet.');
  const newButton = h('button', { type: 'button', 'data-testid': 'chat-new',
    onclick: () => act(newButton, msg, async () => {
      const conv = await app.call('conversation:create', { projectId: project.id });
      conversations.set(conv.id, conv);
      await open(conv.id);
    }) }, 'New conversation');

  const titleOf = (c) => c.title || 'New conversation';

  function renderList() {
    const items = [...conversations.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
    list.replaceChildren(...items.map((c) => h('li', {
      'data-testid': 'chat-item', 'data-conversation-id': c.id,
      class: c.id === current ? 'active' : '' },
    h('button', { type: 'button', class: 'table-open', 'aria-current': c.id === current
      ? 'true' : null, onclick: () => open(c.id) }, titleOf(c)))));
    empty.hidden = items.length > 0;
    newButton.hidden = !canWrite();
  }

  async function loadList() {
    const pid = project.id;
    try {
      const data = await app.call('conversation:list', { projectId: pid });
      if (!project || project.id !== pid) return;
      conversations.clear();
      for (const c of data.items) conversations.set(c.id, c);
    } catch (err) {
      msg.error(err);
    }
    renderList();
  }

  // -- the open conversation --------------------------------------------------------------

  const title = h('h3', { 'data-testid': 'chat-title' });
  const log = h('ol', { class: 'chat-log', 'data-testid': 'chat-messages', 'aria-live': 'polite' });
  const input = h('textarea', { rows: 3, maxlength: 32000, 'data-testid': 'chat-input',
    'aria-label': 'Message', placeholder: 'Ask about this project’s data…' });
  const fileInput = h('input', { type: 'file', multiple: true, 'data-testid': 'chat-attach',
    'aria-label': 'Attach files' });
  const chips = h('span', { class: 'muted', 'data-testid': 'chat-attachments' });
  const useProject = h('input', { type: 'checkbox', 'data-testid': 'chat-project-files' });
  const send = h('button', { type: 'submit', 'data-testid': 'chat-send' }, 'Send');
  const stop = h('button', { type: 'button', class: 'danger', 'data-testid': 'chat-stop',
    hidden: true, onclick: () => act(stop, msg, () => app.call('message:cancel',
      { messageId: generating })) }, 'Stop');
  const form = h('form', { class: 'chat-compose', onsubmit: (e) => {
    e.preventDefault();
    act(send, msg, submit);
  } }, input, h('div', { class: 'row' }, fileInput, chips,
    h('label', { class: 'check' }, useProject, 'use all project files'), send, stop));
  const view = h('div', { 'data-testid': 'chat-view', hidden: true }, title, log, form);

  function messageEl(m) {
    const body = h('div', { class: 'chat-text', 'data-testid': 'chat-text' });
    const meta = h('small', { class: 'muted', 'data-testid': 'chat-meta' });
    const el = h('li', { class: `chat-msg ${m.role}`, 'data-testid': 'chat-message',
      'data-message-id': m.id, 'data-role': m.role },
    h('strong', {}, m.role === 'user' ? 'You' : 'Assistant'), body, meta);
    const entry = { view: m, el, body, meta, index: -1, deltas: 0 };
    messages.set(m.id, entry);
    paint(entry);
    log.append(el);
    return entry;
  }

  function paint(entry) {
    const m = entry.view;
    entry.body.textContent = m.content;
    entry.el.dataset.status = m.status;
    entry.el.dataset.deltas = String(entry.deltas);
    const md = m.metadata || {};
    const bits = [];
    if (m.status === 'generating') bits.push('generating…');
    if (m.status === 'cancelled') bits.push('stopped');
    if (md.error) bits.push(`failed: ${md.error.code} (${md.error.reason}): ${md.error.message}`);
    if (md.provider && m.status !== 'generating') bits.push(`${md.provider} · ${md.model}`);
    if (md.context && md.context.omitted && md.context.omitted.length) {
      bits.push(`left out: ${md.context.omitted.map((o) => o.name).join(', ')}`);
    }
    if (m.attachments && m.attachments.length) bits.push(`${m.attachments.length} attached`);
    entry.meta.textContent = bits.join(' · ');
  }

  function upsert(m) {
    const entry = messages.get(m.id) || messageEl(m);
    entry.view = m;
    if (m.status !== 'generating') entry.index = Number.MAX_SAFE_INTEGER;
    else if (typeof m.deltaIndex === 'number') entry.index = m.deltaIndex;
    paint(entry);
    return entry;
  }

  function setGenerating(id) {
    generating = id;
    stop.hidden = !id || !canWrite();
    send.disabled = Boolean(id);
  }

  async function open(id) {
    const gen = ++generation;
    if (current && current !== id) {
      app.call('conversation:leave', { id: current }).catch(() => {});
    }
    current = id;
    messages.clear();
    log.replaceChildren();
    setGenerating(null);
    renderList();
    view.hidden = false;
    title.textContent = titleOf(conversations.get(id) || {});
    try {
      const joined = await app.call('conversation:join', { id });
      const data = await app.call('conversation:get', { id, limit: 100 });
      if (gen !== generation) return;
      conversations.set(id, data.conversation);
      for (const m of data.messages) upsert(m);
      const live = joined.generating;
      if (live && messages.has(live.messageId)) setGenerating(live.messageId);
      else if (data.conversation.generatingId) setGenerating(data.conversation.generatingId);
    } catch (err) {
      msg.error(err);
    }
    form.hidden = !canWrite();
    renderList();
  }

  async function submit() {
    const content = input.value.trim();
    if (!content) throw new AckError({ code: 'bad_request', message: 'write a message first' });
    const conv = current;
    const ack = await app.call('message:send', { conversationId: conv, content,
      attachments: attachments.map((a) => a.id), includeProjectFiles: useProject.checked });
    input.value = '';
    attachments = [];
    chips.textContent = '';
    if (current !== conv) return;
    upsert(ack.message);
    upsert(ack.reply);
    setGenerating(ack.replyId);
  }

  // -- attachments: uploaded to the project over REST, then sent by id ---------------------

  fileInput.addEventListener('change', () => act(fileInput, msg, async () => {
    for (const file of fileInput.files) {
      const form = new FormData();
      form.append('file', file, file.name);
      const token = app.tokens && app.tokens.accessToken;
      const res = await fetch(`/api/projects/${encodeURIComponent(project.id)}/files`,
        { method: 'POST', body: form, headers: { Authorization: `Bearer ${token}` } });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new AckError(body.error || { code: 'internal', message: res.statusText });
      attachments.push({ id: body.data.id, name: body.data.name });
    }
    fileInput.value = '';
    chips.textContent = attachments.length ? `attached: ${attachments.map((a) => a.name)
      .join(', ')}` : '';
  }));

  // -- pushes ----------------------------------------------------------------------------

  app.on('message:started', (d) => {
    if (d.conversationId !== current) return;
    upsert(d.userMessage);
    upsert(d.message);
    setGenerating(d.messageId);
  });
  app.on('message:delta', (d) => {
    const entry = d.conversationId === current && messages.get(d.messageId);
    if (!entry || d.index <= entry.index) return; // already in the text we have
    if (d.index > entry.index + 1) entry.el.dataset.gap = 'true'; // message:done heals it
    entry.index = d.index;
    entry.deltas += 1;
    entry.view = { ...entry.view, content: entry.view.content + d.text };
    paint(entry);
  });
  app.on('message:done', (d) => {
    if (d.conversationId !== current) return;
    upsert(d.message);
    if (generating === d.messageId) setGenerating(null);
  });
  app.on('message:error', (d) => {
    if (d.conversationId !== current) return;
    if (d.reply) upsert(d.reply);
    if (generating === d.messageId) setGenerating(null);
    msg.error(new AckError({ code: d.code, message: d.message }, 'message:error'));
  });
  const changed = (d) => {
    if (!project || d.projectId !== project.id) return;
    conversations.set(d.conversation.id, d.conversation);
    if (d.conversation.id === current) title.textContent = titleOf(d.conversation);
    renderList();
  };
  app.on('conversation:created', changed);
  app.on('conversation:updated', changed);
  app.on('conversation:deleted', (d) => {
    conversations.delete(d.conversationId);
    if (d.conversationId === current) {
      current = null;
      view.hidden = true;
    }
    renderList();
  });

  // -- project and session ------------------------------------------------------------------

  const body = h('div', { 'data-testid': 'chat-panel', hidden: true },
    h('div', { class: 'row' }, h('h3', {}, 'Conversations'), newButton), list, empty, view,
    msg.el);
  const closed = h('p', { class: 'muted', 'data-testid': 'chat-closed' },
    'Open a project to chat about its data.');
  root.append(closed, body);

  app.bus.on('session', (user) => {
    if (!user) {
      project = null;
      current = null;
      body.hidden = true;
      closed.hidden = false;
    }
  });

  // After a reconnect the client re-joined the open conversation and replayed the missed
  // pushes; what could not be replayed is reloaded.
  app.bus.on('resync', async ({ room, error }) => {
    if (!project) return;
    if (room === `project:${project.id}`) {
      if (!error) await loadList();
      return;
    }
    if (!current || room !== `conversation:${current}`) return;
    if (error && (error.code === 'forbidden' || error.code === 'not_found')) {
      current = null;
      view.hidden = true;
      setGenerating(null);
      renderList();
      msg.error(error);
      return;
    }
    await open(current); // joins again (the client may have had to let the room go)
  });

  app.bus.on('project', async (p) => {
    const same = project && p && project.id === p.id;
    project = p;
    body.hidden = !p;
    closed.hidden = Boolean(p);
    if (!p) {
      current = null;
      return;
    }
    if (!same) {
      current = null;
      view.hidden = true;
      conversations.clear();
    }
    await loadList();
    if (current) await open(current); // e.g. our role changed: reload what it may show
  });
}

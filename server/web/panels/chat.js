// Chat (a project view): the project's AI conversations (live through
// conversation:created | updated | deleted), and the open one — named in the URL
// (#/p/<id>/chat/<conversationId>) — with its messages (chat-log.js). Joining a conversation
// (its room) makes replies stream in: message:started adds the question and an empty reply,
// message:delta appends text in index order (a gap is healed by message:done, which carries
// the whole text), message:done / message:error settle it; Stop sends message:cancel.
//
// The composer sends on Enter (Shift+Enter breaks the line); files (uploaded here or already
// in the project) and imported chats go with a message as context, shown as chips. Without
// ANTHROPIC_API_KEY the server answers with its offline analyst, which says so itself.
import { AckError, act, h, messageBox } from '../lib.js';
import { bytes, timeEl } from '../format.js';
import { ChatLog } from '../chat-log.js';
import { uploadFile } from '../upload.js';

export default { id: 'chat', title: 'Chat', slot: 'main', mount };

const TEXTAREA_MAX_PX = 240;

function mount(root, app) {
  let project = null; // {id, name, role}
  const conversations = new Map(); // id → conversation view
  let current = null; // the open conversation's id
  let wanted = null; // the conversation the URL names
  let listState = 'idle'; // 'loading' | 'ready' | 'failed'
  const files = new Map(); // the project's files: id → view (names for chips, context choices)
  const chats = new Map(); // the project's imported chats: id → view
  let context = []; // [{id, name, kind: 'file' | 'chat'}] to go with the next message
  let generating = null; // reply id streaming in the open conversation
  let generation = 0; // bumped on every switch: stale answers are dropped

  const canWrite = () => Boolean(project && project.role !== 'viewer');
  const msg = messageBox('chat-error');
  const log = new ChatLog({ names: (id) => files.get(id)?.name });
  const titleOf = (c) => (c && c.title) || 'New conversation';
  const chatHref = (id) => `#/p/${encodeURIComponent(project.id)}/chat${id
    ? `/${encodeURIComponent(id)}` : ''}`;

  // -- the conversation list --------------------------------------------------------------

  const list = h('ul', { class: 'chat-list', 'data-testid': 'chat-list',
    'aria-label': 'Conversations in this project' });
  const listLoading = h('p', { class: 'muted loading', role: 'status',
    'data-testid': 'chat-loading' }, 'Loading conversations…');
  const empty = h('p', { class: 'muted', 'data-testid': 'chat-empty' },
    'No conversations yet.');
  const newButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'chat-new',
    onclick: () => act(newButton, msg, async () => {
      const conv = await app.call('conversation:create', { projectId: project.id });
      conversations.set(conv.id, conv);
      renderList();
      app.router.setItem(conv.id);
    }) }, 'New conversation');

  function renderList() {
    const items = [...conversations.values()]
      .sort((a, b) => ((a.updatedAt || a.createdAt) < (b.updatedAt || b.createdAt) ? 1 : -1));
    list.replaceChildren(...items.map((c) => h('li', {
      'data-testid': 'chat-item', 'data-conversation-id': c.id,
      class: c.id === current ? 'active' : '' },
    h('a', { href: chatHref(c.id), class: 'chat-open',
      'aria-current': c.id === current ? 'page' : null },
    h('span', { class: 'chat-open-title' }, titleOf(c)),
    h('small', { class: 'muted' }, timeEl(c.updatedAt || c.createdAt))))));
    listLoading.hidden = listState !== 'loading';
    empty.hidden = listState !== 'ready' || items.length > 0;
    newButton.hidden = !canWrite();
  }

  async function loadList() {
    const pid = project.id;
    listState = 'loading';
    renderList();
    try {
      const data = await app.call('conversation:list', { projectId: pid });
      if (!project || project.id !== pid) return;
      conversations.clear();
      for (const c of data.items) conversations.set(c.id, c);
      listState = 'ready';
    } catch (err) {
      listState = 'failed';
      msg.error(err);
    }
    renderList();
  }

  async function loadContextChoices() {
    const pid = project.id;
    const [f, c] = await Promise.allSettled([
      app.call('file:list', { projectId: pid, limit: 200 }),
      app.call('chat:list', { projectId: pid, limit: 100 }),
    ]);
    if (!project || project.id !== pid) return;
    files.clear();
    chats.clear();
    if (f.status === 'fulfilled') for (const x of f.value.items) files.set(x.id, x);
    if (c.status === 'fulfilled') for (const x of c.value.items) chats.set(x.id, x);
    renderContextChoices();
  }

  // -- the open conversation: header, rename, delete -----------------------------------------

  const title = h('h3', { class: 'chat-title', 'data-testid': 'chat-title', tabindex: '-1' });
  const renameInput = h('input', { type: 'text', maxlength: 200, required: true,
    'data-testid': 'chat-rename-input', 'aria-label': 'Conversation title' });
  const renameForm = h('form', { class: 'row chat-rename-form', hidden: true,
    onsubmit: (e) => {
      e.preventDefault();
      act(renameForm.querySelector('fieldset'), msg, async () => {
        const conv = await app.call('conversation:rename',
          { id: current, title: renameInput.value.trim() });
        conversations.set(conv.id, conv);
        endRename();
        renderHeader();
        renderList();
      });
    } }, h('fieldset', { class: 'row' }, renameInput,
    h('button', { type: 'submit', class: 'primary small', 'data-testid': 'chat-rename-save' },
      'Save'),
    h('button', { type: 'button', class: 'small', onclick: () => endRename() }, 'Cancel')));
  renameInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') endRename();
  });
  const renameButton = h('button', { type: 'button', class: 'small', 'data-testid': 'chat-rename',
    onclick: () => {
      renameInput.value = titleOf(conversations.get(current));
      renameForm.hidden = false;
      titleRow.hidden = true;
      renameInput.select();
      renameInput.focus();
    } }, 'Rename');
  function endRename() {
    renameForm.hidden = true;
    titleRow.hidden = false;
    renameButton.focus();
  }
  const confirmDelete = h('span', { class: 'row confirm', hidden: true, role: 'group',
    'aria-label': 'Confirm deletion' },
  h('span', {}, 'Delete this conversation?'),
  h('button', { type: 'button', class: 'danger small', 'data-testid': 'chat-delete-confirm',
    onclick: (e) => act(e.currentTarget, msg, async () => {
      const id = current;
      await app.call('conversation:delete', { id });
      removed(id);
    }) }, 'Delete'),
  h('button', { type: 'button', class: 'small', onclick: () => {
    confirmDelete.hidden = true;
    deleteButton.focus();
  } }, 'Cancel'));
  const deleteButton = h('button', { type: 'button', class: 'small danger',
    'data-testid': 'chat-delete', onclick: () => {
      confirmDelete.hidden = false;
      confirmDelete.querySelector('button').focus();
    } }, 'Delete');
  const tools = h('span', { class: 'row chat-tools' }, renameButton, deleteButton, confirmDelete);
  const titleRow = h('div', { class: 'row spread chat-head' }, title, tools);

  function renderHeader() {
    title.textContent = titleOf(conversations.get(current));
    tools.hidden = !canWrite();
  }

  // -- the composer -------------------------------------------------------------------------

  const input = h('textarea', { rows: 2, maxlength: 32000, 'data-testid': 'chat-input',
    'aria-label': 'Message', 'aria-describedby': 'chat-compose-hint',
    placeholder: 'Ask about this project’s data…' });
  const hint = h('small', { class: 'muted', id: 'chat-compose-hint' },
    'Enter sends · Shift+Enter starts a new line');
  const chips = h('div', { class: 'chips', 'data-testid': 'chat-attachments',
    'aria-label': 'Context for the next message' });
  const fileInput = h('input', { type: 'file', multiple: true, class: 'visually-hidden',
    'data-testid': 'chat-attach' });
  const attachLabel = h('label', { class: 'button small file-button' }, fileInput, 'Upload…');
  const useProject = h('input', { type: 'checkbox', 'data-testid': 'chat-project-files' });
  const fileChoices = h('ul', { class: 'choices', 'data-testid': 'chat-file-choices' });
  const chatChoices = h('ul', { class: 'choices', 'data-testid': 'chat-chat-choices' });
  const contextMenu = h('details', { class: 'context-menu' },
    h('summary', { 'data-testid': 'chat-context' }, 'Add context'),
    h('div', { class: 'context-pop' },
      h('label', { class: 'check' }, useProject, 'Use all the project’s files'),
      h('h4', {}, 'Files'), fileChoices, attachLabel,
      h('h4', {}, 'Imported chats'), chatChoices));
  const send = h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send' },
    'Send');
  const stop = h('button', { type: 'button', class: 'danger', 'data-testid': 'chat-stop',
    hidden: true, onclick: () => act(stop, msg, () => app.call('message:cancel',
      { messageId: generating })) }, 'Stop');
  const form = h('form', { class: 'chat-compose', 'data-testid': 'chat-compose',
    onsubmit: (e) => {
      e.preventDefault();
      if (!generating) act(send, msg, submit);
    } },
  chips, input, h('div', { class: 'row spread compose-bar' }, h('span', { class: 'row' },
    contextMenu, hint), h('span', { class: 'row' }, stop, send)));

  input.addEventListener('keydown', (e) => {
    // Enter sends, Shift+Enter breaks the line; Enter that confirms an IME composition is
    // the composition's.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener('input', () => grow());
  function grow() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, TEXTAREA_MAX_PX)}px`;
  }

  const inContext = (id) => context.some((c) => c.id === id);
  function toggleContext(item, on) {
    context = context.filter((c) => c.id !== item.id);
    if (on) context.push(item);
    renderChips();
    renderContextChoices();
  }
  function renderChips() {
    chips.replaceChildren(...context.map((c) => h('span', { class: `chip chip-${c.kind}`,
      'data-testid': 'chat-attachment', 'data-kind': c.kind, 'data-name': c.name },
    h('span', { class: 'chip-kind' }, c.kind),
    h('span', { class: 'chip-name' }, c.name),
    h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${c.name}`,
      onclick: () => {
        toggleContext(c, false);
        input.focus();
      } }, '×'))));
    if (useProject.checked) {
      chips.append(h('span', { class: 'chip chip-file', 'data-testid': 'chat-attachment',
        'data-kind': 'all-files' }, h('span', { class: 'chip-name' }, 'all project files')));
    }
    chips.hidden = !chips.childElementCount;
  }
  useProject.addEventListener('change', renderChips);
  function renderContextChoices() {
    const choice = (item) => h('li', {}, h('label', { class: 'check' },
      h('input', { type: 'checkbox', checked: inContext(item.id),
        onchange: (e) => toggleContext(item, e.target.checked) }),
      h('span', { class: 'clip' }, item.name),
      item.size !== undefined ? h('small', { class: 'muted' }, bytes(item.size)) : null));
    fileChoices.replaceChildren(...[...files.values()].map((f) => choice({ id: f.id, name: f.name,
      kind: 'file', size: f.size })));
    if (!files.size) fileChoices.append(h('li', { class: 'muted' }, 'No files in the project.'));
    chatChoices.replaceChildren(...[...chats.values()].map((c) => choice({ id: c.id, name: c.name,
      kind: 'chat' })));
    if (!chats.size) chatChoices.append(h('li', { class: 'muted' }, 'No imported chats.'));
  }

  fileInput.addEventListener('change', () => act(attachLabel, msg, async () => {
    const chosen = [...fileInput.files];
    fileInput.value = '';
    for (const file of chosen) {
      const stored = await uploadFile(app, project.id, file);
      files.set(stored.id, stored);
      toggleContext({ id: stored.id, name: stored.name, kind: 'file' }, true);
    }
  }));

  async function submit() {
    const content = input.value.trim();
    if (!content) throw new AckError({ code: 'bad_request', message: 'write a message first' });
    const conv = current;
    const ack = await app.call('message:send', { conversationId: conv, content,
      attachments: context.filter((c) => c.kind === 'file').map((c) => c.id),
      chats: context.filter((c) => c.kind === 'chat').map((c) => c.id),
      includeProjectFiles: useProject.checked });
    input.value = '';
    grow();
    context = [];
    useProject.checked = false;
    renderChips();
    renderContextChoices();
    contextMenu.open = false;
    if (current !== conv) return;
    log.upsert(ack.message);
    log.upsert(ack.reply);
    log.follow(); // the reader asked: show the answer
    setGenerating(ack.replyId);
  }

  function setGenerating(id) {
    generating = id;
    stop.hidden = !id || !canWrite();
    send.disabled = Boolean(id);
  }

  // -- opening and closing --------------------------------------------------------------------

  const pick = h('div', { class: 'empty-state chat-pick', 'data-testid': 'chat-pick' },
    h('p', {}, 'Pick a conversation, or start a new one.'),
    h('p', { class: 'muted' }, 'Ask about the project’s tables, captures, files and imported '
      + 'chats: attach them as context.'));
  const viewLoading = h('p', { class: 'muted loading', role: 'status',
    'data-testid': 'chat-view-loading', hidden: true }, 'Loading messages…');
  const view = h('div', { class: 'chat-view', 'data-testid': 'chat-view', hidden: true },
    titleRow, renameForm, viewLoading, log.el, form);

  async function open(id) {
    const gen = ++generation;
    if (current && current !== id) {
      app.call('conversation:leave', { id: current }).catch(() => {});
    }
    current = id;
    log.clear();
    setGenerating(null);
    renameForm.hidden = true;
    titleRow.hidden = false;
    confirmDelete.hidden = true;
    msg.clear();
    renderList();
    view.hidden = !id;
    pick.hidden = Boolean(id);
    if (!id) return;
    renderHeader();
    viewLoading.hidden = false;
    try {
      const joined = await app.call('conversation:join', { id });
      const data = await app.call('conversation:get', { id, limit: 100 });
      if (gen !== generation) return;
      conversations.set(id, data.conversation);
      for (const m of data.messages) log.upsert(m);
      log.follow();
      const live = joined.generating;
      if (live && log.get(live.messageId)) setGenerating(live.messageId);
      else if (data.conversation.generatingId) setGenerating(data.conversation.generatingId);
    } catch (err) {
      if (gen !== generation) return;
      if (err.code === 'not_found' || err.code === 'forbidden') {
        view.hidden = true;
        pick.hidden = false;
        current = null;
      }
      msg.error(err);
    } finally {
      if (gen === generation) viewLoading.hidden = true;
    }
    form.hidden = !canWrite();
    renderHeader();
    renderList();
  }

  function removed(id) {
    conversations.delete(id);
    if (id === current) {
      current = null;
      view.hidden = true;
      pick.hidden = false;
      if (wanted === id) app.router.setItem(null, { replace: true });
    }
    renderList();
  }

  /** Open what the URL names, once the project's list is known. */
  function followRoute() {
    if (!project || listState === 'loading') return;
    if (wanted !== current) open(wanted);
  }

  // -- pushes --------------------------------------------------------------------------------

  app.on('message:started', (d) => {
    if (d.conversationId !== current) return;
    log.upsert(d.userMessage);
    log.upsert(d.message);
    setGenerating(d.messageId);
  });
  app.on('message:delta', (d) => {
    if (d.conversationId === current) log.delta(d);
  });
  app.on('message:done', (d) => {
    if (d.conversationId !== current) return;
    log.upsert(d.message);
    if (generating === d.messageId) setGenerating(null);
  });
  app.on('message:error', (d) => {
    if (d.conversationId !== current) return;
    if (d.reply) log.upsert(d.reply);
    if (generating === d.messageId) setGenerating(null);
    msg.error(new AckError({ code: d.code, message: d.message, details: d.details },
      'message:error'));
  });
  const changed = (d) => {
    if (!project || d.projectId !== project.id) return;
    conversations.set(d.conversation.id, d.conversation);
    if (d.conversation.id === current) renderHeader();
    renderList();
  };
  app.on('conversation:created', changed);
  app.on('conversation:updated', changed);
  app.on('conversation:deleted', (d) => removed(d.conversationId));
  app.on('file:added', (d) => {
    if (project && d.file.projectId === project.id) {
      files.set(d.file.id, d.file);
      renderContextChoices();
    }
  });
  app.on('file:deleted', (d) => {
    if (files.delete(d.id)) {
      toggleContext({ id: d.id }, false);
    }
  });

  // -- project, route and session -----------------------------------------------------------

  const layout = h('div', { class: 'chat-layout', 'data-testid': 'chat-panel', hidden: true },
    h('div', { class: 'chat-side' }, h('div', { class: 'row spread' },
      h('h3', {}, 'Conversations'), newButton), listLoading, empty, list),
    h('div', { class: 'chat-main' }, msg.el, pick, view));
  const closed = h('p', { class: 'muted', 'data-testid': 'chat-closed' },
    'Open a project to chat about its data.');
  root.append(closed, layout);

  app.bus.on('route', (route) => {
    if (route.name !== 'project' || route.view !== 'chat') return;
    if (!route.item && current && project && route.projectId === project.id) {
      // Back to the Chat view from another one: the conversation that was open still is.
      app.router.setItem(current, { replace: true });
      return;
    }
    wanted = route.item || null;
    followRoute();
  });

  app.bus.on('session', (user) => {
    if (!user) {
      project = null;
      current = null;
      layout.hidden = true;
      closed.hidden = false;
    }
  });

  // After a reconnect the client re-joined the open conversation and replayed the missed
  // pushes; what could not be replayed is reloaded.
  app.bus.on('resync', async ({ room, error }) => {
    if (!project) return;
    if (room === `project:${project.id}`) {
      if (!error) {
        await loadList();
        loadContextChoices();
      }
      return;
    }
    if (!current || room !== `conversation:${current}`) return;
    if (error && (error.code === 'forbidden' || error.code === 'not_found')) {
      removed(current);
      msg.error(error);
      return;
    }
    const id = current;
    current = null;
    await open(id); // joins again (the client may have had to let the room go)
  });

  app.bus.on('project', async (p) => {
    const same = project && p && project.id === p.id;
    project = p;
    layout.hidden = !p;
    closed.hidden = Boolean(p);
    if (!p) {
      current = null;
      return;
    }
    if (!same) {
      ++generation;
      current = null;
      view.hidden = true;
      pick.hidden = false;
      conversations.clear();
      files.clear();
      chats.clear();
      context = [];
      renderChips();
      const route = app.router.route;
      wanted = route.name === 'project' && route.view === 'chat' ? route.item : null;
    }
    loadContextChoices();
    await loadList();
    if (same && current) {
      const id = current; // e.g. our role changed: reload what it may show
      current = null;
      await open(id);
    } else {
      followRoute();
    }
  });
  renderChips();
}


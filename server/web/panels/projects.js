// Projects: the caller's projects (live through project:updated / project:deleted), create,
// open (project:join) and close (project:leave), members with roles, add/remove members,
// rename, delete, and who is online (project:presence). The open project is shared with
// other panels through app.setProject({id, name, role}) → the bus's 'project' event.
import { act, field, h, messageBox, plural } from '../lib.js';

export default { id: 'projects', title: 'Projects', slot: 'main', mount };

const ROLES = ['owner', 'editor', 'viewer'];
const COLORS = ['', 'blue', 'green', 'orange', 'purple', 'red', 'teal'];
const RANK = { owner: 0, editor: 1, viewer: 2 };

function mount(root, app) {
  const msg = messageBox('project-error');
  const projects = new Map(); // id → project view, plus .role (the caller's)
  let me = null; // the signed-in user
  let current = null; // {id, role, online: [{userId, username, isGuest}]} while in the room
  let replay = null; // pushes applied while project:list is in flight, re-applied after it

  const roleOf = (project) => {
    const mine = me && (project.members || []).find((m) => m.userId === me.id);
    return mine ? mine.role : null;
  };

  // -- model ------------------------------------------------------------------------------

  function upsert(project) {
    const role = roleOf(project);
    if (!role) {
      removed(project.id, 'removed');
      return;
    }
    projects.set(project.id, { ...project, role });
    if (current && current.id === project.id && current.role !== role) {
      current.role = role;
      app.setProject(openSummary());
    }
  }

  function removed(id, reason) {
    const known = projects.get(id);
    projects.delete(id);
    if (current && current.id === id) {
      current = null;
      app.setProject(null);
    }
    if (known) {
      msg.info(reason === 'removed' ? `You are no longer a member of “${known.name}”.`
        : `“${known.name}” was deleted.`);
    }
  }

  function apply(op) {
    if (replay) replay.push(op);
    op();
    render();
  }

  const openSummary = () => {
    const p = current && projects.get(current.id);
    return p ? { id: p.id, name: p.name, role: current.role } : null;
  };

  // -- calls ------------------------------------------------------------------------------

  async function load() {
    replay = [];
    try {
      const data = await app.call('project:list');
      projects.clear();
      for (const p of Array.isArray(data) ? data : data.items) upsert(p);
      for (const op of replay) op();
    } catch (err) {
      msg.error(err);
    } finally {
      replay = null;
      render();
    }
  }

  async function join(id) {
    const data = await app.call('project:join', { id });
    current = { id, role: data.role, online: data.online || [] };
    upsert(data.project);
    render();
    app.setProject(openSummary());
  }

  async function leaveRoom() {
    const { id } = current;
    current = null;
    app.setProject(null);
    render();
    try {
      await app.call('project:leave', { id });
    } catch (err) {
      if (err.code !== 'bad_request') throw err; // already out of the room
    }
  }

  const open = (id) => act(listControls, msg, async () => {
    if (current && current.id === id) return;
    if (current) await leaveRoom();
    await join(id);
    renameName.value = projects.get(id)?.name || '';
    title.focus();
  });

  // -- list and create --------------------------------------------------------------------

  const list = h('ul', { class: 'project-list', 'data-testid': 'project-list' });
  const empty = h('p', { class: 'muted', 'data-testid': 'project-empty' },
    'No projects yet: create one, or ask an owner to add you.');
  const listControls = h('fieldset', { class: 'bare' }, list, empty);

  const createName = h('input', { type: 'text', name: 'name', required: true, maxlength: 100,
    'data-testid': 'project-create-name' });
  const createDescription = h('input', { type: 'text', name: 'description', maxlength: 2000,
    'data-testid': 'project-create-description' });
  const createColor = h('select', { name: 'color', 'data-testid': 'project-create-color' },
    COLORS.map((c) => h('option', { value: c }, c || 'none')));
  const createControls = h('fieldset', { class: 'stack' },
    h('legend', {}, 'New project'),
    field('Name', createName),
    field('Description', createDescription, '(optional)'),
    field('Colour', createColor),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'project-create' }, 'Create'));
  const createForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    act(createControls, msg, async () => {
      const payload = { name: createName.value.trim() };
      if (createDescription.value.trim()) payload.description = createDescription.value.trim();
      if (createColor.value) payload.color = createColor.value;
      upsert(await app.call('project:create', payload));
      createForm.reset();
      render();
      msg.info(`Created “${payload.name}”.`);
    });
  } }, createControls);

  function renderList() {
    const items = [...projects.values()].sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(...items.map((p) => {
      const active = Boolean(current && current.id === p.id);
      return h('li', { class: active ? 'active' : '', 'data-testid': 'project-item',
        'data-project-id': p.id, 'data-project-name': p.name, 'data-role': p.role },
      h('button', { type: 'button', class: 'project-open', 'data-testid': 'project-open',
        'aria-current': active ? 'true' : null, onclick: () => open(p.id) },
      h('span', { class: 'swatch', style: p.color ? `background-color: ${p.color}` : null,
        'aria-hidden': 'true' }),
      h('span', { class: 'name' }, p.name)),
      h('span', { class: `badge role-${p.role}` }, p.role),
      h('small', { class: 'muted' }, plural((p.members || []).length, 'member')));
    }));
    empty.hidden = items.length > 0;
  }

  // -- the open project -------------------------------------------------------------------

  const title = h('h3', { tabindex: '-1', 'data-testid': 'project-title' });
  const roleBadge = h('span', { class: 'badge', 'data-testid': 'project-role' });
  const description = h('p', { class: 'muted', 'data-testid': 'project-description' });
  const members = h('tbody', { 'data-testid': 'member-list' });
  const presence = h('ul', { class: 'presence', 'data-testid': 'presence-list',
    'aria-label': 'Online now' });
  const detailControls = h('fieldset', { class: 'bare' });

  const renameName = h('input', { type: 'text', name: 'name', required: true, maxlength: 100,
    'data-testid': 'project-rename-name' });
  const renameForm = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(detailControls, msg, async () => {
      upsert(await app.call('project:update', { id: current.id, name: renameName.value.trim() }));
      render();
    });
  } }, field('Name', renameName),
  h('button', { type: 'submit', 'data-testid': 'project-rename' }, 'Rename'));

  const addEmail = h('input', { type: 'email', name: 'email', required: true,
    'data-testid': 'member-add-email' });
  const addRole = h('select', { name: 'role', 'data-testid': 'member-add-role' },
    ROLES.map((r) => h('option', { value: r, selected: r === 'editor' }, r)));
  const addForm = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(detailControls, msg, async () => {
      const payload = { id: current.id, email: addEmail.value.trim(), role: addRole.value };
      upsert(await app.call('project:member:add', payload));
      addEmail.value = '';
      render();
      msg.info(`${payload.email} is now ${payload.role}.`);
    });
  } }, field('Add member by email', addEmail), field('Role', addRole),
  h('button', { type: 'submit', 'data-testid': 'member-add' }, 'Add'));

  const confirmDelete = h('span', { class: 'row', hidden: true },
    h('span', {}, 'Delete this project and everything in it?'),
    h('button', { type: 'button', class: 'danger', 'data-testid': 'project-delete-confirm',
      onclick: () => act(detailControls, msg, async () => {
        const { id } = current;
        await app.call('project:delete', { id });
        removed(id, 'deleted');
        render();
      }) }, 'Delete'),
    h('button', { type: 'button', onclick: () => { confirmDelete.hidden = true; } }, 'Cancel'));
  const deleteButton = h('button', { type: 'button', class: 'danger',
    'data-testid': 'project-delete', onclick: () => { confirmDelete.hidden = false; } },
  'Delete project…');
  const leaveMembership = h('button', { type: 'button', 'data-testid': 'project-leave-membership',
    onclick: () => act(detailControls, msg, async () => {
      const { id } = current;
      await app.call('project:member:remove', { id, userId: me.id });
      removed(id, 'removed');
      render();
    }) }, 'Leave project');
  const ownerTools = h('div', { class: 'stack owner-tools' },
    h('h4', {}, 'Manage'), renameForm, addForm);

  detailControls.append(
    h('div', { class: 'row spread' },
      h('div', { class: 'row' }, title, roleBadge),
      h('button', { type: 'button', 'data-testid': 'project-close', 'aria-label': 'Close project',
        onclick: () => act(detailControls, msg, leaveRoom) }, 'Close')),
    description,
    h('h4', {}, 'Members'),
    h('table', { class: 'members' },
      h('thead', {}, h('tr', {}, ['Member', 'Email', 'Role', 'Status', ''].map(
        (c) => h('th', { scope: 'col' }, c)))),
      members),
    h('h4', {}, 'Online now'),
    presence,
    ownerTools,
    h('div', { class: 'row danger-zone' }, leaveMembership, deleteButton, confirmDelete),
  );
  const detail = h('div', { class: 'project-detail', 'data-testid': 'project-detail', hidden: true },
    detailControls);
  const idle = h('p', { class: 'muted project-idle', 'data-testid': 'project-idle' },
    'Open a project to see its members, who is online, and its tools.');

  function memberRow(m, online) {
    const isMe = me && m.userId === me.id;
    const owner = current.role === 'owner';
    const roleCell = owner && m.email
      ? h('select', { 'data-testid': 'member-role', 'aria-label': `Role of ${m.username}`,
        onchange: (e) => act(detailControls, msg, async () => {
          try {
            upsert(await app.call('project:member:add',
              { id: current.id, email: m.email, role: e.target.value }));
          } finally {
            render();
          }
        }) }, ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r)))
      : h('span', { class: `badge role-${m.role}` }, m.role);
    return h('tr', { 'data-testid': 'member-row', 'data-user-id': m.userId,
      'data-username': m.username || '', 'data-role': m.role, 'data-online': String(online) },
    h('td', {}, h('span', { class: `dot ${online ? 'on' : 'off'}`, 'aria-hidden': 'true' }),
      m.username || m.userId, isMe ? h('small', { class: 'muted' }, ' (you)') : null),
    h('td', {}, m.email || '—'),
    h('td', {}, roleCell),
    h('td', { 'data-testid': 'member-status' }, online ? 'online' : 'offline'),
    h('td', {}, owner && !isMe
      ? h('button', { type: 'button', class: 'link danger', 'data-testid': 'member-remove',
        'aria-label': `Remove ${m.username}`,
        onclick: () => act(detailControls, msg, async () => {
          upsert(await app.call('project:member:remove', { id: current.id, userId: m.userId }));
          render();
        }) }, 'Remove')
      : null));
  }

  function renderDetail() {
    const p = current && projects.get(current.id);
    detail.hidden = !p;
    idle.hidden = Boolean(p);
    if (!p) {
      confirmDelete.hidden = true;
      return;
    }
    detail.dataset.projectId = p.id;
    title.textContent = p.name;
    roleBadge.textContent = current.role;
    roleBadge.className = `badge role-${current.role}`;
    description.textContent = p.description || '';
    const onlineIds = new Set(current.online.map((u) => u.userId));
    const sorted = [...(p.members || [])].sort((a, b) => (RANK[a.role] - RANK[b.role])
      || (a.username || '').localeCompare(b.username || ''));
    members.replaceChildren(...sorted.map((m) => memberRow(m, onlineIds.has(m.userId))));
    presence.replaceChildren(...current.online.map((u) => h('li', { 'data-testid': 'presence-user',
      'data-user-id': u.userId, 'data-username': u.username },
    h('span', { class: 'dot on', 'aria-hidden': 'true' }), u.username,
    u.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null)));
    if (!current.online.length) presence.append(h('li', { class: 'muted' }, 'nobody'));
    ownerTools.hidden = current.role !== 'owner';
    deleteButton.hidden = current.role !== 'owner';
  }

  function render() {
    renderList();
    renderDetail();
  }

  // -- wiring -----------------------------------------------------------------------------

  const signedOutNote = h('p', { class: 'muted', 'data-testid': 'projects-signed-out' },
    'Sign in to see your projects.');
  const layout = h('div', { class: 'projects-layout', hidden: true },
    h('div', { class: 'stack project-side' }, createForm,
      h('h3', { class: 'list-title' }, 'Your projects'), listControls),
    detail, idle);
  root.append(signedOutNote, msg.el, layout);

  app.on('project:updated', ({ project }) => apply(() => upsert(project)));
  app.on('project:deleted', (d) => apply(() => removed(d.projectId || d.id, d.reason)));
  app.on('project:presence', ({ projectId, users }) => {
    if (current && current.id === projectId) {
      current.online = users || [];
      renderDetail();
    }
  });

  // A reconnect re-joins the open project's room and replays what was missed; what could not
  // be replayed is reloaded: the project list (pushed to our user room) or the open project.
  app.bus.on('resync', async ({ room, error }) => {
    if (!me) return;
    if (room === `user:${me.id}`) {
      await load();
      return;
    }
    if (!current || room !== `project:${current.id}`) return;
    const { id } = current;
    if (error && (error.code === 'forbidden' || error.code === 'not_found')) {
      removed(id, 'removed');
      render();
      return;
    }
    try {
      if (error) await join(id); // the client could not keep its room: enter it again
      else upsert(await app.call('project:get', { id }));
      render();
    } catch (err) {
      msg.error(err);
    }
  });

  app.bus.on('session', async (user) => {
    const previous = me;
    me = user;
    signedOutNote.hidden = Boolean(user);
    layout.hidden = !user;
    if (!user || (previous && previous.id !== user.id)) {
      projects.clear();
      current = null;
      msg.clear();
    }
    if (!user) {
      render();
      return;
    }
    await load();
    if (current) {
      // The same user signed in again (e.g. a guest upgraded): enter the project's room again.
      const { id } = current;
      try {
        await join(id);
      } catch (err) {
        current = null;
        app.setProject(null);
        render();
        msg.error(err);
      }
    }
  });
}

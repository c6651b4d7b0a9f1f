// Members (a project view): who is in the open project, with their role and whether they are
// online; owners add members by email, change roles, remove members, rename and delete the
// project; anyone may leave it. The project itself comes from the 'room' bus event
// (project-room.js), kept current by its pushes; acks are applied at once through
// app.room.apply so the view does not wait for the push.
import { act, field, h, messageBox } from '../lib.js';

export default { id: 'members', title: 'Members', slot: 'main', mount };

const ROLES = ['owner', 'editor', 'viewer'];
const RANK = { owner: 0, editor: 1, viewer: 2 };

function mount(root, app) {
  const msg = messageBox('member-error');
  let room = { state: 'closed' };
  const isOwner = () => room.role === 'owner';
  const me = () => app.state.user;
  const apply = (project) => app.room.apply(project);

  const members = h('tbody', { 'data-testid': 'member-list' });
  const controls = h('fieldset', { class: 'bare' });

  // -- owner tools ------------------------------------------------------------------------

  const renameName = h('input', { type: 'text', name: 'name', required: true, maxlength: 100,
    'data-testid': 'project-rename-name' });
  const renameForm = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(controls, msg, async () => {
      apply(await app.call('project:update', { id: room.id, name: renameName.value.trim() }));
      msg.info('Renamed.');
    });
  } }, field('Project name', renameName),
  h('button', { type: 'submit', 'data-testid': 'project-rename' }, 'Rename'));

  const addEmail = h('input', { type: 'email', name: 'email', required: true,
    autocomplete: 'off', 'data-testid': 'member-add-email' });
  const addRole = h('select', { name: 'role', 'data-testid': 'member-add-role' },
    ROLES.map((r) => h('option', { value: r, selected: r === 'editor' }, r)));
  const addForm = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(controls, msg, async () => {
      const payload = { id: room.id, email: addEmail.value.trim(), role: addRole.value };
      apply(await app.call('project:member:add', payload));
      addEmail.value = '';
      msg.info(`${payload.email} is now ${payload.role}.`);
    });
  } }, field('Add a member by email', addEmail), field('Role', addRole),
  h('button', { type: 'submit', 'data-testid': 'member-add' }, 'Add'));

  const confirmDelete = h('div', { class: 'row confirm', hidden: true, role: 'group',
    'aria-label': 'Confirm deletion' },
  h('span', {}, 'Delete this project and everything in it?'),
  h('button', { type: 'button', class: 'danger', 'data-testid': 'project-delete-confirm',
    onclick: () => act(controls, msg, async () => {
      await app.call('project:delete', { id: room.id });
      app.router.go({ name: 'home' });
    }) }, 'Delete'),
  h('button', { type: 'button', onclick: () => { confirmDelete.hidden = true; } }, 'Cancel'));
  const deleteButton = h('button', { type: 'button', class: 'danger',
    'data-testid': 'project-delete', onclick: () => {
      confirmDelete.hidden = false;
      confirmDelete.querySelector('button').focus();
    } }, 'Delete project…');
  const leave = h('button', { type: 'button', 'data-testid': 'project-leave-membership',
    onclick: () => act(controls, msg, async () => {
      await app.call('project:member:remove', { id: room.id, userId: me().id });
      app.router.go({ name: 'home' });
    }) }, 'Leave project');
  const ownerTools = h('div', { class: 'stack owner-tools' },
    h('h3', {}, 'Manage'), renameForm, addForm);

  controls.append(
    h('div', { class: 'table-scroll' }, h('table', { class: 'members project-members' },
      h('caption', { class: 'visually-hidden' }, 'Members of this project'),
      h('thead', {}, h('tr', {}, ['Member', 'Email', 'Role', 'Status', 'Actions'].map(
        (c) => h('th', { scope: 'col' }, c)))),
      members)),
    ownerTools,
    h('div', { class: 'row danger-zone' }, leave, deleteButton, confirmDelete));

  function memberRow(m, online) {
    const isMe = me() && m.userId === me().id;
    const roleCell = isOwner() && m.email
      ? h('select', { 'data-testid': 'member-role', 'aria-label': `Role of ${m.username}`,
        onchange: (e) => act(controls, msg, async () => {
          try {
            apply(await app.call('project:member:add',
              { id: room.id, email: m.email, role: e.target.value }));
          } finally {
            render();
          }
        }) }, ROLES.map((r) => h('option', { value: r, selected: r === m.role }, r)))
      : h('span', { class: `badge role-${m.role}` }, m.role);
    return h('tr', { 'data-testid': 'member-row', 'data-user-id': m.userId,
      'data-username': m.username || '', 'data-role': m.role, 'data-online': String(online) },
    h('td', {}, h('span', { class: `dot ${online ? 'on' : 'off'}`, 'aria-hidden': 'true' }),
      m.username || m.userId, isMe ? h('small', { class: 'muted' }, ' (you)') : null),
    h('td', { class: 'email' }, m.email || '—'),
    h('td', {}, roleCell),
    h('td', { 'data-testid': 'member-status' }, online ? 'online' : 'offline'),
    h('td', {}, isOwner() && !isMe
      ? h('button', { type: 'button', class: 'link danger', 'data-testid': 'member-remove',
        'aria-label': `Remove ${m.username}`,
        onclick: () => act(controls, msg, async () => {
          apply(await app.call('project:member:remove', { id: room.id, userId: m.userId }));
        }) }, 'Remove')
      : null));
  }

  function render() {
    if (room.state !== 'open') return;
    const onlineIds = new Set((room.online || []).map((u) => u.userId));
    const sorted = [...(room.project.members || [])].sort((a, b) => (RANK[a.role] - RANK[b.role])
      || (a.username || '').localeCompare(b.username || ''));
    members.replaceChildren(...sorted.map((m) => memberRow(m, onlineIds.has(m.userId))));
    ownerTools.hidden = !isOwner();
    deleteButton.hidden = !isOwner();
    if (!isOwner()) confirmDelete.hidden = true;
  }

  let shownId = null;
  app.bus.on('room', (r) => {
    room = r;
    if (r.state !== 'open') return;
    if (shownId !== r.id) { // another project: its own name in the form, no stale message
      shownId = r.id;
      renameName.value = r.project.name;
      confirmDelete.hidden = true;
      msg.clear();
    }
    render();
  });

  root.append(msg.el, controls);
}

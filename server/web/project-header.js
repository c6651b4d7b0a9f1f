// The open project's header, above its views: name, the caller's role, who is online in it
// now (project:presence), and Close (back to the project list, leaving its room).
import { h } from './lib.js';

export function mountProjectHeader(app) {
  const root = document.getElementById('project-header');
  const title = h('h1', { class: 'project-name', 'data-testid': 'project-title', tabindex: '-1' });
  const role = h('span', { class: 'badge', 'data-testid': 'project-role' });
  const description = h('p', { class: 'muted project-description',
    'data-testid': 'project-description' });
  const online = h('ul', { class: 'presence', 'data-testid': 'presence-list',
    'aria-label': 'Online in this project now' });
  const close = h('a', { class: 'button', href: '#/', 'data-testid': 'project-close',
    'aria-label': 'Close the project' }, 'Close');
  root.dataset.testid = 'project-detail';
  root.append(h('div', { class: 'project-heading' },
    h('div', { class: 'project-name-row' }, title, role), description),
  h('div', { class: 'project-aside' }, online, close));

  app.bus.on('room', (room) => {
    const open = room.state === 'open' && Boolean(app.state.user);
    root.hidden = !open;
    if (!open) return;
    const p = room.project;
    root.dataset.projectId = p.id;
    title.textContent = p.name;
    role.textContent = room.role;
    role.className = `badge role-${room.role}`;
    description.textContent = p.description || '';
    description.hidden = !p.description;
    const me = app.state.user;
    online.replaceChildren(...(room.online || []).map((u) => h('li', {
      'data-testid': 'presence-user', 'data-user-id': u.userId, 'data-username': u.username,
      title: u.userId === me.id ? `${u.username} (you)` : u.username },
    h('span', { class: 'dot on', 'aria-hidden': 'true' }), u.username,
    u.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null)));
  });
  app.bus.on('session', (user) => { if (!user) root.hidden = true; });
}

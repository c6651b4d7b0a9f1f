// Admin: site figures, every account (search, role and activation, deletion with an optional
// heir for the projects), the audit log. Shown to admins only; the server refuses the
// admin:* events to everyone else anyway.
import { act, field, h, messageBox, plural } from '../lib.js';
import { bytes, number, timeEl } from '../format.js';

export default { id: 'admin', title: 'Admin', slot: 'main', mount };

const FIGURES = [
  ['totalUsers', 'Users'], ['totalGuests', 'Guests'], ['activeUsers24h', 'Active (24 h)'],
  ['onlineNow', 'Online now'], ['totalProjects', 'Projects'], ['totalConversations', 'Conversations'],
  ['totalMessages', 'AI messages'], ['totalFiles', 'Files'], ['storageBytes', 'Storage'],
];

function mount(root, app) {
  const section = root.closest('section');
  const msg = messageBox('admin-error');
  const metrics = h('dl', { class: 'figures', 'data-testid': 'admin-metrics' });
  const users = usersView(app, msg);
  const audit = auditView(app, msg);
  const refreshMetrics = () => act(metrics, msg, async () => {
    renderMetrics(metrics, await app.call('admin:metrics'));
  });

  app.bus.on('session', (user) => {
    const admin = Boolean(user && user.role === 'admin');
    if (section) section.hidden = !admin;
    if (!admin) return;
    refreshMetrics();
    users.load();
    audit.load();
  });
  if (section) section.hidden = true;
  root.append(
    h('div', { class: 'row spread' }, h('h3', {}, 'Site'),
      h('button', { type: 'button', class: 'link', 'data-testid': 'admin-metrics-refresh',
        onclick: refreshMetrics }, 'Refresh')),
    metrics, users.el, audit.el, msg.el);
}

function renderMetrics(dl, m) {
  // <div> groups inside <dl> (HTML allows it) keep each figure's label over its value.
  const figure = (label, key, text) => h('div', {}, h('dt', {}, label),
    h('dd', { 'data-metric': key }, text));
  dl.replaceChildren(
    ...FIGURES.map(([key, label]) => figure(label, key,
      key === 'storageBytes' ? bytes(m[key]) : number(m[key]))),
    figure('Instances', 'instances',
      m.instances.map((i) => `${i.id} (${plural(i.sockets, 'socket')})`).join(', ')),
    figure('Jobs', 'jobs', `${m.jobs.running} running, ${m.jobs.queued} queued`));
}

function usersView(app, msg) {
  const q = h('input', { type: 'search', placeholder: 'email or username starts with…',
    'data-testid': 'admin-user-search' });
  const role = select('admin-user-role', [['', 'any role'], ['user', 'users'], ['admin', 'admins']]);
  const active = select('admin-user-active', [['', 'any'], ['true', 'active'], ['false', 'inactive']]);
  const body = h('tbody', { 'data-testid': 'admin-users' });
  const more = h('button', { type: 'button', class: 'link', hidden: true,
    'data-testid': 'admin-users-more' }, 'More');
  let cursor = null;

  const filters = () => {
    const out = {};
    if (q.value.trim()) out.q = q.value.trim();
    if (role.value) out.role = role.value;
    if (active.value) out.active = active.value === 'true';
    return out;
  };
  const load = async (append = false) => {
    const page = await app.call('admin:users', { ...filters(), ...(append && cursor ? { cursor } : {}) });
    if (!append) body.replaceChildren();
    body.append(...page.items.map((u) => userRow(app, msg, u, () => load())));
    cursor = page.nextCursor;
    more.hidden = !cursor;
  };
  const search = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(search, msg, () => load());
  } }, field('Search', q), field('Role', role), field('Status', active),
  h('button', { type: 'submit', 'data-testid': 'admin-user-go' }, 'Search'));
  more.addEventListener('click', () => act(more, msg, () => load(true)));
  const el = h('div', { class: 'stack' }, h('h3', {}, 'Users'), search,
    h('div', { class: 'scroll-x' }, h('table', { class: 'members admin-users' },
      h('thead', {}, h('tr', {}, ['User', 'Email', 'Role', 'Active', 'Projects', 'Last seen',
        'Actions'].map((t) => h('th', { scope: 'col' }, t)))), body)), more);
  return { el, load: () => act(search, msg, () => load()) };
}

function userRow(app, msg, u, reload) {
  const me = app.state.user && app.state.user.id === u.id;
  const role = select(`admin-role-${u.id}`, [['user', 'user'], ['admin', 'admin']], u.role);
  role.setAttribute('aria-label', `Role of ${u.username}`);
  const active = h('input', { type: 'checkbox', checked: u.active, 'data-testid': `admin-active-${u.id}`,
    'aria-label': `${u.username} is active` });
  const row = h('tr', { 'data-user-id': u.id, class: u.active ? '' : 'inactive' });
  const update = (changes) => act(row, msg, async () => {
    const out = await app.call('admin:user:update', { id: u.id, ...changes });
    row.replaceWith(userRow(app, msg, { ...u, ...out }, reload));
    if (me && out.role !== 'admin') app.resume();
  }).then((done) => { if (done === undefined) { role.value = u.role; active.checked = u.active; } });
  role.addEventListener('change', () => update({ role: role.value }));
  active.addEventListener('change', () => update({ active: active.checked }));
  const remove = h('button', { type: 'button', class: 'link danger', 'data-testid': `admin-delete-${u.id}`,
    onclick: () => confirmDelete(app, msg, row, u, reload) }, 'Delete');
  row.append(
    h('td', {}, u.username, u.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null),
    h('td', {}, u.email || '—'), h('td', {}, role), h('td', {}, active),
    h('td', {}, number(u.projects)), h('td', {}, u.lastSeenAt ? timeEl(u.lastSeenAt) : 'never'),
    h('td', {}, remove));
  return row;
}

function confirmDelete(app, msg, row, u, reload) {
  const heir = h('input', { type: 'text', placeholder: 'user id (optional)',
    'data-testid': 'admin-delete-heir' });
  const box = h('tr', { class: 'confirm', 'data-testid': 'admin-delete-confirm' });
  const cell = h('td', { colspan: 7 });
  const go = h('button', { type: 'button', class: 'danger', 'data-testid': 'admin-delete-go',
    onclick: () => act(cell, msg, async () => {
      const out = await app.call('admin:user:delete',
        { id: u.id, ...(heir.value.trim() ? { transferTo: heir.value.trim() } : {}) });
      msg.info(`Deleted ${u.username}: ${plural(out.projectsDeleted, 'project')} deleted, `
        + `${out.projectsTransferred} transferred.`);
      await reload();
    }) }, `Delete ${u.username}`);
  cell.append(h('div', { class: 'row' },
    h('p', {}, `Delete ${u.username} with every project they own alone? This cannot be undone.`),
    field('Give their projects to', heir), go,
    h('button', { type: 'button', onclick: () => box.remove() }, 'Cancel')));
  box.append(cell);
  row.after(box);
}

function auditView(app, msg) {
  const kind = h('input', { type: 'text', placeholder: 'kind, e.g. login_failed',
    'data-testid': 'admin-audit-kind' });
  const list = h('ol', { class: 'activity', 'data-testid': 'admin-audit' });
  const more = h('button', { type: 'button', class: 'link', hidden: true }, 'More');
  let cursor = null;
  const load = async (append = false) => {
    const page = await app.call('admin:audit', {
      ...(kind.value.trim() ? { kind: kind.value.trim() } : {}),
      ...(append && cursor ? { cursor } : {}) });
    if (!append) list.replaceChildren();
    list.append(...page.items.map((e) => h('li', { 'data-kind': e.kind },
      timeEl(e.at), ' ',
      h('strong', {}, e.kind), ` ${e.targetId ? `→ ${e.targetId}` : ''}`,
      e.ip ? h('span', { class: 'muted' }, ` from ${e.ip}`) : null)));
    cursor = page.nextCursor;
    more.hidden = !cursor;
  };
  const form = h('form', { class: 'row', onsubmit: (e) => {
    e.preventDefault();
    act(form, msg, () => load());
  } }, field('Kind', kind), h('button', { type: 'submit' }, 'Filter'));
  more.addEventListener('click', () => act(more, msg, () => load(true)));
  return { el: h('div', { class: 'stack' }, h('h3', {}, 'Audit log'), form, list, more),
    load: () => act(form, msg, () => load()) };
}

function select(testid, options, value = '') {
  const el = h('select', { 'data-testid': testid },
    options.map(([v, label]) => h('option', { value: v }, label)));
  el.value = value;
  return el;
}

// Projects (the home view): the caller's projects, live through project:updated /
// project:deleted pushed to their user room, and a form to create one. A project opens by
// its link (#/p/<id>/tables): the route, not this panel, says which project is open
// (project-room.js enters its room).
import { act, field, h, messageBox, plural } from '../lib.js';
import { timeEl } from '../format.js';
import { href } from '../router.js';

export default { id: 'projects', title: 'Your projects', slot: 'main', mount };

const COLORS = ['', 'blue', 'green', 'orange', 'purple', 'red', 'teal'];

function mount(root, app) {
  const msg = messageBox('project-error');
  const projects = new Map(); // id → project view, plus .role (the caller's)
  let me = null;
  let loading = false;
  let replay = null; // pushes applied while project:list is in flight, re-applied after it

  const roleOf = (project) => {
    const mine = me && (project.members || []).find((m) => m.userId === me.id);
    return mine ? mine.role : null;
  };

  function upsert(project) {
    const role = roleOf(project);
    if (!role) {
      removed(project.id, 'removed');
      return;
    }
    projects.set(project.id, { ...project, role });
  }

  function removed(id, reason) {
    const known = projects.get(id);
    projects.delete(id);
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

  async function load() {
    replay = [];
    loading = true;
    render();
    try {
      const data = await app.call('project:list');
      projects.clear();
      for (const p of Array.isArray(data) ? data : data.items) upsert(p);
      for (const op of replay) op();
    } catch (err) {
      msg.error(err);
    } finally {
      replay = null;
      loading = false;
      render();
    }
  }

  // -- the list ---------------------------------------------------------------------------

  const list = h('ul', { class: 'project-list', 'data-testid': 'project-list',
    'aria-label': 'Your projects' });
  const empty = h('p', { class: 'empty-state muted', 'data-testid': 'project-empty' },
    'No projects yet: create one, or ask an owner to add you to theirs.');
  const busy = h('p', { class: 'muted loading', role: 'status', 'data-testid': 'projects-loading' },
    'Loading your projects…');

  function render() {
    const items = [...projects.values()].sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(...items.map((p) => h('li', { class: 'project-card',
      'data-testid': 'project-item', 'data-project-id': p.id, 'data-project-name': p.name,
      'data-role': p.role },
    h('a', { class: 'project-open', 'data-testid': 'project-open',
      href: href({ name: 'project', projectId: p.id }) },
    h('span', { class: `swatch${p.color ? ` color-${p.color}` : ''}`, 'aria-hidden': 'true' }),
    h('span', { class: 'name' }, p.name)),
    h('span', { class: `badge role-${p.role}` }, p.role),
    p.description ? h('p', { class: 'muted description' }, p.description) : null,
    h('p', { class: 'muted small' }, plural((p.members || []).length, 'member'), ' · updated ',
      timeEl(p.updatedAt || p.createdAt)))));
    busy.hidden = !loading || items.length > 0;
    empty.hidden = loading || items.length > 0;
  }

  // -- create -----------------------------------------------------------------------------

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
  const createForm = h('form', { class: 'project-create card', onsubmit: (e) => {
    e.preventDefault();
    act(createControls, msg, async () => {
      const payload = { name: createName.value.trim() };
      if (createDescription.value.trim()) payload.description = createDescription.value.trim();
      if (createColor.value) payload.color = createColor.value;
      const created = await app.call('project:create', payload);
      upsert(created);
      createForm.reset();
      render();
      msg.info(`Created “${payload.name}”.`);
    });
  } }, createControls);

  root.append(h('div', { class: 'projects-layout' },
    h('div', { class: 'projects-main' }, msg.el, busy, empty, list), createForm));

  app.on('project:updated', ({ project }) => apply(() => upsert(project)));
  app.on('project:deleted', (d) => apply(() => removed(d.projectId || d.id, d.reason)));

  // The list is pushed to our user room: reload it when that room could not be replayed.
  app.bus.on('resync', ({ room }) => {
    if (me && room === `user:${me.id}`) load();
  });

  app.bus.on('session', async (user) => {
    const previous = me;
    me = user;
    if (!user || (previous && previous.id !== user.id)) {
      projects.clear();
      msg.clear();
    }
    if (!user) {
      render();
      return;
    }
    await load();
  });
  render();
}

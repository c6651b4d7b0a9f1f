// The page around the panels: mounts each panel once, in the view panels/index.js gives it,
// and shows the one view the route names (router.js) — the sign-in card while nobody is
// signed in, a project's view only once its room is open (project-room.js). Panels stay
// mounted while hidden, so they keep their state and their live pushes between views.
import places from './panels/index.js';
import { PROJECT_VIEWS, href } from './router.js';
import { describeError } from './error-messages.js';
import { h } from './lib.js';

const SITE = 'Collab console';
const PLACE_TITLES = { home: 'Projects', account: 'Account', admin: 'Admin', signin: 'Sign in' };

export function mountShell(app) {
  const area = document.getElementById('view');
  const drawer = document.getElementById('drawer');
  const nav = document.getElementById('project-nav');
  const crumbs = document.getElementById('crumbs');
  const starting = document.getElementById('starting');
  const views = []; // {names: Set, el, heading}
  const navItems = places.filter((p) => p.nav && PROJECT_VIEWS.includes(p.views[0]))
    .map((p) => ({ view: p.views[0], label: p.nav }));

  for (const { panel, views: names } of places) {
    const titleId = `panel-${panel.id}-title`;
    const heading = h('h2', { id: titleId, tabindex: '-1' }, panel.title);
    const body = h('div', { class: 'panel-body' });
    const section = h('section', { class: `panel panel-${panel.id}`, 'data-panel': panel.id,
      'aria-labelledby': titleId }, heading, body);
    const el = h('div', { class: 'view', 'data-view': names.join(' '), hidden: true }, section);
    (names.includes('drawer') ? drawer : area).append(el);
    if (!names.includes('drawer')) views.push({ names: new Set(names), el, heading });
    try {
      panel.mount(body, app);
    } catch (err) {
      console.error(`panel ${panel.id} failed to mount`, err);
      body.replaceChildren(h('p', { class: 'msg error', role: 'alert' },
        `This part of the console failed to start: ${err.message}`));
    }
    if (names.includes('drawer')) el.hidden = false;
  }

  // -- the project's state while its room is not open ---------------------------------------

  const roomStatus = h('div', { class: 'room-status', hidden: true });
  area.prepend(roomStatus);

  function showRoomStatus(room) {
    if (room.state === 'opening' || room.state === 'closed') {
      roomStatus.replaceChildren(h('p', { class: 'muted loading', role: 'status',
        'data-testid': 'project-opening' }, 'Opening the project…'));
    } else if (room.state === 'failed') {
      const { summary, detail, code } = describeError(room.error);
      const gone = code === 'not_found' || code === 'forbidden';
      roomStatus.replaceChildren(h('div', { class: 'panel empty-state', role: 'alert',
        'data-testid': 'project-unavailable', 'data-code': code },
      h('h2', {}, gone ? 'This project is not available' : 'The project could not be opened'),
      h('p', {}, gone ? 'It was deleted, or you are not one of its members.' : summary),
      detail && !gone ? h('p', { class: 'muted' }, detail) : null,
      h('div', { class: 'row' },
        h('a', { class: 'button primary', href: '#/' }, 'Your projects'),
        gone ? null : h('button', { type: 'button', onclick: () => app.room.retry() },
          'Try again'))));
    }
  }

  // -- navigation -----------------------------------------------------------------------------

  function renderNav(route) {
    nav.replaceChildren(h('ul', {}, navItems.map(({ view, label }) => h('li', {},
      h('a', { href: href({ name: 'project', projectId: route.projectId, view }),
        'data-testid': `nav-${view}`, 'data-view': view,
        'aria-current': view === route.view ? 'page' : null }, label)))));
    // On a phone the views are a strip that scrolls sideways: keep the current one in sight.
    const current = nav.querySelector('[aria-current="page"]');
    if (current && nav.scrollWidth > nav.clientWidth) {
      const left = current.getBoundingClientRect().left - nav.getBoundingClientRect().left;
      nav.scrollLeft += left - (nav.clientWidth - current.offsetWidth) / 2;
    }
  }

  function renderCrumbs(route, room) {
    const parts = [];
    if (route.name === 'project' && app.state.user) {
      parts.push(h('a', { href: '#/' }, 'Projects'));
      const name = room.state === 'open' ? room.project.name : '…';
      parts.push(h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'),
        h('span', { 'data-testid': 'crumb-project', class: 'crumb-project' }, name));
    }
    crumbs.replaceChildren(...parts);
  }

  // -- showing the route's view -----------------------------------------------------------------

  let shown = null; // the view name on screen
  let told = false; // a 'session' has arrived: we know whether someone is signed in

  function viewName(route, room) {
    const user = app.state.user;
    if (!told) return 'starting';
    if (!user) return 'signin';
    if (route.name === 'project') return room.state === 'open' ? route.view : 'room-status';
    if (route.name === 'admin' && user.role !== 'admin') return 'home';
    return route.name;
  }

  function titleOf(name, route, room) {
    if (PROJECT_VIEWS.includes(name)) {
      const label = (navItems.find((n) => n.view === name) || {}).label || name;
      return `${label} · ${room.project.name} · ${SITE}`;
    }
    return PLACE_TITLES[name] ? `${PLACE_TITLES[name]} · ${SITE}` : SITE;
  }

  function render({ focus = false } = {}) {
    const route = app.router.route;
    const room = app.room.state;
    const name = viewName(route, room);
    const inProject = route.name === 'project' && Boolean(app.state.user) && told;
    starting.hidden = name !== 'starting';
    roomStatus.hidden = name !== 'room-status';
    if (name === 'room-status') showRoomStatus(room);
    let visible = null;
    for (const v of views) {
      v.el.hidden = !v.names.has(name);
      if (!v.el.hidden) visible = v;
    }
    nav.hidden = !inProject || room.state !== 'open';
    if (!nav.hidden) renderNav(route);
    document.body.dataset.inProject = String(!nav.hidden);
    renderCrumbs(route, room);
    document.body.dataset.view = name;
    document.title = titleOf(name, route, room);
    if (focus && visible && name !== shown) visible.heading.focus({ preventScroll: false });
    shown = name;
  }

  // Focus follows a navigation the reader made (not the first paint, not a push).
  app.bus.on('route', () => render({ focus: told }));
  app.bus.on('room', () => render());
  app.bus.on('session', () => {
    told = true;
    render();
  });

  document.getElementById('skip').addEventListener('click', () => {
    const heading = views.find((v) => !v.el.hidden);
    (heading ? heading.heading : area).focus();
  });
  render();
}

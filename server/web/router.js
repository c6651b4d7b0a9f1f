// Where the reader is, in the URL: hash routes, so the server serves one page for all of them
// and a reload, a bookmark or back/forward land in the same place.
//
//   #/                                  home: your projects
//   #/p/<projectId>/<view>[/<item>]     a project's view (tables, captures, chat, files,
//                                       imports, members); item: what is open in it (a
//                                       conversation, a capture...), the view's own business
//   #/admin                             the site's administration (admins)
//   #/account                           your account
//
// The router owns no page: it parses the hash, tells the bus ('route') and offers go(), which
// adds a history entry, and replace(), which does not (for corrections and redirects).

export const PROJECT_VIEWS = ['tables', 'captures', 'chat', 'files', 'imports', 'members'];
export const DEFAULT_VIEW = 'tables';
const PLACES = new Set(['admin', 'account']);

/** {name: 'home' | 'project' | 'admin' | 'account', projectId?, view?, item?} for a hash. */
export function parse(hash) {
  const parts = String(hash || '').replace(/^#\/?/, '').split('/').filter(Boolean)
    .map((p) => {
      try { return decodeURIComponent(p); } catch { return p; }
    });
  if (parts[0] === 'p' && parts[1]) {
    const view = PROJECT_VIEWS.includes(parts[2]) ? parts[2] : DEFAULT_VIEW;
    const item = PROJECT_VIEWS.includes(parts[2]) && parts[3] ? parts.slice(3).join('/') : null;
    return { name: 'project', projectId: parts[1], view, item };
  }
  if (PLACES.has(parts[0])) return { name: parts[0] };
  return { name: 'home' };
}

/** The hash for a route (the inverse of parse). */
export function href(route) {
  if (!route || route.name === 'home') return '#/';
  if (route.name !== 'project') return `#/${route.name}`;
  const parts = ['p', route.projectId, route.view || DEFAULT_VIEW];
  if (route.item) parts.push(route.item);
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

const same = (a, b) => href(a) === href(b);

export class Router {
  /** bus: emits 'route' (the new route) after every change, including back/forward. */
  constructor(bus, win = window) {
    this.bus = bus;
    this.win = win;
    this.route = parse(win.location.hash);
    win.addEventListener('hashchange', () => this.#changed());
  }

  /** Correct the address bar when it does not say what parse() understood (e.g. "#/p/x"
   *  → "#/p/x/tables"), then announce the first route. */
  start() {
    if (href(this.route) !== (this.win.location.hash || '#/')) this.#replaceHash(this.route);
    this.bus.emit('route', this.route);
  }

  /** Navigate (a new history entry), unless already there. */
  go(route) {
    if (same(route, this.route)) return;
    this.win.location.hash = href(route); // hashchange → #changed
  }

  /** Change the address without a history entry (a redirect, a correction). */
  replace(route) {
    if (same(route, this.route)) return;
    this.#replaceHash(route);
    this.#changed();
  }

  /** Within the current project view: open an item (or none) — a history entry, so Back
   *  returns to the previous item. */
  setItem(item, { replace = false } = {}) {
    if (this.route.name !== 'project') return;
    const next = { ...this.route, item: item || null };
    if (replace) this.replace(next); else this.go(next);
  }

  #replaceHash(route) {
    const url = new URL(this.win.location.href);
    url.hash = href(route);
    this.win.history.replaceState(this.win.history.state, '', url);
  }

  #changed() {
    const route = parse(this.win.location.hash);
    // The address says what was understood ("#/p/x" → "#/p/x/tables"), without an entry.
    if (href(route) !== (this.win.location.hash || '#/')) this.#replaceHash(route);
    if (same(route, this.route)) return;
    this.route = route;
    this.bus.emit('route', route);
  }
}

// The console's core: the client library (client.js: one socket, the session, calls, ordered
// pushes, catching up after a reconnect) wired to the page — tokens in localStorage (rotated
// under a Web Lock, so two tabs never spend one refresh token), a tiny event bus, the
// connection pill, the route (router.js) and the open project's room (project-room.js). The
// page around the panels is shell.js; where each panel is shown, panels/index.js.
//
// Panel contract: a module default-exports {id, title, slot, mount(root, app)} (slot is
// historical: panels/index.js places the panel). mount() runs once, at start, and gets an
// empty element inside the panel's <section> and this App:
//   app.call(event, payload?)   → Promise of the ack's data; rejects with AckError {code, message}
//   app.on(push, fn)            → subscribe to a server push (in order, never twice); returns an
//                                  unsubscribe function
//   app.bus.on(name, fn)        → 'session' (user | null: the first answer to "who is this", then
//                                  every sign-in, sign-out or change of user; load data here),
//                                  'user' (the same user with new details, e.g. a guest's
//                                  remaining quota after auth:quota),
//                                  'resync' ({room, error?}: the pushes of a room could not all be
//                                  replayed after a reconnect — reload what you show of it; with
//                                  error, the room is no longer readable or could not be re-joined),
//                                  'project' (the open project {id, name, role} | null: the
//                                  route's project once its room is entered),
//                                  'room' (the open project in full: project-room.js),
//                                  'route' (router.js: {name, projectId, view, item}),
//                                  'connection' ('connecting' | 'online' | 'offline'; 'online'
//                                  once rooms are re-joined and caught up after a reconnect),
//                                  'call' ({event, ok, code, ms}), 'push' ({event, data})
//   app.state                   → {connection, user, project}
//   app.router                  → .route, .go(route), .replace(route), .setItem(item): the URL
//   app.setProject(p), app.signIn(event, payload), app.signOut(), app.notify(text, level)
// Rooms joined with project:join / conversation:join are re-joined by the client library after
// a reconnect and the pushes missed meanwhile replayed: panels need not do it themselves.
import { connect } from './client.js';
import { Bus, errorText, h } from './lib.js';
import { Router } from './router.js';
import { ProjectRoom } from './project-room.js';
import { mountShell } from './shell.js';
import { mountProjectHeader } from './project-header.js';
import { mountAccountBar } from './account-bar.js';
import { mountDrawer } from './drawer.js';

const TOKENS_KEY = 'collab.tokens';

const tokenStore = {
  load() {
    try {
      const t = JSON.parse(localStorage.getItem(TOKENS_KEY));
      return t && typeof t.refreshToken === 'string' ? t : null;
    } catch {
      return null;
    }
  },
  save({ accessToken, refreshToken, expiresAt }) {
    localStorage.setItem(TOKENS_KEY, JSON.stringify({ accessToken, refreshToken, expiresAt }));
  },
  clear() { localStorage.removeItem(TOKENS_KEY); },
  // Other tabs of this console rotate the same refresh token: one at a time.
  lock(fn) { return navigator.locks ? navigator.locks.request(TOKENS_KEY, fn) : fn(); },
};

export class App {
  constructor() {
    this.bus = new Bus();
    this.state = { connection: 'connecting', user: null, project: null };
    const client = connect({ io: window.io, storage: tokenStore, transports: ['websocket'] });
    this.client = client;
    client.onConnection((status) => this.setConnection(status));
    client.onSession((user, info) => {
      this.setSession(user);
      if (info && info.error) this.notify(`Signed out: ${errorText(info.error)}`, 'error');
    });
    client.onResync((room, error) => this.bus.emit('resync', { room, error }));
    client.onCall((call) => this.bus.emit('call', call));
    client.onPush((push) => this.bus.emit('push', push));
    client.onError((err, context) => this.notify(`${context === 'refresh'
      ? 'Could not renew the session' : context === 'sign-in' ? 'Could not sign in'
        : 'Could not resume after reconnecting'}: ${errorText(err)}`, 'error'));
    window.addEventListener('storage', (e) => { if (e.key === TOKENS_KEY) this.otherTab(); });
    // A guest's quota changes as they spend it: the user object from sign-in is updated in
    // place (client.js tells 'session' only when the user changes, not their counters).
    this.on('auth:quota', (d) => {
      const user = this.state.user;
      if (!user || user.id !== d.userId) return;
      for (const key of ['remainingImports', 'remainingMessages']) {
        if (typeof d[key] === 'number') user[key] = d[key];
      }
      this.bus.emit('user', user);
    });
    this.router = new Router(this.bus);
    this.room = new ProjectRoom(this);
  }

  /** The socket.io socket underneath (tests cut its transport). */
  get socket() { return this.client.socket; }

  /** {accessToken, refreshToken, expiresAt} | null, for REST calls (lib.authorizedFetch). */
  get tokens() { return this.client.tokens; }

  // -- calls ------------------------------------------------------------------------------

  /** Emit an event and resolve with the ack's data; an error ack rejects with AckError. */
  call(event, payload) { return this.client.call(event, payload); }

  on(event, fn) { return this.client.on(event, fn); }

  // -- session ----------------------------------------------------------------------------

  /** auth:login | auth:register | auth:guest | auth:upgrade; the client keeps the tokens and
   *  the 'session' event follows. */
  async signIn(event, payload) {
    const data = await this.call(event, payload);
    return data.user;
  }

  signOut() { return this.client.signOut(); }

  /** Rotate the refresh token (single-flight, across tabs too). */
  refresh() { return this.client.refresh(); }

  /** Ask again who is signed in (e.g. after an admin changed their own role). */
  resume() {
    return this.call('auth:me').catch((err) => this.notify(
      `Could not reload the session: ${errorText(err)}`, 'error'));
  }

  /** Another tab signed in or out (token rotation alone changes nothing here). */
  otherTab() {
    const stored = tokenStore.load();
    if (Boolean(stored) === Boolean(this.state.user)) return;
    this.client.setTokens(stored);
  }

  // -- shared state -----------------------------------------------------------------------

  setSession(user) {
    this.state.user = user ? { ...user } : null; // our copy: auth:quota updates it
    if (!user) this.setProject(null);
    document.body.dataset.session = user ? 'signed-in' : 'signed-out';
    this.bus.emit('session', this.state.user);
  }

  setProject(project) {
    const before = this.state.project;
    if (!project && !before) return;
    this.state.project = project;
    this.bus.emit('project', project);
  }

  setConnection(status) {
    this.state.connection = status;
    document.body.dataset.connection = status;
    const pill = document.getElementById('conn');
    if (pill) {
      pill.dataset.state = status;
      pill.textContent = status;
    }
    this.bus.emit('connection', status);
  }

  notify(text, level = 'info') {
    const box = document.getElementById('notice');
    if (!box) return;
    box.className = `notice ${level}`;
    box.replaceChildren(h('span', {}, text),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss',
        onclick: () => { box.className = 'notice'; box.replaceChildren(); } }, '×'));
  }
}

if (typeof window.io !== 'function') {
  document.body.dataset.session = 'unavailable';
  document.getElementById('view').replaceChildren(h('p', { class: 'msg error', role: 'alert' },
    'The socket.io client (/static/vendor/socket.io.min.js) did not load.'));
} else {
  const app = new App();
  window.collab = app; // for the devtools console: collab.call('ping')
  mountShell(app);
  mountProjectHeader(app);
  mountAccountBar(app);
  mountDrawer();
  app.router.start();
}

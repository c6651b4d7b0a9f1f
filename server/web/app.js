// The console's core: one socket.io connection, the session (tokens in localStorage, refreshed
// on `token_expired` and on the `auth:expired` push), a tiny event bus, and call() — the ack
// helper every panel goes through. Panels are listed, in order, in panels/index.js.
//
// Panel contract: a module default-exports {id, title, slot: 'aside' | 'main', mount(root, app)}.
// mount() gets an empty element inside the panel's <section> and this App:
//   app.call(event, payload?)   → Promise of the ack's data; rejects with AckError {code, message}
//   app.on(push, fn)            → subscribe to a server push; returns an unsubscribe function
//   app.bus.on(name, fn)        → 'session' (user | null: after every (re)connect, sign-in or
//                                  sign-out; re-load data and re-join rooms here),
//                                  'project' (the open project {id, name, role} | null),
//                                  'connection' ('connecting' | 'online' | 'offline'),
//                                  'call' ({event, ok, code, ms}), 'push' ({event, data})
//   app.state                   → {connection, user, project}
//   app.setProject(p), app.signIn(event, payload), app.signOut(), app.notify(text, level)
import panels from './panels/index.js';
import { AckError, Bus, errorText, h } from './lib.js';

const TOKENS_KEY = 'collab.tokens';
const CALL_TIMEOUT_MS = 15000;

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
};

export class App {
  constructor() {
    this.bus = new Bus();
    this.state = { connection: 'connecting', user: null, project: null };
    this.tokens = tokenStore.load();
    this.sendToken = true; // offer the stored access token at the next handshake
    this.refreshing = null; // the one refresh in flight (a second one would replay the token)
    this.socket = io({
      transports: ['websocket'],
      autoConnect: false,
      reconnectionDelay: 500, // first retry soon; backs off to reconnectionDelayMax (5 s)
      // Read at every (re)connect, so a reconnect always carries the freshest token.
      auth: (cb) => cb(this.sendToken && this.tokens ? { token: this.tokens.accessToken } : {}),
    });
    this.socket.on('connect', () => { this.setConnection('online'); this.resume(); });
    this.socket.on('disconnect', (reason) => {
      this.setConnection('offline');
      if (reason === 'io server disconnect') this.socket.connect();
    });
    this.socket.on('connect_error', (err) => this.connectFailed(err));
    this.socket.io.on('reconnect_attempt', () => this.setConnection('connecting'));
    this.socket.on('auth:expired', () => {
      if (this.tokens) this.refresh().catch((err) => this.refreshFailed(err));
    });
    // This session was ended elsewhere (sign-out, password change, an admin): the server
    // disconnects next; reconnect anonymously rather than with the dead token.
    this.socket.on('auth:revoked', ({ reason } = {}) => this.lostSession(
      { code: 'unauthorized', message: `your session was ended (${reason || 'revoked'})` }));
    this.socket.onAny((event, data) => this.bus.emit('push', { event, data }));
    window.addEventListener('storage', (e) => { if (e.key === TOKENS_KEY) this.otherTab(); });
  }

  start() { this.socket.connect(); }

  // -- calls ------------------------------------------------------------------------------

  /** Emit an event and resolve with the ack's data; an error ack rejects with AckError.
   *  An expired access token is refreshed once and the call retried. */
  async call(event, payload) {
    const started = performance.now();
    let env = await this.emit(event, payload);
    if (!env.ok && env.error && env.error.code === 'token_expired' && this.tokens) {
      try {
        await this.refresh();
      } catch (err) {
        this.refreshFailed(err);
        throw err;
      }
      env = await this.emit(event, payload);
    }
    const ms = Math.round(performance.now() - started);
    this.bus.emit('call', { event, ok: env.ok, code: env.ok ? null : env.error.code, ms });
    if (env.ok) return env.data;
    throw new AckError(env.error, event);
  }

  /** The raw envelope (never rejects on an error ack). */
  async emit(event, payload) {
    const args = payload === undefined ? [] : [payload];
    let env;
    try {
      env = await this.socket.timeout(CALL_TIMEOUT_MS).emitWithAck(event, ...args);
    } catch {
      env = { ok: false, error: { code: 'timeout',
        message: `no answer to ${event} within ${CALL_TIMEOUT_MS / 1000} s` } };
    }
    if (!env || typeof env !== 'object' || typeof env.ok !== 'boolean') {
      env = { ok: false, error: { code: 'internal', message: `malformed ack for ${event}` } };
    }
    if (!env.ok && !env.error) env.error = { code: 'internal', message: 'error ack without error' };
    return env;
  }

  on(event, fn) {
    this.socket.on(event, fn);
    return () => this.socket.off(event, fn);
  }

  // -- session ----------------------------------------------------------------------------

  async signIn(event, payload) {
    const data = await this.call(event, payload);
    this.keepTokens(data.tokens);
    this.setSession(data.user);
    return data.user;
  }

  async signOut() {
    const refreshToken = this.tokens && this.tokens.refreshToken;
    let signedOutOnServer = false;
    try {
      await this.call('auth:logout', refreshToken ? { refreshToken } : {});
      signedOutOnServer = true;
    } finally {
      this.dropTokens();
      this.setSession(null);
      if (!signedOutOnServer) this.reconnect(); // make sure the socket is anonymous again
    }
  }

  /** Rotate the refresh token (single-flight; across tabs too, via a Web Lock). */
  refresh() {
    if (!this.refreshing) {
      this.refreshing = this.refreshOnce().finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  async refreshOnce() {
    const run = async () => {
      // Another tab may have rotated it already: the stored token is the live one.
      const current = tokenStore.load() || this.tokens;
      if (!current) throw new AckError({ code: 'unauthorized', message: 'not signed in' });
      const env = await this.emit('auth:refresh', { refreshToken: current.refreshToken });
      if (!env.ok) throw new AckError(env.error, 'auth:refresh');
      this.keepTokens(env.data.tokens);
      this.state.user = env.data.user;
      return env.data.user;
    };
    return navigator.locks ? navigator.locks.request(TOKENS_KEY, run) : run();
  }

  /** After every (re)connect: who is this socket? */
  async resume() {
    try {
      if (this.tokens && this.sendToken) {
        this.setSession(await this.call('auth:me'));
      } else if (this.tokens) {
        this.setSession(await this.refresh());
      } else {
        this.setSession(null);
      }
    } catch (err) {
      this.refreshFailed(err);
    }
  }

  /** A refused refresh (or session check) ends the session; a timeout only says so. */
  refreshFailed(err) {
    if (['unauthorized', 'token_expired', 'forbidden'].includes(err.code)) this.lostSession(err);
    else this.notify(`Could not renew the session: ${errorText(err)}`, 'error');
  }

  connectFailed(err) {
    const code = err && err.data && err.data.code;
    if (code === 'token_expired' || code === 'unauthorized' || code === 'forbidden') {
      // The server refused the stored access token: connect anonymously, then refresh.
      this.sendToken = false;
      this.socket.connect();
      return;
    }
    this.setConnection(this.socket.active ? 'connecting' : 'offline');
  }

  lostSession(err) {
    const wasSignedIn = Boolean(this.tokens || this.state.user);
    this.dropTokens();
    this.setSession(null);
    if (wasSignedIn) this.notify(`Signed out: ${errorText(err)}`, 'error');
  }

  /** Another tab signed in or out (token rotation alone changes nothing here). */
  otherTab() {
    const stored = tokenStore.load();
    if (Boolean(stored) === Boolean(this.state.user)) return;
    this.tokens = stored;
    this.sendToken = true;
    if (!stored) this.setSession(null);
    this.reconnect();
  }

  reconnect() {
    this.socket.disconnect();
    this.socket.connect();
  }

  keepTokens(tokens) {
    this.tokens = tokens;
    this.sendToken = true;
    tokenStore.save(tokens);
  }

  dropTokens() {
    this.tokens = null;
    tokenStore.clear();
  }

  // -- shared state -----------------------------------------------------------------------

  setSession(user) {
    this.state.user = user;
    if (!user) this.setProject(null);
    document.body.dataset.session = user ? 'signed-in' : 'signed-out';
    this.bus.emit('session', user);
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

function mountPanels(app) {
  for (const panel of panels) {
    const titleId = `panel-${panel.id}-title`;
    const body = h('div', { class: 'panel-body' });
    const section = h('section', { class: `panel panel-${panel.id}`, 'data-panel': panel.id,
      'aria-labelledby': titleId }, h('h2', { id: titleId }, panel.title), body);
    const slot = document.getElementById(`slot-${panel.slot || 'main'}`)
      || document.getElementById('slot-main');
    slot.append(section);
    try {
      panel.mount(body, app);
    } catch (err) {
      console.error(`panel ${panel.id} failed to mount`, err);
      body.replaceChildren(h('p', { class: 'msg error', role: 'alert' },
        `This panel failed to start: ${err.message}`));
    }
  }
}

if (typeof window.io !== 'function') {
  document.body.dataset.session = 'unavailable';
  document.getElementById('slot-main').append(h('p', { class: 'msg error', role: 'alert' },
    'The socket.io client (/static/vendor/socket.io.min.js) did not load.'));
} else {
  const app = new App();
  window.collab = app; // for the devtools console: collab.call('ping')
  mountPanels(app);
  app.start();
}

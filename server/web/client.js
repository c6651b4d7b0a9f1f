// The client side of docs/DELIVERY.md: one Socket.IO connection that signs itself in, calls
// events and gets their acks, and never hands over a push twice or out of order. An ES module
// with no build step: in a browser `io` defaults to window.io (the vendored socket.io-client
// UMD); in Node pass `io` from socket.io-client.
//
//   const client = connect({url, credentials: {login, password}, io});
//   const data = await client.call('project:join', {id});   // rejects with CallError
//   client.on('row:updated', (push) => ...);                  // in seq order, once each
//   client.onResync((room, error) => ...);                    // reload what you show of room
//
// Why it is more than socket.emit: python-socketio delivers a push at most once and keeps no
// state across a reconnect. So the client numbers what it has seen per room (room/seq/epoch
// on every sequenced push), holds pushes that arrive past a gap until `sync` fills it, and
// after every reconnect signs in again, re-joins its rooms and syncs them before it lets the
// caller's calls through. A call whose ack was lost is sent again with the same `requestId`:
// the server answers a repeat with the first call's ack instead of applying it twice.

const CALL_TIMEOUT_MS = 15000;
const SYNC_MAX_ROOMS = 100; // the server's bound per sync call
const INPROGRESS_RETRY_MS = 100; // when a conflict{inProgress} names no retryAfterMs
// A refused session: refreshing or retrying cannot help, the user must sign in again.
const SESSION_CODES = new Set(['unauthorized', 'token_expired', 'forbidden']);
// A room the caller may no longer read: forgotten, never re-joined.
const GONE_CODES = new Set(['forbidden', 'not_found']);
const SIGN_IN_EVENTS = new Set(['auth:login', 'auth:register', 'auth:guest', 'auth:upgrade',
  'auth:refresh']);
const USER_EVENTS = new Set(['auth:me', 'auth:update']); // their ack's data is the user
const JOINS = { 'project:join': 'project', 'conversation:join': 'conversation' };
const LEAVES = { 'project:leave': 'project', 'conversation:leave': 'conversation' };
const SKIP = Symbol('acked'); // a held seq our own call caused: advances, delivers nothing

/** What call() rejects with: the ack's error (SPEC §2: code, message, details) and the event.
 *  Codes made on this side: `timeout` (no ack within the call's timeout), `disconnected`
 *  (the connection dropped before the ack of a call that cannot be sent twice: `auth:*`,
 *  `sync`), `closed` (client.close()). */
export class CallError extends Error {
  constructor({ code = 'internal', message = '', details } = {}, event = '') {
    super(message || code.replace(/_/g, ' '));
    this.name = 'CallError';
    this.code = code;
    this.details = details;
    this.event = event;
  }
}

/** Events that carry a requestId: every one but sign-in (acks with tokens are not kept for
 *  replay) and sync (itself a catch-up). The server ignores it on events that change nothing. */
export function takesRequestId(event) {
  return !event.startsWith('auth:') && event !== 'sync';
}

function requestId() {
  // getRandomValues, not randomUUID: the latter exists only in secure contexts (https).
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** on(name, fn) → unsubscribe; emit() isolates handlers so one failing cannot stop others. */
class Listeners {
  constructor() { this.map = new Map(); }

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError(`listener for "${name}" is not a function`);
    if (!this.map.has(name)) this.map.set(name, new Set());
    this.map.get(name).add(fn);
    return () => { this.map.get(name)?.delete(fn); };
  }

  emit(name, ...args) {
    for (const fn of [...(this.map.get(name) || [])]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(`listener for "${name}" failed`, err);
      }
    }
  }
}

function envelope(env, event) {
  if (!env || typeof env !== 'object' || typeof env.ok !== 'boolean') {
    return { ok: false, error: { code: 'internal', message: `malformed ack for ${event}` } };
  }
  if (!env.ok && (!env.error || typeof env.error !== 'object')) {
    return { ok: false, error: { code: 'internal', message: 'error ack without error' } };
  }
  return env;
}

function sameUser(a, b) {
  if (!a || !b) return !a && !b;
  return a.id === b.id && a.username === b.username && a.role === b.role
    && a.isGuest === b.isGuest && a.email === b.email;
}

/** Open a client; see Client for what it does. Options:
 *  url          server URL (browser: omit for this page's origin)
 *  token, refreshToken   tokens to start with (storage's, when it has some, win)
 *  credentials  {login, password} | {guest: {}}: sign in with these when there are no tokens
 *  io           socket.io-client's io (browser default: window.io)
 *  storage      {load() → tokens | null, save(tokens), clear(), lock?(fn)}: where tokens live;
 *               lock(fn) runs fn exclusively (e.g. a Web Lock) so two tabs never rotate one
 *               refresh token twice
 *  onResync, onSession   listeners, as client.onResync / client.onSession
 *  transports   e.g. ['websocket']; timeout: default call timeout in ms (15000)
 *  socketOptions  more socket.io-client options (reconnectionDelay, ...) */
export function connect(options = {}) {
  return new Client(options);
}

export class Client {
  #socket;
  #storage;
  #credentials;
  #tokens = null;
  #tokenGen = 0; // bumped whenever the tokens change: a token_expired older than that is stale
  #sendToken = true; // offer the access token at the next handshake
  #user = null;
  #sessionTold = false; // the first session event goes out whatever the user is
  #state = 'connecting';
  #closed = false;
  #gen = 0; // bumped at every connect and disconnect: a resume from before is abandoned
  #resuming = false;
  #refreshing = null; // the one auth:refresh in flight
  #signingOut = 0;
  #timeout;
  #nextId = 0;
  #pending = []; // calls waiting for the gate (connected, resumed, not refreshing), in order
  #inflight = new Set(); // calls sent, ack not yet in
  #waitingEntries = new Set(); // answered conflict{inProgress}: sent again after retryAfterMs
  #afterRefresh = []; // calls answered token_expired, sent again once the refresh is done
  #rooms = new Map(); // room → {room, seq, epoch, joined, join, since, held, syncing, waiting}
  #pushes = new Listeners(); // by push event name
  #hooks = new Listeners(); // session, connection, call, push, resync, error

  constructor(options = {}) {
    const io = options.io || globalThis.io;
    if (typeof io !== 'function') {
      throw new TypeError('connect() needs socket.io-client: pass {io} (window.io in a browser)');
    }
    this.#storage = options.storage || null;
    this.#credentials = options.credentials || null;
    this.#timeout = options.timeout || CALL_TIMEOUT_MS;
    const stored = this.#storage ? this.#storage.load() : null;
    if (stored) this.#tokens = { ...stored };
    else if (options.token || options.refreshToken) {
      this.#tokens = { accessToken: options.token || null, refreshToken: options.refreshToken || null };
    }
    if (options.onResync) this.onResync(options.onResync);
    if (options.onSession) this.onSession(options.onSession);

    const socketOptions = {
      reconnectionDelay: 500, // first retry soon; backs off to reconnectionDelayMax
      ...options.socketOptions,
      autoConnect: false,
      // Read at every (re)connect, so a reconnect always offers the freshest token.
      auth: (cb) => cb(this.#sendToken && this.#tokens && this.#tokens.accessToken
        ? { token: this.#tokens.accessToken } : {}),
    };
    if (options.transports) socketOptions.transports = options.transports;
    const socket = options.url ? io(options.url, socketOptions) : io(socketOptions);
    this.#socket = socket;
    socket.on('connect', () => this.#onConnect());
    socket.on('disconnect', (reason) => this.#onDisconnect(reason));
    socket.on('connect_error', (err) => this.#onConnectError(err));
    socket.io.on('reconnect_attempt', () => this.#setState('connecting'));
    socket.onAny((event, ...args) => this.#onPush(event, args));
    socket.connect();
  }

  // -- what callers see -----------------------------------------------------------------

  /** 'connecting' | 'online' (signed in again, rooms re-joined and synced) | 'offline'. */
  get state() { return this.#state; }

  /** The signed-in user (the sign-in acks' `user`), or null. */
  get user() { return this.#user; }

  /** {accessToken, refreshToken, expiresAt} or null (e.g. for a REST call's Bearer token). */
  get tokens() { return this.#tokens ? { ...this.#tokens } : null; }

  /** The socket.io-client socket underneath (for diagnostics; calls go through call()). */
  get socket() { return this.#socket; }

  /** Where this client stands in a room: {room, seq, epoch} (seq null: not known yet). */
  position(room) {
    const rec = this.#rooms.get(room);
    return rec && rec.joined ? { room, seq: rec.seq, epoch: rec.epoch } : undefined;
  }

  /** The rooms re-joined and synced after a reconnect. */
  get rooms() {
    return [...this.#rooms.values()].filter((r) => r.joined)
      .map((r) => ({ room: r.room, seq: r.seq, epoch: r.epoch }));
  }

  /** Call an event; resolves to the ack's data, rejects with CallError. Waits (within its
   *  timeout) while the client is offline, resuming or refreshing its token. */
  call(event, payload, { timeout } = {}) {
    return this.#enqueue(event, payload, { gated: true, timeout });
  }

  /** A server push, in seq order and once per room position; returns an unsubscribe. */
  on(event, fn) { return this.#pushes.on(event, fn); }

  /** fn(room, error?): reload what you show of `room` — its history could not be replayed
   *  (new epoch, gap older than the server's buffer). With `error` ({code, message}) the room
   *  was forgotten: the caller may no longer read it, or it could not be re-joined. */
  onResync(fn) { return this.#hooks.on('resync', fn); }

  /** fn(user | null, {reason, error?}): the first time the client knows who it is, then on
   *  every sign-in, sign-out, lost session (reason 'lost', with the error) or changed user. */
  onSession(fn) { return this.#hooks.on('session', fn); }

  /** fn(state): see `state`. */
  onConnection(fn) { return this.#hooks.on('connection', fn); }

  /** fn({event, ok, code, ms}) once per call settled (the client's own calls included). */
  onCall(fn) { return this.#hooks.on('call', fn); }

  /** fn({event, data}) for every push delivered (after ordering and deduplication). */
  onPush(fn) { return this.#hooks.on('push', fn); }

  /** fn(error, context): a background problem worth showing ('refresh': the token could not
   *  be renewed for a reason other than a refused session; 'resume': a step after a reconnect
   *  failed; 'sign-in': the credentials were refused). */
  onError(fn) { return this.#hooks.on('error', fn); }

  /** Rotate the refresh token now (single flight); resolves to the user. Calls wait for it. */
  refresh() {
    if (!this.#refreshing) {
      this.#refreshing = this.#refreshOnce().finally(() => {
        this.#refreshing = null;
        this.#afterRefreshDone();
      });
    }
    return this.#refreshing;
  }

  /** auth:logout with this sign-in's refresh token; signed out here whatever the answer. */
  async signOut() {
    const refreshToken = this.#tokens && this.#tokens.refreshToken;
    this.#credentials = null;
    this.#signingOut += 1;
    let done = false;
    try {
      await this.call('auth:logout', refreshToken ? { refreshToken } : {});
      done = true;
    } finally {
      this.#signingOut -= 1;
      this.#signedOut('signed-out');
      if (!done) this.reconnect(); // make sure the socket is anonymous again
    }
  }

  /** Tokens changed elsewhere (another tab signed in or out): use these, on a new socket. */
  setTokens(tokens) {
    this.#tokens = tokens ? { ...tokens } : null;
    this.#tokenGen += 1;
    this.#sendToken = true;
    if (!tokens) this.#setUser(null, { reason: 'signed-out' }, true);
    this.reconnect();
  }

  /** Drop the connection and open a new one (resuming as after any reconnect). */
  reconnect() {
    if (this.#closed) return;
    this.#socket.disconnect();
    this.#socket.connect();
  }

  /** Disconnect for good; calls not answered yet reject with `closed`. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#gen += 1;
    this.#socket.disconnect();
    const error = { code: 'closed', message: 'the client was closed' };
    for (const entry of [...this.#pending, ...this.#inflight, ...this.#afterRefresh]) {
      this.#settle(entry, new CallError(error, entry.event));
    }
    for (const entry of this.#waitingEntries) this.#settle(entry, new CallError(error, entry.event));
    this.#setState('offline');
  }

  // -- calls ------------------------------------------------------------------------------

  get #open() {
    return this.#socket.connected && !this.#resuming && !this.#refreshing && !this.#closed;
  }

  #enqueue(event, payload, { gated, timeout = this.#timeout }) {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new CallError({ code: 'closed', message: 'the client was closed' }, event));
        return;
      }
      const id = takesRequestId(event) ? requestId() : null;
      const entry = {
        id: (this.#nextId += 1), event, original: payload, requestId: id, gated,
        payload: id ? { ...(payload && typeof payload === 'object' ? payload : {}), requestId: id }
          : payload,
        started: Date.now(), deadline: Date.now() + timeout, timeout,
        attempt: null, refreshed: false, settled: false, resolve, reject,
      };
      entry.timer = setTimeout(() => this.#expire(entry), timeout);
      if (gated) this.#queue(entry);
      else if (this.#socket.connected) this.#send(entry);
      else this.#settle(entry, this.#disconnectedError(entry));
    });
  }

  /** An internal call (signing in again, re-joining, syncing): not held by the gate. */
  #request(event, payload) {
    return this.#enqueue(event, payload, { gated: false });
  }

  #queue(entry, flush = true) {
    // Call order is kept: a call lost to a disconnect goes before the calls made after it.
    let i = this.#pending.length;
    while (i > 0 && this.#pending[i - 1].id > entry.id) i -= 1;
    this.#pending.splice(i, 0, entry);
    if (flush) this.#flush();
  }

  #flush() {
    if (!this.#open) return;
    for (const entry of this.#pending.splice(0)) this.#send(entry);
  }

  #send(entry) {
    const remaining = entry.deadline - Date.now();
    if (remaining <= 0) {
      this.#expire(entry);
      return;
    }
    const attempt = { tokenGen: this.#tokenGen };
    entry.attempt = attempt;
    this.#inflight.add(entry);
    const args = entry.payload === undefined ? [] : [entry.payload];
    let answer;
    try {
      answer = this.#socket.timeout(remaining).emitWithAck(entry.event, ...args);
    } catch (err) {
      answer = Promise.reject(err);
    }
    attempt.done = answer.then(
      (env) => this.#answered(entry, attempt, env),
      () => this.#unanswered(entry, attempt),
    ).catch((err) => console.error(`handling the ack of ${entry.event} failed`, err));
  }

  #answered(entry, attempt, raw) {
    if (entry.attempt !== attempt || entry.settled) return; // lost to a disconnect, or timed out
    entry.attempt = null;
    this.#inflight.delete(entry);
    const env = envelope(raw, entry.event);
    if (Array.isArray(env.pushes)) this.#ackedPushes(env.pushes);
    if (env.ok) {
      this.#acked(entry, env.data);
      this.#settle(entry, null, env.data);
      return;
    }
    const { error } = env;
    if (error.code === 'token_expired' && entry.gated && !entry.refreshed
        && this.#tokens && this.#tokens.refreshToken) {
      entry.refreshed = true; // retried once after a refresh, then the error stands
      this.#afterRefresh.push(entry);
      if (attempt.tokenGen === this.#tokenGen) this.refresh().catch(() => {});
      else if (!this.#refreshing) this.#afterRefreshDone(); // renewed since it was sent
      return;
    }
    if (error.code === 'conflict' && error.details && error.details.inProgress && entry.requestId) {
      // The first send of this requestId is still running somewhere: ask again later.
      const wait = Number(error.details.retryAfterMs);
      this.#waitingEntries.add(entry);
      entry.retryTimer = setTimeout(() => {
        this.#waitingEntries.delete(entry);
        if (!entry.settled) this.#queue(entry);
      }, Number.isFinite(wait) && wait >= 0 ? wait : INPROGRESS_RETRY_MS);
      return;
    }
    this.#settle(entry, new CallError(error, entry.event));
  }

  #unanswered(entry, attempt) {
    if (entry.attempt !== attempt || entry.settled) return;
    entry.attempt = null;
    this.#inflight.delete(entry);
    if (this.#socket.connected) this.#expire(entry); // socket.io's own timer: ours is due too
    else this.#lost(entry);
  }

  /** The connection dropped before the ack: send again after the reconnect when the server
   *  can tell a repeat (requestId), else give up on it. */
  #lost(entry) {
    entry.attempt = null;
    this.#inflight.delete(entry);
    if (entry.gated && entry.requestId) this.#queue(entry);
    else this.#settle(entry, this.#disconnectedError(entry));
  }

  #disconnectedError(entry) {
    return new CallError({ code: 'disconnected',
      message: `the connection dropped before the answer to ${entry.event}` }, entry.event);
  }

  #expire(entry) {
    if (entry.settled) return;
    this.#settle(entry, new CallError({ code: 'timeout',
      message: `no answer to ${entry.event} within ${entry.timeout / 1000} s` }, entry.event));
  }

  #settle(entry, error, data) {
    if (entry.settled) return;
    entry.settled = true;
    entry.attempt = null;
    clearTimeout(entry.timer);
    clearTimeout(entry.retryTimer);
    this.#inflight.delete(entry);
    this.#waitingEntries.delete(entry);
    const at = this.#pending.indexOf(entry);
    if (at >= 0) this.#pending.splice(at, 1);
    const waiting = this.#afterRefresh.indexOf(entry);
    if (waiting >= 0) this.#afterRefresh.splice(waiting, 1);
    this.#hooks.emit('call', { event: entry.event, ok: !error, code: error ? error.code : null,
      ms: Date.now() - entry.started });
    if (error) entry.reject(error);
    else entry.resolve(data);
  }

  /** What an ok ack means for the session and the rooms. */
  #acked(entry, data) {
    const { event } = entry;
    if (SIGN_IN_EVENTS.has(event) && data && data.tokens) {
      this.#keepTokens(data.tokens);
      // The caller's own sign-in is news even for the same user (a guest upgraded).
      this.#setUser(data.user || null, { reason: 'signed-in' }, entry.gated);
    } else if (USER_EVENTS.has(event) && data && data.id) {
      this.#setUser(data, { reason: 'changed' }, entry.gated);
    } else if (event === 'auth:logout') {
      this.#signedOut('signed-out');
    } else if (JOINS[event]) {
      const id = entry.original && entry.original.id;
      const room = (data && typeof data.room === 'string') ? data.room : `${JOINS[event]}:${id}`;
      this.#joined(room, data || {}, { event, payload: entry.original });
    } else if (LEAVES[event]) {
      const id = entry.original && entry.original.id;
      this.#forget(`${LEAVES[event]}:${id}`);
    }
  }

  // -- session ----------------------------------------------------------------------------

  async #refreshOnce() {
    const run = async () => {
      // Another tab may have rotated it already: the stored token is the live one.
      const current = (this.#storage && this.#storage.load()) || this.#tokens;
      if (!current || !current.refreshToken) {
        throw new CallError({ code: 'unauthorized', message: 'not signed in' }, 'auth:refresh');
      }
      const data = await this.#request('auth:refresh', { refreshToken: current.refreshToken });
      return data.user; // #acked kept the tokens, inside the lock
    };
    try {
      return await (this.#storage && this.#storage.lock ? this.#storage.lock(run) : run());
    } catch (err) {
      if (SESSION_CODES.has(err.code)) this.#lostSession(err);
      else if (err.code !== 'disconnected' && err.code !== 'closed') this.#hooks.emit('error', err, 'refresh');
      throw err;
    }
  }

  #afterRefreshDone() {
    // Calls answered token_expired go again: with the new token, or, when the session was
    // refused, to get their own answer (the error the server gives a signed-out socket).
    for (const entry of this.#afterRefresh.splice(0)) this.#queue(entry, false);
    this.#flush();
    for (const rec of [...this.#rooms.values()]) this.#fillGap(rec);
  }

  #keepTokens(tokens) {
    this.#tokens = { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken,
      expiresAt: tokens.expiresAt };
    this.#tokenGen += 1;
    this.#sendToken = true;
    if (this.#storage) this.#storage.save(this.#tokens);
  }

  #dropTokens() {
    this.#tokens = null;
    this.#tokenGen += 1;
    if (this.#storage) this.#storage.clear();
  }

  #signedOut(reason) {
    if (!this.#tokens && !this.#user) return;
    this.#dropTokens();
    this.#setUser(null, { reason }, true);
  }

  #lostSession(error) {
    const had = Boolean(this.#tokens || this.#user);
    this.#dropTokens();
    this.#setUser(null, had ? { reason: 'lost', error } : { reason: 'lost' }, true);
  }

  /** always: tell listeners even when the user looks the same (the caller's own sign-in). */
  #setUser(user, info, always) {
    const before = this.#user;
    this.#user = user;
    if (!user || !before || before.id !== user.id) {
      // Another user (or none): the rooms were the other user's.
      this.#rooms.clear();
      if (user) this.#track(`user:${user.id}`, null); // the server puts every socket in it
    }
    if (always || !this.#sessionTold || !sameUser(before, user)) {
      this.#sessionTold = true;
      this.#hooks.emit('session', user, info);
    }
  }

  // -- connection -------------------------------------------------------------------------

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#hooks.emit('connection', state);
  }

  #onConnect() {
    const gen = (this.#gen += 1);
    this.#resuming = true;
    this.#setState('connecting'); // online once signed in, re-joined and synced
    this.#resume(gen);
  }

  #onDisconnect(reason) {
    this.#gen += 1;
    this.#resuming = false;
    this.#setState('offline');
    for (const entry of [...this.#inflight]) this.#lost(entry);
    for (const rec of this.#rooms.values()) rec.syncing = false;
    // The server ended this socket (a revoked session, no sign-in in time): socket.io does
    // not reconnect by itself after that.
    if (reason === 'io server disconnect' && !this.#closed) this.#socket.connect();
  }

  #onConnectError(err) {
    const code = err && err.data && err.data.code;
    if (this.#sendToken && this.#tokens && SESSION_CODES.has(code)) {
      // The server refused the access token: connect anonymously, then refresh.
      this.#sendToken = false;
      this.#socket.connect();
      return;
    }
    this.#setState(this.#socket.active ? 'connecting' : 'offline');
  }

  async #resume(gen) {
    const current = () => gen === this.#gen && !this.#closed;
    try {
      await this.#authenticate(current);
      if (!current()) return;
      const joined = await this.#rejoin(current);
      if (!current()) return;
      if (joined.length) await this.#sync(joined, gen);
    } catch (err) {
      if (!current()) return;
      if (err.code !== 'disconnected') this.#hooks.emit('error', err, 'resume');
    }
    if (!current()) return;
    this.#resuming = false;
    this.#setState('online');
    this.#flush();
    for (const rec of [...this.#rooms.values()]) this.#fillGap(rec);
  }

  async #authenticate(current) {
    // A refresh from before the disconnect is failing (its ack cannot come): not ours to join.
    if (this.#refreshing) await this.#refreshing.catch(() => {});
    if (!current()) return;
    if (this.#tokens) {
      try {
        if (this.#sendToken && this.#tokens.accessToken) {
          try {
            await this.#request('auth:me'); // #acked sets the user
          } catch (err) {
            if (err.code !== 'token_expired') throw err;
            await this.refresh();
          }
        } else {
          await this.refresh();
        }
      } catch (err) {
        if (!SESSION_CODES.has(err.code)) throw err; // offline, timeout: the session stands
        if (this.#tokens) this.#lostSession(err);
      }
    }
    if (!current()) return;
    if (!this.#tokens && this.#credentials) {
      const { guest, login, password } = this.#credentials;
      let event = 'auth:login';
      let payload = { login, password };
      if (guest !== undefined) {
        // A guest account is made once: the next reconnect resumes it with its tokens.
        this.#credentials = null;
        event = 'auth:guest';
        payload = guest && Object.keys(guest).length ? guest : undefined;
      }
      try {
        await this.#request(event, payload);
      } catch (err) {
        if (!current() || err.code === 'disconnected') throw err;
        this.#hooks.emit('error', err, 'sign-in');
      }
    }
    if (!this.#tokens && current()) this.#setUser(null, { reason: 'signed-out' }, false);
  }

  /** Enter every joined room again with its join payload; the acks say where each stands.
   *  Returns the rooms to sync (the user's own room needs no join). */
  async #rejoin(current) {
    const rooms = [...this.#rooms.values()].filter((r) => r.joined);
    const failed = new Set();
    await Promise.all(rooms.filter((r) => r.join).map(async (rec) => {
      try {
        await this.#request(rec.join.event, rec.join.payload);
      } catch (err) {
        if (!current() || err.code === 'disconnected') throw err;
        failed.add(rec);
        if (this.#rooms.get(rec.room) !== rec) return;
        if (GONE_CODES.has(err.code)) {
          this.#forget(rec.room);
          this.#hooks.emit('resync', rec.room, err);
        } else {
          this.#hooks.emit('error', err, 'resume');
        }
      }
    }));
    return rooms.filter((r) => !failed.has(r) && this.#rooms.get(r.room) === r).map((r) => r.room);
  }

  // -- rooms and pushes -----------------------------------------------------------------

  #track(room, seq, epoch = null) {
    const rec = { room, seq, epoch, joined: true, join: null, since: this.#gen, held: new Map(),
      syncing: false, waiting: false };
    this.#rooms.set(room, rec);
    return rec;
  }

  #forget(room) {
    this.#rooms.delete(room);
  }

  #joined(room, data, join) {
    const seq = Number.isInteger(data.seq) ? data.seq : null;
    const epoch = typeof data.epoch === 'string' ? data.epoch : null;
    let rec = this.#rooms.get(room);
    if (!rec) {
      rec = this.#track(room, seq, epoch);
    } else if (!rec.joined) {
      // Pushes of this room came before the join's ack: keep the further of the two.
      rec.joined = true;
      rec.since = this.#gen;
      if (epoch !== null && rec.epoch !== epoch) {
        rec.seq = seq;
        rec.epoch = epoch;
      } else if (seq !== null && (rec.seq === null || seq > rec.seq)) {
        rec.seq = seq;
      }
    } else if (epoch !== null && rec.epoch !== null && epoch !== rec.epoch) {
      rec.seq = seq;
      rec.epoch = epoch;
      rec.held.clear();
      this.#hooks.emit('resync', room);
    } else {
      // Joined already: the pushes up to the ack's head are on their way to this socket (or
      // `sync` replays them after a reconnect), so the position stays where delivery is.
      if (rec.epoch === null) rec.epoch = epoch;
      if (rec.seq === null) rec.seq = seq;
    }
    rec.join = join;
  }

  #onPush(event, args) {
    const data = args[0];
    if (event === 'auth:expired') {
      if (this.#tokens && this.#tokens.refreshToken) this.refresh().catch(() => {});
    } else if (event === 'auth:revoked') {
      // This sign-in was ended elsewhere (sign-out, password change, an admin); the server
      // disconnects next, and the reconnect must not offer the dead token nor sign in again.
      this.#credentials = null;
      const reason = (data && data.reason) || 'revoked';
      if (this.#signingOut) this.#signedOut('signed-out'); // our own auth:logout's doing
      else {
        this.#lostSession(new CallError({ code: 'unauthorized',
          message: `your session was ended (${reason})` }, event));
      }
    }
    if (data && typeof data === 'object' && typeof data.room === 'string'
        && Number.isInteger(data.seq)) {
      const rec = this.#rooms.get(data.room) || this.#loose(data.room);
      this.#receive(rec, data.seq, typeof data.epoch === 'string' ? data.epoch : null,
        { event, args });
    } else {
      this.#deliver({ event, args });
    }
  }

  /** A room not joined through this client (or left): its pushes are delivered once each,
   *  and what was seen counts if it is joined later. */
  #loose(room) {
    const rec = this.#track(room, null);
    rec.joined = false;
    return rec;
  }

  #ackedPushes(pushes) {
    for (const p of pushes) {
      if (!p || typeof p.room !== 'string' || !Number.isInteger(p.seq)) continue;
      const rec = this.#rooms.get(p.room) || this.#loose(p.room);
      this.#receive(rec, p.seq, typeof p.epoch === 'string' ? p.epoch : null, SKIP);
    }
  }

  /** One sequenced push (or SKIP: one our own call caused, known from its ack). */
  #receive(rec, seq, epoch, push) {
    if (epoch !== null && rec.epoch !== null && epoch !== rec.epoch) {
      // The room's history was lost: what we have cannot be continued, only reloaded.
      rec.epoch = epoch;
      rec.seq = seq;
      rec.held.clear();
      if (rec.joined) this.#hooks.emit('resync', rec.room);
      this.#deliver(push);
      return;
    }
    if (rec.epoch === null) rec.epoch = epoch;
    if (rec.seq !== null && seq <= rec.seq) return; // had it
    if (rec.seq === null || seq === rec.seq + 1 || !rec.joined) {
      rec.seq = seq;
      this.#deliver(push);
      this.#release(rec);
      return;
    }
    if (!rec.held.has(seq)) rec.held.set(seq, push);
    this.#fillGap(rec);
  }

  #deliver(push) {
    if (push === SKIP) return;
    this.#pushes.emit(push.event, ...push.args);
    this.#hooks.emit('push', { event: push.event, data: push.args[0] });
  }

  /** Hand over the held pushes that now follow on; drop those already had. */
  #release(rec) {
    while (rec.held.has(rec.seq + 1)) {
      const push = rec.held.get(rec.seq + 1);
      rec.held.delete(rec.seq + 1);
      rec.seq += 1;
      this.#deliver(push);
    }
    for (const seq of rec.held.keys()) if (seq <= rec.seq) rec.held.delete(seq);
  }

  /** A gap before the held pushes: an ack in flight may still list the missing seqs in its
   *  `pushes` (our own calls' pushes never reach us), so wait for those acks; then sync. */
  #fillGap(rec) {
    if (!rec.held.size || rec.syncing || rec.waiting || this.#resuming || this.#refreshing
        || !this.#socket.connected || this.#rooms.get(rec.room) !== rec) return;
    const acks = [...this.#inflight].filter((e) => e.requestId && e.attempt).map((e) => e.attempt.done);
    if (acks.length) {
      rec.waiting = true;
      Promise.allSettled(acks).then(() => {
        rec.waiting = false;
        this.#fillGap(rec);
      });
      return;
    }
    this.#sync([rec.room], this.#gen);
  }

  /** `sync` the rooms from where this client stands: the server re-emits what they missed
   *  (before its ack, on this socket), so by the ack they have been delivered in order. */
  async #sync(rooms, gen) {
    const recs = rooms.map((r) => this.#rooms.get(r)).filter(Boolean);
    for (const rec of recs) rec.syncing = true;
    try {
      for (let i = 0; i < recs.length; i += SYNC_MAX_ROOMS) {
        const chunk = recs.slice(i, i + SYNC_MAX_ROOMS);
        // A room whose position was unknown before this connection may have missed
        // anything: nothing can be replayed against an unknown position.
        const unknown = chunk.filter((r) => r.seq === null && r.since < gen);
        const body = { rooms: chunk.map((r) => ({ room: r.room, seq: r.seq, epoch: r.epoch })) };
        let result;
        try {
          result = await this.#request('sync', body);
        } catch (err) {
          if (gen !== this.#gen || err.code === 'disconnected' || err.code === 'closed') return;
          this.#syncFailed(chunk, err);
          continue;
        }
        if (gen !== this.#gen) return;
        this.#synced(chunk, result || {}, unknown);
      }
    } finally {
      for (const rec of recs) rec.syncing = false;
      if (gen === this.#gen && !this.#resuming) for (const rec of recs) this.#fillGap(rec);
    }
  }

  #synced(chunk, { resync = [], heads = {}, errors = {} }, unknown) {
    for (const rec of chunk) {
      if (this.#rooms.get(rec.room) !== rec) continue;
      const { room } = rec;
      if (errors[room]) {
        this.#forget(room);
        this.#hooks.emit('resync', room, new CallError(errors[room], 'sync'));
        continue;
      }
      const head = heads[room];
      const seq = head && Number.isInteger(head.seq) ? head.seq : null;
      const epoch = head && typeof head.epoch === 'string' ? head.epoch : null;
      const lost = resync.includes(room) || (epoch !== null && rec.epoch !== null && epoch !== rec.epoch);
      if (lost) {
        if (head) {
          rec.seq = seq;
          rec.epoch = epoch;
        }
        // The reload covers what was held up to the head; what came after it still counts.
        for (const s of rec.held.keys()) if (rec.seq === null || s <= rec.seq) rec.held.delete(s);
        this.#hooks.emit('resync', room);
        if (rec.seq !== null) this.#release(rec);
        continue;
      }
      if (epoch !== null) rec.epoch = epoch;
      if (seq !== null) {
        // Held pushes up to the head were not replayed only if the server skipped them (it
        // would have answered resync): hand them over in order rather than lose them.
        for (const s of [...rec.held.keys()].sort((a, b) => a - b)) {
          if (s > seq) break;
          const push = rec.held.get(s);
          rec.held.delete(s);
          if (rec.seq === null || s > rec.seq) {
            rec.seq = s;
            this.#deliver(push);
          }
        }
        if (rec.seq === null || seq > rec.seq) rec.seq = seq;
        this.#release(rec);
      }
      if (unknown.includes(rec)) this.#hooks.emit('resync', room);
    }
  }

  /** The whole sync was refused: rooms the caller may not read are forgotten; otherwise (a
   *  server without sync, a timeout) the rooms are reloaded and their gaps given up. */
  #syncFailed(chunk, err) {
    for (const rec of chunk) {
      if (this.#rooms.get(rec.room) !== rec) continue;
      if (GONE_CODES.has(err.code)) {
        this.#forget(rec.room);
        this.#hooks.emit('resync', rec.room, err);
        continue;
      }
      const known = rec.seq !== null || rec.held.size > 0;
      for (const s of [...rec.held.keys()].sort((a, b) => a - b)) {
        const push = rec.held.get(s);
        rec.held.delete(s);
        rec.seq = s;
        this.#deliver(push);
      }
      if (known || rec.since < this.#gen) this.#hooks.emit('resync', rec.room);
    }
  }
}

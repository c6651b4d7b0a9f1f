// A scripted stand-in for socket.io-client's Socket (the part of its API client.js uses:
// on, off, onAny, emit, timeout(ms).emitWithAck, connect, disconnect, connected, active,
// io.on('reconnect_attempt'), the `auth` callback read at each handshake). The test plays the
// server: it accepts or refuses handshakes, answers calls, pushes, and cuts the connection.
//
// Behaviour copied from socket.io-client 4.8 (build/esm/socket.js): on a lost connection
// `connected` turns false, 'disconnect' is emitted, and only then are the acks still
// awaited rejected ("socket has been disconnected"); a refused handshake leaves the socket
// inactive until connect() is called again.

class Emitter {
  constructor() { this.handlers = new Map(); }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(fn);
    return this;
  }

  off(event, fn) {
    const list = this.handlers.get(event) || [];
    const at = list.indexOf(fn);
    if (at >= 0) list.splice(at, 1);
    return this;
  }

  fire(event, ...args) {
    for (const fn of [...(this.handlers.get(event) || [])]) fn(...args);
  }
}

/** One call the client made: its event, payload, and how the test answers it. */
class Call {
  constructor(socket, event, args, resolve, reject) {
    this.socket = socket;
    this.event = event;
    this.args = args;
    this.payload = args[0];
    this.answered = false;
    this.resolve = resolve;
    this.reject = reject;
  }

  reply(envelope) {
    if (this.answered) throw new Error(`${this.event} answered twice`);
    this.answered = true;
    clearTimeout(this.timer);
    this.socket.awaiting.delete(this);
    this.socket.log.push(`reply ${this.event}`);
    this.resolve(envelope);
  }

  ok(data, extra = {}) { this.reply({ ok: true, data, ...extra }); }

  error(code, message = code, details) {
    this.reply({ ok: false, error: { code, message, ...(details ? { details } : {}) } });
  }
}

export class FakeSocket extends Emitter {
  constructor(url, opts) {
    super();
    this.url = url;
    this.opts = opts;
    this.connected = false;
    this.active = false;
    this.io = new Emitter();
    this.anyHandlers = [];
    this.calls = []; // every call, in the order the client made them
    this.log = []; // 'call <event>', 'reply <event>', 'connect', 'disconnect', 'push <event>'...
    this.awaiting = new Set(); // calls not answered yet
    this.handshakes = []; // the `auth` object offered at each handshake
    this.connects = 0; // connect() calls
    this.responders = new Map(); // event → fn(call): answers without the test's attention
    this.watchers = [];
  }

  // -- the socket.io-client API ---------------------------------------------------------

  onAny(fn) {
    this.anyHandlers.push(fn);
    return this;
  }

  emit(event, ...args) {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    this.call(event, args, null).then((env) => ack && ack(null, env), (err) => ack && ack(err));
    return this;
  }

  timeout(ms) {
    return { emitWithAck: (event, ...args) => this.call(event, args, ms) };
  }

  emitWithAck(event, ...args) { return this.call(event, args, null); }

  call(event, args, timeoutMs) {
    if (!this.connected) throw new Error(`fake: ${event} emitted while disconnected`);
    return new Promise((resolve, reject) => {
      const call = new Call(this, event, args, resolve, reject);
      call.timeoutMs = timeoutMs;
      this.calls.push(call);
      this.log.push(`call ${event}`);
      this.awaiting.add(call);
      if (timeoutMs !== null) {
        // socket.io-client's own ack timer (Socket.timeout): rejects, and a late ack is dropped.
        call.timer = setTimeout(() => {
          if (call.answered) return;
          call.answered = true;
          this.awaiting.delete(call);
          reject(new Error('operation has timed out'));
        }, timeoutMs);
      }
      const responder = this.responders.get(event);
      // Answered on a later turn, as a network would.
      if (responder) setImmediate(() => { if (!call.answered) responder(call); });
      this.notify();
    });
  }

  connect() {
    this.active = true;
    this.connects += 1;
    this.notify();
    return this;
  }

  disconnect() {
    this.active = false;
    if (this.connected) this.close('io client disconnect');
    return this;
  }

  // -- the test plays the server ----------------------------------------------------------

  /** Accept the next handshake: read `auth` as socket.io-client does, then 'connect'. */
  async accept() {
    const auth = await new Promise((resolve) => this.opts.auth(resolve));
    this.handshakes.push(auth);
    this.log.push('connect');
    this.connected = true;
    this.fire('connect');
  }

  /** Refuse the handshake as the server does (ConnectionRefusedError with {code, message}). */
  async refuse(code) {
    const auth = await new Promise((resolve) => this.opts.auth(resolve));
    this.handshakes.push(auth);
    this.active = false;
    const err = new Error(code);
    err.data = { code, message: code };
    this.fire('connect_error', err);
  }

  /** The transport is cut (socket.io-client's order of events); accept() reconnects. */
  drop(reason = 'transport close') {
    this.close(reason);
  }

  /** socket.io-client's manager starts a reconnection attempt. */
  reconnecting(attempt = 1) {
    this.io.fire('reconnect_attempt', attempt);
  }

  close(reason) {
    this.log.push('disconnect');
    this.connected = false;
    this.fire('disconnect', reason);
    for (const call of [...this.awaiting]) {
      this.awaiting.delete(call);
      call.answered = true;
      clearTimeout(call.timer);
      call.reject(new Error('socket has been disconnected'));
    }
    this.notify();
  }

  /** A server push. */
  push(event, ...args) {
    this.log.push(`push ${event}`);
    for (const fn of [...this.anyHandlers]) fn(event, ...args);
    this.fire(event, ...args);
  }

  /** Answer every call of `event` with fn(call) from now on. */
  answer(event, fn) {
    this.responders.set(event, fn);
    for (const call of [...this.awaiting]) if (call.event === event) fn(call);
  }

  /** The calls of `event` so far. */
  callsOf(event) { return this.calls.filter((c) => c.event === event); }

  /** The n-th call (0-based) of `event`, once the client has made it. */
  nth(event, n) { return this.until(() => this.callsOf(event)[n]); }

  /** The next call of `event` nobody answered yet. */
  pending(event) {
    return this.until(() => [...this.awaiting].find((c) => c.event === event && !c.answered));
  }

  /** Resolves to predicate()'s value once it is truthy, re-checked at every change. */
  until(predicate) {
    const value = predicate();
    if (value) return Promise.resolve(value);
    return new Promise((resolve) => this.watchers.push({ predicate, resolve }));
  }

  notify() {
    for (const w of [...this.watchers]) {
      const value = w.predicate();
      if (value) {
        this.watchers.splice(this.watchers.indexOf(w), 1);
        w.resolve(value);
      }
    }
  }
}

/** A stand-in for socket.io-client's io(): records the sockets it makes. */
export function fakeIo() {
  const io = (url, opts) => {
    if (url && typeof url === 'object') [url, opts] = [undefined, url];
    const socket = new FakeSocket(url, opts);
    io.sockets.push(socket);
    return socket;
  };
  io.sockets = [];
  return io;
}

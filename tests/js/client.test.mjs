// The client library (server/web/client.js) against a scripted socket: the test plays the
// server (fake-socket.mjs) and checks what the client sends, in which order, and what it
// hands to its listeners. Run: node --test tests/js/
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CallError, connect, takesRequestId } from '../../server/web/client.js';
import { FakeSocket, fakeIo } from './fake-socket.mjs';

const USER = { id: 'u1', username: 'ada', role: 'user', isGuest: false, email: 'ada@example.com' };
const TOKENS = { accessToken: 'a1', refreshToken: 'r1', expiresAt: '2030-01-01T00:00:00Z' };
const EPOCH = 'e1';

/** Wait, turn by turn, until predicate() holds (the test's own timeout bounds it). */
async function until(predicate) {
  while (!predicate()) await new Promise((resolve) => setImmediate(resolve));
}

/** An ack for `sync` that finds every room where the client says it stands. */
function caughtUp(call) {
  const heads = {};
  for (const r of call.payload.rooms) heads[r.room] = { seq: r.seq ?? 0, epoch: r.epoch ?? EPOCH };
  return { replayed: {}, resync: [], heads, errors: {} };
}

/** A client signed in with tokens, connected and resumed; sync is then answered by hand. */
async function online(t, options = {}) {
  const io = fakeIo();
  const client = connect({ io, token: TOKENS.accessToken, refreshToken: TOKENS.refreshToken,
    ...options });
  t.after(() => client.close());
  const socket = io.sockets[0];
  socket.answer('auth:me', (c) => c.ok(USER));
  socket.answer('sync', (c) => c.ok(caughtUp(c)));
  await socket.accept();
  await until(() => client.state === 'online');
  socket.responders.delete('sync');
  return { client, socket };
}

/** project:join answered with the room's head. */
async function joinProject(client, socket, id, seq, epoch = EPOCH) {
  const joined = client.call('project:join', { id });
  const call = await socket.pending('project:join');
  call.ok({ project: { id }, role: 'editor', online: [], room: `project:${id}`, seq, epoch });
  return joined;
}

function rowPush(seq, epoch = EPOCH, room = 'project:p1') {
  return { projectId: 'p1', tableId: 't1', row: { id: `r${seq}` }, room, seq, epoch };
}

function collect(client, event) {
  const got = [];
  client.on(event, (data) => got.push(data.seq ?? data));
  return got;
}

test('calls carry a fresh requestId except sign-in events and sync', () => {
  assert.equal(takesRequestId('row:add'), true);
  assert.equal(takesRequestId('project:list'), true);
  assert.equal(takesRequestId('auth:login'), false);
  assert.equal(takesRequestId('auth:refresh'), false);
  assert.equal(takesRequestId('sync'), false);
});

test('an ack resolves to its data; an error ack rejects with CallError', async (t) => {
  const { client, socket } = await online(t);
  const seen = [];
  client.onCall((c) => seen.push(c));

  const added = client.call('row:add', { tableId: 't1', values: { a: 1 } });
  const refused = client.call('row:delete', { tableId: 't1', rowId: 'x' });
  const add = await socket.pending('row:add');
  assert.match(add.payload.requestId, /^[A-Za-z0-9_.:-]{1,64}$/);
  assert.deepEqual({ ...add.payload, requestId: undefined },
    { tableId: 't1', values: { a: 1 }, requestId: undefined });
  add.ok({ id: 'r1' });
  (await socket.pending('row:delete')).error('locked', 'held by bob', { holder: 'bob' });

  assert.deepEqual(await added, { id: 'r1' });
  const err = await refused.catch((e) => e);
  assert.ok(err instanceof CallError);
  assert.deepEqual([err.code, err.message, err.details, err.event],
    ['locked', 'held by bob', { holder: 'bob' }, 'row:delete']);
  assert.deepEqual(seen.map((c) => [c.event, c.ok, c.code]),
    [['row:add', true, null], ['row:delete', false, 'locked']]);
});

test('a call with no ack within its timeout rejects with code timeout', async (t) => {
  const { client, socket } = await online(t);
  const call = client.call('ping', undefined, { timeout: 30 });
  await socket.pending('ping');
  const err = await call.catch((e) => e);
  assert.ok(err instanceof CallError);
  assert.equal(err.code, 'timeout');
  assert.equal(err.event, 'ping');
});

test('N calls answered token_expired share one auth:refresh; calls made meanwhile wait for it',
  async (t) => {
    const { client, socket } = await online(t);
    const first = [1, 2, 3].map((n) => client.call('row:add', { tableId: 't1', values: { n } }));
    await socket.until(() => socket.callsOf('row:add').length === 3);
    const sent = socket.callsOf('row:add');
    for (const call of sent) call.error('token_expired', 'access token expired');

    const refresh = await socket.pending('auth:refresh');
    assert.deepEqual(refresh.payload, { refreshToken: 'r1' });
    const meanwhile = client.call('row:add', { tableId: 't1', values: { n: 4 } });
    refresh.ok({ user: USER, tokens: { accessToken: 'a2', refreshToken: 'r2' } });

    await socket.until(() => socket.callsOf('row:add').length === 7);
    const again = socket.callsOf('row:add').slice(3);
    for (const call of again) call.ok({ id: `row-${call.payload.values.n}` });
    assert.deepEqual(await Promise.all([...first, meanwhile]),
      [{ id: 'row-1' }, { id: 'row-2' }, { id: 'row-3' }, { id: 'row-4' }]);

    assert.equal(socket.callsOf('auth:refresh').length, 1);
    // The three are retried with their own requestIds; the fourth is new.
    assert.deepEqual(again.slice(0, 3).map((c) => c.payload.requestId),
      sent.map((c) => c.payload.requestId));
    // Nothing was sent between the refresh and its ack.
    const log = socket.log.filter((l) => l.startsWith('call ') || l === 'reply auth:refresh');
    const refreshAt = log.indexOf('call auth:refresh');
    assert.deepEqual(log.slice(refreshAt, refreshAt + 2), ['call auth:refresh', 'reply auth:refresh']);
    assert.equal(client.tokens.accessToken, 'a2');
  });

test('the auth:expired push refreshes once, and calls wait for the new token', async (t) => {
  const { client, socket } = await online(t);
  socket.push('auth:expired', { expiredAt: 1 });
  socket.push('auth:expired', { expiredAt: 1 });
  const refresh = await socket.pending('auth:refresh');
  const call = client.call('ping');
  refresh.ok({ user: USER, tokens: { accessToken: 'a2', refreshToken: 'r2' } });
  (await socket.pending('ping')).ok({ pong: true });
  assert.deepEqual(await call, { pong: true });
  assert.equal(socket.callsOf('auth:refresh').length, 1);
  assert.ok(socket.log.indexOf('reply auth:refresh') < socket.log.indexOf('call ping'));
});

test('a refused refresh ends the session, and the waiting call gets its own answer',
  async (t) => {
    const { client, socket } = await online(t);
    const sessions = [];
    client.onSession((user, info) => sessions.push([user, info.reason, info.error?.code]));
    const call = client.call('row:add', { tableId: 't1', values: {} });
    (await socket.pending('row:add')).error('token_expired');
    (await socket.pending('auth:refresh')).error('unauthorized', 'refresh token reused');
    (await socket.nth('row:add', 1)).error('unauthorized', 'sign in first');
    assert.equal((await call.catch((e) => e)).code, 'unauthorized');
    assert.deepEqual(sessions, [[null, 'lost', 'unauthorized']]);
    assert.equal(client.user, null);
    assert.equal(client.tokens, null);
  });

test('a call whose ack was lost in a disconnect is sent again after the resume, same requestId',
  async (t) => {
    const { client, socket } = await online(t);
    await joinProject(client, socket, 'p1', 3);
    const added = client.call('row:add', { tableId: 't1', values: { a: 1 } });
    const first = await socket.pending('row:add');

    socket.drop();
    assert.equal(client.state, 'offline');
    const offline = client.call('row:delete', { tableId: 't1', rowId: 'r9' });

    socket.answer('project:join', (c) => c.ok({ room: 'project:p1', seq: 3, epoch: EPOCH }));
    socket.answer('sync', (c) => c.ok(caughtUp(c)));
    await socket.accept();
    const again = await socket.nth('row:add', 1);
    assert.equal(again.payload.requestId, first.payload.requestId);
    assert.deepEqual(again.payload.values, { a: 1 });
    const del = await socket.pending('row:delete');
    again.ok({ id: 'r1' });
    del.ok({ id: 'r9' });
    assert.deepEqual(await added, { id: 'r1' });
    assert.deepEqual(await offline, { id: 'r9' });

    // Sign in, re-join and sync first; then the lost call, then the one made offline.
    const after = socket.log.slice(socket.log.lastIndexOf('connect'))
      .filter((l) => l.startsWith('call '));
    assert.deepEqual(after, ['call auth:me', 'call project:join', 'call sync', 'call row:add',
      'call row:delete']);
    assert.ok(socket.log.lastIndexOf('reply sync') < socket.log.lastIndexOf('call row:add'));
  });

test('conflict with inProgress is asked again after retryAfterMs with the same requestId',
  async (t) => {
    const { client, socket } = await online(t);
    const added = client.call('row:add', { tableId: 't1', values: {} });
    const first = await socket.pending('row:add');
    first.error('conflict', 'still running', { requestId: first.payload.requestId,
      inProgress: true, retryAfterMs: 5 });
    const second = await socket.nth('row:add', 1);
    assert.equal(second.payload.requestId, first.payload.requestId);
    second.ok({ id: 'r1' });
    assert.deepEqual(await added, { id: 'r1' });

    // A conflict without inProgress is an answer like any other.
    const other = client.call('row:add', { tableId: 't1', values: {} });
    (await socket.nth('row:add', 2)).error('conflict', 'version mismatch');
    assert.equal((await other.catch((e) => e)).code, 'conflict');
  });

test('a sequenced push seen twice, or older than where the room stands, is dropped', async (t) => {
  const { client, socket } = await online(t);
  await joinProject(client, socket, 'p1', 3);
  const got = collect(client, 'row:updated');
  const all = [];
  client.onPush(({ event, data }) => all.push(`${event}#${data.seq}`));
  const syncs = socket.callsOf('sync').length;
  for (const seq of [4, 4, 3, 2, 5, 5]) socket.push('row:updated', rowPush(seq));
  assert.deepEqual(got, [4, 5]);
  assert.deepEqual(all, ['row:updated#4', 'row:updated#5']);
  assert.equal(socket.callsOf('sync').length, syncs); // a repeat is no gap
  assert.deepEqual(client.position('project:p1'), { room: 'project:p1', seq: 5, epoch: EPOCH });
});

test('a push without seq is delivered as it is', async (t) => {
  const { client, socket } = await online(t);
  const got = [];
  client.on('project:presence', (d) => got.push(d));
  socket.push('project:presence', { projectId: 'p1', users: [] });
  socket.push('project:presence', { projectId: 'p1', users: [] });
  assert.equal(got.length, 2);
});

test('pushes after a gap are held while sync fills it, then delivered in order, once',
  async (t) => {
    const { client, socket } = await online(t);
    await joinProject(client, socket, 'p1', 3);
    const got = collect(client, 'row:updated');
    socket.push('row:updated', rowPush(5));
    socket.push('row:updated', rowPush(6));
    const sync = await socket.pending('sync');
    assert.deepEqual(sync.payload, { rooms: [{ room: 'project:p1', seq: 3, epoch: EPOCH }] });
    assert.deepEqual(got, []);

    // The server re-emits what follows seq 3 before its ack; 5 and 6 are repeats.
    for (const seq of [4, 5, 6]) socket.push('row:updated', rowPush(seq));
    assert.deepEqual(got, [4, 5, 6]);
    sync.ok({ replayed: { 'project:p1': 3 }, resync: [], heads: { 'project:p1': { seq: 6,
      epoch: EPOCH } }, errors: {} });
    await until(() => !socket.awaiting.size);
    socket.push('row:updated', rowPush(7));
    assert.deepEqual(got, [4, 5, 6, 7]);
    assert.equal(socket.callsOf('sync').length, 2); // the resume's, and this one
  });

test('a gap filled by the pushes listed in our own ack needs no sync', async (t) => {
  const { client, socket } = await online(t);
  await joinProject(client, socket, 'p1', 3);
  const got = collect(client, 'row:updated');
  const syncs = socket.callsOf('sync').length;

  const added = client.call('row:add', { tableId: 't1', values: {} });
  const add = await socket.pending('row:add');
  // Another user's change (5) overtakes the ack of ours (4, which we are not sent).
  socket.push('row:updated', rowPush(5));
  assert.deepEqual(got, []);
  add.ok({ id: 'r4' }, { pushes: [{ room: 'project:p1', seq: 4, epoch: EPOCH }] });
  await added;
  socket.push('row:updated', rowPush(6));
  await until(() => got.length === 2);
  assert.deepEqual(got, [5, 6]);
  assert.equal(socket.callsOf('sync').length, syncs);
  assert.equal(client.position('project:p1').seq, 6);
});

test('a gap that the acks do not fill is synced once those acks are in', async (t) => {
  const { client, socket } = await online(t);
  await joinProject(client, socket, 'p1', 3);
  const got = collect(client, 'row:updated');
  const syncs = socket.callsOf('sync').length;
  const added = client.call('row:add', { tableId: 't1', values: {} });
  const add = await socket.pending('row:add');
  socket.push('row:updated', rowPush(6));
  add.ok({ id: 'r4' }, { pushes: [{ room: 'project:p1', seq: 4, epoch: EPOCH }] });
  await added;
  const sync = await socket.nth('sync', syncs);
  assert.deepEqual(sync.payload.rooms, [{ room: 'project:p1', seq: 4, epoch: EPOCH }]);
  socket.push('row:updated', rowPush(5));
  sync.ok({ replayed: { 'project:p1': 1 }, resync: [], heads: { 'project:p1': { seq: 5,
    epoch: EPOCH } }, errors: {} });
  await until(() => got.length === 2);
  assert.deepEqual(got, [5, 6]);
});

test('a push from another epoch makes the room resync, then is delivered', async (t) => {
  const { client, socket } = await online(t);
  await joinProject(client, socket, 'p1', 3);
  const order = [];
  client.onResync((room, error) => order.push(['resync', room, error]));
  client.on('row:updated', (d) => order.push(['push', d.seq, d.epoch]));
  socket.push('row:updated', rowPush(1, 'e2'));
  socket.push('row:updated', rowPush(2, 'e2'));
  assert.deepEqual(order, [['resync', 'project:p1', undefined], ['push', 1, 'e2'],
    ['push', 2, 'e2']]);
  assert.deepEqual(client.position('project:p1'), { room: 'project:p1', seq: 2, epoch: 'e2' });
});

test('after a reconnect: sign in, re-join every room with its payload, then one sync',
  async (t) => {
    const { client, socket } = await online(t);
    await joinProject(client, socket, 'p1', 3);
    const conv = client.call('conversation:join', { id: 'c1' });
    (await socket.pending('conversation:join')).ok({ conversation: { id: 'c1' },
      room: 'conversation:c1', seq: 7, epoch: EPOCH });
    await conv;
    socket.push('project:updated', { project: { id: 'p1' }, room: 'user:u1', seq: 1, epoch: EPOCH });
    const rows = collect(client, 'row:updated');
    const resyncs = [];
    client.onResync((room) => resyncs.push(room));
    const states = [];
    client.onConnection((s) => states.push(s));

    socket.drop();
    socket.reconnecting();
    await socket.accept();
    assert.deepEqual(socket.handshakes.at(-1), { token: 'a1' });
    const joinP = await socket.nth('project:join', 1);
    const joinC = await socket.nth('conversation:join', 1);
    assert.equal(joinP.payload.id, 'p1');
    assert.equal(joinC.payload.id, 'c1');
    assert.equal(socket.log.filter((l) => l === 'call auth:me').length, 2);
    assert.ok(socket.log.lastIndexOf('reply auth:me') < socket.log.lastIndexOf('call project:join'));
    // The project moved on meanwhile; the conversation's history was lost (new epoch).
    joinP.ok({ room: 'project:p1', seq: 5, epoch: EPOCH });
    assert.equal(socket.callsOf('sync').length, 1); // waits for every join
    socket.push('row:updated', rowPush(6)); // arrives before the sync fills 4 and 5: held
    joinC.ok({ room: 'conversation:c1', seq: 1, epoch: 'e2' });
    const sync = await socket.nth('sync', 1);
    assert.deepEqual(sync.payload.rooms, [
      { room: 'user:u1', seq: 1, epoch: EPOCH },
      { room: 'project:p1', seq: 3, epoch: EPOCH },
      { room: 'conversation:c1', seq: 1, epoch: 'e2' },
    ]);
    assert.deepEqual(resyncs, ['conversation:c1']);
    assert.equal(client.state, 'connecting'); // not online before the sync's ack
    for (const seq of [4, 5]) socket.push('row:updated', rowPush(seq));
    sync.ok({ replayed: { 'project:p1': 2 }, resync: [], errors: {}, heads: {
      'user:u1': { seq: 1, epoch: EPOCH }, 'project:p1': { seq: 5, epoch: EPOCH },
      'conversation:c1': { seq: 1, epoch: 'e2' } } });
    await until(() => client.state === 'online');
    assert.deepEqual(rows, [4, 5, 6]);
    assert.deepEqual(states, ['offline', 'connecting', 'online']);
  });

test('a room the sync refuses is forgotten, its listeners told, and not re-joined again',
  async (t) => {
    const { client, socket } = await online(t);
    await joinProject(client, socket, 'p1', 3);
    const resyncs = [];
    client.onResync((room, error) => resyncs.push([room, error && error.code]));

    socket.drop();
    socket.answer('project:join', (c) => c.ok({ room: 'project:p1', seq: 3, epoch: EPOCH }));
    await socket.accept();
    const sync = await socket.nth('sync', 1);
    sync.ok({ replayed: {}, resync: [], heads: { 'user:u1': { seq: 0, epoch: EPOCH } },
      errors: { 'project:p1': { code: 'forbidden', message: 'not a member' } } });
    await until(() => client.state === 'online');
    assert.deepEqual(resyncs, [['project:p1', 'forbidden']]);
    assert.equal(client.position('project:p1'), undefined);
    assert.deepEqual(client.rooms.map((r) => r.room), ['user:u1']);

    socket.answer('sync', (c) => c.ok(caughtUp(c)));
    socket.drop();
    await socket.accept();
    await until(() => client.state === 'online');
    assert.equal(socket.callsOf('project:join').length, 2); // the first join, one re-join
  });

test('a room the re-join refuses is forgotten and left out of the sync', async (t) => {
  const { client, socket } = await online(t);
  await joinProject(client, socket, 'p1', 3);
  const resyncs = [];
  client.onResync((room, error) => resyncs.push([room, error && error.code]));
  socket.drop();
  socket.answer('project:join', (c) => c.error('not_found', 'project not found'));
  socket.answer('sync', (c) => c.ok(caughtUp(c)));
  await socket.accept();
  await until(() => client.state === 'online');
  assert.deepEqual(resyncs, [['project:p1', 'not_found']]);
  assert.deepEqual(socket.callsOf('sync').at(-1).payload.rooms.map((r) => r.room), ['user:u1']);
});

test("the user's own room: the first sync only asks its head, pushes then follow from it",
  async (t) => {
    const io = fakeIo();
    const client = connect({ io, token: 'a1', refreshToken: 'r1' });
    t.after(() => client.close());
    const socket = io.sockets[0];
    socket.answer('auth:me', (c) => c.ok(USER));
    await socket.accept();
    const sync = await socket.pending('sync');
    assert.deepEqual(sync.payload, { rooms: [{ room: 'user:u1', seq: null, epoch: null }] });
    sync.ok({ replayed: {}, resync: [], errors: {},
      heads: { 'user:u1': { seq: 9, epoch: EPOCH } } });
    await until(() => client.state === 'online');
    const got = collect(client, 'project:updated');
    for (const seq of [9, 10]) {
      socket.push('project:updated', { project: {}, room: 'user:u1', seq, epoch: EPOCH });
    }
    assert.deepEqual(got, [10]);
  });

test('a refused token at the handshake: connect without it, then refresh', async (t) => {
  const io = fakeIo();
  const saved = [];
  const storage = { load: () => ({ ...TOKENS }), save: (tk) => saved.push(tk), clear() {} };
  const client = connect({ io, storage });
  t.after(() => client.close());
  const socket = io.sockets[0];
  const sessions = [];
  client.onSession((user) => sessions.push(user && user.id));
  await socket.refuse('token_expired');
  await socket.accept();
  assert.deepEqual(socket.handshakes, [{ token: 'a1' }, {}]);
  (await socket.pending('auth:refresh')).ok({ user: USER,
    tokens: { accessToken: 'a2', refreshToken: 'r2', expiresAt: 'x' } });
  (await socket.pending('sync')).ok({ replayed: {}, resync: [], errors: {},
    heads: { 'user:u1': { seq: 0, epoch: EPOCH } } });
  await until(() => client.state === 'online');
  assert.equal(client.user.id, 'u1');
  assert.deepEqual(sessions, ['u1']);
  assert.deepEqual(saved, [{ accessToken: 'a2', refreshToken: 'r2', expiresAt: 'x' }]);
  socket.drop();
  await socket.accept();
  assert.deepEqual(socket.handshakes.at(-1), { token: 'a2' });
});

test('credentials sign in when there are no tokens; sign-out forgets the session', async (t) => {
  const io = fakeIo();
  const client = connect({ io, credentials: { login: 'ada', password: 'pw' } });
  t.after(() => client.close());
  const socket = io.sockets[0];
  const sessions = [];
  client.onSession((user, info) => sessions.push([user && user.id, info.reason]));
  socket.answer('sync', (c) => c.ok(caughtUp(c)));
  await socket.accept();
  assert.deepEqual(socket.handshakes, [{}]);
  const login = await socket.pending('auth:login');
  assert.deepEqual(login.payload, { login: 'ada', password: 'pw' });
  login.ok({ user: USER, tokens: TOKENS });
  await until(() => client.state === 'online');
  assert.equal(client.user.id, 'u1');

  const out = client.signOut();
  const logout = await socket.pending('auth:logout');
  assert.equal(logout.payload.refreshToken, 'r1');
  socket.push('auth:revoked', { reason: 'logout' }); // this socket too, before the ack
  logout.ok({ revoked: 1 });
  await out;
  assert.equal(client.user, null);
  assert.deepEqual(sessions, [['u1', 'signed-in'], [null, 'signed-out']]);
  assert.deepEqual(client.rooms, []);
});

test('a sign-in call made by the caller keeps the tokens and tells session listeners',
  async (t) => {
    const io = fakeIo();
    const client = connect({ io });
    t.after(() => client.close());
    const socket = io.sockets[0];
    const sessions = [];
    client.onSession((user) => sessions.push(user && user.id));
    await socket.accept();
    await until(() => client.state === 'online');
    const guest = client.call('auth:guest');
    const call = await socket.pending('auth:guest');
    assert.deepEqual(call.args, []); // no payload, no requestId
    call.ok({ user: { ...USER, isGuest: true }, tokens: TOKENS });
    await guest;
    assert.deepEqual(sessions, [null, 'u1']);
    assert.equal(client.tokens.refreshToken, 'r1');
    assert.deepEqual(client.rooms, [{ room: 'user:u1', seq: null, epoch: null }]);
  });

test('the fake socket has the shape of socket.io-client (so these tests mean something)',
  async () => {
    const { Manager } = await import('socket.io-client');
    // A real socket, never connected (nothing listens on that port; autoConnect is off).
    const real = new Manager('http://127.0.0.1:9', { autoConnect: false }).socket('/');
    const fake = fakeIo()({ auth: () => {} });
    for (const name of ['on', 'off', 'onAny', 'emit', 'timeout', 'emitWithAck', 'connect',
      'disconnect']) {
      assert.equal(typeof real[name], 'function', `Socket.${name}`);
      assert.equal(typeof fake[name], 'function', `FakeSocket.${name}`);
    }
    assert.equal(typeof real.timeout(5).emitWithAck, 'function');
    assert.equal(typeof real.io.on, 'function');
    assert.equal(typeof fake.io.on, 'function');
    assert.equal(real.connected, false);
    assert.equal(real.active, false);
    assert.ok(fake instanceof FakeSocket);
  });

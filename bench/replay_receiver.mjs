// The official Socket.IO client as bench/replay.py's receiver (the browser's client, run in
// Node): joins the project room, then syncs from the given position --repeat times, timing
// each from the call to the last replayed push and to the ack. Prints one JSON line per run.
import { io } from 'socket.io-client';

const [url, token, project, room, seq, epoch, expected, repeat] = process.argv.slice(2);
const want = Number(expected);
const socket = io(url, { auth: { token }, transports: ['websocket'], reconnection: false });
let count = 0;
let lastAt = 0;
let onAll = null;
socket.on('row:added', () => {
  count += 1;
  if (count === want) {
    lastAt = performance.now();
    if (onAll) onAll();
  }
});
await new Promise((resolve, reject) => {
  socket.once('connect', resolve);
  socket.once('connect_error', reject);
});
const joined = await socket.timeout(60000).emitWithAck('project:join', { id: project });
if (!joined.ok) throw new Error(`project:join: ${JSON.stringify(joined)}`);
for (let i = 0; i < Number(repeat); i += 1) {
  count = 0;
  const all = new Promise((resolve) => { onAll = resolve; });
  const t0 = performance.now();
  const ack = await socket.timeout(60000).emitWithAck('sync', {
    rooms: [{ room, seq: Number(seq), epoch }] });
  const ackAt = performance.now();
  if (!ack.ok || ack.data.replayed[room] !== want) throw new Error(JSON.stringify(ack));
  await all;
  console.log(JSON.stringify({ last: (lastAt - t0) / 1000, ack: (ackAt - t0) / 1000,
    replayed: ack.data.replayed[room] }));
}
socket.disconnect();

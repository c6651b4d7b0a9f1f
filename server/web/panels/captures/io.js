// The I/O graph: packets and bytes per interval over the whole capture, drawn with uPlot
// (every point the server sends, with axes, a hover read-out, and drag-select to filter the
// packet list to a time range).
import uPlot from '../../vendor/uPlot.esm.js';
import { act, h, messageBox } from '../../lib.js';
import { bytes, compact, count, duration, seconds } from './format.js';

const INTERVALS = [['', 'Auto'], ['0.001', '1 ms'], ['0.01', '10 ms'], ['0.1', '100 ms'],
  ['1', '1 s'], ['10', '10 s'], ['60', '1 min']];
const HEIGHT = 280;

/** ioChart(app, {onBrush([from, to] | null), onShowPackets()}) → {el, load(fileId), shown(), clear()}
 *  (from and to in seconds since the first packet) */
export function ioChart(app, { onBrush, onShowPackets }) {
  const msg = messageBox('pcap-io-error');
  let fileId = null;
  let data = null; // the last pcap:io answer
  let plot = null;
  let gen = 0;

  const interval = h('select', { id: 'cap-io-interval', 'data-testid': 'pcap-io-interval' },
    INTERVALS.map(([value, label]) => h('option', { value }, label)));
  interval.addEventListener('change', () => act(interval, msg, fetch));
  const readout = h('p', { class: 'cap-readout', 'data-testid': 'pcap-io-readout' },
    'Point at the graph for the values of an interval; drag across it to show that time '
    + 'range in the packet list.');
  const described = h('p', { class: 'visually-hidden', id: 'cap-io-desc',
    'data-testid': 'pcap-io-description' });
  const chart = h('div', { class: 'cap-chart', 'data-testid': 'pcap-io', role: 'img',
    'aria-label': 'I/O graph: packets and bytes per interval',
    'aria-describedby': 'cap-io-desc' });
  const brushText = h('span', { 'data-testid': 'pcap-io-brush-text' });
  const unselect = () => { if (plot) plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false); };
  const clear = h('button', { type: 'button', class: 'small', 'data-testid': 'pcap-io-brush-clear',
    onclick: () => { unselect(); brushed(null); } }, 'Clear selection');
  const show = h('button', { type: 'button', class: 'small', 'data-testid': 'pcap-io-brush-show',
    onclick: () => onShowPackets() }, 'Show packets');
  const brushBar = h('div', { class: 'cap-brush', hidden: true, 'data-testid': 'pcap-io-brush' },
    brushText, show, clear);
  const el = h('div', { class: 'cap-io' },
    h('div', { class: 'cap-toolbar' },
      h('label', { class: 'cap-inline', for: interval.id }, 'Interval', interval),
      h('span', { class: 'cap-legend' },
        h('span', { class: 'cap-key cap-key-packets', 'aria-hidden': 'true' }), 'Packets',
        h('span', { class: 'cap-key cap-key-bytes', 'aria-hidden': 'true' }), 'Bytes')),
    msg.el, chart, described, readout, brushBar);

  function resetBrush() {
    brushBar.hidden = true;
    delete chart.dataset.brushFrom;
    delete chart.dataset.brushTo;
  }

  function brushed(range) {
    if (range) {
      brushBar.hidden = false;
      chart.dataset.brushFrom = String(range[0]);
      chart.dataset.brushTo = String(range[1]);
      brushText.textContent = `Packet list limited to ${seconds(range[0], 3)}–${seconds(range[1], 3)} s.`;
    } else resetBrush();
    onBrush(range);
  }

  async function fetch() {
    const mine = gen;
    const value = interval.value;
    const answer = await app.call('pcap:io', { fileId, ...(value ? { interval: Number(value) } : {}) });
    if (mine !== gen) return;
    data = answer;
    draw();
  }

  // Canvas colours come from the stylesheet (light and dark themes).
  function colours() {
    const css = getComputedStyle(chart);
    const get = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    return { packets: get('--cap-io-packets', '#2f6fde'), bytes: get('--cap-io-bytes', '#c2571a'),
      text: get('--muted', '#5f6b7a'), grid: get('--line', '#d9dee5') };
  }

  function draw() {
    if (plot) { plot.destroy(); plot = null; }
    if (!data || chart.clientWidth === 0) return; // drawn when its tab is shown
    const xs = data.items.map((x) => x.t);
    const packets = data.items.map((x) => x.packets);
    const octets = data.items.map((x) => x.bytes);
    const c = colours();
    const ticks = {}; // axis → the labels last drawn (exposed for tests and the description)
    const labelled = (axis, fmt) => (u, values) => {
      const out = values.map((v) => (v === null ? '' : fmt(v)));
      ticks[axis] = out;
      return out;
    };
    const axis = { stroke: c.text, grid: { stroke: c.grid, width: 1 }, ticks: { stroke: c.grid, width: 1 } };
    plot = new uPlot({
      width: chart.clientWidth,
      height: HEIGHT,
      legend: { show: false },
      scales: { x: { time: false }, packets: { auto: true }, bytes: { auto: true } },
      cursor: { drag: { x: true, y: false, setScale: false }, points: { size: 6 } },
      axes: [
        { ...axis, label: 'Time since first packet (s)', values: labelled('x', (v) => `${+v.toFixed(6)}`) },
        { ...axis, scale: 'packets', label: 'Packets', values: labelled('packets', compact), size: 56 },
        { ...axis, scale: 'bytes', side: 1, label: 'Bytes', grid: { show: false }, size: 64,
          values: labelled('bytes', bytes) },
      ],
      series: [
        {},
        { label: 'Packets', scale: 'packets', stroke: c.packets, width: 1,
          fill: `${c.packets}33`, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: 'Bytes', scale: 'bytes', stroke: c.bytes, width: 1 },
      ],
      hooks: {
        setCursor: [(u) => {
          const i = u.cursor.idx;
          if (i === null || i === undefined) return;
          readout.textContent = `${seconds(xs[i], 3)} s: ${count(packets[i])} packets, `
            + `${bytes(octets[i])} in ${duration(data.interval)}`;
          readout.dataset.index = String(i);
        }],
        setSelect: [(u) => {
          if (u.select.width <= 0) return;
          const from = Math.max(0, u.posToVal(u.select.left, 'x'));
          const to = u.posToVal(u.select.left + u.select.width, 'x');
          brushed([from, to]);
        }],
        draw: [(u) => {
          chart.dataset.xMin = String(u.scales.x.min);
          chart.dataset.xMax = String(u.scales.x.max);
          chart.dataset.ticksX = (ticks.x || []).filter(Boolean).join('|');
          chart.dataset.ticksY = (ticks.packets || []).filter(Boolean).join('|');
          chart.dataset.ticksBytes = (ticks.bytes || []).filter(Boolean).join('|');
        }],
      },
    }, [xs, packets, octets], chart);
    chart.dataset.points = String(xs.length);
    chart.dataset.interval = String(data.interval);
    const peak = packets.reduce((best, v, i) => (v > packets[best] ? i : best), 0);
    described.textContent = `${count(xs.length)} intervals of ${duration(data.interval)} from 0 to `
      + `${seconds(xs[xs.length - 1] || 0, 3)} s; the busiest has ${count(packets[peak] || 0)} packets `
      + `at ${seconds(xs[peak] || 0, 3)} s.`;
  }

  // The chart follows its container's width (the window, the tab being shown).
  let width = 0;
  new ResizeObserver(() => {
    const now = chart.clientWidth;
    if (now === width) return;
    width = now;
    if (plot && now > 0) plot.setSize({ width: now, height: HEIGHT });
    else if (!plot && data && now > 0) draw();
  }).observe(chart);

  return {
    el,
    load(id) {
      fileId = id;
      gen += 1;
      data = null;
      if (plot) { plot.destroy(); plot = null; }
      resetBrush();
      delete chart.dataset.points;
      return act(interval, msg, fetch);
    },
    shown() { if (!plot && data) draw(); },
    /** The packet list dropped the time range: drop the selection that made it. */
    unbrush() { unselect(); resetBrush(); },
    clear() {
      fileId = null;
      gen += 1;
      data = null;
      if (plot) { plot.destroy(); plot = null; }
      resetBrush();
      delete chart.dataset.points;
    },
  };
}

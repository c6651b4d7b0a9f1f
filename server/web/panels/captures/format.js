// Human formats for the Captures workspace: byte sizes in KiB/MiB, counts with separators,
// durations, rates and times. Kept tiny and local until the console has a shared format.js.

const counts = new Intl.NumberFormat('en');
const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'];

/** 12345 → "12,345"; null → "—". */
export function count(n) {
  return n === null || n === undefined ? '—' : counts.format(n);
}

/** Bytes in binary units: 512 → "512 B", 652181 → "637 KiB", 56500024 → "53.9 MiB". */
export function bytes(n) {
  if (n === null || n === undefined) return '—';
  if (Math.abs(n) < 1024) return `${Math.round(n)} B`;
  let v = n / 1024;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i += 1; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

/** A short number for rates and axes: 950 → "950", 12345 → "12.3k", 2.5e6 → "2.5M". */
export function compact(n) {
  if (n === null || n === undefined) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(n)) return counts.format(Math.round(n));
  return `${+n.toFixed(2)}`;
}

/** Seconds as people say them: 0.0004 → "400 µs", 0.34 → "340 ms", 2.047 → "2.05 s",
 *  179 → "2 min 59 s", 7380 → "2 h 3 min". */
export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  if (s === 0) return '0 s';
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${+(s * 1000).toPrecision(3)} ms`;
  if (s < 60) return `${+s.toPrecision(3)} s`;
  const whole = Math.round(s);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const sec = whole % 60;
  if (h) return `${h} h${m ? ` ${m} min` : ''}`;
  return `${m} min${sec ? ` ${sec} s` : ''}`;
}

/** A rate: rate(2345.6, 'packets') → "2,346 packets/s". */
export function rate(n, unit) {
  return n === null || n === undefined ? '—' : `${compact(n)} ${unit}/s`;
}

/** Bits per second in decimal units, as network rates are given: "2.55 Mbit/s". */
export function bitRate(bitsPerSecond) {
  if (bitsPerSecond === null || bitsPerSecond === undefined) return '—';
  const steps = [[1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']];
  for (const [size, unit] of steps) {
    if (bitsPerSecond >= size) return `${+(bitsPerSecond / size).toPrecision(3)} ${unit}`;
  }
  return `${Math.round(bitsPerSecond)} bit/s`;
}

/** A share as a percentage: 0.4219 → "42.2%"; tiny non-zero shares say "<0.1%". */
export function percent(part, whole) {
  if (!whole) return '—';
  const p = (100 * part) / whole;
  if (p > 0 && p < 0.1) return '<0.1%';
  return `${p >= 10 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** An ISO time as a local date and time to the millisecond (the ISO string is the exact
 *  value; show it on hover). */
export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 });
}

/** Seconds from the first packet, as Wireshark's Time column shows them. */
export function seconds(t, digits = 6) {
  return t === null || t === undefined ? '' : t.toFixed(digits);
}

/** plural(3, 'packet') → "3 packets", with the count formatted. */
export function plural(n, word, many = `${word}s`) {
  return `${count(n)} ${n === 1 ? word : many}`;
}

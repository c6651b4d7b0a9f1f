// Formats of the Captures workspace beyond the console's shared ones (../../format.js):
// compact numbers for axes, rates, bit rates, shares, packet times.

// Sizes, counts, durations and plurals read the same as everywhere in the console.
export { bytes, duration, plural, number as count } from '../../format.js';
import { number as count } from '../../format.js';

/** A short number for rates and axes: 950 → "950", 12345 → "12.3k", 2.5e6 → "2.5M". */
export function compact(n) {
  if (n === null || n === undefined) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${+(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  if (a >= 100 || Number.isInteger(n)) return count(Math.round(n));
  return `${+n.toFixed(2)}`;
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

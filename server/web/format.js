// Human formats for the console: sizes, durations, counts and times the way a person reads
// them. Every view formats through here, so "37.3 MiB" reads the same everywhere. Plain
// functions (no DOM) except timeEl(), which builds the <time> element relative times live in.

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 39130860 → "37.3 MiB"; 512 → "512 B"; 1536 → "1.5 KiB". Binary units: what a file
 *  manager and `ls -h` show, and what our size limits are counted in. */
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  let v = Math.abs(n);
  let i = 0;
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  // Three significant figures at most: 37.3 MiB, 512 KiB, 1.50 GiB reads as noise.
  const text = i === 0 ? String(v) : v.toFixed(v < 100 ? 1 : 0);
  return `${n < 0 ? '-' : ''}${text} ${BYTE_UNITS[i]}`;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** 1234567 → "1,234,567" (in the reader's locale); non-numbers as an em dash. */
export function number(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '—';
}

/** "1 file", "3 files"; the count formatted by number(). */
export function plural(n, word, many = `${word}s`) {
  return `${number(n)} ${n === 1 ? word : many}`;
}

/** A duration in seconds as a person says it: 0.0042 → "4.2 ms", 2.05 → "2.05 s",
 *  179 → "2 min 59 s", 7260 → "2 h 1 min", 200000 → "2 d 7 h". */
export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const s = Math.abs(seconds);
  if (s === 0) return '0 s';
  if (s < 1e-3) return `${trim(s * 1e6)} µs`;
  if (s < 1) return `${trim(s * 1e3)} ms`;
  if (s < 60) return `${trim(s)} s`;
  const whole = Math.round(s);
  const [d, h, m, sec] = [Math.floor(whole / 86400), Math.floor(whole / 3600) % 24,
    Math.floor(whole / 60) % 60, whole % 60];
  if (d) return h ? `${d} d ${h} h` : `${d} d`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  return sec ? `${m} min ${sec} s` : `${m} min`;
}

/** Up to three significant figures, no trailing zeros: 2.05, 12.3, 420. */
function trim(v) {
  return String(Number(v.toPrecision(3)));
}

const exactFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium', timeStyle: 'medium' });
const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const yearFormat = new Intl.DateTimeFormat(undefined, {
  day: 'numeric', month: 'short', year: 'numeric' });

const toDate = (value) => (value instanceof Date ? value : new Date(value));

/** The full date and time in the reader's locale and time zone (a tooltip's text). */
export function exactTime(value) {
  const date = toDate(value);
  return Number.isNaN(date.getTime()) ? '' : exactFormat.format(date);
}

/** "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", then "12 Mar" (this year)
 *  or "12 Mar 2023". A time in the future (a clock ahead of ours) reads as "just now". */
export function relativeTime(value, now = Date.now()) {
  const date = toDate(value);
  if (Number.isNaN(date.getTime())) return '—';
  const s = (now - date.getTime()) / 1000;
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  const days = Math.round(s / 86400);
  if (days === 1) return 'yesterday';
  if (days < 7) return `${days} days ago`;
  return (date.getFullYear() === new Date(now).getFullYear() ? dayFormat : yearFormat)
    .format(date);
}

/** <time datetime="ISO" title="exact time">5 min ago</time>, kept current while shown. */
export function timeEl(value, attrs = {}) {
  const date = toDate(value);
  const el = document.createElement('time');
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (Number.isNaN(date.getTime())) {
    el.textContent = '—';
    return el;
  }
  el.dateTime = date.toISOString();
  el.title = exactTime(date);
  el.dataset.relative = '';
  el.textContent = relativeTime(date);
  return el;
}

// One timer for the whole page refreshes every relative time on it ("just now" → "1 min ago").
const REFRESH_MS = 30_000;
if (typeof document !== 'undefined') {
  setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('time[data-relative]')) {
      el.textContent = relativeTime(el.dateTime, now);
    }
  }, REFRESH_MS);
}

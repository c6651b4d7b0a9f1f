// Human formats for the grid: numbers and dates through Intl in the reader's locale, relative
// times with the exact time kept for a title, and the initials + hue of a user's avatar.
// Local to the grid until the console's shared format helpers land (then merge).

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 10 });
// A date-only value ("2024-03-04") names a calendar day, not an instant: shown as written,
// whatever the reader's time zone.
const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
const instant = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

export function formatNumber(value) {
  return typeof value === 'number' && Number.isFinite(value) ? number.format(value)
    : String(value);
}

/** A datetime cell's text: a day for date-only values, else date and time in local time. */
export function formatDateValue(value) {
  const text = String(value);
  if (DATE_ONLY.test(text)) {
    const t = Date.parse(`${text}T00:00:00Z`);
    return Number.isNaN(t) ? text : day.format(t);
  }
  const t = Date.parse(text);
  return Number.isNaN(t) ? text : instant.format(t);
}

/** "Monday, 4 March 2024 at 10:02:11 CET": the whole instant, for a title. */
export function exactTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso) : exact.format(t);
}

const STEPS = [['year', 31_536_000], ['month', 2_592_000], ['week', 604_800], ['day', 86_400],
  ['hour', 3600], ['minute', 60], ['second', 1]];

/** "3 minutes ago", "yesterday", "now". */
export function relativeTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const seconds = (t - now) / 1000;
  if (Math.abs(seconds) < 10) return relative.format(0, 'second');
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), 'second');
}

export function plural(n, word, many = `${word}s`) {
  return `${number.format(n)} ${n === 1 ? word : many}`;
}

/** "AL" for "alice", "MS" for "Mary Shelley". */
export function initials(name) {
  const words = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** A stable hue per user, so a collaborator keeps one colour everywhere in the grid. */
export function hueOf(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % 360;
}

/** Text cut to n characters with an ellipsis. */
export function clip(text, n) {
  const s = String(text);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

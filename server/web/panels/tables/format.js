// Formats of the grid beyond the console's shared ones (../../format.js, re-exported here):
// cell numbers at full precision and dates through Intl in the reader's locale, and the
// initials + hue of a user's avatar.
export { exactTime, plural, relativeTime } from '../../format.js';

const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 10 });
// A date-only value ("2024-03-04") names a calendar day, not an instant: shown as written,
// whatever the reader's time zone.
const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
const instant = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
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

// Typed cell values: how a value reads in a cell, the input that edits it, what that input
// means for its column, and the server's own ordering and filtering of values (so a row that
// arrives by push lands where the next page would have put it).
import { AckError, h } from '../../lib.js';
import { formatDateValue, formatNumber } from './format.js';

export const TYPES = ['text', 'number', 'bool', 'datetime'];
// services/crypto.py: how a secret value reads for those who may not see it
const MASK = '••••';

export const isMasked = (column, value) => column.secret && typeof value === 'string'
  && value.startsWith(MASK);

/** The cell's content and its title (the exact value, where the text is a rendering of it). */
export function display(column, value) {
  if (value === null || value === undefined) {
    return { node: h('span', { class: 'null', 'aria-label': 'empty' }, '—'), title: null };
  }
  if (isMasked(column, value)) {
    return { node: h('span', { class: 'masked' }, value), title: 'Secret: hidden from you' };
  }
  if (column.type === 'bool') {
    return { node: h('span', { class: value ? 'yes' : 'no' }, value ? 'Yes' : 'No'), title: null };
  }
  if (column.type === 'number') {
    const text = formatNumber(value);
    return { node: text, title: text === String(value) ? null : String(value) };
  }
  if (column.type === 'datetime') return { node: formatDateValue(value), title: String(value) };
  const text = String(value);
  return { node: text, title: text.length > 24 ? text : null };
}

/** The control that edits (or adds) a value of this column. */
export function valueInput(column, value, label, testid) {
  const common = { 'aria-label': label, 'data-testid': testid, 'data-column': column.name };
  if (isMasked(column, value)) {
    return h('input', { type: 'text', ...common, value: '', autocomplete: 'off',
      placeholder: `${value} (hidden: type to replace)` });
  }
  if (column.type === 'number') {
    return h('input', { type: 'number', step: 'any', ...common,
      value: value === null || value === undefined ? '' : String(value) });
  }
  if (column.type === 'bool') {
    return h('select', common, [['', '—'], ['true', 'true'], ['false', 'false']].map(
      ([v, text]) => h('option', { value: v,
        selected: v === (value === true ? 'true' : value === false ? 'false' : '') }, text)));
  }
  return h('input', { type: 'text', ...common, autocomplete: 'off',
    placeholder: column.type === 'datetime' ? 'YYYY-MM-DD or YYYY-MM-DDTHH:MM' : null,
    value: value === null || value === undefined ? '' : String(value) });
}

/** What an input means for its column: {changed, value}; a value the column cannot take is
 *  refused here with the server's wording (bad_request naming the column). */
export function readInput(column, el, base) {
  const raw = el.value;
  const kind = { number: 'a number', datetime: 'a date or date-time' }[column.type] || 'a valid';
  const bad = () => new AckError({ code: 'bad_request',
    message: `column '${column.name}' takes ${kind} value`, details: { column: column.name } });
  if (isMasked(column, base)) return { changed: raw !== '', value: raw };
  let value;
  if (column.type === 'number') {
    if (el.validity && el.validity.badInput) throw bad();
    value = raw.trim() === '' ? null : Number(raw);
    if (value !== null && !Number.isFinite(value)) throw bad();
  } else if (column.type === 'bool') {
    value = raw === '' ? null : raw === 'true';
  } else if (column.type === 'datetime') {
    value = raw.trim() === '' ? null : raw.trim();
    if (value !== null && Number.isNaN(Date.parse(value))) throw bad();
  } else {
    value = raw === '' && (base === null || base === undefined) ? null : raw;
  }
  const before = base === undefined ? null : base;
  return { changed: value !== before, value };
}

// -- the store's ordering (store/sqlite/tables.py list_rows: json_extract keys, then id) --

// SQLite orders NULL first, then numbers (booleans are 0/1), then text by code point.
function rank(v) {
  if (v === null || v === undefined) return [0, 0];
  if (typeof v === 'boolean') return [1, v ? 1 : 0];
  if (typeof v === 'number') return [1, v];
  return [2, String(v)];
}

function compareValues(a, b) {
  const [ra, va] = rank(a);
  const [rb, vb] = rank(b);
  if (ra !== rb) return ra - rb;
  if (va < vb) return -1;
  return va > vb ? 1 : 0;
}

/** A comparator of rows in the order table:rows returns them for this sort. */
export function rowOrder(sort) {
  const sign = sort && sort.order === 'desc' ? -1 : 1;
  return (a, b) => {
    const byKey = sort ? compareValues(a.values[sort.column], b.values[sort.column]) : 0;
    if (byKey) return sign * byKey;
    if (a.id === b.id) return 0;
    return sign * (a.id < b.id ? -1 : 1);
  };
}

/** Whether a row passes the filters as the server would judge it (null matches nothing). */
export function matches(row, filters) {
  return filters.every((f) => {
    const v = row.values[f.column];
    if (v === null || v === undefined) return false;
    if (f.op === 'contains') return String(v).toLowerCase().includes(String(f.value).toLowerCase());
    const c = compareValues(v, f.value);
    switch (f.op) {
      case 'eq': return c === 0;
      case 'ne': return c !== 0;
      case 'lt': return c < 0;
      case 'lte': return c <= 0;
      case 'gt': return c > 0;
      case 'gte': return c >= 0;
      default: return true;
    }
  });
}

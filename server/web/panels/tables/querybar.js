// The filter and sort bar over the grid: filters as removable chips (column, operator, value;
// all must hold), one sort (column and direction; the column headers set it too). Secret
// columns can be neither (the server refuses: their values are stored encrypted).
import { h } from '../../lib.js';
import { formatDateValue, formatNumber } from './format.js';

const OPS = {
  text: [['contains', 'contains'], ['eq', 'is'], ['ne', 'is not']],
  number: [['eq', '='], ['ne', '≠'], ['lt', '<'], ['lte', '≤'], ['gt', '>'], ['gte', '≥']],
  bool: [['eq', 'is']],
  datetime: [['gte', 'on or after'], ['lt', 'before'], ['eq', 'is'], ['gt', 'after'],
    ['lte', 'on or before']],
};

function chipText(column, f) {
  const op = (OPS[column.type] || OPS.text).find(([o]) => o === f.op);
  let value = f.value;
  if (column.type === 'bool') value = f.value ? 'Yes' : 'No';
  else if (column.type === 'number') value = formatNumber(f.value);
  else if (column.type === 'datetime') value = formatDateValue(f.value);
  else value = `“${f.value}”`;
  return `${column.name} ${op ? op[1] : f.op} ${value}`;
}

/** opts: {onChange({sort, filters})} */
export function createQueryBar(opts) {
  let table = null;
  let filters = [];
  let sort = null;

  const fColumn = h('select', { 'data-testid': 'filter-column', 'aria-label': 'Filter column',
    onchange: () => fitValue() });
  const fOp = h('select', { 'data-testid': 'filter-op', 'aria-label': 'Filter condition' });
  const valueSlot = h('span', { class: 'filter-value' });
  let fValue = h('input', { type: 'text' });
  const problem = h('p', { class: 'msg error', role: 'alert', 'data-testid': 'filter-error' });
  const addForm = h('form', { class: 'filter-add', 'data-testid': 'filter-form', hidden: true,
    'aria-label': 'Add a filter', onsubmit: (e) => {
      e.preventDefault();
      addFilter();
    } },
  fColumn, fOp, valueSlot,
  h('button', { type: 'submit', class: 'small primary', 'data-testid': 'filter-add' }, 'Add'),
  problem);
  const toggle = h('button', { type: 'button', class: 'small', 'data-testid': 'filter-toggle',
    'aria-expanded': 'false', onclick: () => showForm(addForm.hidden) }, 'Filter');
  const chips = h('ul', { class: 'filter-chips', 'data-testid': 'filter-chips',
    'aria-label': 'Active filters' });
  const sColumn = h('select', { 'data-testid': 'sort-column', 'aria-label': 'Sort by',
    onchange: () => setSort(sColumn.value ? { column: sColumn.value,
      order: sOrder.value } : null) });
  const sOrder = h('select', { 'data-testid': 'sort-order', 'aria-label': 'Sort order',
    onchange: () => { if (sort) setSort({ column: sort.column, order: sOrder.value }); } },
  h('option', { value: 'asc' }, 'ascending'), h('option', { value: 'desc' }, 'descending'));
  const sortBox = h('div', { class: 'sort-box' }, h('span', { class: 'bar-label',
    'aria-hidden': 'true' }, 'Sort'), sColumn, sOrder);
  const el = h('div', { class: 'querybar', 'data-testid': 'querybar' },
    h('div', { class: 'querybar-line' }, toggle, chips, sortBox), addForm);

  const usable = () => (table ? table.columns.filter((c) => !c.secret) : []);
  const columnOf = (name) => table && table.columns.find((c) => c.name === name);

  function showForm(show) {
    addForm.hidden = !show;
    toggle.setAttribute('aria-expanded', String(show));
    problem.textContent = '';
    if (show) fColumn.focus();
  }

  function fitValue() {
    const column = columnOf(fColumn.value);
    if (!column) return;
    fOp.replaceChildren(...(OPS[column.type] || OPS.text).map(([v, text]) =>
      h('option', { value: v }, text)));
    const common = { 'data-testid': 'filter-value', 'aria-label': `Value of ${column.name}` };
    if (column.type === 'bool') {
      fValue = h('select', common, h('option', { value: 'true' }, 'Yes'),
        h('option', { value: 'false' }, 'No'));
    } else if (column.type === 'number') {
      fValue = h('input', { type: 'number', step: 'any', ...common });
    } else if (column.type === 'datetime') {
      fValue = h('input', { type: 'date', ...common });
    } else {
      fValue = h('input', { type: 'text', autocomplete: 'off', ...common });
    }
    valueSlot.replaceChildren(fValue);
  }

  function addFilter() {
    const column = columnOf(fColumn.value);
    if (!column) return;
    const raw = fValue.value;
    let value = raw;
    if (column.type === 'bool') value = raw === 'true';
    else if (column.type === 'number') {
      value = raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(value)) {
        problem.textContent = `Type a number to compare ${column.name} with.`;
        fValue.focus();
        return;
      }
    } else if (raw.trim() === '') {
      problem.textContent = column.type === 'datetime' ? 'Choose a date.'
        : `Type the text to look for in ${column.name}.`;
      fValue.focus();
      return;
    }
    problem.textContent = '';
    filters = [...filters, { column: column.name, op: fOp.value, value }];
    if (fValue.tagName === 'INPUT') fValue.value = '';
    renderChips();
    opts.onChange({ sort, filters });
  }

  function removeFilter(i) {
    filters = filters.filter((_, j) => j !== i);
    renderChips();
    opts.onChange({ sort, filters });
    const rest = chips.querySelectorAll('button');
    (rest[Math.min(i, rest.length - 1)] || toggle).focus();
  }

  function setSort(next) {
    sort = next;
    renderSort();
    opts.onChange({ sort, filters });
  }

  function renderChips() {
    chips.replaceChildren(...filters.map((f, i) => {
      const text = chipText(columnOf(f.column) || { name: f.column, type: 'text' }, f);
      return h('li', { class: 'chip', 'data-testid': 'filter-chip' }, h('span', {}, text),
        h('button', { type: 'button', class: 'link', 'data-testid': 'filter-remove',
          'aria-label': `Remove filter ${text}`, onclick: () => removeFilter(i) }, '×'));
    }));
    toggle.textContent = filters.length ? `Filter (${filters.length})` : 'Filter';
  }

  function renderSort() {
    sColumn.value = sort ? sort.column : '';
    sOrder.value = sort ? sort.order : 'asc';
    sOrder.disabled = !sort;
  }

  return {
    el,
    /** Another table: its columns, no filters, no sort. */
    setTable(t) {
      table = t;
      filters = [];
      sort = null;
      const cols = usable();
      fColumn.replaceChildren(...cols.map((c) => h('option', { value: c.name }, c.name)));
      sColumn.replaceChildren(h('option', { value: '' }, 'none (oldest first)'),
        ...cols.map((c) => h('option', { value: c.name }, c.name)));
      toggle.disabled = cols.length === 0;
      sColumn.disabled = cols.length === 0;
      fitValue();
      renderChips();
      renderSort();
      showForm(false);
    },
    /** A header click: ascending, then descending, then unsorted. */
    cycleSort(column) {
      if (!sort || sort.column !== column) setSort({ column, order: 'asc' });
      else if (sort.order === 'asc') setSort({ column, order: 'desc' });
      else setSort(null);
    },
    clearFilters() {
      filters = [];
      renderChips();
      opts.onChange({ sort, filters });
    },
  };
}

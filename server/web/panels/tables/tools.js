// Making tables: a new one with typed columns (optionally secret), or one imported from a CSV
// file (uploaded over REST, then table:import; bad lines are listed, and can be skipped).
import { AckError, act, field, h } from '../../lib.js';
import { messageLine } from './messages.js';
import { plural } from './format.js';
import { TYPES } from './values.js';
import { uploadFile } from '../../upload.js';

/** opts: {app, project() → {id}, onMade(table, note)} */
export function createTools(opts) {
  const { app } = opts;

  // -- a new table ------------------------------------------------------------------------

  const createMsg = messageLine('table-create-error');
  const createName = h('input', { type: 'text', name: 'name', required: true, maxlength: 100,
    'data-testid': 'table-create-name' });
  const columnList = h('ol', { class: 'column-list', 'data-testid': 'column-list',
    'aria-labelledby': 'table-columns-label' });

  function columnEditor() {
    const li = h('li', { class: 'column-editor', 'data-testid': 'column-editor' });
    const n = () => [...columnList.children].indexOf(li) + 1;
    const name = h('input', { type: 'text', required: true, maxlength: 100,
      'data-testid': 'column-name', 'aria-label': 'Column name' });
    const type = h('select', { 'data-testid': 'column-type', 'aria-label': 'Column type' },
      TYPES.map((t) => h('option', { value: t }, t)));
    const secret = h('input', { type: 'checkbox', 'data-testid': 'column-secret' });
    const remove = h('button', { type: 'button', class: 'link danger',
      'data-testid': 'column-remove', onclick: () => {
        li.remove();
        relabel();
      } }, 'Remove');
    li.append(name, type, h('label', { class: 'check' }, secret, 'secret'), remove);
    li.relabel = () => {
      name.setAttribute('aria-label', `Column ${n()} name`);
      type.setAttribute('aria-label', `Column ${n()} type`);
      secret.setAttribute('aria-label', `Column ${n()} is secret`);
      remove.setAttribute('aria-label', `Remove column ${n()}`);
      remove.disabled = columnList.children.length < 2;
    };
    li.read = () => ({ name: name.value.trim(), type: type.value, secret: secret.checked });
    return li;
  }

  function relabel() {
    for (const li of columnList.children) li.relabel();
  }

  function addColumn() {
    const li = columnEditor();
    columnList.append(li);
    relabel();
    return li;
  }

  const createControls = h('fieldset', { class: 'stack' },
    h('legend', { class: 'visually-hidden' }, 'New table'),
    field('Table name', createName),
    h('div', { class: 'field' }, h('span', { class: 'field-label', id: 'table-columns-label' },
      'Columns'), columnList),
    h('div', { class: 'row' },
      h('button', { type: 'button', 'data-testid': 'column-add', onclick: () => {
        addColumn().querySelector('input').focus();
      } }, 'Add column'),
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'table-create' },
        'Create table')));
  const createForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    act(createControls, createMsg, async () => {
      const payload = { projectId: opts.project().id, name: createName.value.trim(),
        columns: [...columnList.children].map((li) => li.read()) };
      const created = await app.call('table:create', payload);
      createName.value = '';
      columnList.replaceChildren();
      addColumn();
      createSection.open = false;
      await opts.onMade(created, `Created table “${created.name}”.`);
    });
  } }, createControls, createMsg.el);
  addColumn();
  const createSection = h('details', { class: 'tool', 'data-testid': 'table-create-section' },
    h('summary', { 'data-testid': 'table-create-toggle' }, 'New table'), createForm);

  // -- a CSV import -----------------------------------------------------------------------

  const importMsg = messageLine('table-import-error');
  const importFile = h('input', { type: 'file', name: 'file', required: true,
    accept: '.csv,text/csv', 'data-testid': 'table-import-file' });
  const importName = h('input', { type: 'text', name: 'name', maxlength: 100,
    'data-testid': 'table-import-name' });
  const importSkip = h('input', { type: 'checkbox', name: 'skipBadRows',
    'data-testid': 'table-import-skip' });
  const badLines = h('ul', { class: 'bad-lines', 'data-testid': 'import-bad-lines', hidden: true,
    'aria-label': 'Lines that could not be imported' });
  let uploaded = null; // {file, projectId, fileId}: a retry (e.g. skipping bad rows) reuses it

  function showBadLines(lines, total) {
    const items = (lines || []).map((b) => h('li', { 'data-testid': 'import-bad-line',
      'data-line': b.line }, `line ${b.line}: ${b.problem || 'could not be read'}`));
    const more = total - items.length;
    if (more > 0) items.push(h('li', { class: 'muted' }, `… ${more} more`));
    badLines.replaceChildren(...items);
    badLines.hidden = items.length === 0;
  }

  const importControls = h('fieldset', { class: 'stack' },
    h('legend', { class: 'visually-hidden' }, 'Import a CSV file'),
    field('CSV file', importFile),
    field('Table name', importName, '(optional: the file name)'),
    h('label', { class: 'check' }, importSkip, 'Skip rows with the wrong number of fields'),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'table-import' }, 'Import'));
  const importForm = h('form', { onsubmit: (e) => {
    e.preventDefault();
    showBadLines([], 0);
    act(importControls, importMsg, async () => {
      const file = importFile.files[0];
      if (!file) throw new AckError({ code: 'bad_request', message: 'choose a CSV file' });
      const projectId = opts.project().id;
      if (!uploaded || uploaded.file !== file || uploaded.projectId !== projectId) {
        const record = await uploadFile(app, projectId, file);
        uploaded = { file, projectId, fileId: record.id };
      }
      const payload = { projectId, fileId: uploaded.fileId };
      if (importName.value.trim()) payload.name = importName.value.trim();
      if (importSkip.checked) payload.skipBadRows = true;
      let result;
      try {
        result = await app.call('table:import', payload);
      } catch (err) {
        const d = err.details || {};
        if (d.badLines) showBadLines(d.badLines, d.badCount || d.badLines.length);
        else if (d.line) showBadLines([{ line: d.line, problem: err.message }], 1);
        throw err;
      }
      uploaded = null;
      importForm.reset();
      const skipped = result.skipped || { count: 0, lines: [] };
      showBadLines(skipped.lines, skipped.count);
      const notes = [`Imported ${plural(result.rows, 'row')} into “${result.table.name}”`];
      if (skipped.count) notes.push(`skipped ${plural(skipped.count, 'bad row')}`);
      for (const w of result.warnings || []) notes.push(w);
      importMsg.info(`${notes.join('; ')}.`);
      await opts.onMade(result.table, null);
    });
  } }, importControls, importMsg.el, badLines);
  const importSection = h('details', { class: 'tool', 'data-testid': 'table-import-section' },
    h('summary', { 'data-testid': 'table-import-toggle' }, 'Import CSV'), importForm);

  return {
    el: h('div', { class: 'tables-tools row' }, createSection, importSection),
    setWritable(writable) {
      createSection.hidden = !writable;
      importSection.hidden = !writable;
    },
    reset() {
      uploaded = null;
      createMsg.clear();
      importMsg.clear();
      showBadLines([], 0);
    },
  };
}

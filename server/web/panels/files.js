// Files (a project view): every file uploaded to the open project — name, size, type, who
// uploaded it and when — live for everyone through file:added / file:deleted. Editors upload
// (several at once, each with its progress) and delete (file:delete, after a confirmation in
// the row); anyone in the project downloads (REST, with the Bearer token).
import { act, authorizedFetch, h, messageBox, plural } from '../lib.js';
import { bytes, timeEl } from '../format.js';
import { saveResponse, uploadFile } from '../upload.js';

export default { id: 'files', title: 'Files', slot: 'main', mount };

const PAGE = 200;

function mount(root, app) {
  const msg = messageBox('files-error');
  let project = null; // {id, name, role}
  let members = new Map(); // userId → username, for "uploaded by"
  const files = new Map(); // id → file view
  let nextCursor = null;
  let state = 'idle'; // 'loading' | 'ready' | 'failed'
  let confirming = null; // the file id whose deletion awaits a confirmation
  let generation = 0;

  const canWrite = () => Boolean(project && project.role !== 'viewer');

  // -- upload -----------------------------------------------------------------------------

  const input = h('input', { type: 'file', multiple: true, class: 'visually-hidden',
    'data-testid': 'files-upload' });
  const uploadLabel = h('label', { class: 'button primary file-button' }, input, 'Upload files');
  const uploads = h('ul', { class: 'uploads', 'data-testid': 'files-uploads',
    'aria-label': 'Uploads in progress' });

  input.addEventListener('change', async () => {
    const chosen = [...input.files];
    input.value = '';
    msg.clear();
    for (const file of chosen) await uploadOne(file);
  });

  async function uploadOne(file) {
    const bar = h('progress', { max: 100, value: 0 });
    const label = h('span', { class: 'muted' }, `0 of ${bytes(file.size)}`);
    const item = h('li', { 'data-testid': 'files-upload-item' }, h('span', { class: 'name' },
      file.name), bar, label);
    uploads.append(item);
    try {
      const stored = await uploadFile(app, project.id, file, ({ loaded, total }) => {
        bar.value = (100 * loaded) / total;
        label.textContent = `${bytes(loaded)} of ${bytes(total)}`;
      });
      add(stored);
      msg.info(`Uploaded “${stored.name}” (${bytes(stored.size)}).`);
    } catch (err) {
      msg.error(err);
    } finally {
      item.remove();
    }
  }

  // -- the list ---------------------------------------------------------------------------

  const body = h('tbody', { 'data-testid': 'files-list' });
  const table = h('table', { class: 'files' },
    h('caption', { class: 'visually-hidden' }, 'Files in this project'),
    h('thead', {}, h('tr', {}, ['Name', 'Size', 'Type', 'Uploaded by', 'Uploaded', 'Actions']
      .map((c) => h('th', { scope: 'col', class: c === 'Size' ? 'num' : null }, c)))), body);
  const scroller = h('div', { class: 'table-scroll' }, table);
  const count = h('p', { class: 'muted', 'data-testid': 'files-count' });
  const loading = h('p', { class: 'muted loading', role: 'status', 'data-testid': 'files-loading' },
    'Loading the files…');
  const empty = h('div', { class: 'empty-state', 'data-testid': 'files-empty' },
    h('p', {}, 'No files yet.'),
    h('p', { class: 'muted' }, 'Upload CSV tables, packet captures, chat exports or text: '
      + 'they can be imported, analysed, and attached to a chat.'));
  const more = h('button', { type: 'button', 'data-testid': 'files-more',
    onclick: () => act(more, msg, () => load(nextCursor)) }, 'Load more');

  function add(file) {
    if (!project || file.projectId !== project.id) return;
    files.set(file.id, file);
    render();
  }

  function row(f) {
    const uploader = members.get(f.uploaderId) || 'a former member';
    const download = h('button', { type: 'button', class: 'link', 'data-testid': 'file-download',
      'aria-label': `Download ${f.name}`,
      onclick: () => act(download, msg, async () => {
        saveResponse(await authorizedFetch(app, `/api/files/${encodeURIComponent(f.id)}`),
          f.name);
      }) }, 'Download');
    const actions = [download];
    if (canWrite() && confirming === f.id) {
      actions.push(h('span', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion' },
        h('span', {}, 'Delete?'),
        h('button', { type: 'button', class: 'danger small', 'data-testid': 'file-delete-confirm',
          onclick: (e) => act(e.currentTarget, msg, async () => {
            await app.call('file:delete', { id: f.id });
            files.delete(f.id);
            confirming = null;
            render();
            msg.info(`Deleted “${f.name}”.`);
          }) }, 'Delete'),
        h('button', { type: 'button', class: 'small', 'data-testid': 'file-delete-cancel',
          onclick: () => {
            confirming = null;
            render();
            focusRow(f.id, 'file-delete');
          } }, 'Cancel')));
    } else if (canWrite()) {
      actions.push(h('button', { type: 'button', class: 'link danger', 'data-testid': 'file-delete',
        'aria-label': `Delete ${f.name}`, onclick: () => {
          confirming = f.id;
          render();
          focusRow(f.id, 'file-delete-confirm');
        } }, 'Delete'));
    }
    return h('tr', { 'data-testid': 'file-row', 'data-file-id': f.id, 'data-file-name': f.name },
      h('td', { class: 'name' }, h('span', { class: 'clip', title: f.name }, f.name)),
      h('td', { class: 'num', 'data-testid': 'file-size', 'data-bytes': String(f.size),
        title: `${f.size.toLocaleString()} bytes` }, bytes(f.size)),
      h('td', { class: 'muted' }, h('span', { class: 'clip', title: f.mime }, kindOf(f))),
      h('td', {}, uploader),
      h('td', { 'data-testid': 'file-time' }, timeEl(f.createdAt)),
      h('td', { class: 'actions' }, actions));
  }

  function focusRow(id, testid) {
    body.querySelector(`[data-file-id="${CSS.escape(id)}"] [data-testid="${testid}"]`)?.focus();
  }

  function render() {
    const items = [...files.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    body.replaceChildren(...items.map(row));
    const total = items.reduce((n, f) => n + f.size, 0);
    count.textContent = items.length ? `${plural(items.length, 'file')}, ${bytes(total)}` : '';
    loading.hidden = state !== 'loading';
    empty.hidden = state !== 'ready' || items.length > 0;
    scroller.hidden = items.length === 0;
    more.hidden = !nextCursor;
    uploadLabel.hidden = !canWrite();
  }

  async function load(cursor = null) {
    const gen = generation;
    const pid = project.id;
    if (!cursor) {
      state = 'loading';
      render();
    }
    try {
      const page = await app.call('file:list', { projectId: pid, limit: PAGE,
        ...(cursor ? { cursor } : {}) });
      if (gen !== generation) return;
      if (!cursor) files.clear();
      for (const f of page.items) files.set(f.id, f);
      nextCursor = page.nextCursor;
      state = 'ready';
    } catch (err) {
      if (gen !== generation) return;
      state = 'failed';
      msg.error(err);
    }
    render();
  }

  app.on('file:added', (d) => add(d.file));
  app.on('file:deleted', (d) => {
    if (files.delete(d.id)) render();
  });
  app.bus.on('room', (room) => {
    if (room.state !== 'open') return;
    members = new Map((room.project.members || []).map((m) => [m.userId, m.username]));
    if (files.size) render();
  });
  app.bus.on('project', (p) => {
    const same = project && p && project.id === p.id;
    project = p;
    if (!same) {
      generation += 1;
      files.clear();
      nextCursor = null;
      confirming = null;
      msg.clear();
    }
    if (p) load();
    else render();
  });
  app.bus.on('resync', ({ room, error }) => {
    if (project && !error && room === `project:${project.id}`) load();
  });

  root.append(h('div', { class: 'row spread toolbar' }, count, uploadLabel), uploads, msg.el,
    loading, empty, scroller, more);
  render();
}

/** A short, readable kind from the file's name and sniffed type. */
function kindOf(f) {
  const ext = (f.name.match(/\.([A-Za-z0-9]{1,8})(\.gz)?$/) || [])[1];
  if (/pcap/.test(f.mime) || /^(pcap|pcapng|cap)$/i.test(ext || '')) return 'capture';
  if (ext) return ext.toLowerCase();
  return f.mime || 'file';
}

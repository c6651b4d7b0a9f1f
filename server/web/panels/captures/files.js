// The project's captures: the list (kept live from the project room's pushes by the
// workspace), each capture's ingest state in words, and the upload with its own progress.
import { h } from '../../lib.js';
import { bytes, count, duration, percent, rate } from './format.js';

const CAPTURE = /\.(pcap|pcapng|cap)(\.gz)?$/i;
const MIMES = ['application/vnd.tcpdump.pcap', 'application/x-pcapng'];

export const isCapture = (f) => CAPTURE.test(f.name) || MIMES.includes(f.mime);

/** The phase a capture is in, for data-phase and styling: queued | ingest | done | failed |
 *  cancelled | none (uploaded, never ingested). */
export function phase(job) {
  if (!job) return 'none';
  return { running: 'ingest' }[job.state] || job.state;
}

/** The job's state in words, with rate and time left while it runs. */
export function jobText(job, summary) {
  const p = job && job.progress;
  switch (job ? job.state : 'none') {
    case 'queued':
      return job.position ? `Queued · ${count(job.position)} ahead` : 'Queued';
    case 'running': {
      if (!p) return 'Ingesting…';
      const parts = [p.percent === null || p.percent === undefined ? 'Ingesting'
        : `Ingesting ${Math.floor(p.percent)}%`, `${count(p.packets)} packets`];
      if (p.rate) parts.push(rate(p.rate, 'packets'));
      if (p.etaSeconds !== null && p.etaSeconds !== undefined) parts.push(`about ${duration(Math.max(1, p.etaSeconds))} left`);
      return parts.join(' · ');
    }
    case 'done':
      return summary ? `${count(summary.packets)} packets · ${duration(summary.duration)}` : 'Ready';
    case 'failed':
      return `Could not be read: ${(job.error && job.error.message) || 'the ingest failed'}`;
    case 'cancelled':
      return 'Ingest cancelled';
    default:
      return 'Not ingested';
  }
}

/** A percentage for the progress bar, or null when unknown (an indeterminate bar). */
export function jobPercent(job) {
  if (!job) return 0;
  if (job.state === 'done') return 100;
  if (job.state === 'running') {
    const pc = job.progress && job.progress.percent;
    return pc === null || pc === undefined ? null : pc;
  }
  return 0;
}

export const uploadText = ({ loaded, total, speed, eta }) => [
  `Uploading ${percent(loaded, total)}`, `${bytes(loaded)} of ${bytes(total)}`,
  ...(speed ? [`${bytes(speed)}/s`] : []),
  ...(eta !== null && eta !== undefined && loaded < total ? [`about ${duration(Math.max(1, eta))} left`] : []),
].join(' · ');

/** captureList({onChoose(fileId)}) → {el, render(entries, selectedId)} where entries are
 *  {file, job, summary} in upload order. */
export function captureList({ onChoose }) {
  const list = h('ul', { class: 'cap-files', 'data-testid': 'pcap-files', 'aria-label': 'Captures' });
  const empty = h('p', { class: 'cap-note muted', 'data-testid': 'pcap-files-empty' },
    'No captures in this project yet.');
  const el = h('div', { class: 'cap-files-box' }, list, empty);

  function render(entries, selectedId) {
    empty.hidden = entries.length > 0;
    list.replaceChildren(...entries.map(({ file, job, summary }) => {
      const state = phase(job);
      const pc = jobPercent(job);
      return h('li', { 'data-testid': 'pcap-file', 'data-file-id': file.id, 'data-name': file.name,
        'data-state': state, class: file.id === selectedId ? 'active' : null },
      h('button', { type: 'button', class: 'cap-file-open', 'data-testid': 'pcap-file-open',
        'aria-current': file.id === selectedId ? 'true' : null, onclick: () => onChoose(file.id) },
      h('span', { class: 'cap-file-name', title: file.name }, file.name),
      h('span', { class: `cap-file-meta state-${state}` }, `${bytes(file.size)} · ${jobText(job, summary)}`)),
      state === 'ingest' || state === 'queued'
        ? h('progress', { class: 'cap-file-progress', max: 100, value: pc === null ? null : pc,
          'aria-label': `${file.name}: ${jobText(job, summary)}` }) : null);
    }));
  }

  return { el, render };
}

// What the grid tells its reader when something fails: a sentence a person can act on, never
// a bare error code. The code stays on the message element (data-code) for tests and tools.
import { AckError, h } from '../../lib.js';
import { errorText } from '../../error-messages.js';

const sentence = (text) => {
  const s = String(text || '').trim();
  if (!s) return '';
  const first = s[0].toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(first) ? first : `${first}.`;
};

const LOCK_ENDED = {
  timeout: 'timed out (nothing was saved or kept alive in time)',
  owner_override: 'was broken by a project owner',
  disconnect: 'ended when your connection dropped',
};

/** A human sentence for an AckError (or any error) raised by a grid action. */
export function humanError(err) {
  if (!(err instanceof AckError) && !(err && err.code)) {
    return sentence(`Something went wrong in the page: ${(err && err.message) || err}`);
  }
  const d = err.details || {};
  switch (err.code) {
    case 'locked': {
      if (d.holder && d.holder.username) {
        return `${d.holder.username} is editing this row right now; try again when they are done.`;
      }
      if (Array.isArray(d.holders) && d.holders.length) {
        const names = [...new Set(d.holders.map((x) => x.username))].join(', ');
        return `Some rows are being edited (by ${names}); try again when they are done.`;
      }
      return sentence(err.message);
    }
    case 'rate_limited':
      return d.retryAfter !== undefined
        ? `You can edit this row again in ${Math.ceil(d.retryAfter)} s: your last lock on it `
          + 'timed out or was broken.'
        : sentence(err.message);
    case 'conflict':
      if (d.reason === 'stale_lock') {
        return 'Your lock on this row is gone (it timed out or was broken), so the change was '
          + 'not saved. Reload to see the row as it is now.';
      }
      return 'This row changed since you loaded it, so the change was not saved. Reload to see '
        + 'the latest version.';
    case 'not_found':
      return sentence(err.message && !/^not.found$/i.test(err.message)
        ? `${err.message}: it may have been deleted by someone else` : 'It no longer exists');
    case 'forbidden':  // the console's sentence (a guest's limit has its own), the server's after
      return errorText(err);
    case 'unauthorized':
    case 'token_expired':
      return 'Your session has ended: sign in again.';
    case 'timeout':
      return 'The server did not answer in time. Check your connection and try again.';
    case 'disconnected':
      return 'You are offline: the change was not sent. Try again once reconnected.';
    case 'internal':
      return 'Something went wrong on the server. Try again; if it keeps failing, reload.';
    default:
      return sentence(err.message || err.code);
  }
}

/** Our own lock on a row ended while we were editing it. */
export function lockEndedText(reason) {
  const how = LOCK_ENDED[reason] || 'ended';
  return `Your lock on this row ${how}. What you typed cannot be saved; reload to see the row `
    + 'as it is now.';
}

/** A polite live region for outcomes, with a Reload action when `onReload` is given. */
export function messageLine(testid, onReload = null) {
  const text = h('p', { class: 'msg', role: 'status', 'aria-live': 'polite',
    'data-testid': testid });
  const reload = onReload ? h('button', { type: 'button', class: 'small',
    'data-testid': 'table-reload', hidden: true, onclick: () => onReload() }, 'Reload table')
    : null;
  const el = h('div', { class: 'grid-msg' }, text, reload);
  const set = (kind, message, code, offerReload) => {
    text.className = `msg ${kind}`;
    text.textContent = message;
    if (code) text.dataset.code = code; else delete text.dataset.code;
    if (reload) reload.hidden = !offerReload;
  };
  return {
    el,
    get code() { return text.dataset.code || null; },
    error(err, offerReload = false) {
      if (!(err instanceof AckError) && !(err && err.code)) console.error(err);
      set('error', humanError(err), (err && err.code) || 'error', offerReload);
    },
    problem(message, code, offerReload = false) { set('error', message, code, offerReload); },
    info(message) { set('info', message, null, false); },
    clear() { set('', '', null, false); },
  };
}

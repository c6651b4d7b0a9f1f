// Small shared helpers for the console: the error type acks reject with, a tiny event bus,
// and DOM helpers. No framework: panels build elements with h() and re-render what changes.

/** What app.call() rejects with: the ack's error envelope (SPEC §2), plus the event name;
 *  client-side failures use code 'timeout' (no ack in time) or 'disconnected'. The client
 *  library's CallError, under the name the panels know it by. */
import { CallError as AckError } from './client.js';
import { describeError, errorText } from './error-messages.js';
import { plural } from './format.js';

export { AckError, errorText, plural };

/** on(name, fn) → unsubscribe function; emit(name, value) calls every handler, isolating
 *  failures so one broken panel cannot stop the others. */
export class Bus {
  constructor() { this.handlers = new Map(); }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name)?.delete(fn);
  }

  emit(name, value) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try { fn(value); } catch (err) { console.error(`handler for "${name}" failed`, err); }
    }
  }
}

/** h('button', {type: 'button', onclick: fn, 'data-testid': 'x'}, 'Label', childNode, [more])
 *  Attributes: on<event> functions become listeners; style is set as cssText; true → empty
 *  attribute; false, null and undefined are skipped. Children: nodes, strings, numbers,
 *  (nested) arrays; null skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'style') {
      // Through the CSSOM: the Content-Security-Policy (style-src 'self') refuses style
      // attributes written as markup, not properties set from a script.
      el.style.cssText = String(value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  el.append(...children.flat(Infinity)
    .filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : String(c))));
  return el;
}

/** A labelled form control: <label class="field"><span>text</span>control</label>. */
export function field(text, control, hint = '') {
  return h('label', { class: 'field' },
    h('span', { class: 'field-label' }, text, hint ? h('small', {}, ` ${hint}`) : null),
    control);
}

/** A polite live region for a panel's outcome messages. An error reads as a sentence for
 *  its code (error-messages.js) with the server's message after it; the code itself is in
 *  data-code, and details.reason in data-reason. */
export function messageBox(testid) {
  const el = h('p', { class: 'msg', role: 'status', 'aria-live': 'polite', 'data-testid': testid });
  const set = (kind, content, code, reason) => {
    el.className = `msg ${kind}`;
    el.replaceChildren(...content);
    if (code) el.dataset.code = code; else delete el.dataset.code;
    if (reason) el.dataset.reason = reason; else delete el.dataset.reason;
  };
  return {
    el,
    error(err) {
      if (!(err instanceof AckError)) console.error(err); // a bug, not an answer
      const { summary, detail, code } = describeError(err);
      set('error', [summary ? h('strong', {}, summary) : null, summary && detail ? ' ' : null,
        detail ? h('span', { class: 'detail' }, detail) : null].filter(Boolean), code,
      err && err.details && err.details.reason);
    },
    info(text) { set('info', [text]); },
    clear() { set('', []); },
  };
}

/** Run an async action with its controls disabled; errors go to the message box.
 *  Returns the action's result, or undefined when it failed. */
export async function act(controls, msg, fn) {
  msg.clear();
  controls.disabled = true;
  try {
    return await fn();
  } catch (err) {
    msg.error(err);
    return undefined;
  } finally {
    controls.disabled = false;
  }
}

/** fetch() with the signed-in user's Bearer access token, refreshed once (app.refresh) if it
 *  had expired; a non-2xx answer becomes an AckError carrying the server's error. */
export async function authorizedFetch(app, url, init = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const token = app.tokens && app.tokens.accessToken;
    if (!token) throw new AckError({ code: 'unauthorized', message: 'not signed in' });
    const res = await fetch(url, { ...init,
      headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } });
    if (res.ok) return res;
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    const error = (body && body.error) || { code: 'internal',
      message: `${res.status} ${res.statusText}` };
    if (error.code === 'token_expired' && attempt === 0) {
      await app.refresh();
      continue;
    }
    throw new AckError(error, url);
  }
}

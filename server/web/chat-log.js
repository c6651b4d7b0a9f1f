// The chat's message log: one element per message (the user's as plain text, the
// assistant's as sanitised markdown with code blocks that copy), attachments and the context
// a reply used as chips, and scrolling like a chat app — the log follows new text while the
// reader is at the bottom, stops following when they scroll up, and follows again once they
// are back at the bottom (or press "Jump to latest").
import { h } from './lib.js';
import { duration, timeEl } from './format.js';
import { describeError } from './error-messages.js';
import { renderMarkdown } from './markdown.js';

const BOTTOM_SLACK_PX = 32; // this close to the bottom counts as "at the bottom"

export class ChatLog {
  /** names: {file(id) → name | undefined} to label attachment chips. */
  constructor({ names }) {
    this.names = names;
    this.entries = new Map(); // id → {view, el, body, chips, meta, index, deltas, frame}
    this.following = true;
    this.list = h('ol', { class: 'chat-log', 'data-testid': 'chat-messages', tabindex: '0',
      'aria-label': 'Messages', 'data-following': 'true' });
    this.jump = h('button', { type: 'button', class: 'chat-jump', 'data-testid': 'chat-jump',
      hidden: true, onclick: () => this.follow() }, 'Jump to latest ↓');
    this.el = h('div', { class: 'chat-log-wrap' }, this.list, this.jump);
    this.list.addEventListener('scroll', () => this.#scrolled(), { passive: true });
  }

  clear() {
    for (const e of this.entries.values()) if (e.frame) cancelAnimationFrame(e.frame);
    this.entries.clear();
    this.list.replaceChildren();
    this.follow();
  }

  get(id) { return this.entries.get(id); }

  /** Add or update a message from its view; returns its entry. */
  upsert(m) {
    let entry = this.entries.get(m.id);
    if (!entry) {
      entry = this.#create(m);
    }
    entry.view = m;
    if (m.status !== 'generating') entry.index = Number.MAX_SAFE_INTEGER;
    else if (typeof m.deltaIndex === 'number') entry.index = Math.max(entry.index, m.deltaIndex);
    this.#paintNow(entry);
    return entry;
  }

  /** A streamed piece of a reply (message:delta); false when it was already in the text. */
  delta(d) {
    const entry = this.entries.get(d.messageId);
    if (!entry || d.index <= entry.index) return false;
    if (d.index > entry.index + 1) entry.el.dataset.gap = 'true'; // message:done heals it
    entry.index = d.index;
    entry.deltas += 1;
    entry.view = { ...entry.view, content: entry.view.content + d.text };
    entry.el.dataset.deltas = String(entry.deltas);
    // Markdown is rendered again at most once a frame, however fast the deltas come.
    if (!entry.frame) {
      entry.frame = requestAnimationFrame(() => {
        entry.frame = 0;
        this.#paintNow(entry);
      });
    }
    return true;
  }

  /** Scroll to the newest message and follow new text again. */
  follow() {
    this.following = true;
    this.list.dataset.following = 'true';
    this.jump.hidden = true;
    this.list.scrollTop = this.list.scrollHeight;
  }

  #scrolled() {
    const { scrollTop, scrollHeight, clientHeight } = this.list;
    const atBottom = scrollHeight - scrollTop - clientHeight <= BOTTOM_SLACK_PX;
    if (atBottom === this.following) return;
    this.following = atBottom;
    this.list.dataset.following = String(atBottom);
    if (atBottom) this.jump.hidden = true;
  }

  #changed() {
    if (this.following) this.list.scrollTop = this.list.scrollHeight;
    else this.jump.hidden = false;
  }

  #create(m) {
    const body = h('div', { class: `chat-text${m.role === 'assistant' ? ' markdown' : ''}`,
      'data-testid': 'chat-text' });
    const chips = h('div', { class: 'chips', 'data-testid': 'chat-message-chips' });
    const meta = h('small', { class: 'muted chat-meta', 'data-testid': 'chat-meta' });
    const head = h('div', { class: 'chat-msg-head' },
      h('strong', {}, m.role === 'user' ? 'You' : 'Assistant'),
      m.createdAt ? timeEl(m.createdAt) : null);
    const el = h('li', { class: `chat-msg ${m.role}`, 'data-testid': 'chat-message',
      'data-message-id': m.id, 'data-role': m.role, 'data-deltas': '0' },
    head, chips, body, meta);
    const entry = { view: m, el, body, chips, meta, index: -1, deltas: 0, frame: 0 };
    this.entries.set(m.id, entry);
    this.list.append(el);
    return entry;
  }

  #paintNow(entry) {
    if (entry.frame) {
      cancelAnimationFrame(entry.frame);
      entry.frame = 0;
    }
    const m = entry.view;
    if (m.role === 'assistant') {
      entry.body.replaceChildren(renderMarkdown(m.content));
      decorateCode(entry.body);
    } else {
      entry.body.textContent = m.content;
    }
    entry.el.dataset.status = m.status;
    entry.chips.replaceChildren(...this.#chips(m));
    entry.chips.hidden = !entry.chips.childElementCount;
    entry.meta.replaceChildren(...meta(m));
    this.#changed();
  }

  #chips(m) {
    const out = (m.attachments || []).map((id) => chip(this.names(id) || 'a file', 'file'));
    const context = (m.metadata && m.metadata.context) || {};
    if (m.role === 'assistant') {
      for (const c of context.included || []) {
        out.push(chip(c.name, c.kind === 'chat' ? 'chat' : 'file',
          c.truncated ? 'read in part' : 'read'));
      }
      for (const o of context.omitted || []) out.push(chip(o.name, 'omitted', 'left out'));
    }
    return out;
  }
}

function chip(name, kind, note = '') {
  return h('span', { class: `chip chip-${kind}`, 'data-testid': 'chat-chip', 'data-kind': kind,
    title: note ? `${name} (${note})` : name },
  h('span', { class: 'chip-kind' }, kind === 'chat' ? 'chat' : 'file'),
  h('span', { class: 'chip-name' }, name),
  note === 'left out' ? h('span', { class: 'visually-hidden' }, ' (left out)') : null);
}

function meta(m) {
  const md = m.metadata || {};
  const bits = [];
  if (m.status === 'generating') bits.push('writing…');
  if (m.status === 'cancelled') bits.push('stopped');
  if (md.error) {
    const { summary, detail } = describeError(md.error);
    bits.push(`failed: ${[summary, detail].filter(Boolean).join(' ')}`);
  }
  if (md.provider && m.status !== 'generating') bits.push(`${md.provider} · ${md.model}`);
  if (typeof md.durationMs === 'number' && m.status !== 'generating') {
    bits.push(duration(md.durationMs / 1000));
  }
  return [bits.join(' · ')];
}

/** Code blocks get their language and a Copy button. */
function decorateCode(root) {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const lang = code && [...code.classList].find((c) => c.startsWith('language-'));
    const copy = h('button', { type: 'button', class: 'small code-copy',
      'aria-label': 'Copy the code', onclick: async () => {
        try {
          await navigator.clipboard.writeText((code || pre).textContent);
          copy.textContent = 'Copied';
        } catch {
          copy.textContent = 'Select and copy';
        }
      } }, 'Copy');
    const wrap = h('div', { class: 'code-block' },
      h('div', { class: 'code-head' }, h('span', {}, lang ? lang.slice(9) : 'code'), copy));
    pre.replaceWith(wrap);
    pre.tabIndex = 0; // wide code scrolls sideways: reachable by keyboard
    wrap.append(pre);
  }
}


// Markdown to safe DOM: marked (GFM) renders, DOMPurify removes anything that could run or
// load — scripts, event-handler attributes, javascript: URLs, style (our CSP refuses inline
// styles anyway), images (a reply must not fetch tracking pixels), forms, frames. Both are
// vendored from npm by scripts/vendor-js.sh, with their licences.
//
// HTML written in the markdown itself is shown as text, as chat apps do: a reply quoting a
// file full of <img onerror=…> reads as that text. It also keeps such attributes away from
// DOMPurify's parser, whose document shares the page's CSP: Chromium reports every inline
// handler or style it parses as a policy violation, even though none of them runs.
import { Marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.mjs';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({ gfm: true, breaks: true, async: false });
marked.use({ renderer: { html: ({ text }) => escapeHtml(text) } });

const PURIFY = {
  USE_PROFILES: { html: true }, // no SVG or MathML
  FORBID_TAGS: ['style', 'img', 'picture', 'video', 'audio', 'source', 'iframe', 'form',
    'input', 'button', 'textarea', 'select', 'object', 'embed'],
  FORBID_ATTR: ['style', 'id', 'name'], // ids and names could clobber the page's own
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

// Links open in a new tab and tell the target nothing about this page.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

/** A DocumentFragment of the rendered, sanitised markdown. */
export function renderMarkdown(text) {
  const html = marked.parse(String(text || ''));
  return DOMPurify.sanitize(html, PURIFY);
}

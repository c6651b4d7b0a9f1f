// The grid's small popups: a row's actions menu (a WAI-ARIA menu button: arrows move, Escape
// closes and returns to the row) and modal dialogs on the native <dialog> (focus kept inside,
// Escape closes, focus goes back to where it was).
import { h } from '../../lib.js';

/** A menu opened next to a button: items [{label, testid, onSelect, danger, disabled}]. */
export function createMenu(host) {
  const menu = h('div', { class: 'row-menu-pop', role: 'menu', hidden: true,
    'data-testid': 'row-menu-items' });
  let trigger = null;
  host.append(menu);

  const items = () => [...menu.querySelectorAll('[role="menuitem"]')];

  function close(returnFocus = true) {
    if (menu.hidden) return;
    menu.hidden = true;
    const back = trigger && (trigger.closest('td') || trigger);
    if (trigger) trigger.setAttribute('aria-expanded', 'false');
    trigger = null;
    if (returnFocus && back && back.isConnected) back.focus();
  }

  function open(button, entries, label) {
    if (!menu.hidden && trigger === button) {
      close(true); // the ⋯ button toggles its menu
      return;
    }
    close(false);
    trigger = button;
    button.setAttribute('aria-expanded', 'true');
    menu.setAttribute('aria-label', label);
    menu.replaceChildren(...entries.map((it) => h('button', { type: 'button', role: 'menuitem',
      tabindex: '-1', class: it.danger ? 'danger' : '', 'data-testid': it.testid,
      'aria-disabled': it.disabled ? 'true' : null, title: it.hint || null,
      onclick: () => {
        if (it.disabled) return;
        close(true);
        it.onSelect();
      } }, it.label, it.hint ? h('small', { class: 'muted' }, ` ${it.hint}`) : null)));
    menu.hidden = false;
    // Fixed to the viewport beside its button, kept on screen on a narrow one.
    const r = button.getBoundingClientRect();
    const w = menu.offsetWidth;
    const hgt = menu.offsetHeight;
    const left = Math.max(8, Math.min(r.left, window.innerWidth - w - 8));
    const below = r.bottom + 4 + hgt <= window.innerHeight;
    menu.style.left = `${left}px`;
    menu.style.top = `${below ? r.bottom + 4 : Math.max(8, r.top - hgt - 4)}px`;
    const first = items().find((b) => b.getAttribute('aria-disabled') !== 'true') || items()[0];
    if (first) first.focus();
  }

  menu.addEventListener('keydown', (e) => {
    const list = items();
    const i = list.indexOf(document.activeElement);
    const go = (j) => list[(j + list.length) % list.length].focus();
    if (e.key === 'ArrowDown') go(i + 1);
    else if (e.key === 'ArrowUp') go(i - 1);
    else if (e.key === 'Home') go(0);
    else if (e.key === 'End') go(list.length - 1);
    else if (e.key === 'Escape') close(true);
    else if (e.key === 'Tab') {
      close(true);
      return; // the grid's own tab stop decides where Tab goes
    } else return;
    e.preventDefault();
  });
  document.addEventListener('pointerdown', (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== trigger) close(false);
  }, true);
  window.addEventListener('resize', () => close(false));

  return { open, close };
}

/** A modal dialog with a title, a body and a Close button. */
export function createDialog(host, { testid, title }) {
  const heading = h('h3', { id: `${testid}-title` }, title);
  const body = h('div', { class: 'dialog-body' });
  const footer = h('div', { class: 'dialog-foot row' });
  const closeButton = h('button', { type: 'button', class: 'small',
    'data-testid': `${testid}-close`,
    onclick: () => dialog.close() }, 'Close');
  const dialog = h('dialog', { class: 'tables-dialog', 'data-testid': testid,
    'aria-labelledby': `${testid}-title` },
  h('div', { class: 'dialog-head row spread' }, heading, closeButton), body, footer);
  host.append(dialog);
  return {
    dialog,
    body,
    footer,
    setTitle(text) { heading.textContent = text; },
    show() {
      if (!dialog.open) dialog.showModal();
    },
    close() { if (dialog.open) dialog.close(); },
  };
}

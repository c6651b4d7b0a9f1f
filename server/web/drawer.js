// The developer drawer: the protocol log (panels/activity.js) out of the way at the bottom
// of the screen, opened from the top bar's Log button. Open or closed is remembered for this
// browser; Escape inside it closes it and gives the focus back to the button.
const KEY = 'collab.drawer';

export function mountDrawer() {
  const drawer = document.getElementById('drawer');
  const toggle = document.getElementById('drawer-toggle');
  const set = (open, { focus = false } = {}) => {
    drawer.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    document.body.classList.toggle('drawer-open', open);
    try { localStorage.setItem(KEY, open ? 'open' : 'closed'); } catch { /* private mode */ }
    if (focus) (open ? drawer.querySelector('h2') : toggle)?.focus();
  };
  toggle.addEventListener('click', () => set(drawer.hidden, { focus: drawer.hidden }));
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'small drawer-close';
  close.textContent = 'Close';
  close.dataset.testid = 'drawer-close';
  close.setAttribute('aria-label', 'Close the protocol log');
  close.addEventListener('click', () => set(false, { focus: true }));
  drawer.prepend(close);
  drawer.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') set(false, { focus: true });
  });
  let stored = null;
  try { stored = localStorage.getItem(KEY); } catch { /* private mode */ }
  set(stored === 'open');
}

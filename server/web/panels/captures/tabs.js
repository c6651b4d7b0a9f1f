// An ARIA tab strip: ←/→/Home/End move between tabs (activation follows focus), each tab
// panel is focusable so a keyboard user can scroll it.
import { h } from '../../lib.js';

/** tabs([{id, label}], onShow(id)) → {el, panel(id), show(id), current()} */
export function tabs(defs, onShow) {
  const buttons = new Map();
  const panels = new Map();
  let current = null;

  const strip = h('div', { class: 'cap-tabs', role: 'tablist', 'aria-label': 'Capture views',
    'data-testid': 'pcap-tabs' });
  for (const { id, label } of defs) {
    const button = h('button', { type: 'button', role: 'tab', id: `cap-tab-${id}`,
      'aria-controls': `cap-tabpanel-${id}`, 'aria-selected': 'false', tabindex: -1,
      'data-testid': `pcap-tab-${id}`, 'data-tab': id, onclick: () => show(id) }, label);
    buttons.set(id, button);
    panels.set(id, h('div', { class: 'cap-tabpanel', role: 'tabpanel', id: `cap-tabpanel-${id}`,
      'aria-labelledby': `cap-tab-${id}`, tabindex: 0, hidden: true,
      'data-testid': `pcap-tabpanel-${id}` }));
    strip.append(button);
  }
  strip.addEventListener('keydown', (e) => {
    const ids = [...buttons.keys()];
    const at = ids.indexOf(current);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: ids.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const id = ids[(to + ids.length) % ids.length];
    show(id);
    buttons.get(id).focus();
  });

  function show(id) {
    if (!buttons.has(id)) return;
    current = id;
    for (const [key, button] of buttons) {
      const on = key === id;
      button.setAttribute('aria-selected', String(on));
      button.tabIndex = on ? 0 : -1;
      panels.get(key).hidden = !on;
    }
    onShow(id);
  }

  return { el: strip, panel: (id) => panels.get(id), panels: [...panels.values()], show,
    current: () => current };
}

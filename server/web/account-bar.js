// Who is signed in, in the top bar: the username (a link to the account page), Admin for
// admins, Sign out; and for a guest a banner with what their account has left (auth:quota
// keeps it current: bug 6 was a count frozen at sign-in).
import { errorText } from './error-messages.js';
import { h, plural } from './lib.js';

export function mountAccountBar(app) {
  const bar = document.getElementById('account-bar');
  const banner = document.getElementById('banner');

  function render(user) {
    document.body.dataset.role = user ? user.role : '';
    if (!user) {
      bar.replaceChildren();
      banner.hidden = true;
      return;
    }
    const signOut = h('button', { type: 'button', class: 'small', 'data-testid': 'auth-logout',
      onclick: async () => {
        signOut.disabled = true;
        try {
          await app.signOut();
        } catch (err) {
          app.notify(`Could not sign out: ${errorText(err)}`, 'error');
        } finally {
          signOut.disabled = false;
        }
      } }, 'Sign out');
    bar.replaceChildren(...[
      user.role === 'admin' ? h('a', { href: '#/admin', class: 'top-link',
        'data-testid': 'nav-admin' }, 'Admin') : null,
      h('a', { href: '#/account', class: 'who', title: 'Your account' },
        h('span', { class: 'who-name', 'data-testid': 'auth-user', 'data-user-id': user.id },
          user.username),
        user.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null),
      signOut].filter(Boolean));
    banner.hidden = !user.isGuest;
    if (user.isGuest) {
      banner.replaceChildren(h('span', {}, 'Guest account: ',
        h('strong', { 'data-testid': 'guest-imports-left',
          'data-remaining': String(user.remainingImports) },
        `${plural(user.remainingImports, 'import')} left`), ' and ',
        h('strong', { 'data-testid': 'guest-messages-left',
          'data-remaining': String(user.remainingMessages) },
        `${plural(user.remainingMessages, 'AI message')} left`), '.'),
      h('a', { href: '#/account' }, 'Register to keep your work'));
    }
  }

  app.bus.on('session', render);
  app.bus.on('user', render);
}

// Account: register, sign in, continue as guest, sign out; shows who is signed in and lets
// a guest become a registered user (auth:upgrade) keeping their data.
import { act, field, h, messageBox } from '../lib.js';

export default { id: 'auth', title: 'Account', slot: 'aside', mount };

function mount(root, app) {
  const msg = messageBox('auth-error');
  const signedOut = signInForm(app, msg);
  const signedIn = h('div', { class: 'stack', 'data-testid': 'auth-session', hidden: true });

  app.bus.on('session', (user) => {
    msg.clear();
    signedOut.hidden = Boolean(user);
    signedIn.hidden = !user;
    signedIn.replaceChildren(...(user ? sessionView(app, user, msg).filter(Boolean) : []));
    if (!user) signedOut.querySelector('input[name=password]').value = '';
  });
  root.append(signedOut, signedIn, msg.el);
}

function signInForm(app, msg) {
  // Signing in takes an email or a username; registering needs an email (checked by the server).
  const email = h('input', { type: 'text', name: 'email', autocomplete: 'username', required: true,
    'data-testid': 'auth-email' });
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'nickname',
    pattern: '[A-Za-z0-9_.\\-]{3,32}', 'data-testid': 'auth-username' });
  const password = h('input', { type: 'password', name: 'password', required: true,
    autocomplete: 'current-password', 'data-testid': 'auth-password' });
  const controls = h('fieldset', { class: 'stack' });
  const form = h('form', { class: 'auth-form', 'data-testid': 'auth-form', hidden: true }, controls);

  const credentials = (registering) => {
    if (!registering) return { login: email.value.trim(), password: password.value };
    const out = { email: email.value.trim(), password: password.value };
    if (username.value.trim()) out.username = username.value.trim();
    return out;
  };
  const submit = (event, payload) => act(controls, msg, () => app.signIn(event, payload));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit('auth:login', credentials(false));
  });
  const register = () => {
    if (form.reportValidity()) submit('auth:register', credentials(true));
  };
  controls.append(
    h('legend', { class: 'visually-hidden' }, 'Sign in or register'),
    field('Email or username', email, '(an email to register)'),
    field('Password', password),
    field('Username', username, '(optional, when registering)'),
    h('div', { class: 'row' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-login' }, 'Sign in'),
      h('button', { type: 'button', onclick: register, 'data-testid': 'auth-register' }, 'Register')),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'link', 'data-testid': 'auth-guest',
        onclick: () => submit('auth:guest') }, 'Continue as guest')),
  );
  return form;
}

function sessionView(app, user, msg) {
  const controls = h('fieldset', { class: 'row' },
    h('button', { type: 'button', 'data-testid': 'auth-logout',
      onclick: () => act(controls, msg, () => app.signOut()) }, 'Sign out'));
  return [
    h('p', { class: 'who' }, 'Signed in as ',
      h('strong', { 'data-testid': 'auth-user', 'data-user-id': user.id }, user.username),
      user.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null,
      user.role === 'admin' ? h('span', { class: 'badge' }, 'admin') : null),
    user.email ? h('p', { class: 'muted', 'data-testid': 'auth-email-shown' }, user.email) : null,
    user.isGuest
      ? h('p', { class: 'muted' }, `Guest limits: ${user.remainingImports} imports, `
        + `${user.remainingMessages} AI messages left.`)
      : null,
    controls,
    user.isGuest ? upgradeForm(app, msg) : null,
  ];
}

function upgradeForm(app, msg) {
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'username',
    'data-testid': 'auth-upgrade-email' });
  const password = h('input', { type: 'password', name: 'password', required: true,
    autocomplete: 'new-password', 'data-testid': 'auth-upgrade-password' });
  const controls = h('fieldset', { class: 'stack' },
    h('legend', {}, 'Keep this account'),
    field('Email', email), field('Password', password),
    h('button', { type: 'submit', 'data-testid': 'auth-upgrade' }, 'Register this guest'));
  return h('form', { class: 'upgrade', onsubmit: (e) => {
    e.preventDefault();
    act(controls, msg, () => app.signIn('auth:upgrade',
      { email: email.value.trim(), password: password.value }));
  } }, controls);
}

// Account: while nobody is signed in, the sign-in card — Sign in or Register (one form, two
// modes: Enter submits the mode on screen, bug 8), or continue as a guest. Once signed in,
// the account page (#/account): who you are, a guest's limits (live, auth:quota), and for a
// guest the form that keeps the account (auth:upgrade). Sign out is in the top bar.
import { act, field, h, messageBox, plural } from '../lib.js';
import { timeEl } from '../format.js';

export default { id: 'auth', title: 'Account', slot: 'aside', mount };

function mount(root, app) {
  const msg = messageBox('auth-error');
  const signedOut = signInForm(app, msg);
  const signedIn = h('div', { class: 'stack', 'data-testid': 'auth-session', hidden: true });
  const section = root.closest('section');

  const show = (user) => {
    signedOut.hidden = Boolean(user);
    signedIn.hidden = !user;
    signedIn.replaceChildren(...(user ? accountView(app, user, msg) : []));
    section?.classList.toggle('signin-card', !user);
    const title = section?.querySelector('h2');
    if (title) title.textContent = user ? 'Account' : 'Welcome to Collab';
  };
  app.bus.on('session', (user) => {
    msg.clear();
    show(user);
    if (!user) signedOut.querySelector('input[name=password]').value = '';
  });
  app.bus.on('user', (user) => {
    const limits = signedIn.querySelector('[data-testid=auth-guest-limits]');
    if (limits) limits.replaceWith(guestLimits(user));
  });
  root.append(signedOut, signedIn, msg.el);
}

function signInForm(app, msg) {
  let mode = 'login'; // or 'register'
  // Signing in takes an email or a username; registering needs an email (checked by the server).
  const email = h('input', { type: 'text', name: 'email', autocomplete: 'username', required: true,
    'data-testid': 'auth-email' });
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'nickname',
    pattern: '[A-Za-z0-9_.\\-]{3,32}', 'data-testid': 'auth-username' });
  const password = h('input', { type: 'password', name: 'password', required: true,
    autocomplete: 'current-password', minlength: 1, 'data-testid': 'auth-password' });
  const emailField = field('Email or username', email);
  const usernameField = field('Username', username, '(optional)');
  const loginButton = h('button', { type: 'submit', class: 'primary',
    'data-testid': 'auth-login' }, 'Sign in');
  const registerButton = h('button', { type: 'submit', class: 'primary',
    'data-testid': 'auth-register' }, 'Create account');
  const tabLogin = h('button', { type: 'button', class: 'tab', 'data-testid': 'auth-mode-login',
    onclick: () => setMode('login', true) }, 'Sign in');
  const tabRegister = h('button', { type: 'button', class: 'tab',
    'data-testid': 'auth-mode-register', onclick: () => setMode('register', true) }, 'Register');
  const controls = h('fieldset', { class: 'stack' });
  const form = h('form', { class: 'auth-form', 'data-testid': 'auth-form', 'data-mode': mode },
    controls);

  function setMode(next, focus = false) {
    mode = next;
    const registering = mode === 'register';
    form.dataset.mode = mode;
    tabLogin.setAttribute('aria-pressed', String(!registering));
    tabRegister.setAttribute('aria-pressed', String(registering));
    emailField.querySelector('.field-label').firstChild.textContent = registering
      ? 'Email' : 'Email or username';
    usernameField.hidden = !registering;
    loginButton.hidden = registering;
    registerButton.hidden = !registering;
    password.autocomplete = registering ? 'new-password' : 'current-password';
    msg.clear();
    if (focus) email.focus();
  }

  const submit = (event, payload) => act(controls, msg, () => app.signIn(event, payload));
  // Enter in any field submits the form: what it does is the mode on screen, never the
  // other one (bug 8: Enter in the register form signed in).
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (mode === 'login') {
      submit('auth:login', { login: email.value.trim(), password: password.value });
      return;
    }
    const payload = { email: email.value.trim(), password: password.value };
    if (username.value.trim()) payload.username = username.value.trim();
    submit('auth:register', payload);
  });
  controls.append(
    h('legend', { class: 'visually-hidden' }, 'Sign in or register'),
    h('div', { class: 'tabs', role: 'group', 'aria-label': 'Sign in or register' },
      tabLogin, tabRegister),
    emailField, field('Password', password), usernameField,
    h('div', { class: 'row' }, loginButton, registerButton),
    h('p', { class: 'muted' }, 'Just looking? ',
      h('button', { type: 'button', class: 'link', 'data-testid': 'auth-guest',
        onclick: () => submit('auth:guest') }, 'Continue as a guest'),
      ' (a few imports and AI messages, no email needed).'));
  setMode('login');
  return form;
}

function guestLimits(user) {
  return h('p', { 'data-testid': 'auth-guest-limits' }, 'As a guest you have ',
    h('strong', {}, `${plural(user.remainingImports, 'import')}`), ' and ',
    h('strong', {}, `${plural(user.remainingMessages, 'AI message')}`),
    ' left. Register to lift the limits and keep your projects.');
}

function accountView(app, user, msg) {
  return [
    h('dl', { class: 'facts' },
      h('div', {}, h('dt', {}, 'Username'), h('dd', { 'data-testid': 'account-username' },
        user.username, user.isGuest ? h('span', { class: 'badge guest' }, 'guest') : null,
        user.role === 'admin' ? h('span', { class: 'badge' }, 'admin') : null)),
      h('div', {}, h('dt', {}, 'Email'), h('dd', { 'data-testid': 'auth-email-shown' },
        user.email || '—')),
      user.createdAt ? h('div', {}, h('dt', {}, 'Member since'), h('dd', {},
        timeEl(user.createdAt))) : null),
    user.isGuest ? guestLimits(user) : null,
    user.isGuest ? upgradeForm(app, msg) : null,
  ].filter(Boolean);
}

function upgradeForm(app, msg) {
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'username',
    'data-testid': 'auth-upgrade-email' });
  const password = h('input', { type: 'password', name: 'password', required: true,
    autocomplete: 'new-password', 'data-testid': 'auth-upgrade-password' });
  const controls = h('fieldset', { class: 'stack' },
    h('legend', {}, 'Keep this account'),
    field('Email', email), field('Password', password),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'auth-upgrade' },
      'Register this guest'));
  return h('form', { class: 'upgrade', onsubmit: (e) => {
    e.preventDefault();
    act(controls, msg, () => app.signIn('auth:upgrade',
      { email: email.value.trim(), password: password.value }));
  } }, controls);
}

// Sign in: paste a token (the development token `make dev` prints, or a Supabase
// access token), or, when the page is configured with Supabase, email and password
// through Supabase Auth (whose refresh token then renews the session). The tokens
// stay in this tab's sessionStorage.

import { append, h, replace } from '../dom.js';
import { startSession } from '../session.js';
import { passwordGrant } from '../supabase_auth.js';

export class SignInView {
  constructor({ config, notice, onSignedIn }) {
    this.title = 'Sign in';
    this.config = config;
    this.notice = notice;
    this.onSignedIn = onSignedIn;
  }

  mount(container) {
    const error = h('div', { id: 'signin-error', class: 'signin-error' });
    const tokenField = h('textarea', {
      id: 'token', name: 'token', rows: 4, required: true, autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': 'token-help signin-error', placeholder: 'eyJhbGciOi…',
    });
    const form = h('form', { class: 'card signin', novalidate: true },
      h('label', { for: 'token' }, 'Access token'),
      tokenField,
      h('p', { id: 'token-help', class: 'help' },
        'Paste a bearer token: locally the admin token that ', h('code', null, 'make dev'), ' prints, or mint one with ',
        h('code', null, '.venv/bin/python -m lib.cli token --role approver'),
        ' (roles: viewer, planner, approver, admin). In production, a Supabase access token. ',
        'It is kept for this browser tab only.'),
      h('button', { type: 'submit' }, 'Sign in'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.useToken(tokenField.value, error, tokenField);
    });

    append(container, [
      h('h1', null, 'Sign in to the NOFX console'),
      this.notice ? h('p', { class: 'notice', role: 'status' }, this.notice) : null,
      error,
      form,
      this.config ? this.passwordForm(error) : null
    ]);
  }

  useToken(value, error, field, refreshToken = null) {
    if (!value.trim()) {
      replace(error, h('p', { role: 'alert' }, 'Paste a token first.'));
      field?.setAttribute('aria-invalid', 'true');
      field?.focus();
      return;
    }
    try {
      this.onSignedIn(startSession(value, refreshToken));
    } catch (err) {
      field?.setAttribute('aria-invalid', 'true');
      replace(error, h('p', { role: 'alert' }, err.message));
      field?.focus();
    }
  }

  // Supabase Auth's password grant (GoTrue REST), only when config.json names a project.
  passwordForm(error) {
    const email = h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true });
    const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
    const form = h('form', { class: 'card signin' },
      h('h2', null, 'Or sign in with Supabase'),
      h('label', { for: 'email' }, 'Email'), email,
      h('label', { for: 'password' }, 'Password'), password,
      h('button', { type: 'submit' }, 'Sign in with Supabase'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const { accessToken, refreshToken } = await passwordGrant(this.config, email.value, password.value);
        this.useToken(accessToken, error, null, refreshToken);
      } catch (err) {
        replace(error, h('p', { role: 'alert' }, `Supabase sign-in failed: ${err.message}`));
      }
    });
    return form;
  }
}

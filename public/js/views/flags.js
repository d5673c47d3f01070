// Feature flags: FEATURE_AUTO_PLANNER and FEATURE_PLANNER_EXECUTE as switches
// (admin only). A switch is a kill switch for the whole deployment, so it is
// never one click: the switch opens a confirmation in place that says what
// will happen and asks why (required), and each flag lists its last switches
// with who, when and why (GET /api/config/flags `history`).

import { ApiError } from '../api.js';
import { append, h, problemBox, replace, when } from '../dom.js';

const EFFECT = {
  FEATURE_AUTO_PLANNER: {
    off: 'Planning stops: every request for a new plan is refused until it is switched on again.',
    on: 'Planning is allowed again.',
  },
  FEATURE_PLANNER_EXECUTE: {
    off: 'Every path that runs a tool stops: execute, approvals’ resumes, the scheduled tick and rollbacks. Steps wait and resume when it is switched on.',
    on: 'Execution resumes: waiting steps carry on.',
  },
};

export class FlagsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.title = 'Feature flags';
    this.seq = 0;
    this.pending = null; // {key, enabled}: the confirmation open now
  }

  mount(container) {
    const admin = this.ctx.session.can('admin');
    this.error = h('div', { class: 'view-error' });
    this.result = h('div', { id: 'flag-result', class: 'form-result', 'aria-live': 'polite' });
    this.list = h('div', { id: 'flag-list', class: 'flags' }, h('p', { class: 'muted' }, 'Loading flags…'));
    append(container, [
      h('h1', null, 'Feature flags'),
      admin
        ? h('p', { class: 'help' }, 'Each switch takes effect on every instance within 5 seconds, needs a reason, and is recorded in the audit trail.')
        : h('p', { class: 'help', id: 'flags-read-only' }, 'Only an admin can switch flags; this is their current state.'),
      this.error,
      this.result,
      this.list]);
    this.refresh();
  }

  destroy() {
    this.seq += 1;
  }

  onEvents(events) {
    if (events.some((e) => e.type === 'flag.changed')) this.refresh();
  }

  async refresh() {
    const seq = ++this.seq;
    try {
      const { flags } = await this.ctx.api.get('/api/config/flags');
      if (seq !== this.seq) return;
      replace(this.error);
      this.render(flags);
    } catch (err) {
      if (seq !== this.seq) return;
      replace(this.error, problemBox(err, 'Could not load the flags.'));
    }
  }

  render(flags, focusKey) {
    // a confirmation being filled in stays as it is: only the rest is redrawn
    if (this.pending && !focusKey) {
      for (const flag of flags) if (flag.key !== this.pending.key) this.renderFlag(flag);
      return;
    }
    const active = focusKey ?? document.activeElement?.dataset?.flag;
    replace(this.list, flags.map((flag) => this.flagCard(flag)));
    if (active) this.list.querySelector(`[data-flag="${active}"]`)?.focus();
  }

  renderFlag(flag) {
    const old = this.list.querySelector(`[data-flag-key="${flag.key}"]`);
    if (old) old.replaceWith(this.flagCard(flag));
  }

  flagCard(flag) {
    const admin = this.ctx.session.can('admin');
    const labelId = `flag-label-${flag.key}`;
    const control = admin
      ? h('button', {
        type: 'button', role: 'switch', class: 'switch', id: `flag-${flag.key}`,
        'aria-checked': String(flag.enabled), 'aria-labelledby': labelId, 'aria-describedby': `flag-desc-${flag.key}`,
        'aria-expanded': 'false', 'aria-controls': `flag-confirm-${flag.key}`,
        dataset: { flag: flag.key },
        onclick: (event) => this.confirm(flag, event.currentTarget),
      }, h('span', { class: 'switch-track', 'aria-hidden': 'true' }, h('span', { class: 'switch-thumb' })),
      h('span', { class: 'switch-state' }, flag.enabled ? 'On' : 'Off'))
      : h('span', { class: `badge ${flag.enabled ? 'status-completed' : 'status-cancelled'}` }, flag.enabled ? 'On' : 'Off');
    const history = flag.history?.length
      ? h('details', { class: 'flag-changes' },
        h('summary', null, `History (${flag.history.length} latest)`),
        h('ol', { class: 'flag-history' }, flag.history.map((c) => h('li', null,
          h('strong', null, c.enabled ? 'On' : 'Off'), ' by ', c.by, ', ', when(c.at), ': ',
          c.reason ? `“${c.reason}”` : h('span', { class: 'muted' }, 'no reason was recorded')))))
      : h('p', { class: 'muted small' }, 'No switches recorded yet.');
    const last = flag.history?.[0];
    return h('article', { class: 'card flag', dataset: { flagKey: flag.key } },
      h('div', { class: 'flag-main' },
        h('h2', { id: labelId }, h('code', null, flag.key)),
        control),
      h('p', { id: `flag-desc-${flag.key}` }, flag.description),
      h('p', { class: 'muted small flag-changed' }, 'Last changed by ', h('strong', null, flag.updated_by ?? 'unknown'), ', ', when(flag.updated_at),
        last?.reason ? `: “${last.reason}”` : ''),
      h('div', { id: `flag-confirm-${flag.key}` }),
      history);
  }

  // The switch opens a confirmation where it is: what will happen, why (required).
  confirm(flag, button) {
    const next = !flag.enabled;
    const card = button.closest('article');
    const box = card.querySelector(`#flag-confirm-${flag.key}`);
    if (this.pending?.key === flag.key) {
      this.cancel(flag, box, button);
      return;
    }
    this.pending = { key: flag.key, enabled: next };
    button.setAttribute('aria-expanded', 'true');
    const reasonId = `flag-reason-${flag.key}`;
    const reason = h('textarea', { id: reasonId, rows: 2, maxlength: 500, required: true, 'aria-describedby': `${reasonId}-help` });
    const result = h('div', { class: 'form-result', 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit', class: next ? '' : 'danger' }, `Switch ${next ? 'on' : 'off'}`);
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => this.cancel(flag, box, button) }, 'Cancel');
    const form = h('form', { class: 'flag-confirm', novalidate: true, 'aria-label': `Confirm switching ${flag.key} ${next ? 'on' : 'off'}` },
      h('p', null, h('strong', null, `Switch ${flag.key} ${next ? 'on' : 'off'}? `), EFFECT[flag.key]?.[next ? 'on' : 'off'] ?? ''),
      h('label', { for: reasonId }, 'Reason (required)'),
      reason,
      h('p', { class: 'help', id: `${reasonId}-help` }, 'Shown with this change in the flag’s history and the audit trail.'),
      h('div', { class: 'buttons' }, submit, cancel),
      result);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.toggle(flag, next, reason, submit, result);
    });
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.cancel(flag, box, button);
    });
    replace(box, form);
    reason.focus();
  }

  cancel(flag, box, button) {
    this.pending = null;
    replace(box);
    button.setAttribute('aria-expanded', 'false');
    button.focus();
  }

  async toggle(flag, next, reasonField, submit, result) {
    const reason = reasonField.value.trim();
    if (reason.length < 3) {
      reasonField.setAttribute('aria-invalid', 'true');
      replace(result, h('p', { class: 'problem', role: 'alert' }, 'Say why (at least 3 characters): the reason is shown with the change.'));
      reasonField.focus();
      return;
    }
    submit.disabled = true;
    try {
      const { data } = await this.ctx.api.put('/api/config/flags', { flags: { [flag.key]: next }, reason });
      this.pending = null;
      const now = data.flags.find((f) => f.key === flag.key);
      this.render(data.flags, flag.key);
      const message = `${flag.key} is now ${now?.enabled ? 'on' : 'off'} (switched by ${now?.updated_by}: “${reason}”).`;
      replace(this.result, h('p', { class: 'outcome' }, message));
      this.ctx.announce(message, { log: false });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      submit.disabled = false;
      const lead = err.status === 0 ? `Not sent: the server could not be reached. ${flag.key} is unchanged.` : `Could not switch ${flag.key}.`;
      replace(result, problemBox(err, lead));
    }
  }
}

// Feature flags: FEATURE_AUTO_PLANNER and FEATURE_PLANNER_EXECUTE as switches
// (admin only), each with who changed it last and when. Switching sends
// PUT /api/config/flags and shows what the API answered.

import { ApiError } from '../api.js';
import { append, h, problemBox, replace, when } from '../dom.js';

export class FlagsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.title = 'Feature flags';
    this.seq = 0;
  }

  mount(container) {
    const admin = this.ctx.session.can('admin');
    this.error = h('div', { class: 'view-error' });
    this.result = h('div', { id: 'flag-result', class: 'form-result', 'aria-live': 'polite' });
    this.reason = h('input', { id: 'flag-reason', type: 'text', maxlength: 500, placeholder: 'optional' });
    this.list = h('div', { id: 'flag-list', class: 'flags' }, h('p', { class: 'muted' }, 'Loading flags…'));
    append(container, [
      h('h1', null, 'Feature flags'),
      admin
        ? h('p', { class: 'help' }, 'Each switch takes effect on every instance within 5 seconds and is recorded in the audit trail.')
        : h('p', { class: 'help', id: 'flags-read-only' }, 'Only an admin can switch flags; this is their current state.'),
      admin ? h('div', { class: 'field' }, h('label', { for: 'flag-reason' }, 'Reason for the change'), this.reason) : null,
      this.error,
      this.list,
      this.result]);
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
    const admin = this.ctx.session.can('admin');
    const active = focusKey ?? document.activeElement?.dataset?.flag;
    replace(this.list, flags.map((flag) => {
      const labelId = `flag-label-${flag.key}`;
      const control = admin
        ? h('button', {
          type: 'button', role: 'switch', class: 'switch', id: `flag-${flag.key}`,
          'aria-checked': String(flag.enabled), 'aria-labelledby': labelId, 'aria-describedby': `flag-desc-${flag.key}`,
          dataset: { flag: flag.key },
          onclick: (event) => this.toggle(flag, event.currentTarget),
        }, h('span', { class: 'switch-track', 'aria-hidden': 'true' }, h('span', { class: 'switch-thumb' })),
        h('span', { class: 'switch-state' }, flag.enabled ? 'On' : 'Off'))
        : h('span', { class: `badge ${flag.enabled ? 'status-completed' : 'status-cancelled'}` }, flag.enabled ? 'On' : 'Off');
      return h('article', { class: 'card flag', dataset: { flagKey: flag.key } },
        h('div', { class: 'flag-main' },
          h('h2', { id: labelId }, h('code', null, flag.key)),
          control),
        h('p', { id: `flag-desc-${flag.key}` }, flag.description),
        h('p', { class: 'muted small flag-changed' }, 'Last changed by ', h('strong', null, flag.updated_by ?? 'unknown'), ', ', when(flag.updated_at)));
    }));
    if (active) this.list.querySelector(`[data-flag="${active}"]`)?.focus();
  }

  async toggle(flag, button) {
    const next = !flag.enabled;
    button.disabled = true;
    const body = { flags: { [flag.key]: next } };
    if (this.reason.value.trim()) body.reason = this.reason.value.trim();
    try {
      const { data } = await this.ctx.api.put('/api/config/flags', body);
      const now = data.flags.find((f) => f.key === flag.key);
      this.render(data.flags, flag.key);
      const message = `${flag.key} is now ${now?.enabled ? 'on' : 'off'} (changed by ${now?.updated_by}).`;
      replace(this.result, h('p', { class: 'outcome' }, message));
      this.ctx.announce(message, { log: false });
      this.reason.value = '';
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      button.disabled = false;
      replace(this.result, problemBox(err, `Could not switch ${flag.key}.`));
    }
  }
}

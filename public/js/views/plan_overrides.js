// Overrides on the plan page. OverrideRequests: a planner asks an admin for
// an override (action, defaulting to allow, and a required reason: POST
// /api/automation/override-requests); everyone sees the plan's requests, open
// and decided, with who and why; an admin grants or declines each open one
// with a reason. AdminOverride: the admin's own override form (POST
// /api/automation/override), as before.

import { ApiError } from '../api.js';
import { h, problemBox, replace, statusBadge, when } from '../dom.js';

const GATES = ['structural', 'risk', 'compliance', 'resource'];
const CLOSED = new Set(['completed', 'cancelled', 'rolled_back']);
const ACTIONS = [
  ['allow', 'allow: let the blocked plan run'],
  ['skip', 'skip: skip one step'],
  ['retry', 'retry: run one step again'],
  ['cancel', 'cancel: stop the plan'],
  ['rollback', 'rollback: undo what the plan did'],
];
const NEEDS_STEP = new Set(['skip', 'retry']);

function actionSelect(id) {
  return h('select', { id, name: 'action' }, ACTIONS.map(([value, label]) => h('option', { value }, label)));
}

// Step options, filled only while the step field shows (a plan can hold 100,000 steps).
function fillSteps(select, steps) {
  const current = select.value;
  replace(select, steps.map((s) => h('option', { value: s.id, selected: s.id === current }, `${s.item_key} (${s.status.replace(/_/g, ' ')})`)));
}

function reasonMissing(reason, result, what) {
  if (reason.value.trim().length >= 3) return false;
  reason.setAttribute('aria-invalid', 'true');
  replace(result, h('div', { class: 'problem', role: 'alert' }, h('p', { class: 'problem-lead' }, `${what} needs a reason (at least 3 characters).`)));
  reason.focus();
  return true;
}

// Send one of the forms: say what happened, or why it was refused (the
// reason field marked when the refusal is about it), and read the plan again.
async function sendForm(view, { submit, result, reason, post, said, refused }) {
  submit.disabled = true;
  try {
    const message = said(await post());
    replace(result, h('p', { class: 'outcome' }, message));
    view.ctx.announce(message);
    reason.value = '';
    view.ctx.nudge();
    view.refresh();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    replace(result, problemBox(err, refused(err)));
    if (JSON.stringify(err.problem ?? {}).includes('reason')) reason.setAttribute('aria-invalid', 'true');
  } finally {
    submit.disabled = false;
  }
}

export class OverrideRequests {
  constructor(ctx, planId, { refresh }) {
    this.ctx = ctx;
    this.planId = planId;
    this.refresh = refresh;
    this.steps = [];
    this.list = h('div', { id: 'override-requests' });
    this.outcome = h('p', { id: 'request-decision', class: 'outcome', 'aria-live': 'polite' });
    this.asker = ctx.session.can('planner') && !ctx.session.can('admin') ? this.requestForm() : null;
    this.element = h('div', { class: 'override-requests', hidden: true }, this.asker, this.outcome, this.list);
  }

  requestForm() {
    const action = actionSelect('request-action');
    const step = h('select', { id: 'request-step', name: 'step' });
    const stepField = h('div', { class: 'field', hidden: true }, h('label', { for: 'request-step' }, 'Step'), step);
    const reason = h('textarea', { id: 'request-reason', rows: 2, required: true, minlength: 3, maxlength: 2000, 'aria-describedby': 'request-reason-help' });
    const result = h('div', { id: 'request-result', class: 'form-result', 'aria-live': 'polite' });
    const submit = h('button', { type: 'submit' }, 'Ask for the override');
    const sync = () => {
      stepField.hidden = !NEEDS_STEP.has(action.value);
      if (!stepField.hidden) fillSteps(step, this.steps);
    };
    action.addEventListener('change', sync);
    reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));
    const form = h('form', { id: 'request-form', novalidate: true },
      h('div', { class: 'options' }, h('div', { class: 'field' }, h('label', { for: 'request-action' }, 'Override to ask for'), action), stepField),
      h('div', { class: 'field wide' }, h('label', { for: 'request-reason' }, 'Why it should be overridden (required)'), reason,
        h('p', { class: 'help', id: 'request-reason-help' }, 'The admins see it with your name; it goes into the audit trail.')),
      h('div', { class: 'buttons' }, submit),
      result);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (reasonMissing(reason, result, 'A request')) return;
      const body = { plan_id: this.planId, action: action.value, reason: reason.value.trim() };
      if (NEEDS_STEP.has(action.value)) body.step_id = step.value;
      sendForm(this, {
        submit, result, reason,
        post: () => this.ctx.api.post('/api/automation/override-requests', body),
        said: ({ status, data }) => (status === 201
          ? `You asked for the ${data.action} override; an admin decides it here.`
          : `An open request for the ${data.action} override already stands (asked by ${data.requested_by}); it was not sent twice.`),
        refused: (err) => (err.status === 403 ? 'Your role may not ask for overrides.' : 'The request was not sent.'),
      });
    });
    this.askerStep = { stepField, step };
    return h('details', { class: 'card request-override', id: 'request-override' },
      h('summary', null, 'Ask an admin for an override'),
      h('p', { class: 'help' }, 'An admin grants or declines it with a reason of their own; granting applies the override.'),
      form);
  }

  // requests: the plan's requests, newest first, or null when the API gives none.
  update(plan, requests, steps) {
    this.steps = steps;
    this.element.hidden = requests === null || (CLOSED.has(plan.status) && !requests.length);
    if (this.element.hidden) return;
    if (this.asker) {
      this.asker.hidden = CLOSED.has(plan.status);
      if (plan.status === 'blocked' && !this.openedOnce) this.asker.open = true;
      this.openedOnce = this.openedOnce || plan.status === 'blocked';
      if (!this.askerStep.stepField.hidden) fillSteps(this.askerStep.step, steps);
    }
    const keys = new Map(steps.map((s) => [s.id, s.item_key]));
    const drafts = new Map([...this.list.querySelectorAll('textarea[data-request-id]')].map((t) => [t.dataset.requestId, t.value]));
    const active = document.activeElement?.id;
    // no requests: a word only where one is wanted (a blocked plan), nothing otherwise
    replace(this.list, requests.length
      ? [h('h3', { id: 'override-requests-heading' }, 'Override requests'),
        h('ul', { class: 'override-request-list', 'aria-labelledby': 'override-requests-heading' }, requests.map((r) => this.requestItem(r, keys, drafts.get(r.id))))]
      : plan.status === 'blocked' ? h('p', { class: 'muted small' }, 'Nobody has asked for an override of this plan yet.') : null);
    if (active && this.list.querySelector(`#${CSS.escape(active)}`)) document.getElementById(active).focus({ preventScroll: true });
  }

  requestItem(r, keys, draft) {
    const what = `${r.action} ${r.step_id ? `step ${keys.get(r.step_id) ?? r.step_id.slice(0, 8)}` : r.gate ? `the ${r.gate} gate` : 'the whole plan'}`;
    const decider = this.ctx.session.can('admin') && r.status === 'open';
    return h('li', { class: `override-request status-${r.status}`, id: `override-request-${r.id}`, dataset: { requestId: r.id, status: r.status } },
      h('p', null, h('strong', null, what), ' ', statusBadge(r.status), ' ',
        `asked by ${r.requested_by}, `, when(r.requested_at), `: “${r.reason}”`),
      r.status !== 'open'
        ? h('p', { class: 'small decided' }, `${r.status === 'granted' ? 'Granted' : 'Declined'} by ${r.decided_by ?? 'an admin'}, `, when(r.decided_at),
          r.decision_reason ? `: “${r.decision_reason}”` : '')
        : null,
      decider ? this.decideForm(r, draft) : null);
  }

  decideForm(r, draft) {
    const id = `decide-reason-${r.id}`;
    const reason = h('textarea', { id, rows: 1, maxlength: 2000, dataset: { requestId: r.id } });
    reason.value = draft ?? '';
    const result = h('div', { class: 'form-result', 'aria-live': 'polite' });
    const decide = async (decision, button) => {
      if (reasonMissing(reason, result, decision === 'grant' ? 'Granting' : 'Declining')) return;
      button.disabled = true;
      try {
        await this.ctx.api.post(`/api/automation/override-requests/${r.id}`, { decision, reason: reason.value.trim() });
        const message = decision === 'grant'
          ? `You granted the ${r.action} override asked by ${r.requested_by}; it is applied.`
          : `You declined the ${r.action} override asked by ${r.requested_by}.`;
        this.ctx.announce(message);
        this.outcome.textContent = message;
        this.ctx.nudge();
        this.refresh();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        let lead = 'The decision was not recorded.';
        if (err.status === 409) lead = 'Someone decided this request already.';
        else if (err.status === 403) lead = 'You asked for this override yourself: another admin decides it.';
        replace(result, problemBox(err, lead));
        if (err.status === 409) this.refresh();
      } finally {
        button.disabled = false;
      }
    };
    const grant = h('button', { type: 'button', class: 'approve' }, 'Grant');
    const decline = h('button', { type: 'button', class: 'deny' }, 'Decline');
    grant.addEventListener('click', () => decide('grant', grant));
    decline.addEventListener('click', () => decide('decline', decline));
    reason.addEventListener('input', () => {
      reason.removeAttribute('aria-invalid');
      replace(result);
    });
    return h('div', { class: 'decide' },
      h('div', { class: 'field wide' }, h('label', { for: id }, 'Reason for your decision'), reason),
      h('div', { class: 'buttons' }, grant, decline),
      result);
  }
}

export class AdminOverride {
  constructor(ctx, planId, { refresh }) {
    this.ctx = ctx;
    this.planId = planId;
    this.refresh = refresh;
    this.steps = [];
    this.element = this.form();
  }

  update(steps) {
    this.steps = steps;
    if (!this.stepField.hidden) fillSteps(this.step, steps);
  }

  form() {
    const action = actionSelect('override-action');
    const gate = h('select', { id: 'override-gate', name: 'gate' },
      h('option', { value: '' }, 'the whole plan'), GATES.map((g) => h('option', { value: g }, `the ${g} gate`)));
    const step = h('select', { id: 'override-step', name: 'step' });
    const reason = h('textarea', { id: 'override-reason', rows: 2, required: true, minlength: 3, maxlength: 2000, 'aria-describedby': 'override-reason-help' });
    const expires = h('input', { id: 'override-expires', type: 'datetime-local' });
    const result = h('div', { id: 'override-result', class: 'form-result', 'aria-live': 'polite' });
    const gateField = h('div', { class: 'field' }, h('label', { for: 'override-gate' }, 'Scope'), gate);
    const stepField = h('div', { class: 'field', hidden: true }, h('label', { for: 'override-step' }, 'Step'), step);
    const expiresField = h('div', { class: 'field' }, h('label', { for: 'override-expires' }, 'Expires at (optional)'), expires);
    const submit = h('button', { type: 'submit', class: 'danger' }, 'Apply override');
    this.step = step;
    this.stepField = stepField;
    const sync = () => {
      gateField.hidden = action.value !== 'allow';
      expiresField.hidden = action.value !== 'allow';
      stepField.hidden = !NEEDS_STEP.has(action.value);
      if (!stepField.hidden) fillSteps(step, this.steps);
    };
    action.addEventListener('change', sync);
    reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));
    const form = h('form', { id: 'override-form', novalidate: true },
      h('p', { class: 'help' }, 'An override is a recorded act by you, with your reason, on one scope: it never reaches beyond it.'),
      h('div', { class: 'options' }, h('div', { class: 'field' }, h('label', { for: 'override-action' }, 'Action'), action), gateField, stepField, expiresField),
      h('div', { class: 'field wide' }, h('label', { for: 'override-reason' }, 'Reason (required)'), reason,
        h('p', { class: 'help', id: 'override-reason-help' }, 'Goes into the audit trail and is shown next to the verdict it overrode.')),
      h('div', { class: 'buttons' }, submit),
      result);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (reasonMissing(reason, result, 'An override')) return;
      const body = { plan_id: this.planId, action: action.value, reason: reason.value.trim() };
      if (action.value === 'allow' && gate.value) body.gate = gate.value;
      if (NEEDS_STEP.has(action.value)) body.step_id = step.value;
      if (action.value === 'allow' && expires.value) body.expires_at = new Date(expires.value).toISOString();
      sendForm(this, {
        submit, result, reason,
        post: () => this.ctx.api.post('/api/automation/override', body),
        said: ({ data }) => `Override ${data.action} (${data.scope}${data.gate ? ` ${data.gate}` : ''}) recorded; the plan is now ${data.plan_status.replace(/_/g, ' ')}.`,
        refused: (err) => (err.status === 409 ? 'That override does not fit the plan as it stands.' : 'The override was refused.'),
      });
    });
    sync();
    return h('details', { class: 'card override', id: 'override' }, h('summary', null, 'Override'), form);
  }
}

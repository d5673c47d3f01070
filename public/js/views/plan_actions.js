// The plan page's actions: Execute (planner), disabled with the reason shown
// when FEATURE_PLANNER_EXECUTE is off or the plan is blocked; why a blocked
// plan is blocked (its status reason and the gates' blocking findings); the
// override requests and the admin's override form (plan_overrides.js); the
// links; and "Skip the graph", which moves focus to the gates.

import { ApiError } from '../api.js';
import { findingsList, h, problemBox, replace, sentence } from '../dom.js';
import { AdminOverride, OverrideRequests } from './plan_overrides.js';

const RUNNABLE = new Set(['ready', 'approved', 'paused', 'executing', 'blocked']);
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'rolled_back']);
export const EXECUTE_FLAG = 'FEATURE_PLANNER_EXECUTE';

export function executeOffMessage(flag) {
  const last = flag?.history?.[0];
  const by = last?.by ?? flag?.updated_by;
  return `Execution is switched off (${EXECUTE_FLAG}${by ? `, by ${by}` : ''}): steps wait until an admin switches it on.`
    + (last?.reason ? ` Their reason: “${last.reason}”.` : '');
}

export class PlanActions {
  constructor(ctx, planId, { refresh, skipTo }) {
    this.ctx = ctx;
    this.planId = planId;
    this.refresh = refresh;
    const { session } = ctx;
    this.element = h('section', { class: 'actions', 'aria-labelledby': 'actions-heading', id: 'plan-actions' });
    this.executeButton = h('button', { type: 'button', id: 'execute-button', hidden: true, 'aria-describedby': 'execute-why' }, 'Execute');
    this.executeButton.addEventListener('click', () => this.execute());
    this.executeWhy = h('p', { class: 'help inline', id: 'execute-why' });
    this.executeResult = h('div', { id: 'execute-result', class: 'form-result', 'aria-live': 'polite' });
    this.blockedBox = h('div', { id: 'blocked-why', class: 'card blocked-why', hidden: true });
    this.requests = new OverrideRequests(ctx, planId, { refresh });
    this.override = session.can('admin') ? new AdminOverride(ctx, planId, { refresh }) : null;
    const skip = h('a', { href: `#/plans/${planId}`, id: 'skip-graph', class: 'skip-graph' }, 'Skip the graph');
    skip.addEventListener('click', (e) => {
      e.preventDefault();
      skipTo();
    });
    this.element.append(...[
      h('h2', { class: 'visually-hidden', id: 'actions-heading' }, 'Actions'),
      session.can('planner') ? h('div', { class: 'buttons execute-row' }, this.executeButton, this.executeWhy) : this.executeWhy,
      this.executeResult,
      this.blockedBox,
      this.requests.element,
      this.override?.element ?? null,
      h('p', { class: 'links' },
        h('a', { href: `#/audit/${planId}` }, 'Audit trail'), ' · ',
        h('a', { href: '#/approvals' }, 'Approval queue'), ' · ',
        h('a', { href: '#/plans' }, 'All plans'), ' · ',
        skip)].filter(Boolean));
  }

  // flag: the FEATURE_PLANNER_EXECUTE flag (or null when unread); requests: the
  // plan's override requests (or null when the API has none to give).
  update({ plan, detail, gates, pending, flag, requests }) {
    this.plan = plan;
    this.flag = flag;
    const blocked = plan.status === 'blocked';
    const off = flag && flag.enabled === false;
    let why = '';
    if (off && !TERMINAL.has(plan.status)) why = executeOffMessage(flag);
    else if (blocked) why = 'The plan is blocked: it runs once an admin allows it (see why below).';
    else if (plan.status === 'paused') why = `Paused: ${pending.length} approval${pending.length === 1 ? '' : 's'} pending.`;
    else if (plan.status === 'executing') why = 'Executing: Execute advances it further.';
    else if (TERMINAL.has(plan.status)) why = `This plan is ${plan.status.replace(/_/g, ' ')}.`;
    this.executeWhy.textContent = why;
    this.executeWhy.classList.toggle('refusal', Boolean(off || blocked));
    if (this.ctx.session.can('planner')) {
      this.executeButton.hidden = !RUNNABLE.has(plan.status);
      this.executeButton.setAttribute('aria-disabled', String(Boolean(off || blocked)));
    }
    this.renderBlocked(plan, gates);
    this.requests.update(plan, requests, detail.steps ?? []);
    this.override?.update(detail.steps ?? []);
  }

  renderBlocked(plan, gates) {
    this.blockedBox.hidden = plan.status !== 'blocked';
    if (this.blockedBox.hidden) return;
    const findings = Object.values(gates?.gates ?? {}).flatMap((g) => g.findings ?? []).filter((f) => f.severity === 'block');
    const overridden = Object.entries(gates?.gates ?? {}).filter(([, g]) => g.overrides?.length).map(([name]) => name);
    const { session } = this.ctx;
    replace(this.blockedBox,
      h('h3', { id: 'blocked-heading' }, 'Why the plan is blocked'),
      findings.length
        ? findingsList(findings, { fold: 5 })
        : h('p', { id: 'blocked-reason' }, sentence((plan.status_reason ?? 'blocked').replace(/^blocked: /, ''))),
      overridden.length ? h('p', { class: 'small' }, `Overridden already: the ${overridden.join(', ')} gate.`) : null,
      h('p', { class: 'help' }, 'An admin’s allow override lets it run. ',
        session.can('admin') ? 'Grant a request below, or apply an override yourself.'
          : session.can('planner') ? 'Ask for one below: an admin sees your request here and decides.'
            : 'A planner can ask an admin for one.'));
  }

  async execute() {
    if (this.executeButton.getAttribute('aria-disabled') === 'true') {
      replace(this.executeResult, h('div', { class: 'problem', role: 'alert' }, h('p', { class: 'problem-lead' }, this.executeWhy.textContent)));
      return;
    }
    this.executeButton.disabled = true;
    replace(this.executeResult, h('p', { class: 'muted' }, 'Starting…'));
    try {
      const { data } = await this.ctx.api.post('/api/auto-planner/execute', { plan_id: this.planId });
      const waiting = data.waiting_for?.length ?? 0;
      replace(this.executeResult, h('p', { class: 'outcome' },
        'Execution started: the plan is ', h('strong', null, data.status.replace(/_/g, ' ')), data.status_reason ? ` (${data.status_reason})` : '', '. ',
        data.runnable?.length ? `${data.runnable.length} step${data.runnable.length === 1 ? '' : 's'} start now; this page follows them as they run. ` : '',
        waiting ? [`Waiting for ${waiting} approval${waiting === 1 ? '' : 's'}: `, h('a', { href: '#/approvals' }, 'open the approval queue'), '.'] : ''));
      this.ctx.announce(`Execution started: the plan is ${data.status}.`);
      this.ctx.nudge();
      this.refresh();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      let lead = 'The plan could not start.';
      if (err.kind === 'feature-disabled') lead = executeOffMessage(this.flag?.enabled === false ? this.flag : null);
      else if (err.status === 409) lead = 'The plan cannot run now.';
      else if (err.status === 403) lead = 'Your role may not execute plans.';
      else if (err.status === 0) lead = 'The console could not reach the server; nothing was started.';
      const box = problemBox(err, lead, { detail: err.kind !== 'feature-disabled' });
      replace(this.executeResult, box);
      this.ctx.announce(box.textContent, { log: false });
      if (err.kind === 'feature-disabled') this.refresh(); // read the flag again: the button says why from now on
    } finally {
      this.executeButton.disabled = false;
    }
  }
}

// The approval queue: pending approvals oldest first, each with its plan, step,
// tool, findings, inputs summary, time left (ticking) and signed artifact links;
// approvers approve or deny with a reason. Cards are keyed by approval id, so a
// live refresh never wipes a reason someone is typing.

import { ApiError } from '../api.js';
import {
  append, dl, findingsList, formatDuration, h, problemBox, replace, statusBadge, when,
} from '../dom.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'all'];

export class ApprovalsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.title = 'Approvals';
    this.status = 'pending';
    this.cards = new Map();
    this.seq = 0;
    this.timer = null;
    this.ticker = null;
  }

  mount(container) {
    const { session } = this.ctx;
    const select = h('select', { id: 'approval-status' },
      STATUSES.map((s) => h('option', { value: s, selected: s === this.status }, s)));
    select.addEventListener('change', () => {
      this.status = select.value;
      for (const card of this.cards.values()) card.root.remove();
      this.cards.clear();
      this.refresh();
    });
    this.outcome = h('div', { id: 'decision-outcome', class: 'outcomes', role: 'status', 'aria-live': 'polite' });
    this.error = h('div', { class: 'view-error' });
    this.empty = h('p', { class: 'empty muted', hidden: true }, 'Nothing is waiting for a decision.');
    this.list = h('div', { class: 'approval-list', id: 'approval-list' });
    this.summary = h('p', { class: 'muted', id: 'approval-summary' }, 'Loading the queue…');
    append(container, [
      h('div', { class: 'view-head' },
        h('h1', null, 'Approval queue'),
        h('div', { class: 'filters' }, h('label', { for: 'approval-status' }, 'Show'), select)),
      session.can('approver')
        ? h('p', { class: 'help' }, 'Oldest first. Approving resumes the plan at once; denying needs a reason and blocks the plan.')
        : h('p', { class: 'help', id: 'read-only-note' },
          `You are signed in as ${session.role}: you can follow the queue, but deciding needs the approver role.`),
      this.outcome,
      this.error,
      this.summary,
      this.empty,
      this.list
    ]);
    this.refresh();
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  destroy() {
    clearInterval(this.ticker);
    clearTimeout(this.timer);
    clearTimeout(this.linkTimer);
    this.seq += 1;
  }

  onEvents(events) {
    if (events.some((e) => e.type.startsWith('approval.') || e.type.startsWith('plan.') || e.type.startsWith('step.'))) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), 150);
    }
  }

  async refresh() {
    const seq = ++this.seq;
    try {
      const { approvals } = await this.ctx.api.get('/api/approvals', { status: this.status, limit: 200 });
      if (seq !== this.seq) return;
      replace(this.error);
      this.render(approvals);
    } catch (err) {
      if (seq !== this.seq) return;
      replace(this.error, problemBox(err, 'Could not load the approval queue.'));
    }
  }

  render(approvals) {
    const seen = new Set();
    let previous = null;
    for (const approval of approvals) {
      seen.add(approval.id);
      let card = this.cards.get(approval.id);
      if (!card) {
        card = this.createCard(approval);
        this.cards.set(approval.id, card);
      }
      this.fillCard(card, approval);
      // keep the API's order (oldest first) without re-inserting cards that are in place
      const anchor = previous ? previous.root.nextElementSibling : this.list.firstElementChild;
      if (anchor !== card.root) this.list.insertBefore(card.root, anchor);
      previous = card;
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.root.remove();
        this.cards.delete(id);
      }
    }
    const n = approvals.length;
    this.summary.textContent = this.status === 'pending'
      ? `${n} pending approval${n === 1 ? '' : 's'}, oldest first.`
      : `${n} approval${n === 1 ? '' : 's'} (${this.status}), oldest first.`;
    this.empty.hidden = n !== 0;
    this.renewLinksBeforeTheyExpire(approvals);
  }

  // Signed artifact links expire (15 minutes by default): fetch fresh ones shortly before.
  renewLinksBeforeTheyExpire(approvals) {
    clearTimeout(this.linkTimer);
    const expiries = approvals.flatMap((a) => (a.artifacts ?? []).map((art) => Date.parse(art.expires_at)))
      .filter((t) => Number.isFinite(t));
    if (!expiries.length) return;
    const wait = Math.max(5000, Math.min(...expiries) - Date.now() - 30000);
    this.linkTimer = setTimeout(() => this.refresh(), Math.min(wait, 2 ** 31 - 1));
  }

  createCard(approval) {
    const headingId = `approval-title-${approval.id}`;
    const root = h('article', {
      class: 'card approval', id: `approval-${approval.id}`, 'aria-labelledby': headingId,
      dataset: { approvalId: approval.id, itemKey: approval.step?.item_key ?? '' },
    });
    const card = {
      root,
      heading: h('h2', { id: headingId }),
      countdown: h('span', { class: 'countdown' }),
      body: h('div', { class: 'approval-body' }),
      decision: null,
      deadline: null,
    };
    append(root, [h('header', { class: 'card-head' }, card.heading, card.countdown), card.body]);
    return card;
  }

  fillCard(card, a) {
    const { session } = this.ctx;
    card.approval = a;
    card.root.dataset.status = a.status;
    replace(card.heading, a.kind === 'step'
      ? [h('span', { class: 'kind' }, 'Step '), h('code', null, a.step?.item_key ?? '?'), ` ${a.step?.title ?? ''}`]
      : [h('span', { class: 'kind' }, 'Plan approval: '), a.plan?.title ?? a.plan?.id]);
    card.deadline = a.status === 'pending' && a.seconds_left !== null && a.seconds_left !== undefined
      ? performance.now() + a.seconds_left * 1000
      : null;
    this.tickCard(card);

    const planLink = h('a', { href: `#/plans/${a.plan.id}` }, a.plan.title ?? a.plan.id);
    const meta = h('dl', { class: 'meta' },
      h('dt', null, 'Plan'), h('dd', null, planLink, ' ', statusBadge(a.plan.status)),
      a.step ? [h('dt', null, 'Step'), h('dd', null, h('code', null, a.step.item_key), ' ', statusBadge(a.step.status), a.step.stage === undefined || a.step.stage === null ? '' : ` stage ${a.step.stage + 1}`)] : null,
      h('dt', null, 'Tool'), h('dd', null, a.tool_id ? h('code', null, a.tool_id) : h('span', { class: 'muted' }, 'the whole plan')),
      h('dt', null, 'Status'), h('dd', null, statusBadge(a.status), a.decision_reason ? ` ${a.decision_reason}` : ''),
      h('dt', null, 'Approvals'), h('dd', { class: 'votes' }, `${a.approvals} of ${a.required_approvals} (${a.approver_role ?? 'approver'} role)`),
      h('dt', null, 'Requested'), h('dd', null, 'by ', a.requested_by, ', ', when(a.requested_at)),
      h('dt', null, 'Expires'), h('dd', null, when(a.expires_at)),
    );
    const artifacts = a.artifacts?.length
      ? h('ul', { class: 'artifacts' }, a.artifacts.map((art) => h('li', null,
        h('a', { href: art.url, target: '_blank', rel: 'noopener noreferrer', class: 'artifact-link' }, art.name),
        h('span', { class: 'muted' }, ' signed link, valid until ', when(art.expires_at)))))
      : h('p', { class: 'muted' }, 'No artifacts.');
    const inputs = a.inputs_summary && Object.keys(a.inputs_summary).length
      ? dl(a.inputs_summary) : h('p', { class: 'muted' }, 'No inputs.');
    replace(card.body,
      meta,
      h('div', { class: 'approval-columns' },
        h('section', { 'aria-label': 'Gate findings' }, h('h3', null, 'Gate findings'), findingsList(a.findings, { empty: 'No gate findings.' })),
        h('section', { 'aria-label': 'Inputs summary' }, h('h3', null, 'Inputs summary'), inputs),
        h('section', { 'aria-label': 'Artifacts' }, h('h3', null, 'Artifacts'), artifacts)),
      a.history?.length ? h('details', { class: 'history' },
        h('summary', null, `History (${a.history.length})`),
        h('ol', null, a.history.map((e) => h('li', null, when(e.occurred_at), ` ${e.event} by ${e.actor}`,
          e.source ? h('span', { class: 'muted' }, ` via ${e.source}`) : null, e.reason ? ` — ${e.reason}` : '')))) : null,
    );

    const mayDecide = a.status === 'pending' && session.can(a.approver_role ?? 'approver');
    if (mayDecide && !card.decision) {
      card.decision = this.decisionForm(card);
      card.root.append(card.decision.form);
    } else if (!mayDecide && card.decision) {
      card.decision.form.remove();
      card.decision = null;
    }
    if (card.decision) {
      const own = a.requested_by && a.requested_by === session.name;
      card.decision.own.hidden = !own;
    }
  }

  decisionForm(card) {
    const id = card.approval.id;
    const reason = h('textarea', {
      id: `reason-${id}`, name: 'reason', rows: 2, maxlength: 2000, 'aria-describedby': `reason-help-${id}`,
    });
    const result = h('div', { class: 'decision-result', id: `decision-result-${id}` });
    const approve = h('button', { type: 'submit', value: 'approve', class: 'approve' }, 'Approve');
    const deny = h('button', { type: 'submit', value: 'deny', class: 'deny danger' }, 'Deny');
    const own = h('p', { class: 'help', hidden: true }, 'You requested this approval: someone else has to decide it.');
    const form = h('form', { class: 'decision', 'aria-label': `Decide ${card.approval.step?.item_key ?? 'plan approval'}` },
      h('label', { for: reason.id }, 'Reason'),
      reason,
      h('p', { class: 'help', id: `reason-help-${id}` }, 'Required to deny; recorded in the approval history and the audit trail.'),
      own,
      h('div', { class: 'buttons' }, approve, deny),
      result);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const decision = event.submitter?.value ?? 'approve';
      this.decide(card, decision, reason, [approve, deny], result);
    });
    reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));
    return { form, reason, result, own };
  }

  async decide(card, decision, reasonField, buttons, result) {
    const a = card.approval;
    const reason = reasonField.value.trim();
    const body = { decision };
    if (reason) body.reason = reason;
    const label = a.step?.item_key ?? `plan “${a.plan.title}”`;
    buttons.forEach((b) => { b.disabled = true; });
    replace(result, h('p', { class: 'muted' }, decision === 'approve' ? 'Approving…' : 'Denying…'));
    try {
      const { data } = await this.ctx.api.post(`/api/approvals/${a.id}`, body);
      replace(result);
      let planStatus = data.plan?.status;
      try {
        planStatus = (await this.ctx.api.get(`/api/plans/${a.plan.id}`, { limit: 1 })).plan.status;
      } catch { /* the decision stands; the plan status is extra */ }
      const verb = data.status === 'pending'
        ? `Your approval of ${label} is recorded (${data.approvals} of ${data.required_approvals}); it waits for another approver.`
        : `You ${data.status} ${label}${decision === 'deny' ? `: ${reason}` : ''}.`;
      this.showOutcome(h('p', { class: `outcome outcome-${data.status}` },
        verb, ' Plan ', h('a', { href: `#/plans/${a.plan.id}` }, a.plan.title ?? a.plan.id), ' is now ',
        h('span', { class: 'plan-status-after', dataset: { planId: a.plan.id } }, planStatus ?? 'unknown'), '.'));
      this.ctx.announce(`${verb} The plan is now ${planStatus}.`);
      this.ctx.nudge();
      this.refresh();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      let lead = decision === 'deny' ? 'The denial was refused.' : 'The approval was refused.';
      if (err.status === 409) lead = `Already decided: ${err.body?.approval?.status ?? 'someone else decided first'}.`;
      if (err.status === 410) lead = 'This approval expired before the decision; it counts as a denial.';
      if (err.kind === 'self-approval') lead = 'You requested this approval, so you may not decide it.';
      const mentionsReason = err.status === 422 && JSON.stringify(err.problem ?? {}).includes('reason');
      if (mentionsReason) {
        reasonField.setAttribute('aria-invalid', 'true');
        reasonField.focus();
      }
      replace(result, problemBox(err, lead));
      this.ctx.announce(`${lead} ${err.problem?.detail ?? ''}`, { log: false });
      if (err.status === 409 || err.status === 410) this.refresh();
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  showOutcome(node) {
    this.outcome.prepend(node);
    while (this.outcome.children.length > 5) this.outcome.lastElementChild.remove();
  }

  tick() {
    for (const card of this.cards.values()) this.tickCard(card);
  }

  tickCard(card) {
    if (card.deadline === null) {
      card.countdown.textContent = '';
      card.countdown.className = 'countdown';
      return;
    }
    const left = (card.deadline - performance.now()) / 1000;
    if (left <= 0) {
      card.countdown.textContent = 'expired';
      card.countdown.className = 'countdown expired';
      if (!card.expiredRefresh) {
        card.expiredRefresh = true;
        setTimeout(() => this.refresh(), 1000);
      }
      return;
    }
    card.countdown.textContent = `${formatDuration(left)} left`;
    card.countdown.className = `countdown${left < 300 ? ' urgent' : ''}`;
  }
}

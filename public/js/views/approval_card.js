// One request in the approval queue. Owns: the compact row (selection box, the
// toggle with item key and title, tool, plan, time left, votes) that expands to
// the full card; where the request stands for the person looking (decided by
// someone else, their own vote, their own request); the decision form; and what
// a decision did, in the card's place: the outcome, a lost race, a refusal, or
// "Not sent" with Retry. The expanded card's details are approval_details.js;
// the list, paging and live refreshes are approvals.js.

import { ApiError } from '../api.js';
import { bindDraft, forgetDraft } from '../drafts.js';
import {
  formatDuration, h, problemBox, replace,
} from '../dom.js';
import {
  decidersOf, decidingEvents, details, names,
} from './approval_details.js';

const draftKey = (approvalId) => `approval-reason:${approvalId}`;

export function labelOf(a) {
  return a.step?.item_key ?? `plan “${a.plan?.title ?? a.plan?.id}”`;
}

function lostText(standing, decision) {
  const what = decision === 'deny' ? 'denial' : 'approval';
  const who = names(decidersOf(standing));
  if (standing.status === 'expired') return `Already expired: your ${what} did not count.`;
  if (standing.status === 'cancelled') {
    return `Already cancelled${standing.decision_reason ? ` (${standing.decision_reason})` : ''}: your ${what} did not count.`;
  }
  return `Already ${standing.status}${who ? ` by ${who}` : ''}: your ${what} did not count.`;
}

export function decidedText(a) {
  const who = names(decidersOf(a));
  if (a.status === 'expired') return 'Expired before enough people decided: it counts as a denial.';
  if (a.status === 'cancelled') return `Cancelled${a.decision_reason ? `: ${a.decision_reason}` : ''}.`;
  const reasons = [...new Set(decidingEvents(a).map((e) => e.reason).filter(Boolean))];
  return `Decided by ${who || 'someone else'}: ${a.status}${reasons.length ? ` (${reasons.join('; ')})` : ''}.`;
}

export class ApprovalCard {
  constructor(approval, { ctx, onToggle, onSelect, onDismiss, onDecided }) {
    this.ctx = ctx;
    this.hooks = { onToggle, onSelect, onDismiss, onDecided };
    this.final = null; // 'mine' (my decision went through) or 'lost' (someone decided first): kept until dismissed
    this.gone = false; // left the queue (decided by someone else) while a person was acting
    this.expanded = false;
    this.form = null;
    this.deadline = null;
    this.votedHere = false;
    const id = approval.id;
    this.id = id;
    this.toggle = h('button', {
      type: 'button', class: 'row-toggle', 'aria-expanded': 'false', 'aria-controls': `approval-body-${id}`,
      onclick: () => this.hooks.onToggle(this, !this.expanded),
    });
    this.select = h('input', { type: 'checkbox', class: 'row-select', hidden: true, onchange: () => this.hooks.onSelect(this, this.select.checked) });
    this.tool = h('span', { class: 'row-tool' });
    this.plan = h('span', { class: 'row-plan' });
    this.countdown = h('span', { class: 'countdown' });
    this.votes = h('span', { class: 'row-votes' });
    this.state = h('p', { class: 'card-state', hidden: true, tabindex: '-1' });
    this.outcome = h('div', { class: 'card-outcome' });
    this.detailsHost = h('div');
    this.formHost = h('div');
    this.body = h('div', { class: 'approval-body', id: `approval-body-${id}`, hidden: true }, this.detailsHost, this.formHost);
    this.root = h('article', {
      class: 'card approval', id: `approval-${id}`, 'aria-labelledby': `approval-title-${id}`,
      dataset: { approvalId: id },
    },
    h('div', { class: 'approval-row' },
      this.select,
      h('h2', { class: 'row-title', id: `approval-title-${id}` }, this.toggle),
      h('div', { class: 'row-facts' }, this.tool, this.plan, this.countdown, this.votes)),
    this.state, this.outcome, this.body);
    this.update(approval);
  }

  get label() {
    return labelOf(this.approval);
  }

  // What I may do with it, and what to say about it.
  standing() {
    const a = this.approval;
    const { session } = this.ctx;
    if (a.status !== 'pending') return { text: decidedText(a), closed: true, approve: false, deny: false };
    if (!session.can(a.approver_role ?? 'approver')) return { text: '', approve: false, deny: false };
    const mine = (a.history ?? []).find((e) => session.subject && e.person_id === session.subject && (e.event === 'approve' || e.event === 'deny'));
    if (mine || this.votedHere) {
      const more = a.required_approvals - a.approvals === 1 && a.required_approvals === 2 ? 'a second approver' : 'another approver';
      return { text: `You approved; waiting for ${more} (${a.approvals} of ${a.required_approvals}).`, approve: false, deny: false, voted: true };
    }
    const requester = Array.isArray(a.requester_ids)
      ? Boolean(session.subject) && a.requester_ids.includes(session.subject)
      : Boolean(a.requested_by) && a.requested_by === session.name;
    if (requester) return { text: 'You requested this: someone else has to approve it (you may still deny it).', approve: false, deny: true, requester: true };
    const others = [...new Set((a.history ?? []).filter((e) => e.event === 'approve').map((e) => e.actor))];
    const text = others.length ? `${names(others)} approved (${a.approvals} of ${a.required_approvals}); it needs another approver.` : '';
    return { text, approve: true, deny: true };
  }

  // May I tick it for a decision on several at once?
  selectable() {
    const s = this.standing();
    return !this.final && !this.gone && this.approval.status === 'pending' && s.approve && s.deny;
  }

  update(a) {
    this.approval = a;
    this.root.dataset.status = a.status;
    this.root.dataset.itemKey = a.step?.item_key ?? '';
    this.root.dataset.planId = a.plan?.id ?? '';
    replace(this.toggle, a.kind === 'step' || a.step
      ? [h('code', null, a.step?.item_key ?? '?'), ` ${a.step?.title ?? ''}`]
      : [h('span', { class: 'kind' }, 'Plan approval: '), a.plan?.title ?? a.plan?.id]);
    replace(this.tool, a.tool_id ? h('code', null, a.tool_id) : h('span', { class: 'muted' }, 'whole plan'));
    replace(this.plan, h('span', { class: 'visually-hidden' }, 'plan '), a.plan?.title ?? '');
    replace(this.votes, `${a.approvals} of ${a.required_approvals}`, h('span', { class: 'visually-hidden' }, ' approvals'));
    this.select.setAttribute('aria-label', `Select ${labelOf(a)} (plan ${a.plan?.title ?? ''})`);
    this.deadline = a.status === 'pending' && Number.isFinite(a.seconds_left) ? performance.now() + a.seconds_left * 1000 : null;
    this.tick();
    const st = this.standing();
    if (this.final !== 'mine') {
      this.state.textContent = st.text;
      this.state.hidden = !st.text;
    }
    this.root.classList.toggle('closed', Boolean(st.closed) || this.final === 'lost');
    this.select.hidden = !this.selectable();
    if (this.select.hidden) this.select.checked = false;
    if (this.expanded) this.renderDetails();
    this.syncForm(st);
  }

  renderDetails() {
    const a = this.approval;
    const signature = JSON.stringify({ ...a, seconds_left: 0, artifacts: (a.artifacts ?? []).map((x) => [x.name, Boolean(x.url)]) });
    if (signature === this.signature) {
      // only the signed links move: renew their addresses in place (focus stays where it is)
      const links = this.detailsHost.querySelectorAll('a.artifact-link');
      const withUrl = (a.artifacts ?? []).filter((x) => x.url);
      links.forEach((link, i) => { if (withUrl[i]) link.href = withUrl[i].url; });
      return;
    }
    this.signature = signature;
    const hadFocus = this.detailsHost.contains(document.activeElement);
    replace(this.detailsHost, details(a));
    if (hadFocus) this.toggle.focus({ preventScroll: true });
  }

  setExpanded(open) {
    this.expanded = open;
    this.toggle.setAttribute('aria-expanded', String(open));
    this.body.hidden = !open;
    this.root.classList.toggle('expanded', open);
    if (open) this.renderDetails();
  }

  syncForm(st = this.standing()) {
    const a = this.approval;
    const want = this.final === 'lost' || (!this.final && !this.gone && a.status === 'pending' && this.ctx.session.can(a.approver_role ?? 'approver'));
    if (want && !this.form) this.form = this.decisionForm();
    if (!want && this.form) {
      this.form.form.remove();
      this.form = null;
    }
    if (!this.form) return;
    const locked = this.busy || this.final === 'lost';
    this.form.approve.disabled = locked || !st.approve;
    this.form.deny.disabled = locked || !st.deny;
  }

  decisionForm() {
    const id = this.id;
    const reason = h('textarea', { id: `reason-${id}`, name: 'reason', rows: 2, maxlength: 2000, 'aria-describedby': `reason-help-${id}` });
    const result = h('div', { class: 'decision-result', id: `decision-result-${id}` });
    const approve = h('button', { type: 'submit', value: 'approve', class: 'approve' }, 'Approve');
    const deny = h('button', { type: 'submit', value: 'deny', class: 'deny danger' }, 'Deny');
    const form = h('form', { class: 'decision', 'aria-label': `Decide ${this.label}` },
      h('label', { for: reason.id }, 'Reason'),
      reason,
      h('p', { class: 'help', id: `reason-help-${id}` }, 'Required to deny; recorded in the approval history and the audit trail.'),
      h('div', { class: 'buttons' }, approve, deny),
      result);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.decide(event.submitter?.value ?? 'approve', reason.value.trim());
    });
    reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));
    // a half-written reason outlives a session that ends (js/drafts.js)
    bindDraft(reason, draftKey(id));
    this.formHost.append(form);
    return { form, reason, result, approve, deny };
  }

  typing() {
    return Boolean(this.form?.reason.value.trim());
  }

  // One decision, its own POST. Resolves to what happened, in words, for a summary.
  async decide(decision, reason, { focus = true } = {}) {
    const a = this.approval;
    const body = { decision };
    if (reason) body.reason = reason;
    this.busy = true;
    this.syncForm();
    if (this.form) replace(this.form.result, h('p', { class: 'muted' }, decision === 'approve' ? 'Approving…' : 'Denying…'));
    try {
      const { data } = await this.ctx.api.post(`/api/approvals/${a.id}`, body);
      forgetDraft(draftKey(a.id));
      this.busy = false;
      const text = this.showMine(data, decision, reason, focus);
      this.hooks.onDecided(this);
      return { ok: true, text };
    } catch (err) {
      this.busy = false;
      if (!(err instanceof ApiError)) throw err;
      const text = this.showFailure(err, decision, reason, focus);
      return { ok: false, text };
    } finally {
      this.syncForm();
    }
  }

  showMine(data, decision, reason, focus) {
    const label = labelOf(data);
    if (data.status === 'pending') {
      this.votedHere = true;
      this.update(data);
      if (this.form) replace(this.form.result);
      const text = `You approved ${label}; ${this.state.textContent.replace(/^You approved; /, '')}`;
      this.state.textContent = text;
      this.state.hidden = false;
      this.ctx.announce(text);
      if (focus) this.reveal(this.state);
      return `approved (${data.approvals} of ${data.required_approvals}); waits for another approver`;
    }
    this.final = 'mine';
    this.update(data);
    this.setExpanded(false);
    this.planStatus = h('span', { class: 'plan-status-after', dataset: { planId: data.plan?.id } }, data.plan?.status ?? '…');
    this.planLine = h('span', { class: 'plan-line' });
    this.leadText = data.status === 'denied' ? `You denied ${label}${reason ? `: ${reason}` : ''}. ` : `You ${data.status} ${label}. `;
    this.outcomeLead = h('span', { class: 'outcome-lead' }, this.leadText);
    const text = h('p', { class: 'outcome-text' }, this.outcomeLead, this.planLine);
    this.outcomeNode = h('div', { class: `outcome outcome-${data.status}`, tabindex: '-1' }, text, this.dismissButton());
    replace(this.outcome, this.outcomeNode);
    this.state.hidden = true;
    this.fillPlanLine(data.plan?.status, null);
    if (focus) this.reveal(this.outcomeNode);
    // said once the plan's next step is known (a moment): "PAY-3 approved; the plan now waits for PLT-2 …"
    this.followPlan().finally(() => this.ctx.announce(text.textContent));
    return data.status;
  }

  fillPlanLine(status, waiting) {
    if (!this.planLine) return;
    const a = this.approval;
    const link = h('a', { href: `#/plans/${a.plan?.id}` }, a.plan?.title ?? 'the plan');
    this.planStatus.textContent = status ?? 'unknown';
    const waits = a.status === 'approved' && waiting?.keys.length;
    this.outcomeLead.textContent = waits ? '' : this.leadText;
    if (waits) {
      const shown = waiting.keys.slice(0, 3);
      const more = waiting.total - shown.length;
      replace(this.planLine, `${labelOf(a)} approved; the plan `, link,
        ` now waits for ${shown.join(', ')}${more > 0 ? ` and ${more} more` : ''} (approval requested). Its status: `, this.planStatus, '.');
    } else if (a.status === 'approved') {
      replace(this.planLine, 'The plan ', link, ' carries on; its status is now ', this.planStatus, '.');
    } else {
      replace(this.planLine, 'The plan ', link, ' is now ', this.planStatus, '.');
    }
  }

  // After my decision: where the plan stands now, and which approvals it waits for next.
  async followPlan() {
    if (!this.planLine) return;
    const a = this.approval;
    const { api } = this.ctx;
    const [plan, pending] = await Promise.all([
      api.get(`/api/plans/${a.plan.id}`, { limit: 1 }).catch(() => null),
      a.status === 'approved' ? api.get('/api/approvals', { plan_id: a.plan.id, status: 'pending', limit: 5 }).catch(() => null) : null,
    ]);
    const others = (pending?.approvals ?? []).filter((x) => x.id !== a.id);
    const listed = pending?.approvals ?? [];
    const total = (pending?.total ?? listed.length) - (listed.length - others.length);
    this.fillPlanLine(plan?.plan?.status ?? this.planStatus.textContent, { keys: others.map(labelOf), total });
  }

  showFailure(err, decision, reason, focus) {
    const what = decision === 'deny' ? 'denial' : 'approval';
    const result = this.form?.result;
    const standing = err.body?.approval ?? err.problem?.approval;
    if (err.status === 0) {
      const retry = h('button', { type: 'button', class: 'secondary retry', onclick: () => this.decide(decision, reason) }, 'Retry');
      replace(result, h('div', { class: 'problem not-sent', role: 'alert' },
        h('p', { class: 'problem-lead' }, `Not sent: the server could not be reached. Your ${what} of ${this.label} was not recorded.`),
        h('div', { class: 'buttons' }, retry)));
      this.ctx.announce(`Not sent: the server could not be reached. Retry when it is back.`, { log: false });
      if (focus) retry.focus();
      return 'not sent: the server could not be reached';
    }
    if ((err.status === 409 || err.status === 410) && standing && err.kind !== 'approval-already-voted') {
      const text = err.status === 410 ? `Expired before your ${what}: it counts as a denial.` : lostText(standing, decision);
      this.final = 'lost';
      this.update(standing);
      if (result) replace(result);
      this.outcomeNode = h('div', { class: 'outcome outcome-lost', tabindex: '-1', role: 'alert' },
        h('p', { class: 'outcome-text' }, text), this.dismissButton());
      replace(this.outcome, this.outcomeNode);
      this.state.hidden = true;
      this.ctx.announce(text, { log: false });
      if (focus) this.reveal(this.outcomeNode);
      return text.replace(/^Already/, 'already').replace(/^Expired/, 'expired');
    }
    let lead = `The ${what} was refused.`;
    if (err.kind === 'approval-already-voted') lead = 'You already decided on this request; your first decision stands.';
    else if (err.kind === 'self-approval') lead = 'You requested this approval, so you may not approve it.';
    else if (err.status === 403) lead = `Your role may not decide this request (it needs the ${this.approval.approver_role} role).`;
    else if (err.status >= 500) lead = `The server could not record your ${what} (${err.status}); nothing changed. Try again.`;
    replace(result, problemBox(err, lead));
    if (err.status === 422 && JSON.stringify(err.problem ?? {}).includes('reason') && this.form) {
      this.form.reason.setAttribute('aria-invalid', 'true');
      if (focus) this.form.reason.focus();
    }
    if (err.kind === 'self-approval') this.approval = { ...this.approval, requester_ids: [this.ctx.session.subject] };
    this.ctx.announce(lead, { log: false });
    return lead.replace(/\.$/, '').replace(/^The /, 'the ').replace(/^You /, 'you ').replace(/^Your /, 'your ');
  }

  dismissButton() {
    return h('button', {
      type: 'button', class: 'secondary dismiss', 'aria-label': `Dismiss ${this.label}`, onclick: () => this.hooks.onDismiss(this),
    }, 'Dismiss');
  }

  // Left the queue while someone was acting: marked in place, not removed.
  markGone(standing) {
    this.gone = true;
    const hadFocus = this.root.contains(document.activeElement);
    if (standing) this.update(standing);
    else {
      this.state.textContent = 'No longer pending.';
      this.state.hidden = false;
      this.syncForm();
    }
    this.root.classList.add('closed');
    this.select.hidden = true;
    if (hadFocus && !this.root.contains(document.activeElement)) this.state.focus({ preventScroll: true });
  }

  reveal(node) {
    node.focus({ preventScroll: true });
    node.scrollIntoView({ block: 'nearest' });
  }

  tick() {
    const el = this.countdown;
    if (this.deadline === null) {
      el.textContent = this.approval.status === 'pending' ? '' : this.approval.status;
      el.className = 'countdown';
      return false;
    }
    const left = (this.deadline - performance.now()) / 1000;
    if (left <= 0) {
      el.textContent = 'expired';
      el.className = 'countdown expired';
      const first = !this.expiredSeen;
      this.expiredSeen = true;
      return first;
    }
    el.textContent = `${formatDuration(left)} left`;
    el.className = `countdown${left < 300 ? ' urgent' : ''}`;
    return false;
  }
}

// Deciding several requests of one plan at once: the bar that shows while rows
// are ticked ("Approve selected (n)" / "Deny selected (n)" with one reason) and
// the report of what happened to each. Every request is still its own POST,
// sent by its card (its own vote, digest and audit row); some may lose a race.

import { h, replace } from '../dom.js';

export class BulkDecision {
  constructor({ ctx, cards, onDone }) {
    this.ctx = ctx;
    this.cards = cards; // () => the cards in the list
    this.onDone = onDone;
    this.selected = new Map(); // approval id -> card
    this.count = h('p', { class: 'bulk-count', id: 'bulk-count' });
    this.reason = h('textarea', { id: 'bulk-reason', rows: 2, maxlength: 2000, 'aria-describedby': 'bulk-count' });
    this.approve = h('button', { type: 'button', class: 'approve', id: 'bulk-approve', onclick: () => this.run('approve') });
    this.deny = h('button', { type: 'button', class: 'deny danger', id: 'bulk-deny', onclick: () => this.run('deny') });
    this.clearButton = h('button', { type: 'button', class: 'secondary', onclick: () => this.clear() }, 'Clear selection');
    this.problem = h('div', { class: 'bulk-problem' });
    this.controls = h('div', { class: 'bulk-controls' },
      this.count,
      h('label', { for: 'bulk-reason' }, 'Reason for the selected'),
      this.reason,
      h('div', { class: 'buttons' }, this.approve, this.deny, this.clearButton),
      this.problem);
    this.report = h('div', { class: 'bulk-report', id: 'bulk-report', tabindex: '-1' });
    this.element = h('section', { class: 'bulk card', id: 'bulk-bar', 'aria-label': 'Decide the selected requests', hidden: true },
      this.controls, this.report);
    this.reason.addEventListener('input', () => this.reason.removeAttribute('aria-invalid'));
    this.sync();
  }

  get planId() {
    const first = this.selected.values().next().value;
    return first ? first.approval.plan?.id : null;
  }

  // Only rows of the plan already picked may join the selection.
  allows(card) {
    return !this.planId || card.approval.plan?.id === this.planId;
  }

  set(card, on) {
    if (on && this.allows(card)) this.selected.set(card.id, card);
    else this.selected.delete(card.id);
    card.select.checked = this.selected.has(card.id);
    this.sync();
  }

  forget(card) {
    if (this.selected.delete(card.id)) this.sync();
  }

  clear() {
    for (const card of this.selected.values()) card.select.checked = false;
    this.selected.clear();
    this.sync();
  }

  sync() {
    const n = this.selected.size;
    const plan = this.selected.values().next().value?.approval.plan;
    this.count.textContent = n ? `${n} selected from plan “${plan?.title ?? plan?.id}”: each is sent as its own decision.` : '';
    this.approve.textContent = `Approve selected (${n})`;
    this.deny.textContent = `Deny selected (${n})`;
    this.controls.hidden = n === 0;
    this.element.hidden = n === 0 && !this.report.firstChild;
    for (const card of this.cards?.() ?? []) {
      card.select.disabled = !this.allows(card);
      card.select.title = card.select.disabled ? 'Select requests of one plan at a time' : '';
    }
  }

  async run(decision) {
    const reason = this.reason.value.trim();
    if (decision === 'deny' && !reason) {
      replace(this.problem, h('p', { class: 'problem', role: 'alert' }, 'A denial needs a reason: write one above.'));
      this.reason.setAttribute('aria-invalid', 'true');
      this.reason.focus();
      return;
    }
    replace(this.problem);
    const cards = [...this.selected.values()];
    this.approve.disabled = true;
    this.deny.disabled = true;
    const rows = [];
    const list = h('ul', { class: 'bulk-results' });
    const verb = decision === 'approve' ? 'Approving' : 'Denying';
    const heading = h('p', { class: 'bulk-summary' }, `${verb} ${cards.length}…`);
    replace(this.report, heading, list);
    this.element.hidden = false;
    let done = 0;
    for (const card of cards) {
      const result = await card.decide(decision, reason, { focus: false });
      if (result.ok) done += 1;
      rows.push(result);
      list.append(h('li', { class: result.ok ? 'ok' : 'bad' }, h('code', null, card.label), `: ${result.text}`));
    }
    const past = decision === 'approve' ? 'approved' : 'denied';
    const summary = done === cards.length
      ? `All ${cards.length} ${past}.`
      : `${done} of ${cards.length} ${past}; ${cards.length - done} did not go through (see each below).`;
    heading.textContent = summary;
    const close = h('button', { type: 'button', class: 'secondary', onclick: () => { replace(this.report); this.sync(); } }, 'Close report');
    this.report.append(close);
    this.reason.value = '';
    this.selected.clear();
    this.approve.disabled = false;
    this.deny.disabled = false;
    this.sync();
    this.ctx.announce(summary);
    this.report.focus({ preventScroll: true });
    this.report.scrollIntoView({ block: 'nearest' });
    this.onDone?.(rows);
  }
}

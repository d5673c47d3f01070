// Audit: a plan's timeline from the hash-chained audit log, with the chain check
// (ok, or where it first breaks) and signed snapshot links with their digest check.
// Without a plan id it lists plans to choose from.

import { h, problemBox, replace, statusBadge, when } from '../dom.js';

const PAGE = 500;
const SUMMARY_KEYS = ['status', 'verdict', 'score', 'reason', 'item_key', 'decision', 'action', 'key', 'to', 'error', 'attempt', 'tool_id', 'steps'];

export class AuditView {
  constructor(ctx, planId) {
    this.ctx = ctx;
    this.planId = planId;
    this.title = 'Audit';
    this.seq = 0;
    this.timer = null;
    this.limit = PAGE;
  }

  mount(container) {
    this.box = h('div', { id: 'audit' });
    container.append(h('h1', null, this.planId ? 'Audit trail' : 'Audit'), this.box);
    if (this.planId) this.refresh();
    else this.pickPlan();
  }

  destroy() {
    clearTimeout(this.timer);
    this.seq += 1;
  }

  onEvents(events) {
    if (this.planId && events.some((e) => e.plan_id === this.planId)) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), 300);
    }
  }

  async pickPlan() {
    try {
      const { plans } = await this.ctx.api.get('/api/plans', { limit: 100 });
      replace(this.box,
        h('p', { class: 'help' }, 'Choose a plan to see its audit trail and the chain check.'),
        plans.length
          ? h('ul', { class: 'plan-picker' }, plans.map((p) => h('li', null,
            h('a', { href: `#/audit/${p.id}` }, p.title), ' ', statusBadge(p.status), ' ', when(p.created_at))))
          : h('p', { class: 'muted' }, 'No plans yet.'));
    } catch (err) {
      replace(this.box, problemBox(err, 'Could not load the plans.'));
    }
  }

  async refresh() {
    if (!this.planId) {
      this.pickPlan();
      return;
    }
    const seq = ++this.seq;
    try {
      const [trail, detail] = await Promise.all([
        this.ctx.api.get(`/api/audit/${this.planId}`, { limit: this.limit }),
        this.ctx.api.get(`/api/plans/${this.planId}`, { limit: 1 }).catch(() => null),
      ]);
      if (seq !== this.seq) return;
      this.render(trail, detail?.plan);
    } catch (err) {
      if (seq !== this.seq) return;
      replace(this.box, problemBox(err, `Could not load the audit trail of plan ${this.planId}.`));
    }
  }

  render(trail, plan) {
    const chain = trail.chain;
    const check = chain.ok
      ? h('div', { class: 'chain chain-ok', id: 'chain-check', role: 'status' },
        h('strong', null, 'Chain verified'), `: ${chain.entries} entries, every hash links to the one before`,
        trail.snapshots_ok ? ', every snapshot matches its digest.' : '.')
      : h('div', { class: 'chain chain-broken', id: 'chain-check', role: 'alert' },
        h('strong', null, 'Chain broken'), `: ${chain.entries} entries checked. First break: `,
        h('code', null, JSON.stringify(chain.first_break)),
        trail.snapshots_ok ? '' : ' (a snapshot is missing or does not match its digest)');
    const more = trail.entries_total > trail.entries.length
      ? h('p', null, `Showing ${trail.entries.length} of ${trail.entries_total} entries. `,
        h('button', { type: 'button', class: 'secondary', onclick: () => { this.limit += PAGE; this.refresh(); } }, 'Show more'))
      : null;
    replace(this.box,
      h('p', { class: 'breadcrumb' }, 'Plan ', plan ? h('a', { href: `#/plans/${this.planId}` }, plan.title) : h('code', null, this.planId),
        plan ? [' ', statusBadge(plan.status)] : null),
      check,
      h('ol', { class: 'timeline', id: 'audit-timeline' }, trail.entries.map((e) => this.entry(e))),
      more);
  }

  entry(e) {
    const details = e.details ?? {};
    const summary = SUMMARY_KEYS.filter((k) => details[k] !== undefined && details[k] !== null && typeof details[k] !== 'object')
      .map((k) => `${k}: ${details[k]}`).join(' · ');
    return h('li', { class: 'entry', dataset: { seq: e.seq } },
      h('div', { class: 'entry-head' },
        h('span', { class: 'seq' }, `#${e.seq}`), ' ', when(e.occurred_at), ' ',
        h('strong', { class: 'action' }, e.action), ' by ', e.actor, e.actor_role ? h('span', { class: 'muted' }, ` (${e.actor_role})`) : null),
      summary ? h('p', { class: 'small' }, summary) : null,
      e.snapshot ? h('p', { class: 'small' },
        h('a', { href: e.snapshot.url, target: '_blank', rel: 'noopener noreferrer', class: 'snapshot-link' }, 'Snapshot'),
        e.snapshot.verified ? h('span', { class: 'ok' }, ' ✓ digest verified') : h('span', { class: 'bad' }, ' ✗ digest mismatch or missing')) : null,
      h('details', null, h('summary', null, 'Details'),
        h('pre', null, JSON.stringify({ ...details, hash: e.hash, prev_hash: e.prev_hash }, null, 2))));
  }
}

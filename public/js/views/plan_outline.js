// A large plan's outline (over SMALL_PLAN_STEPS steps): each stage is one row
// of counts ("Stage 12 · 14 steps · 3 done, 1 running") that opens to list its
// steps, built only when opened, so a 1,500-step plan is about a hundred rows
// and no lines. Each listed step is one tab stop; what it comes after and what
// waits for it are filled in by the steps section (plan_steps.js) on focus.

import { badge, formatMs, formatNumber, h, statusBadge } from '../dom.js';

const COUNTED = [
  ['succeeded', 'done'], ['running', 'running'], ['awaiting_approval', 'awaiting approval'], ['approved', 'approved'],
  ['failed', 'failed'], ['denied', 'denied'], ['skipped', 'skipped'], ['rolled_back', 'rolled back'],
];

export function stageSummary(index, stage, model) {
  const counts = {};
  for (const s of stage) counts[s.status] = (counts[s.status] ?? 0) + 1;
  const parts = COUNTED.filter(([status]) => counts[status]).map(([status, word]) => `${formatNumber(counts[status])} ${word}`);
  const blocked = stage.filter((s) => model.verdicts.get(s.id)?.verdict === 'block').length;
  if (blocked) parts.push(`${formatNumber(blocked)} blocked by a gate`);
  const n = stage.length;
  return `Stage ${index + 1} · ${formatNumber(n)} step${n === 1 ? '' : 's'} · ${parts.length ? parts.join(', ') : 'not started'}`;
}

export class LargeOutline {
  constructor() {
    this.openStages = new Set();
  }

  destroy() {}

  render(model) {
    this.model = model;
    this.stageOf = new Map();
    model.stages.forEach((stage, index) => { for (const s of stage) this.stageOf.set(s.id, index); });
    this.rows = model.stages.map((stage, index) => {
      const list = h('ol', { class: 'stage-steps' });
      const details = h('details', { class: 'stage-row', dataset: { stage: String(index) }, open: this.openStages.has(index) },
        h('summary', null, stageSummary(index, stage, model)),
        list);
      details.addEventListener('toggle', () => {
        if (details.open) {
          this.openStages.add(index);
          this.fill(index);
        } else {
          this.openStages.delete(index);
        }
      });
      return { details, list, filled: false };
    });
    for (const index of this.openStages) if (this.rows[index]) this.fill(index);
    this.element = h('ol', { class: 'stage-rows', 'aria-label': 'Stages' }, this.rows.map((r) => h('li', null, r.details)));
    return this.element;
  }

  fill(index) {
    const row = this.rows[index];
    if (!row || row.filled) return;
    row.filled = true;
    row.list.append(...this.model.stages[index].map((s) => this.stepRow(s)));
  }

  // Open the step's stage and hand back its row, ready to focus.
  reveal(stepId) {
    const index = this.stageOf?.get(stepId);
    if (index === undefined) return null;
    const row = this.rows[index];
    this.fill(index);
    if (!row.details.open) {
      row.details.open = true;
      this.openStages.add(index);
    }
    return row.list.querySelector(`#step-${CSS.escape(stepId)}`);
  }

  stepRow(s) {
    const report = this.model.verdicts.get(s.id);
    const approval = this.model.awaiting.get(s.id);
    const verdict = report?.verdict ?? 'allow';
    return h('li', {
      class: `step row status-${s.status} verdict-${verdict}`, id: `step-${s.id}`, tabindex: '0',
      dataset: { stepId: s.id, itemKey: s.item_key },
    },
    h('div', { class: 'step-head' },
      h('code', { class: 'step-key' }, s.item_key), ' ', statusBadge(s.status),
      verdict !== 'allow' ? [' ', badge('verdict', verdict)] : null,
      this.model.critical.has(s.id) ? h('span', { class: 'critical-mark small' }, ' critical path') : null),
    h('div', { class: 'step-title' }, s.title,
      h('span', { class: 'muted small' }, ` · ${s.tool_id}`, s.requires_approval ? ' · needs approval' : '',
        s.est_duration_ms ? ` · ~${formatMs(s.est_duration_ms)}` : '')),
    approval ? h('p', { class: 'small' }, h('a', { href: '#/approvals' }, `awaiting approval (${approval.approvals}/${approval.required_approvals})`)) : null,
    s.error ? h('p', { class: 'step-error small' }, s.error) : null,
    h('div', { class: 'deps small' }),
    h('div', { class: 'step-more small' }));
  }
}

// One plan (#/plans/:id). This module owns the page's frame and what it reads
// (the plan, its gates, pending approvals, the execute flag, override
// requests), the header (status, verdict, totals, the critical path as a count
// with a disclosure), the gates with scores and findings, the model comparison
// and the overrides made. The rest is in:
//   plan_progress.js  progress bar and time left; items pulled in from packs not selected
//   plan_actions.js   Execute (and why it is disabled), why a blocked plan is blocked, "Skip the graph"
//   plan_overrides.js override requests (ask, grant, decline) and the admin's override form
//   plan_steps.js     find a step by key, "Needs attention", the focused step's dependencies
//   plan_graph.js     a small plan's graph with lines;  plan_outline.js  a large plan's stages as rows

import {
  badge, findingsList, formatMs, formatNumber, formatUsd, h, problemBox, replace, statusBadge, verdictBadge, when,
} from '../dom.js';
import { EXECUTE_FLAG, PlanActions } from './plan_actions.js';
import { renderProgress, renderPulledIn } from './plan_progress.js';
import { StepsSection } from './plan_steps.js';

const GATES = ['structural', 'risk', 'compliance', 'resource'];
const CRITICAL_SHOWN = 200;

export class PlanView {
  constructor(ctx, planId) {
    this.ctx = ctx;
    this.planId = planId;
    this.title = 'Plan';
    this.seq = 0;
    this.timer = null;
  }

  mount(container) {
    this.headerBox = h('div', { id: 'plan-header' }, h('h1', null, 'Plan'), h('p', { class: 'muted' }, 'Loading…'));
    this.error = h('div', { class: 'view-error' });
    this.progressBox = h('section', { id: 'plan-progress', 'aria-labelledby': 'progress-heading', hidden: true });
    this.pulledBox = h('section', { id: 'plan-pulled-in', 'aria-labelledby': 'pulled-in-heading', hidden: true });
    this.actions = new PlanActions(this.ctx, this.planId, { refresh: () => this.refresh(), skipTo: () => this.skipToGates() });
    this.steps = new StepsSection(this.planId);
    this.gatesBox = h('section', { id: 'plan-gates', 'aria-labelledby': 'gates-heading' }, h('h2', { id: 'gates-heading', tabindex: '-1' }, 'Gates'));
    this.modelsBox = h('section', { id: 'plan-models', 'aria-labelledby': 'models-heading', hidden: true });
    this.overridesBox = h('section', { id: 'plan-overrides', 'aria-labelledby': 'overrides-heading', hidden: true });
    container.append(this.headerBox, this.error, this.progressBox, this.pulledBox, this.actions.element, this.steps.element,
      this.gatesBox, this.modelsBox, this.overridesBox);
    this.refresh();
  }

  destroy() {
    clearTimeout(this.timer);
    this.timer = null;
    this.steps.destroy();
    this.seq += 1;
  }

  // Read the plan again after its events, at most once per interval: a big
  // plan's read is large (about 1 MB at 1,500 steps), so while it runs the
  // page catches up every 2 s rather than after every step's event.
  onEvents(events) {
    if (!events.some((e) => e.plan_id === this.planId || e.type === 'flag.changed')) return;
    if (this.timer) return; // one read is already due: it will see these too
    const big = (this.detail?.steps_total ?? 0) > 500;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, big ? 2000 : 200);
  }

  skipToGates() {
    const heading = this.gatesBox.querySelector('#gates-heading');
    heading.scrollIntoView({ block: 'start' });
    heading.focus({ preventScroll: true });
  }

  async refresh() {
    const seq = ++this.seq;
    const { api } = this.ctx;
    const [detail, gates, approvals, flags, requests] = await Promise.allSettled([
      api.get(`/api/plans/${this.planId}`),
      api.get(`/api/gates/${this.planId}`),
      api.get('/api/approvals', { status: 'pending', plan_id: this.planId }),
      api.get('/api/config/flags'),
      api.get('/api/automation/override-requests', { plan_id: this.planId, status: 'all' }),
    ]);
    if (seq !== this.seq) return;
    if (detail.status === 'rejected') {
      replace(this.headerBox, h('h1', null, 'Plan'));
      const missing = detail.reason?.status === 404;
      replace(this.error, problemBox(detail.reason, missing
        ? `There is no plan ${this.planId}. Check the link you followed.`
        : 'The plan could not be loaded.', { detail: !missing }));
      return;
    }
    replace(this.error);
    this.detail = detail.value;
    this.gates = gates.status === 'fulfilled' ? gates.value : null;
    this.pending = approvals.status === 'fulfilled' ? approvals.value.approvals : [];
    const plan = this.detail.plan;
    this.title = plan.title;
    document.title = `${plan.title} · NOFX console`;
    const hadFocus = this.headerBox.contains(document.activeElement);
    this.steps.update(this.detail, this.gates, this.pending); // first: the header and pulled-in items link into it
    this.renderHeader(plan);
    if (hadFocus) this.headerBox.querySelector('h1')?.focus({ preventScroll: true });
    this.progressBox.hidden = false;
    renderProgress(this.progressBox, this.detail);
    renderPulledIn(this.pulledBox, this.detail, (key) => this.steps.jumpLink(key));
    this.actions.update({
      plan,
      detail: this.detail,
      gates: this.gates,
      pending: this.pending,
      flag: flags.status === 'fulfilled' ? (flags.value.flags ?? []).find((f) => f.key === EXECUTE_FLAG) ?? null : null,
      requests: requests.status === 'fulfilled' ? requests.value.requests ?? [] : null,
    });
    this.renderGates(gates.status === 'rejected' ? gates.reason : null);
    this.renderModels();
    this.renderOverrides();
  }

  renderHeader(plan) {
    const t = plan.totals ?? {};
    const opts = plan.options ?? {};
    const keys = new Map(this.detail.steps.map((s) => [s.id, s.item_key]));
    const path = t.critical_path ?? [];
    const pathLength = t.critical_path_total ?? path.length;
    replace(this.headerBox,
      h('p', { class: 'breadcrumb' }, h('a', { href: '#/plans' }, 'Plans'), ' / '),
      h('h1', { tabindex: '-1' }, plan.title),
      h('p', { class: 'plan-badges' },
        h('span', { class: 'label' }, 'Status '), h('span', { id: 'plan-status' }, statusBadge(plan.status)), ' ',
        h('span', { class: 'label' }, 'Verdict '), h('span', { id: 'plan-verdict' }, verdictBadge(plan.verdict, plan.score)),
        plan.status_reason ? h('span', { class: 'status-reason' }, ` ${plan.status_reason}`) : null),
      h('dl', { class: 'meta columns' },
        h('dt', null, 'Created'), h('dd', null, when(plan.created_at), ` by ${plan.created_by}`),
        h('dt', null, 'Source'), h('dd', null, plan.source),
        h('dt', null, 'Packs'), h('dd', null, (plan.pack_ids ?? []).join(', ') || '—'),
        h('dt', null, 'Options'), h('dd', null, `max_parallel ${opts.max_parallel ?? '—'}, rollback_on_failure ${opts.rollback_on_failure ? 'on' : 'off'}`,
          opts.budget_usd !== null && opts.budget_usd !== undefined ? `, budget ${formatUsd(opts.budget_usd)}` : ''),
        h('dt', null, 'Size'), h('dd', null, `${formatNumber(t.steps ?? this.detail.steps_total)} steps in ${formatNumber(t.stages)} stages`),
        h('dt', null, 'Estimate'), h('dd', null, `${formatUsd(t.est_cost_usd)}${t.cost_complete === false ? ` + ${t.unknown_cost_steps} step(s) of unknown price` : ''}`),
        h('dt', null, 'Critical path'), h('dd', { id: 'critical-path' },
          `${formatNumber(pathLength)} step${pathLength === 1 ? '' : 's'}, ${formatMs(t.critical_path_ms)}`,
          path.length ? h('details', { class: 'critical-path' }, h('summary', null, 'Show the steps'),
            h('ol', null, path.slice(0, CRITICAL_SHOWN).map((id) => h('li', null, keys.has(id) ? this.steps.jumpLink(keys.get(id)) : id.slice(0, 8)))),
            pathLength > Math.min(path.length, CRITICAL_SHOWN) ? h('p', { class: 'muted small' }, `and ${formatNumber(pathLength - Math.min(path.length, CRITICAL_SHOWN))} more`) : null)
            : null),
      ),
    );
  }

  renderGates(error) {
    const hadFocus = document.activeElement?.id === 'gates-heading';
    this.paintGates(error);
    if (hadFocus) this.gatesBox.querySelector('#gates-heading')?.focus({ preventScroll: true });
  }

  paintGates(error) {
    if (!this.gates) {
      replace(this.gatesBox, h('h2', { id: 'gates-heading', tabindex: '-1' }, 'Gates'),
        error ? problemBox(error, 'No gate results to show.') : h('p', { class: 'muted' }, 'Not evaluated.'));
      return;
    }
    const g = this.gates;
    const s = g.summary ?? {};
    replace(this.gatesBox,
      h('h2', { id: 'gates-heading', tabindex: '-1' }, 'Gates'),
      h('p', null, 'Overall ', verdictBadge(g.verdict, g.score),
        h('span', { class: 'muted' }, ` generation ${g.generation}, evaluated `), when(g.evaluated_at),
        h('span', { class: 'muted' }, ` · policy ${g.policy_version}`)),
      s.total_usd !== undefined ? h('p', { class: 'small' },
        `Estimated cost ${formatUsd(s.total_usd)} (steps ${formatUsd(s.steps_cost_usd)}, model comparison ${formatUsd(s.models_cost_usd)}, `,
        `Supabase ${formatUsd(s.supabase?.cost_usd)}); duration ${formatMs(s.est_duration_ms)}, critical path ${formatMs(s.critical_path_ms)}`,
        s.unknown_cost_steps ? `; ${s.unknown_cost_steps} step(s) of unknown price` : '') : null,
      h('div', { class: 'gates' }, GATES.map((name) => {
        const gate = g.gates?.[name];
        if (!gate) return h('article', { class: 'card gate' }, h('h3', null, name), h('p', { class: 'muted' }, 'No result.'));
        const shown = gate.findings.length;
        return h('article', { class: `card gate verdict-${gate.verdict}`, id: `gate-${name}`, 'aria-labelledby': `gate-${name}-h` },
          h('header', { class: 'card-head' },
            h('h3', { id: `gate-${name}-h` }, name),
            verdictBadge(gate.verdict)),
          h('div', { class: 'score' },
            h('meter', { min: 0, max: 100, low: 50, high: 80, optimum: 100, value: gate.score, 'aria-label': `${name} score` }),
            h('span', { class: 'score-value' }, `${gate.score}/100`)),
          gate.overrides?.length ? h('p', { class: 'overridden' }, 'Overridden: ',
            gate.overrides.map((o) => `${o.action} by ${o.actor} (“${o.reason}”)`).join('; ')) : null,
          findingsList(gate.findings, { fold: 5 }),
          gate.findings_total > shown ? h('p', { class: 'muted small' }, `${gate.findings_total - shown} more findings not shown.`) : null);
      })),
      g.history?.length > 1 ? h('details', { class: 'history' }, h('summary', null, `Evaluation history (${g.history.length})`),
        h('ol', null, g.history.map((e) => h('li', null, `generation ${e.generation}: `, verdictBadge(e.verdict, e.score), ' ', when(e.evaluated_at), ` by ${e.evaluated_by}`)))) : null,
    );
  }

  renderModels() {
    const gateModels = this.gates?.models ?? [];
    const comparison = this.detail.comparison;
    const rows = new Map();
    for (const m of comparison?.models ?? []) rows.set(m.model, { ...m });
    for (const m of gateModels) rows.set(m.model, { ...(rows.get(m.model) ?? { model: m.model }), gate_verdict: m.verdict, gate_score: m.score });
    if (!rows.size) {
      this.modelsBox.hidden = true;
      return;
    }
    this.modelsBox.hidden = false;
    const tokens = (m) => (m.input_tokens === null || m.input_tokens === undefined) && (m.output_tokens === null || m.output_tokens === undefined)
      ? '—' : `${formatNumber(m.input_tokens)} in / ${formatNumber(m.output_tokens)} out`;
    replace(this.modelsBox,
      h('h2', { id: 'models-heading' }, 'Model comparison'),
      comparison ? h('p', { class: 'small' },
        `Best: ${comparison.best_model ?? 'none valid'}`, comparison.adopted_model ? `; adopted: ${comparison.adopted_model}` : '',
        `; wall time ${formatMs(comparison.wall_ms)}; known cost ${formatUsd(comparison.cost_usd)}${comparison.cost_complete ? '' : ' (some prices unknown)'}`) : null,
      h('div', { class: 'table-scroll' }, h('table', { class: 'data models', id: 'models-table' },
        h('caption', { class: 'visually-hidden' }, 'Models compared for this plan'),
        h('thead', null, h('tr', null, ['Model', 'Score', 'Gates', 'Latency', 'Tokens', 'Cost', 'Notes'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, [...rows.values()].map((m) => h('tr', null,
          h('th', { scope: 'row' }, h('code', null, m.model), m.adopted ? badge('status', 'approved', 'adopted') : null),
          h('td', { class: 'num' }, m.score ?? m.gate_score ?? '—'),
          h('td', null, m.gate_verdict ? verdictBadge(m.gate_verdict, m.gate_score) : '—'),
          h('td', { class: 'num' }, m.latency_ms === undefined ? '—' : formatMs(m.latency_ms)),
          h('td', { class: 'num' }, tokens(m)),
          h('td', { class: 'num' }, m.cost_usd === undefined ? '—' : formatUsd(m.cost_usd), m.cost_note ? h('div', { class: 'muted small' }, m.cost_note) : null),
          h('td', { class: 'small' }, m.valid === false ? 'invalid proposal. ' : '', m.error ?? '', (m.reasons ?? []).join('; '))))))));
  }

  renderOverrides() {
    const overrides = this.gates?.overrides ?? [];
    this.overridesBox.hidden = overrides.length === 0;
    if (!overrides.length) return;
    replace(this.overridesBox,
      h('h2', { id: 'overrides-heading' }, 'Overrides'),
      h('ul', { class: 'overrides' }, overrides.map((o) => h('li', null,
        h('strong', null, o.action), ` on ${o.scope}${o.gate ? ` ${o.gate}` : ''} by ${o.actor}, `, when(o.created_at),
        `: “${o.reason}”`, o.expires_at ? [' (until ', when(o.expires_at), ')'] : '',
        o.overridden_verdict?.verdict ? [' — overrode ', verdictBadge(o.overridden_verdict.verdict, o.overridden_verdict.score)] : '',
        o.active === false ? h('span', { class: 'muted' }, ' (no longer active)') : null))));
  }
}

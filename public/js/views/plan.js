// One plan: its header and totals, the graph drawn by stage (each step with its
// status, verdict and dependencies), the four gates with scores, findings and
// remediation tips, the model comparison, and the actions the role allows:
// Execute (planner) and Override (admin, with a required reason).

import { ApiError } from '../api.js';
import {
  append, badge, findingsList, formatMs, formatNumber, formatUsd, h, problemBox, replace, statusBadge, verdictBadge, when,
} from '../dom.js';

const GATES = ['structural', 'risk', 'compliance', 'resource'];
const RUNNABLE = new Set(['ready', 'approved', 'paused', 'executing', 'blocked']);
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'rolled_back']);
const MAX_EDGES_STEPS = 400;
const SVG = 'http://www.w3.org/2000/svg';

export class PlanView {
  constructor(ctx, planId) {
    this.ctx = ctx;
    this.planId = planId;
    this.title = 'Plan';
    this.seq = 0;
    this.timer = null;
    this.openSteps = new Set();
  }

  mount(container) {
    this.headerBox = h('div', { id: 'plan-header' }, h('h1', null, 'Plan'), h('p', { class: 'muted' }, 'Loading…'));
    this.error = h('div', { class: 'view-error' });
    this.actions = h('section', { class: 'actions', 'aria-label': 'Actions', id: 'plan-actions' });
    this.graphBox = h('section', { id: 'plan-graph', 'aria-labelledby': 'graph-heading' });
    this.gatesBox = h('section', { id: 'plan-gates', 'aria-labelledby': 'gates-heading' });
    this.modelsBox = h('section', { id: 'plan-models', 'aria-labelledby': 'models-heading', hidden: true });
    this.overridesBox = h('section', { id: 'plan-overrides', 'aria-labelledby': 'overrides-heading', hidden: true });
    container.append(this.headerBox, this.error, this.actions, this.graphBox, this.gatesBox, this.modelsBox, this.overridesBox);
    this.buildActions();
    this.resizeObserver = new ResizeObserver(() => this.drawEdges());
    this.refresh();
  }

  destroy() {
    clearTimeout(this.timer);
    this.resizeObserver?.disconnect();
    this.seq += 1;
  }

  onEvents(events) {
    if (events.some((e) => e.plan_id === this.planId)) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), 200);
    }
  }

  async refresh() {
    const seq = ++this.seq;
    const { api } = this.ctx;
    const [detail, gates, approvals] = await Promise.allSettled([
      api.get(`/api/plans/${this.planId}`),
      api.get(`/api/gates/${this.planId}`),
      api.get('/api/approvals', { status: 'pending', plan_id: this.planId }),
    ]);
    if (seq !== this.seq) return;
    if (detail.status === 'rejected') {
      replace(this.headerBox, h('h1', null, 'Plan'));
      replace(this.error, problemBox(detail.reason, `Could not load plan ${this.planId}.`));
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
    this.renderHeader(plan);
    if (hadFocus) this.headerBox.querySelector('h1')?.focus({ preventScroll: true });
    this.updateActions(plan);
    this.renderGraph();
    this.renderGates(gates.status === 'rejected' ? gates.reason : null);
    this.renderModels();
    this.renderOverrides();
  }

  renderHeader(plan) {
    const t = plan.totals ?? {};
    const opts = plan.options ?? {};
    const keys = new Map(this.detail.steps.map((s) => [s.id, s.item_key]));
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
        h('dt', null, 'Estimate'), h('dd', null, `${formatUsd(t.est_cost_usd)}${t.cost_complete === false ? ` + ${t.unknown_cost_steps} step(s) of unknown price` : ''}, `,
          `critical path ${formatMs(t.critical_path_ms)}`),
        t.critical_path?.length ? [h('dt', null, 'Critical path'), h('dd', null, t.critical_path.map((id) => keys.get(id) ?? id.slice(0, 8)).join(' → '))] : null,
      ),
    );
  }

  buildActions() {
    const { session } = this.ctx;
    this.executeResult = h('div', { id: 'execute-result', class: 'form-result', 'aria-live': 'polite' });
    this.executeButton = h('button', { type: 'button', id: 'execute-button', hidden: true }, 'Execute');
    this.executeButton.addEventListener('click', () => this.execute());
    this.executeHelp = h('span', { class: 'help inline' });
    this.links = h('p', { class: 'links' },
      h('a', { href: `#/audit/${this.planId}` }, 'Audit trail'), ' · ',
      h('a', { href: '#/approvals' }, 'Approval queue'), ' · ',
      h('a', { href: '#/plans' }, 'All plans'));
    append(this.actions, [
      h('h2', { class: 'visually-hidden' }, 'Actions'),
      session.can('planner') ? h('div', { class: 'buttons' }, this.executeButton, this.executeHelp) : null,
      this.executeResult,
      session.can('admin') ? this.overrideForm() : null,
      this.links]);
  }

  updateActions(plan) {
    const { session } = this.ctx;
    if (!session.can('planner')) return;
    this.executeButton.hidden = !RUNNABLE.has(plan.status);
    const help = {
      blocked: 'Blocked: execution needs an admin’s allow override first.',
      paused: `Paused: ${this.pending.length} approval(s) pending.`,
      executing: 'Executing: Execute advances it further.',
    };
    this.executeHelp.textContent = TERMINAL.has(plan.status) ? `This plan is ${plan.status.replace('_', ' ')}.` : help[plan.status] ?? '';
    if (this.override) this.fillOverrideSteps();
  }

  async execute() {
    this.executeButton.disabled = true;
    replace(this.executeResult, h('p', { class: 'muted' }, 'Executing…'));
    try {
      const { data } = await this.ctx.api.post('/api/auto-planner/execute', { plan_id: this.planId });
      const waiting = data.waiting_for?.length ?? 0;
      replace(this.executeResult, h('p', { class: 'outcome' },
        'Execution started: the plan is ', h('strong', null, data.status), data.status_reason ? ` (${data.status_reason})` : '', '. ',
        data.runnable?.length ? `${data.runnable.length} step(s) start now; this page follows them as they run. ` : '',
        waiting ? [`Waiting for ${waiting} approval(s): `, h('a', { href: '#/approvals' }, 'open the approval queue'), '.'] : ''));
      this.ctx.announce(`Execution started: the plan is ${data.status}.`);
      this.ctx.nudge();
      this.refresh();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      let lead = 'Execution was refused.';
      if (err.kind === 'feature-disabled') lead = 'Execution is disabled: the planner execute feature is switched off.';
      else if (err.status === 409) lead = 'Execution was refused: the plan is blocked or not runnable.';
      replace(this.executeResult, problemBox(err, lead));
      this.ctx.announce(`${lead} ${err.problem?.detail ?? ''}`, { log: false });
    } finally {
      this.executeButton.disabled = false;
    }
  }

  overrideForm() {
    const action = h('select', { id: 'override-action', name: 'action' },
      h('option', { value: 'allow' }, 'allow: let a blocked plan or gate through'),
      h('option', { value: 'skip' }, 'skip: skip one step'),
      h('option', { value: 'retry' }, 'retry: run one step again'),
      h('option', { value: 'cancel' }, 'cancel: stop the plan'),
      h('option', { value: 'rollback' }, 'rollback: undo what the plan did'));
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
    const sync = () => {
      gateField.hidden = action.value !== 'allow';
      expiresField.hidden = action.value !== 'allow';
      stepField.hidden = !['skip', 'retry'].includes(action.value);
    };
    action.addEventListener('change', sync);
    reason.addEventListener('input', () => reason.removeAttribute('aria-invalid'));
    const form = h('form', { id: 'override-form', novalidate: true },
      h('p', { class: 'help' }, 'An override is a recorded act by you, with your reason, on one scope: it never reaches beyond it.'),
      h('div', { class: 'options' },
        h('div', { class: 'field' }, h('label', { for: 'override-action' }, 'Action'), action),
        gateField, stepField, expiresField),
      h('div', { class: 'field wide' }, h('label', { for: 'override-reason' }, 'Reason (required)'), reason,
        h('p', { class: 'help', id: 'override-reason-help' }, 'Goes into the audit trail and is shown next to the verdict it overrode.')),
      h('div', { class: 'buttons' }, submit),
      result);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (reason.value.trim().length < 3) {
        reason.setAttribute('aria-invalid', 'true');
        replace(result, h('div', { class: 'problem', role: 'alert' }, h('p', null, 'An override needs a reason (at least 3 characters).')));
        reason.focus();
        return;
      }
      const body = { plan_id: this.planId, action: action.value, reason: reason.value.trim() };
      if (action.value === 'allow' && gate.value) body.gate = gate.value;
      if (['skip', 'retry'].includes(action.value)) body.step_id = step.value;
      if (action.value === 'allow' && expires.value) body.expires_at = new Date(expires.value).toISOString();
      submit.disabled = true;
      try {
        const { data } = await this.ctx.api.post('/api/automation/override', body);
        replace(result, h('p', { class: 'outcome' }, `Override ${data.action} (${data.scope}${data.gate ? ` ${data.gate}` : ''}) recorded; the plan is now ${data.plan_status}.`));
        this.ctx.announce(`Override ${data.action} recorded; the plan is now ${data.plan_status}.`);
        reason.value = '';
        this.ctx.nudge();
        this.refresh();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        replace(result, problemBox(err, 'The override was refused.'));
        if (JSON.stringify(err.problem ?? {}).includes('reason')) reason.setAttribute('aria-invalid', 'true');
      } finally {
        submit.disabled = false;
      }
    });
    sync();
    this.override = { step };
    return h('details', { class: 'card override', id: 'override' }, h('summary', null, 'Override'), form);
  }

  fillOverrideSteps() {
    const { step } = this.override;
    const current = step.value;
    replace(step, this.detail.steps.map((s) => h('option', { value: s.id, selected: s.id === current },
      `${s.item_key} (${s.status.replace('_', ' ')})`)));
  }

  renderGraph() {
    const steps = this.detail.steps;
    for (const el of this.graphBox.querySelectorAll('details[data-step-id][open]')) this.openSteps.add(el.dataset.stepId);
    for (const el of this.graphBox.querySelectorAll('details[data-step-id]:not([open])')) this.openSteps.delete(el.dataset.stepId);
    const verdicts = new Map((this.gates?.steps ?? []).map((s) => [s.step_id, s]));
    const byId = new Map(steps.map((s) => [s.id, s]));
    const awaiting = new Map(this.pending.filter((a) => a.step).map((a) => [a.step.id, a]));
    const stages = [];
    for (const s of steps) (stages[s.stage] ??= []).push(s);
    for (const stage of stages) stage?.sort((a, b) => a.position - b.position);

    this.canvas = h('div', { class: 'graph-canvas' });
    this.edges = document.createElementNS(SVG, 'svg');
    this.edges.setAttribute('class', 'edges');
    this.edges.setAttribute('aria-hidden', 'true');
    const columns = h('ol', { class: 'stages' }, stages.map((stage, index) => h('li', { class: 'stage' },
      h('h3', null, `Stage ${index + 1}`, h('span', { class: 'muted' }, ` · ${stage?.length ?? 0} step${stage?.length === 1 ? '' : 's'}`)),
      h('ol', { class: 'steps' }, (stage ?? []).map((s) => this.stepCard(s, verdicts.get(s.id), byId, awaiting.get(s.id)))))));
    this.canvas.append(this.edges, columns);
    const truncated = this.detail.steps_truncated
      ? h('p', { class: 'notice' }, `Showing the first ${steps.length} of ${this.detail.steps_total} steps.`) : null;
    replace(this.graphBox,
      h('h2', { id: 'graph-heading' }, 'Plan graph'),
      h('p', { class: 'help' }, 'Stages run left to right; a step starts when the steps it comes after have finished. ',
        'Lines and the “after” list show the dependencies. Focus or hover a step to highlight its links.'),
      truncated,
      h('div', { class: 'graph', tabindex: '0', role: 'region', 'aria-label': 'Plan graph, scrollable' }, this.canvas));
    this.canvas.addEventListener('focusin', (e) => this.highlight(e.target.closest('.step')));
    this.canvas.addEventListener('mouseover', (e) => this.highlight(e.target.closest('.step')));
    this.canvas.addEventListener('mouseleave', () => this.highlight(null));
    this.resizeObserver.disconnect();
    this.resizeObserver.observe(this.canvas);
    requestAnimationFrame(() => this.drawEdges());
  }

  stepCard(s, report, byId, approval) {
    const verdict = report?.verdict ?? 'allow';
    const deps = (s.depends_on ?? []).map((id) => byId.get(id)?.item_key ?? id.slice(0, 8));
    const findings = report?.findings ?? [];
    const details = findings.length || s.error || s.output !== null
      ? h('details', { dataset: { stepId: s.id }, open: this.openSteps.has(s.id) },
        h('summary', null, findings.length ? `${findings.length} finding${findings.length === 1 ? '' : 's'}` : 'Details'),
        findings.length ? findingsList(findings) : null,
        s.started_at ? h('p', { class: 'small' }, 'Ran ', when(s.started_at), ` (attempt ${s.attempts})`) : null,
        s.output !== null && s.output !== undefined ? h('pre', { class: 'small' }, JSON.stringify(s.output, null, 1).slice(0, 600)) : null,
        s.rollback?.action && s.rollback.action !== 'none'
          ? h('p', { class: 'small' }, `Rollback: ${s.rollback.tool_id ?? s.rollback.action}`) : null)
      : null;
    return h('li', {
      class: `step status-${s.status} verdict-${verdict}`, id: `step-${s.id}`,
      dataset: { stepId: s.id, itemKey: s.item_key, deps: (s.depends_on ?? []).join(' ') },
    },
    h('div', { class: 'step-head' }, h('code', { class: 'step-key' }, s.item_key), ' ', statusBadge(s.status), ' ', badge('verdict', verdict)),
    h('div', { class: 'step-title' }, s.title),
    h('div', { class: 'step-tool muted small' }, s.tool_id, s.requires_approval ? h('span', { class: 'needs-approval' }, ' · needs approval') : null,
      s.est_duration_ms ? ` · ~${formatMs(s.est_duration_ms)}` : ''),
    deps.length ? h('div', { class: 'deps small' }, 'after ', deps.join(', ')) : h('div', { class: 'deps small muted' }, 'no dependencies'),
    approval ? h('p', { class: 'small' }, h('a', { href: '#/approvals' }, `awaiting approval (${approval.approvals}/${approval.required_approvals})`)) : null,
    s.error ? h('p', { class: 'step-error small' }, s.error) : null,
    details);
  }

  drawEdges() {
    if (!this.canvas?.isConnected) return;
    const svg = this.edges;
    while (svg.firstChild) svg.firstChild.remove();
    const cards = [...this.canvas.querySelectorAll('.step')];
    if (cards.length > MAX_EDGES_STEPS) return;
    const origin = this.canvas.getBoundingClientRect();
    svg.setAttribute('width', String(this.canvas.scrollWidth));
    svg.setAttribute('height', String(this.canvas.scrollHeight));
    const boxes = new Map(cards.map((c) => [c.dataset.stepId, c.getBoundingClientRect()]));
    for (const card of cards) {
      const to = boxes.get(card.dataset.stepId);
      for (const dep of (card.dataset.deps || '').split(' ').filter(Boolean)) {
        const from = boxes.get(dep);
        if (!from) continue;
        const x1 = from.right - origin.left;
        const y1 = from.top + Math.min(from.height / 2, 28) - origin.top;
        const x2 = to.left - origin.left;
        const y2 = to.top + Math.min(to.height / 2, 28) - origin.top;
        const bend = Math.max(24, (x2 - x1) / 2);
        const path = document.createElementNS(SVG, 'path');
        path.setAttribute('d', `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`);
        path.setAttribute('class', 'edge');
        path.dataset.from = dep;
        path.dataset.to = card.dataset.stepId;
        svg.append(path);
      }
    }
  }

  highlight(card) {
    const id = card?.dataset.stepId ?? null;
    if (id === this.highlighted) return;
    this.highlighted = id;
    this.canvas.classList.toggle('focusing', id !== null);
    for (const el of this.canvas.querySelectorAll('.hl')) el.classList.remove('hl');
    if (!id) return;
    card.classList.add('hl');
    for (const path of this.edges.querySelectorAll('path')) {
      if (path.dataset.from === id || path.dataset.to === id) {
        path.classList.add('hl');
        const other = path.dataset.from === id ? path.dataset.to : path.dataset.from;
        this.canvas.querySelector(`#step-${CSS.escape(other)}`)?.classList.add('hl');
      }
    }
  }

  renderGates(error) {
    if (!this.gates) {
      replace(this.gatesBox, h('h2', { id: 'gates-heading' }, 'Gates'),
        error ? problemBox(error, 'No gate results to show.') : h('p', { class: 'muted' }, 'Not evaluated.'));
      return;
    }
    const g = this.gates;
    const s = g.summary ?? {};
    replace(this.gatesBox,
      h('h2', { id: 'gates-heading' }, 'Gates'),
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
      h('table', { class: 'data models', id: 'models-table' },
        h('caption', { class: 'visually-hidden' }, 'Models compared for this plan'),
        h('thead', null, h('tr', null, ['Model', 'Score', 'Gates', 'Latency', 'Tokens', 'Cost', 'Notes'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, [...rows.values()].map((m) => h('tr', null,
          h('th', { scope: 'row' }, h('code', null, m.model), m.adopted ? badge('status', 'approved', 'adopted') : null),
          h('td', { class: 'num' }, m.score ?? m.gate_score ?? '—'),
          h('td', null, m.gate_verdict ? verdictBadge(m.gate_verdict, m.gate_score) : '—'),
          h('td', { class: 'num' }, m.latency_ms === undefined ? '—' : formatMs(m.latency_ms)),
          h('td', { class: 'num' }, tokens(m)),
          h('td', { class: 'num' }, m.cost_usd === undefined ? '—' : formatUsd(m.cost_usd), m.cost_note ? h('div', { class: 'muted small' }, m.cost_note) : null),
          h('td', { class: 'small' }, m.valid === false ? 'invalid proposal. ' : '', m.error ?? '', (m.reasons ?? []).join('; ')))))));
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

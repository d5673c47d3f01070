// Plans: the list (status, verdict, size, who and when) and, for planners, the
// "Plan" form: choose packs and options, POST /api/auto-planner/plan.

import { ApiError } from '../api.js';
import { append, h, problemBox, replace, statusBadge, verdictBadge, when } from '../dom.js';

const PLAN_STATUSES = ['', 'draft', 'ready', 'blocked', 'approved', 'executing', 'paused', 'completed', 'failed', 'cancelled', 'rolled_back'];

export class PlansView {
  constructor(ctx) {
    this.ctx = ctx;
    this.title = 'Plans';
    this.status = '';
    this.seq = 0;
    this.timer = null;
  }

  mount(container) {
    const { session } = this.ctx;
    const filter = h('select', { id: 'plan-status-filter' },
      PLAN_STATUSES.map((s) => h('option', { value: s }, s || 'any status')));
    filter.addEventListener('change', () => {
      this.status = filter.value;
      this.refresh();
    });
    this.error = h('div', { class: 'view-error' });
    this.table = h('div', { id: 'plans-table' }, h('p', { class: 'muted' }, 'Loading plans…'));
    this.flagNote = h('p', { class: 'flag-note', id: 'planner-flag-note', hidden: true });
    append(container, [
      h('div', { class: 'view-head' },
        h('h1', null, 'Plans'),
        h('div', { class: 'filters' }, h('label', { for: 'plan-status-filter' }, 'Status'), filter)),
      session.can('planner') ? new PlanForm(this.ctx, this.flagNote).element() : null,
      this.error,
      this.table
    ]);
    this.refresh();
  }

  destroy() {
    clearTimeout(this.timer);
    this.seq += 1;
  }

  onEvents(events) {
    if (events.some((e) => e.type.startsWith('plan.') || e.type === 'override.applied' || e.type === 'gate.evaluated')) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), 200);
    }
  }

  async refresh() {
    const seq = ++this.seq;
    try {
      const { plans } = await this.ctx.api.get('/api/plans', { status: this.status, limit: 100 });
      if (seq !== this.seq) return;
      replace(this.error);
      replace(this.table, this.renderTable(plans));
    } catch (err) {
      if (seq !== this.seq) return;
      replace(this.error, problemBox(err, 'Could not load the plans.'));
    }
  }

  renderTable(plans) {
    if (!plans.length) return h('p', { class: 'empty muted' }, 'No plans yet.', this.ctx.session.can('planner') ? ' Use “Plan” above to make one from the backlog.' : '');
    return h('div', { class: 'table-scroll', role: 'region', 'aria-label': 'Plans', tabindex: '0' }, h('table', { class: 'data plans' },
      h('caption', { class: 'visually-hidden' }, 'Plans, newest first'),
      h('thead', null, h('tr', null, ['Plan', 'Status', 'Verdict', 'Steps', 'Packs', 'Created'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, plans.map((p) => h('tr', { dataset: { planId: p.id } },
        h('th', { scope: 'row' }, h('a', { href: `#/plans/${p.id}` }, p.title),
          p.status_reason ? h('div', { class: 'muted small' }, p.status_reason) : null),
        h('td', { dataset: { label: 'Status' } }, statusBadge(p.status)),
        h('td', { dataset: { label: 'Verdict' } }, p.verdict ? verdictBadge(p.verdict, p.score) : h('span', { class: 'muted' }, '—')),
        h('td', { class: 'num', dataset: { label: 'Steps' } }, String(p.steps)),
        h('td', { dataset: { label: 'Packs' } }, p.pack_ids.join(', ')),
        h('td', { dataset: { label: 'Created' } }, when(p.created_at), h('div', { class: 'muted small' }, p.created_by)))))));
  }
}

// The "Plan" button and its form. Shared by the list; the plan page links here.
class PlanForm {
  constructor(ctx, flagNote) {
    this.ctx = ctx;
    this.flagNote = flagNote;
  }

  element() {
    // A labelled group rather than a <fieldset>: Chromium leaves a fieldset filled while its
    // <details> is closed at zero size once opened.
    this.packs = h('div', { class: 'packs group', role: 'group', 'aria-labelledby': 'packs-label' },
      h('span', { id: 'packs-label', class: 'group-label' }, 'Packs'), h('p', { class: 'muted' }, 'Loading packs…'));
    this.maxParallel = h('input', { id: 'opt-max-parallel', type: 'number', min: 1, max: 1000, value: 8, inputmode: 'numeric' });
    this.rollback = h('input', { id: 'opt-rollback', type: 'checkbox', checked: true });
    this.dryRun = h('input', { id: 'opt-dry-run', type: 'checkbox' });
    this.planTitle = h('input', { id: 'opt-title', type: 'text', maxlength: 200, placeholder: 'optional' });
    this.compare = h('input', {
      id: 'opt-compare', type: 'text', size: 44, placeholder: 'openai:gpt-4.1-mini, anthropic:claude-sonnet-4-6',
      'aria-describedby': 'opt-compare-help',
    });
    this.result = h('div', { id: 'plan-result', class: 'form-result', 'aria-live': 'polite' });
    this.submit = h('button', { type: 'submit', id: 'plan-submit' }, 'Plan');
    const form = h('form', { class: 'plan-form', id: 'plan-form', 'aria-describedby': 'plan-form-help' },
      h('p', { id: 'plan-form-help', class: 'help' },
        'Build a plan from the open backlog items of the packs you choose (none chosen: every open item). ',
        'It is evaluated by the four gates before anything runs.'),
      this.packs,
      h('div', { class: 'options' },
        h('div', { class: 'field' }, h('label', { for: 'opt-max-parallel' }, 'Max parallel steps per stage'), this.maxParallel),
        h('div', { class: 'field check' }, this.rollback, h('label', { for: 'opt-rollback' }, 'Roll back on failure')),
        h('div', { class: 'field check' }, this.dryRun, h('label', { for: 'opt-dry-run' }, 'Dry run (evaluate, do not save)')),
        h('div', { class: 'field' }, h('label', { for: 'opt-title' }, 'Title'), this.planTitle),
        h('div', { class: 'field wide' }, h('label', { for: 'opt-compare' }, 'Compare models (optional)'), this.compare,
          h('p', { class: 'help', id: 'opt-compare-help' }, 'provider:model, comma-separated; each proposes a staging that is scored and gated beside the plan.'))),
      this.flagNote,
      h('div', { class: 'buttons' }, this.submit),
      this.result);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    const details = h('details', { class: 'card new-plan', id: 'new-plan' },
      h('summary', null, 'New plan from the backlog'), form);
    this.loadPacks();
    this.loadFlag();
    return details;
  }

  async loadPacks() {
    try {
      const { packs } = await this.ctx.api.get('/api/packs');
      replace(this.packs, h('span', { id: 'packs-label', class: 'group-label' }, 'Packs'),
        packs.length ? h('div', { class: 'choices' }, packs.map((p) => h('div', { class: 'field check' },
          h('input', { type: 'checkbox', id: `pack-${p.id}`, name: 'pack', value: p.id }),
          h('label', { for: `pack-${p.id}` }, p.name, h('span', { class: 'muted' }, ` (${p.open_items} open)`)))))
          : h('p', { class: 'muted' }, 'No packs: every open item will be planned.'));
    } catch (err) {
      replace(this.packs, h('span', { id: 'packs-label', class: 'group-label' }, 'Packs'), problemBox(err, 'Could not load the packs.'));
    }
  }

  async loadFlag() {
    try {
      const { flags } = await this.ctx.api.get('/api/config/flags');
      const flag = flags.find((f) => f.key === 'FEATURE_AUTO_PLANNER');
      if (flag && !flag.enabled) {
        this.flagNote.hidden = false;
        this.flagNote.textContent = `FEATURE_AUTO_PLANNER is switched off (by ${flag.updated_by}); planning will be refused until an admin switches it on.`;
      }
    } catch { /* informational only */ }
  }

  async send() {
    const packIds = [...this.packs.querySelectorAll('input[name=pack]:checked')].map((i) => i.value);
    const maxParallel = Number(this.maxParallel.value);
    const options = { rollback_on_failure: this.rollback.checked, dry_run: this.dryRun.checked };
    if (this.maxParallel.value !== '') options.max_parallel = maxParallel;
    if (this.planTitle.value.trim()) options.title = this.planTitle.value.trim();
    const models = this.compare.value.split(',').map((m) => m.trim()).filter(Boolean);
    if (models.length) options.compare_models = models;
    const body = { options };
    if (packIds.length) body.pack_ids = packIds;
    this.submit.disabled = true;
    replace(this.result, h('p', { class: 'muted' }, options.compare_models ? 'Planning and asking the models…' : 'Planning…'));
    try {
      const { status, data } = await this.ctx.api.post('/api/auto-planner/plan', body);
      if (data.dry_run) {
        replace(this.result, h('p', { class: 'outcome' },
          `Dry run: ${data.steps_total} steps, verdict `, verdictBadge(data.verdict), '. Nothing was saved.'));
        this.ctx.announce(`Dry run finished: verdict ${data.verdict}.`);
        return;
      }
      const note = status === 200 && data.reused ? 'An open plan for the same input already exists: opening it.' : `Plan created: verdict ${data.verdict}.`;
      this.ctx.announce(note);
      this.ctx.navigate(`#/plans/${data.plan.id}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const lead = err.kind === 'feature-disabled'
        ? 'Planning is disabled: the auto planner feature is switched off.'
        : 'The plan was refused.';
      replace(this.result, problemBox(err, lead));
      this.ctx.announce(`${lead} ${err.problem?.detail ?? ''}`, { log: false });
    } finally {
      this.submit.disabled = false;
    }
  }
}

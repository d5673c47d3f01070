// The plan page's steps section: finding a step by key (a search box and its
// matches; Enter jumps to the first), the short "Needs attention" list
// (blocked, failed, awaiting approval), and the steps themselves: the graph
// with lines for a small plan (plan_graph.js), stages collapsed to counts for
// a large one (plan_outline.js). A focused step shows what it comes after and
// what waits for it, as links that jump. Jumping opens the stage, focuses the
// step and highlights it.

import { findingsList, formatNumber, h, replace, when } from '../dom.js';
import { SmallGraph } from './plan_graph.js';
import { LargeOutline } from './plan_outline.js';

export const SMALL_PLAN_STEPS = 60;
const MATCHES_SHOWN = 10;
const ATTENTION_SHOWN = 8;
const DEPS_SHOWN = 20;

function buildModel(detail, gates, pending) {
  const steps = detail.steps ?? [];
  const byId = new Map(steps.map((s) => [s.id, s]));
  const byKey = new Map(steps.map((s) => [s.item_key.toLowerCase(), s]));
  const dependents = new Map();
  for (const s of steps) for (const d of s.depends_on ?? []) (dependents.get(d) ?? dependents.set(d, []).get(d)).push(s);
  const stages = [];
  for (const s of steps) (stages[s.stage] ??= []).push(s);
  const dense = stages.filter(Boolean).map((stage) => stage.sort((a, b) => a.position - b.position));
  return {
    steps, byId, byKey, dependents, stages: dense,
    verdicts: new Map((gates?.steps ?? []).map((r) => [r.step_id, r])),
    awaiting: new Map((pending ?? []).filter((a) => a.step).map((a) => [a.step.id, a])),
    critical: new Set(detail.plan?.totals?.critical_path ?? []),
  };
}

export class StepsSection {
  constructor(planId) {
    this.planId = planId;
    this.element = h('section', { id: 'plan-steps', 'aria-labelledby': 'graph-heading' });
    this.search = h('input', {
      id: 'step-search', type: 'search', autocomplete: 'off', spellcheck: 'false',
      'aria-describedby': 'step-search-help', 'aria-controls': 'step-matches',
    });
    this.matchCount = h('p', { id: 'step-match-count', class: 'small', 'aria-live': 'polite' });
    this.matches = h('ul', { id: 'step-matches', class: 'matches' });
    this.search.addEventListener('input', () => this.showMatches());
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        const first = this.findMatches(this.search.value)[0];
        if (first) this.jumpTo(first.id);
        else this.matchCount.textContent = this.search.value.trim() ? `No step matches “${this.search.value.trim()}”.` : 'Type a key to find a step.';
      } else if (e.key === 'Escape' && this.search.value) {
        this.search.value = '';
        this.showMatches();
      }
    });
    this.finder = h('div', { class: 'step-find', role: 'search', 'aria-label': 'Find a step' },
      h('label', { for: 'step-search' }, 'Find a step by key or title'),
      this.search,
      h('p', { class: 'help', id: 'step-search-help' }, 'Enter jumps to the first match and focuses it.'),
      this.matchCount, this.matches);
    this.heading = h('h2', { id: 'graph-heading' }, 'Steps');
    this.help = h('p', { class: 'help', id: 'graph-help' });
    this.attention = h('div', { id: 'needs-attention', class: 'attention' });
    this.body = h('div', { class: 'steps-body' });
    this.element.append(this.heading, this.help, this.finder, this.attention, this.body);
    this.body.addEventListener('focusin', (e) => {
      const el = e.target.closest?.('.step');
      if (el) this.showFocused(el);
    });
  }

  destroy() {
    this.view?.destroy();
  }

  update(detail, gates, pending) {
    const active = document.activeElement;
    const focusedStep = this.body.contains(active) ? active.closest('.step')?.dataset.stepId : null;
    const matchFocus = this.matches.contains(active) ? active.dataset.jump : null;
    this.model = buildModel(detail, gates, pending);
    const large = this.model.steps.length > SMALL_PLAN_STEPS;
    if (!this.view || this.large !== large) {
      this.view?.destroy();
      this.view = large ? new LargeOutline() : new SmallGraph();
      this.large = large;
    }
    const total = detail.steps_total ?? this.model.steps.length;
    this.heading.textContent = large ? 'Steps by stage' : 'Plan graph';
    replace(this.help, large
      ? `${formatNumber(total)} steps in ${formatNumber(this.model.stages.length)} stages: too many to draw, so no lines are drawn `
        + 'and each stage is one row of counts. Open a stage to list its steps; focus a step, or find it by key, '
        + 'to see what it comes after and what waits for it.'
      : 'Stages run left to right; a step starts when the steps it comes after have finished. Lines and the “after” list '
        + 'show the dependencies. Focus or hover a step to highlight its links and list what comes before and after it.');
    replace(this.body,
      detail.steps_truncated
        ? h('p', { class: 'notice' }, `Showing the first ${formatNumber(this.model.steps.length)} of ${formatNumber(total)} steps.`) : null,
      this.view.render(this.model));
    this.renderAttention();
    if (this.search.value) this.showMatches(matchFocus);
    if (this.jumped && this.model.byId.has(this.jumped)) this.view.reveal(this.jumped)?.classList.add('jumped');
    if (focusedStep) {
      const el = this.view.reveal(focusedStep);
      if (el) el.focus({ preventScroll: true });
    }
  }

  // A link that jumps to the step with this key (plain text when the plan has none).
  jumpLink(key) {
    const step = this.model?.byKey.get(String(key).toLowerCase());
    if (!step) return h('code', null, key);
    return h('a', {
      href: `#/plans/${this.planId}`, class: 'jump', dataset: { jump: step.id },
      onclick: (e) => { e.preventDefault(); this.jumpTo(step.id); },
    }, step.item_key);
  }

  jumpTo(stepId) {
    const el = this.view?.reveal(stepId);
    if (!el) return;
    for (const old of this.body.querySelectorAll('.jumped')) old.classList.remove('jumped');
    this.jumped = stepId;
    el.classList.add('jumped');
    el.scrollIntoView({ block: 'center' });
    el.focus({ preventScroll: true });
  }

  findMatches(text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const exact = this.model.byKey.get(q);
    const rank = (s) => {
      const key = s.item_key.toLowerCase();
      if (key.startsWith(q)) return 1;
      if (key.includes(q)) return 2;
      if (s.title.toLowerCase().includes(q)) return 3;
      return 0;
    };
    const ranked = [];
    for (const s of this.model.steps) {
      if (s === exact) continue;
      const r = rank(s);
      if (r) ranked.push([r, s]);
    }
    ranked.sort((a, b) => a[0] - b[0]); // stable: stage order within a rank
    return [...(exact ? [exact] : []), ...ranked.map(([, s]) => s)];
  }

  // keepFocus: the step id whose match link had focus before the list was redrawn
  showMatches(keepFocus = null) {
    const found = this.findMatches(this.search.value);
    if (!this.search.value.trim()) {
      this.matchCount.textContent = '';
      replace(this.matches);
      return;
    }
    this.matchCount.textContent = found.length
      ? `${formatNumber(found.length)} step${found.length === 1 ? '' : 's'} match${found.length > MATCHES_SHOWN ? `; the first ${MATCHES_SHOWN} are listed` : ''}.`
      : `No step matches “${this.search.value.trim()}”.`;
    replace(this.matches, found.slice(0, MATCHES_SHOWN).map((s) => h('li', null,
      this.jumpLink(s.item_key), ` ${s.title}`, h('span', { class: 'muted' }, ` · stage ${s.stage + 1} · ${s.status.replace(/_/g, ' ')}`))));
    if (keepFocus) (this.matches.querySelector(`a[data-jump="${CSS.escape(keepFocus)}"]`) ?? this.search).focus({ preventScroll: true });
  }

  // Blocked, failed and awaiting-approval steps, the first few listed.
  renderAttention() {
    const items = [];
    for (const s of this.model.steps) {
      const report = this.model.verdicts.get(s.id);
      if (report?.verdict === 'block') {
        const finding = (report.findings ?? []).find((f) => f.severity === 'block');
        items.push([0, s, `blocked by a gate${finding ? `: ${finding.message}` : ''}`]);
      }
      if (s.status === 'failed' || s.status === 'denied') items.push([1, s, s.status === 'failed' ? `failed${s.error ? `: ${s.error}` : ''}` : 'denied by an approver']);
      if (s.status === 'awaiting_approval') {
        const a = this.model.awaiting.get(s.id);
        items.push([2, s, `awaiting approval${a ? ` (${a.approvals}/${a.required_approvals})` : ''}`]);
      }
    }
    items.sort((a, b) => a[0] - b[0]);
    const line = ([, s, why]) => h('li', null, this.jumpLink(s.item_key), ` ${s.title}: ${why}`);
    if (!items.length) {
      replace(this.attention, h('p', { class: 'muted small', id: 'attention-none' }, 'Needs attention: nothing. No step is blocked, failed or awaiting approval.'));
      return;
    }
    replace(this.attention,
      h('h3', { id: 'attention-heading' }, `Needs attention (${formatNumber(items.length)})`),
      h('ul', { class: 'attention-list', 'aria-labelledby': 'attention-heading' }, items.slice(0, ATTENTION_SHOWN).map(line)),
      items.length > ATTENTION_SHOWN
        ? h('details', null, h('summary', null, `${formatNumber(items.length - ATTENTION_SHOWN)} more`), h('ul', { class: 'attention-list' }, items.slice(ATTENTION_SHOWN).map(line)))
        : null);
  }

  // "after: A, B; before: C" for the focused step, as links that jump; for a
  // large plan's row also its findings and what it ran.
  showFocused(el) {
    const step = this.model.byId.get(el.dataset.stepId);
    if (!step || this.focused === el) return;
    if (this.focused?.isConnected && this.focused !== el && this.large) {
      replace(this.focused.querySelector('.step-more') ?? h('div'));
    }
    this.focused = el;
    const list = (steps) => {
      if (!steps.length) return ['none'];
      const shown = steps.slice(0, DEPS_SHOWN).flatMap((s, n) => [n ? ', ' : '', this.jumpLink(s.item_key)]);
      return steps.length > DEPS_SHOWN ? [...shown, ` and ${formatNumber(steps.length - DEPS_SHOWN)} more`] : shown;
    };
    const after = (step.depends_on ?? []).map((id) => this.model.byId.get(id)).filter(Boolean);
    const before = this.model.dependents.get(step.id) ?? [];
    const deps = el.querySelector('.deps');
    if (deps) {
      deps.classList.remove('muted');
      replace(deps, 'after: ', list(after), '; before: ', list(before));
    }
    const more = el.querySelector('.step-more');
    if (more && this.large) {
      const findings = this.model.verdicts.get(step.id)?.findings ?? [];
      replace(more,
        findings.length ? findingsList(findings) : null,
        step.started_at ? h('p', null, 'Ran ', when(step.started_at), ` (attempt ${step.attempts})`) : null,
        step.output !== null && step.output !== undefined ? h('pre', null, JSON.stringify(step.output, null, 1).slice(0, 600)) : null);
    }
  }
}

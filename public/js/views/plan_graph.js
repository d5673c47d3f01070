// A small plan's graph (up to SMALL_PLAN_STEPS steps): stages as columns left
// to right, each step a card with its status, verdict, dependencies and
// details, and a line for every dependency (SVG), highlighted on focus or hover.
// The steps section (plan_steps.js) owns search, jumps and the focused step.

import { badge, findingsList, formatMs, h, statusBadge, when } from '../dom.js';

const SVG = 'http://www.w3.org/2000/svg';

export class SmallGraph {
  constructor() {
    this.openSteps = new Set();
    this.resizeObserver = new ResizeObserver(() => this.drawEdges());
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  // `model`: {stages, byId, verdicts, awaiting} from the steps section.
  render(model) {
    for (const el of this.canvas?.querySelectorAll('details[data-step-id]') ?? []) {
      if (el.open) this.openSteps.add(el.dataset.stepId);
      else this.openSteps.delete(el.dataset.stepId);
    }
    this.canvas = h('div', { class: 'graph-canvas' });
    this.edges = document.createElementNS(SVG, 'svg');
    this.edges.setAttribute('class', 'edges');
    this.edges.setAttribute('aria-hidden', 'true');
    const columns = h('ol', { class: 'stages' }, model.stages.map((stage, index) => h('li', { class: 'stage' },
      h('h3', null, `Stage ${index + 1}`, h('span', { class: 'muted' }, ` · ${stage.length} step${stage.length === 1 ? '' : 's'}`)),
      h('ol', { class: 'steps' }, stage.map((s) => this.stepCard(s, model))))));
    this.canvas.append(this.edges, columns);
    this.canvas.addEventListener('focusin', (e) => this.highlight(e.target.closest('.step')));
    this.canvas.addEventListener('mouseover', (e) => this.highlight(e.target.closest('.step')));
    this.canvas.addEventListener('mouseleave', () => this.highlight(document.activeElement?.closest?.('.step') ?? null));
    this.highlighted = null;
    this.element = h('div', { class: 'graph', tabindex: '0', role: 'region', 'aria-label': 'Plan graph, scrollable' }, this.canvas);
    this.resizeObserver.disconnect();
    this.resizeObserver.observe(this.canvas);
    requestAnimationFrame(() => this.drawEdges());
    return this.element;
  }

  // The step's card, ready to focus.
  reveal(stepId) {
    return this.canvas?.querySelector(`#step-${CSS.escape(stepId)}`) ?? null;
  }

  stepCard(s, model) {
    const report = model.verdicts.get(s.id);
    const approval = model.awaiting.get(s.id);
    const verdict = report?.verdict ?? 'allow';
    const deps = (s.depends_on ?? []).map((id) => model.byId.get(id)?.item_key ?? id.slice(0, 8));
    const findings = report?.findings ?? [];
    const details = findings.length || s.error || (s.output !== null && s.output !== undefined)
      ? h('details', { dataset: { stepId: s.id }, open: this.openSteps.has(s.id) },
        h('summary', null, findings.length ? `${findings.length} finding${findings.length === 1 ? '' : 's'}` : 'Details'),
        findings.length ? findingsList(findings) : null,
        s.started_at ? h('p', { class: 'small' }, 'Ran ', when(s.started_at), ` (attempt ${s.attempts})`) : null,
        s.output !== null && s.output !== undefined ? h('pre', { class: 'small' }, JSON.stringify(s.output, null, 1).slice(0, 600)) : null,
        s.rollback?.action && s.rollback.action !== 'none'
          ? h('p', { class: 'small' }, `Rollback: ${s.rollback.tool_id ?? s.rollback.action}`) : null)
      : null;
    return h('li', {
      class: `step status-${s.status} verdict-${verdict}`, id: `step-${s.id}`, tabindex: '0',
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
    if (this.highlighted) {
      const id = this.highlighted;
      this.highlighted = null;
      this.highlight(this.reveal(id));
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
}

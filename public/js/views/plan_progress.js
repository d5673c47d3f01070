// The plan page's progress and pulled-in items: done / running / waiting /
// failed out of N with the estimated time left, as a progress bar and words
// (plan.progress from the API, or worked out from the steps when the answer
// has none), and the items the planner added from packs nobody selected,
// each with the selected items that need it.

import { formatMs, formatNumber, h, replace } from '../dom.js';

const DONE = new Set(['succeeded']);
const WAITING = new Set(['pending', 'awaiting_approval', 'approved']);
const FAILED = new Set(['failed', 'denied']);
const SETTLED = new Set(['succeeded', 'skipped', 'failed', 'denied', 'rolled_back']);

// The same counts as GET /api/plans/:id's `progress`, from the steps: the time
// left is the longest chain of unfinished steps by their estimates. Steps come
// in stage order, so each dependency is seen before the steps that wait for it.
export function computeProgress(steps) {
  const byStatus = {};
  const finish = new Map();
  let longest = 0;
  for (const s of steps) {
    byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    if (SETTLED.has(s.status)) continue;
    const before = Math.max(0, ...(s.depends_on ?? []).map((d) => finish.get(d) ?? 0));
    const end = before + (s.est_duration_ms ?? 0);
    finish.set(s.id, end);
    longest = Math.max(longest, end);
  }
  const sum = (set) => Object.entries(byStatus).reduce((n, [k, v]) => n + (set.has(k) ? v : 0), 0);
  return {
    total: steps.length,
    done: sum(DONE),
    running: byStatus.running ?? 0,
    waiting: sum(WAITING),
    failed: sum(FAILED),
    skipped: byStatus.skipped ?? 0,
    by_status: byStatus,
    est_remaining_ms: finish.size ? longest : null,
  };
}

function plural(n, one, many = `${one}s`) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

export function progressOf(detail) {
  const p = detail.progress;
  if (p && typeof p.total === 'number') return p;
  return computeProgress(detail.steps ?? []);
}

export function renderProgress(box, detail) {
  const p = progressOf(detail);
  const total = p.total || 0;
  const parts = [
    `${formatNumber(p.done)} done`,
    `${formatNumber(p.running)} running`,
    `${formatNumber(p.waiting)} waiting`,
    `${formatNumber(p.failed)} failed`,
  ];
  if (p.skipped) parts.push(`${formatNumber(p.skipped)} skipped`);
  const left = p.est_remaining_ms === null || p.est_remaining_ms === undefined
    ? (p.done + p.skipped + p.failed >= total ? 'nothing left to run' : 'time left unknown')
    : `about ${formatMs(p.est_remaining_ms)} left`;
  const bar = h('div', {
    class: 'progress', id: 'plan-progress-bar', role: 'progressbar', 'aria-labelledby': 'progress-heading',
    'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': p.done,
    'aria-valuetext': `${formatNumber(p.done)} of ${plural(total, 'step')} done, ${left}`,
  });
  const segment = (kind, n) => {
    if (!n || !total) return null;
    const el = h('span', { class: `progress-${kind}` });
    el.style.width = `${(100 * n) / total}%`; // CSSOM, not a style attribute: the CSP allows it
    return el;
  };
  bar.append(...[segment('done', p.done), segment('skipped', p.skipped), segment('failed', p.failed), segment('running', p.running)].filter(Boolean));
  replace(box,
    h('h2', { id: 'progress-heading' }, 'Progress'),
    bar,
    h('p', { id: 'plan-progress-text', class: 'progress-text' }, `${parts.join(' · ')} of ${plural(total, 'step')}; ${left}.`));
}

// Pulled-in items as the API gives them (detail.pulled_in), or, from an older
// answer, the steps of packs the plan did not select and the steps that need them.
export function pulledInOf(detail) {
  if (Array.isArray(detail.pulled_in)) return detail.pulled_in;
  const selected = new Set(detail.plan?.pack_ids ?? []);
  if (!selected.size) return [];
  const steps = detail.steps ?? [];
  const neededBy = new Map();
  for (const s of steps) for (const d of s.depends_on ?? []) (neededBy.get(d) ?? neededBy.set(d, []).get(d)).push(s.item_key);
  return steps.filter((s) => !selected.has(s.pack_id)).map((s) => ({
    item_key: s.item_key, title: s.title, pack_id: s.pack_id, environment: s.inputs?.environment ?? null, needed_by: neededBy.get(s.id) ?? [],
  }));
}

const SHOWN = 5;

// "PLT-2 Rotate database credentials, production, added as a dependency of PAY-7"
export function renderPulledIn(box, detail, jumpLink) {
  const items = pulledInOf(detail);
  box.hidden = items.length === 0;
  if (!items.length) return;
  const packs = [...new Set(items.map((i) => i.pack_id))];
  const line = (i) => h('li', { dataset: { itemKey: i.item_key } },
    jumpLink(i.item_key), ` ${i.title}`, i.environment ? `, ${i.environment}` : '',
    i.needed_by?.length ? [', added as a dependency of ', i.needed_by.flatMap((k, n) => [n ? ', ' : '', jumpLink(k)])]
      : ', added as a dependency');
  replace(box,
    h('h2', { id: 'pulled-in-heading' }, `Pulled in from ${packs.length === 1 ? 'a pack' : 'packs'} you did not select`),
    h('p', { class: 'help' }, `The plan holds ${plural(items.length, 'item')} of ${packs.join(', ')}, `,
      'because items you selected cannot run before them.'),
    h('ul', { class: 'pulled-in' }, items.slice(0, SHOWN).map(line)),
    items.length > SHOWN
      ? h('details', null, h('summary', null, `${items.length - SHOWN} more pulled-in items`), h('ul', { class: 'pulled-in' }, items.slice(SHOWN).map(line)))
      : null);
}

// The approval queue's filters: status, plan, tool and pack (selects built from
// the requests loaded so far and GET /api/packs) and a search box (q, matched by
// the API against item key, step title, plan title and tool). It owns the
// controls and their options; approvals.js asks it for the query and reloads
// when it changes.

import { h, replace } from '../dom.js';

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'cancelled', 'all'];

function field(id, label, control) {
  return h('div', { class: 'filter-field' }, h('label', { for: id }, label), control);
}

export class QueueFilters {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.plans = new Map(); // id -> title
    this.tools = new Set();
    this.packs = new Map(); // id -> name
    this.status = h('select', { id: 'approval-status' }, STATUSES.map((s) => h('option', { value: s, selected: s === 'pending' }, s)));
    this.plan = h('select', { id: 'approval-plan' });
    this.tool = h('select', { id: 'approval-tool' });
    this.pack = h('select', { id: 'approval-pack' });
    this.q = h('input', { id: 'approval-q', type: 'search', autocomplete: 'off', placeholder: 'key, title, plan or tool' });
    for (const select of [this.status, this.plan, this.tool, this.pack]) select.addEventListener('change', () => this.changed());
    this.q.addEventListener('input', () => {
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.changed(), 350);
    });
    this.element = h('form', { class: 'queue-filters', role: 'search', 'aria-label': 'Filter the approval queue' },
      field('approval-status', 'Show', this.status),
      field('approval-plan', 'Plan', this.plan),
      field('approval-tool', 'Tool', this.tool),
      field('approval-pack', 'Pack', this.pack),
      field('approval-q', 'Search', this.q));
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      this.changed();
    });
    this.fillSelects();
  }

  changed() {
    clearTimeout(this.typingTimer);
    const key = JSON.stringify(this.query());
    if (key === this.last) return;
    this.last = key;
    this.onChange(this.query());
  }

  query() {
    return {
      status: this.status.value,
      plan_id: this.plan.value || undefined,
      tool: this.tool.value || undefined,
      pack: this.pack.value || undefined,
      q: this.q.value.trim() || undefined,
    };
  }

  // Anything besides the status narrows the queue (the nav badge counts all pending).
  narrowed() {
    const q = this.query();
    return Boolean(q.plan_id || q.tool || q.pack || q.q);
  }

  // Offer the plans and tools of the requests loaded so far.
  learn(approvals) {
    let grew = false;
    for (const a of approvals) {
      if (a.plan?.id && !this.plans.has(a.plan.id)) {
        this.plans.set(a.plan.id, a.plan.title ?? a.plan.id);
        grew = true;
      }
      if (a.tool_id && !this.tools.has(a.tool_id)) {
        this.tools.add(a.tool_id);
        grew = true;
      }
    }
    if (grew) this.fillSelects();
  }

  async loadPacks(api) {
    try {
      const { packs } = await api.get('/api/packs');
      for (const p of packs ?? []) this.packs.set(p.id, p.name && p.name !== p.id ? `${p.name} (${p.id})` : p.id);
      this.fillSelects();
    } catch { /* the pack filter stays empty: the others still work */ }
  }

  fillSelects() {
    const options = (select, all, entries) => {
      const value = select.value;
      replace(select, h('option', { value: '' }, all),
        entries.map(([id, label]) => h('option', { value: id, selected: id === value }, label)));
      select.value = value;
    };
    const byLabel = (a, b) => String(a[1]).localeCompare(String(b[1]), undefined, { numeric: true });
    options(this.plan, 'All plans', [...this.plans].sort(byLabel));
    options(this.tool, 'All tools', [...this.tools].map((t) => [t, t]).sort(byLabel));
    options(this.pack, 'All packs', [...this.packs].sort(byLabel));
  }
}

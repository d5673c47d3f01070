// The approval queue: requests in the API's natural order (oldest first), a page
// at a time ("Showing 1–50 of 202", Show more), filtered by status, plan, tool,
// pack and text; each request a compact row that opens to its full card
// (approval_card.js, approval_details.js); decisions on several requests of one
// plan (approval_bulk.js); filters (approval_filters.js).
//
// Live refreshes never move what a person is working on: cards are keyed by id
// and updated in place; while someone is acting (focus in the list, a reason
// typed, rows ticked) a request decided elsewhere is marked in place instead of
// removed, the card they act on keeps its place on screen, and changes are
// announced. A link to one request (#/approvals/<id>) opens the queue at it.

import { h, problemBox, replace } from '../dom.js';
import { ApprovalCard, labelOf } from './approval_card.js';
import { BulkDecision } from './approval_bulk.js';
import { QueueFilters } from './approval_filters.js';

const PAGE = 50;
const MAX_LIMIT = 500;

export class ApprovalsView {
  constructor(ctx, approvalId = null) {
    this.ctx = ctx;
    this.title = 'Approvals';
    this.openId = approvalId;
    this.cards = new Map();
    this.pinned = null; // the linked request when it is not on the loaded pages
    this.window = PAGE;
    this.total = null;
    this.seq = 0;
    this.first = true;
  }

  mount(container) {
    const { session } = this.ctx;
    this.filters = new QueueFilters({ onChange: () => this.filtersChanged() });
    this.bulk = new BulkDecision({ ctx: this.ctx, cards: () => this.cards.values(), onDone: () => this.refresh() });
    this.error = h('div', { class: 'view-error' });
    this.note = h('div', { class: 'view-note' });
    this.empty = h('p', { class: 'empty muted', hidden: true }, 'Nothing is waiting for a decision.');
    this.list = h('div', { class: 'approval-list', id: 'approval-list' });
    this.summary = h('p', { class: 'queue-summary', id: 'approval-summary', 'aria-live': 'polite' }, 'Loading the queue…');
    this.more = h('button', { type: 'button', class: 'secondary', id: 'approval-more', hidden: true, onclick: () => this.showMore() }, 'Show more');
    container.append(
      h('div', { class: 'view-head' }, h('h1', null, 'Approval queue')),
      this.filters.element,
      session.can('approver')
        ? h('p', { class: 'help' }, 'Oldest first. Open a request to decide it; approving resumes the plan at once; denying needs a reason and blocks the plan.'
          + ' Tick requests of one plan to decide them together.')
        : h('p', { class: 'help', id: 'read-only-note' },
          `You are signed in as ${session.role}: you can follow the queue, but deciding needs the approver role.`),
      this.error,
      this.note,
      this.summary,
      this.empty,
      this.list,
      h('div', { class: 'queue-more' }, this.more),
      this.bulk.element,
    );
    this.filters.loadPacks(this.ctx.api);
    this.refresh();
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  destroy() {
    clearInterval(this.ticker);
    clearTimeout(this.timer);
    clearTimeout(this.linkTimer);
    clearTimeout(this.retryTimer);
    this.seq += 1;
    this.dead = true;
  }

  onEvents(events) {
    if (events.some((e) => e.type.startsWith('approval.') || e.type.startsWith('plan.') || e.type.startsWith('step.'))) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), 150);
      // my outcomes say what their plan waits for next: read again for the plans these events touch
      const plans = new Set(events.map((e) => e.plan_id).filter(Boolean));
      const mine = [...this.cards.values()].filter((c) => c.final === 'mine' && plans.has(c.approval.plan?.id));
      for (const card of mine.slice(-10)) card.followPlan();
    }
  }

  filtersChanged() {
    this.openId = null; // a new view of the queue: the linked request is no longer pinned
    for (const card of this.cards.values()) card.root.remove();
    this.cards.clear();
    this.bulk.clear();
    this.pinned = null;
    this.window = PAGE;
    this.refresh();
  }

  showMore() {
    this.revealFrom = this.listed?.length ?? 0;
    this.window += PAGE;
    this.refresh();
  }

  // The loaded window [0, window) in pages the API allows.
  async load(query) {
    const approvals = [];
    let total = null;
    let offset = 0;
    let more = false;
    while (offset < this.window) {
      const limit = Math.min(MAX_LIMIT, this.window - offset);
      const page = await this.ctx.api.get('/api/approvals', { ...query, limit, offset: offset || undefined });
      approvals.push(...page.approvals);
      if (typeof page.total === 'number') {
        total = page.total;
        more = page.next_offset !== null && page.next_offset !== undefined;
      } else {
        // an API without paging: what it gave is all there is to count
        more = page.approvals.length === limit;
        total = null;
        break;
      }
      if (!more) break;
      offset = page.next_offset;
    }
    return { approvals, total: total ?? approvals.length, more };
  }

  async refresh() {
    const seq = ++this.seq;
    clearTimeout(this.retryTimer);
    const query = this.filters.query();
    try {
      const page = await this.load(query);
      let pinned = null;
      const wanted = this.openId ?? this.pinned?.id;
      if (wanted && !page.approvals.some((a) => a.id === wanted)) {
        pinned = await this.ctx.api.get(`/api/approvals/${wanted}`).catch((err) => (this.pinned && err.status !== 404 ? this.pinned.approval : null));
      }
      if (seq !== this.seq || this.dead) return;
      replace(this.error);
      this.render(page, pinned);
    } catch (err) {
      if (seq !== this.seq || this.dead) return;
      replace(this.error, err.status === 0
        ? h('p', { class: 'problem', role: 'alert' }, 'Could not load the approval queue: the server could not be reached. Trying again shortly.')
        : problemBox(err, 'Could not load the approval queue.'));
      this.retryTimer = setTimeout(() => this.refresh(), 3000);
    }
  }

  // Someone is working in the list: focus inside it, a reason typed, rows ticked, the bulk bar in use.
  acting() {
    const active = document.activeElement;
    if (active && active !== document.body && (this.list.contains(active) || this.bulk.element.contains(active))) return true;
    if (this.bulk.selected.size) return true;
    return [...this.cards.values()].some((c) => c.typing());
  }

  cardOf(node) {
    const root = node?.closest?.('article.approval');
    return root ? this.cards.get(root.dataset.approvalId) : null;
  }

  makeCard(approval) {
    const card = new ApprovalCard(approval, {
      ctx: this.ctx,
      onToggle: (c, open) => this.expand(c, open),
      onSelect: (c, on) => this.bulk.set(c, on),
      onDismiss: (c) => this.dismiss(c),
      onDecided: () => {
        this.ctx.nudge();
        this.bulk.sync();
      },
    });
    this.cards.set(approval.id, card);
    return card;
  }

  render({ approvals, total, more }, pinnedApproval) {
    const acting = this.acting();
    const focused = document.activeElement;
    const anchor = this.cardOf(focused) ?? [...this.cards.values()].find((c) => c.typing());
    const anchorTop = anchor?.root.getBoundingClientRect().top;
    this.listed = approvals;
    this.filters.learn(pinnedApproval ? [pinnedApproval, ...approvals] : approvals);
    const seen = new Set(approvals.map((a) => a.id));
    if (pinnedApproval) seen.add(pinnedApproval.id);
    const gone = [];
    const kept = new Set();
    for (const [id, card] of this.cards) {
      if (seen.has(id)) continue;
      if (!card.final && !card.gone) {
        gone.push(card);
        if (acting) {
          card.markGone(null); // marked in place; who decided follows once read
          this.bulk.forget(card);
        }
      }
      if (card.final || acting) {
        kept.add(id);
        continue;
      }
      card.root.remove();
      this.cards.delete(id);
      this.bulk.forget(card);
    }
    // the order: the pinned request, then the API's, each kept card after the one it followed
    const order = [];
    if (pinnedApproval) order.push(this.cards.get(pinnedApproval.id) ?? this.makeCard(pinnedApproval));
    for (const a of approvals) order.push(this.cards.get(a.id) ?? this.makeCard(a));
    const follows = new Map();
    for (const node of this.list.children) {
      const card = this.cards.get(node.dataset.approvalId);
      if (!card || !kept.has(card.id)) continue;
      let prev = node.previousElementSibling;
      while (prev && kept.has(prev.dataset.approvalId)) prev = prev.previousElementSibling;
      const key = prev?.dataset.approvalId ?? '';
      follows.set(key, [...(follows.get(key) ?? []), card]);
    }
    const final = [...(follows.get('') ?? [])];
    for (const card of order) final.push(card, ...(follows.get(card.id) ?? []));
    let previous = null;
    for (const card of final) {
      const want = previous ? previous.root.nextElementSibling : this.list.firstElementChild;
      if (want !== card.root) this.list.insertBefore(card.root, want);
      previous = card;
    }
    if (pinnedApproval) this.cards.get(pinnedApproval.id).update(pinnedApproval);
    this.pinned = pinnedApproval ? this.cards.get(pinnedApproval.id) : null;
    if (this.pinned) this.pinned.root.classList.add('pinned');
    for (const a of approvals) this.cards.get(a.id).update(a);
    this.bulk.sync();
    // a card someone acts on keeps its place on screen, and its focus
    if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus({ preventScroll: true });
    if (anchor && document.contains(anchor.root)) {
      const shift = anchor.root.getBoundingClientRect().top - anchorTop;
      if (Math.abs(shift) >= 1) window.scrollBy(0, shift);
    }
    this.tellGone(gone);
    this.summarise(approvals.length, total, more);
    this.renewLinksBeforeTheyExpire(approvals);
    this.afterFirstRender();
  }

  // Requests that left the queue: marked in place while someone acts, told either way.
  async tellGone(gone) {
    if (!gone.length) return;
    const standings = await Promise.all(gone.slice(0, 5).map((c) => this.ctx.api.get(`/api/approvals/${c.id}`).catch(() => null)));
    if (this.dead) return;
    const told = gone.slice(0, 5).map((card, i) => {
      const s = standings[i];
      if (card.gone && this.cards.get(card.id) === card) card.markGone(s);
      if (!s) return `${card.label} left the queue`;
      const who = (s.history ?? []).filter((e) => e.event === ({ approved: 'approve', denied: 'deny' }[s.status])).map((e) => e.actor);
      return `${labelOf(s)} was ${s.status}${who.length ? ` by ${[...new Set(who)].join(' and ')}` : ''}`;
    });
    if (gone.length > 5) told.push(`${gone.length - 5} more left the queue`);
    this.ctx.announce(told.join('. '));
  }

  summarise(n, total, more) {
    const status = this.filters.query().status;
    const what = status === 'all' ? 'approvals' : `${status} approvals`;
    const narrowed = this.filters.narrowed() ? ' matching the filters' : '';
    const text = n === 0 ? `No ${what}${narrowed}.` : `Showing 1–${n} of ${total} ${what}${narrowed}, oldest first.`;
    // the unfiltered pending queue's total is the badge's count: they agree by construction
    if (status === 'pending' && !narrowed) this.ctx.setPendingCount?.(total);
    if (this.summary.textContent !== text) this.summary.textContent = text; // a live region: said when it changes
    this.empty.hidden = n !== 0 || this.cards.size !== 0 || status !== 'pending' || Boolean(narrowed);
    const left = Math.max(0, total - n);
    this.more.hidden = !more;
    this.more.textContent = `Show ${Math.min(PAGE, left || PAGE)} more (${left || 'more'} not shown)`;
    if (this.revealFrom !== undefined) {
      const next = this.listed[this.revealFrom];
      this.revealFrom = undefined;
      if (next) this.cards.get(next.id)?.toggle.focus();
    }
  }

  afterFirstRender() {
    if (!this.first) return;
    this.first = false;
    const target = this.openId ? this.cards.get(this.openId) : null;
    if (this.openId && !target) {
      replace(this.note, h('p', { class: 'problem', role: 'alert' }, 'The linked approval request does not exist (or you may not see it).'));
      this.openId = null;
      return;
    }
    const open = target ?? this.cards.get(this.listed[0]?.id);
    if (!open) return;
    this.expand(open, true);
    if (target) {
      target.root.scrollIntoView({ block: 'start' });
      target.toggle.focus({ preventScroll: true });
    }
  }

  // One card open at a time.
  expand(card, open) {
    if (open) for (const other of this.cards.values()) if (other !== card && other.expanded) other.setExpanded(false);
    card.setExpanded(open);
  }

  dismiss(card) {
    const next = card.root.nextElementSibling ?? card.root.previousElementSibling;
    card.root.remove();
    this.cards.delete(card.id);
    this.bulk.forget(card);
    const nextCard = next ? this.cards.get(next.dataset.approvalId) : null;
    if (nextCard) {
      nextCard.toggle.focus();
    } else {
      this.summary.setAttribute('tabindex', '-1');
      this.summary.focus();
    }
    this.refresh();
  }

  // Signed artifact links expire (15 minutes by default): fetch fresh ones shortly before.
  renewLinksBeforeTheyExpire(approvals) {
    clearTimeout(this.linkTimer);
    const expiries = approvals.flatMap((a) => (a.artifacts ?? []).map((art) => Date.parse(art.expires_at))).filter(Number.isFinite);
    if (!expiries.length) return;
    const wait = Math.max(5000, Math.min(...expiries) - Date.now() - 30000);
    this.linkTimer = setTimeout(() => this.refresh(), Math.min(wait, 2 ** 31 - 1));
  }

  tick() {
    let expired = false;
    for (const card of this.cards.values()) expired = card.tick() || expired;
    if (expired) setTimeout(() => this.refresh(), 1000);
  }
}

// The expanded approval card's details, built with h() (API text is never parsed
// as HTML): its plan, step, tool and votes; what a plan approval releases and
// which items the planner pulled in; the findings grouped per item; inputs and
// signed artifact links; and a re-asked request's past (earlier decisions with
// who and why, what changed since), the overrides on it and what undoing it
// would do. The row, the decision form and the outcomes are approval_card.js.

import {
  append, dl, findingsList, h, statusBadge, when,
} from '../dom.js';

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// Who decided a request, from its history: the approvers of an approved one,
// the person who denied a denied one, whoever cancelled a cancelled one.
export function decidersOf(a) {
  return [...new Set(decidingEvents(a).map((e) => e.actor))];
}

// The history entries that decided it (the approvals of an approved request, the denial of a denied one).
export function decidingEvents(a) {
  const event = { approved: 'approve', denied: 'deny', cancelled: 'cancel' }[a?.status];
  return (a?.history ?? []).filter((e) => e.event === event);
}

export function names(list) {
  if (!list.length) return '';
  if (list.length === 1) return list[0];
  return `${list.slice(0, -1).join(', ')} and ${list.at(-1)}`;
}

function pastDeciders(p) {
  if (p.decided_by?.length) return p.decided_by;
  const event = { approved: 'approve', denied: 'deny' }[p.status];
  return [...new Set((p.votes ?? []).filter((v) => v.event === event).map((v) => v.actor))];
}

function showValue(value) {
  if (value === null || value === undefined) return '(none)';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

// "Denied before by bea: not during the freeze" for each earlier denial: the first thing a re-asked card says.
export function pastWarning(a) {
  const denied = (a.past ?? []).filter((p) => p.status === 'denied');
  if (!denied.length) return null;
  return h('div', { class: 'past-warning', role: 'note' },
    denied.slice(0, 3).map((p) => h('p', null,
      h('strong', null, `Denied before by ${names(pastDeciders(p)) || 'someone'}`),
      p.decision_reason ? `: ${p.decision_reason}` : '', ' ', h('span', { class: 'muted' }, '(', when(p.decided_at ?? p.requested_at), ')'))),
    denied.length > 3 ? h('p', { class: 'muted' }, `and ${plural(denied.length - 3, 'earlier denial')}`) : null);
}

function pastSection(a) {
  const past = a.past ?? [];
  const overrides = a.overrides ?? [];
  if (!past.length && !overrides.length && !a.rollback) return null;
  const items = past.map((p) => {
    const who = names(pastDeciders(p));
    return h('li', { class: `past past-${p.status}` },
      statusBadge(p.status), ' ', who ? `by ${who}` : '', p.decision_reason ? `: ${p.decision_reason}` : '', ' ',
      h('span', { class: 'muted' }, 'asked ', when(p.requested_at)),
      p.changed?.length
        ? h('div', { class: 'changed' }, h('span', { class: 'label' }, 'Changed since: '),
          h('ul', null, p.changed.map((c) => h('li', null, h('code', null, c.field), ': ',
            h('del', null, showValue(c.before)), ' → ', h('ins', null, showValue(c.after))))))
        : h('div', { class: 'changed muted' }, 'Nothing in its inputs changed since.'),
      p.votes?.length > 1 ? h('ul', { class: 'past-votes' }, p.votes.map((v) => h('li', null,
        `${v.event} by ${v.actor}`, v.reason ? `: ${v.reason}` : ''))) : null);
  });
  return h('section', { class: 'approval-past', 'aria-label': 'Asked before' },
    past.length ? [h('h3', null, `Asked before (${past.length})`), h('ol', { class: 'past-list' }, items)] : null,
    overrides.length ? [h('h3', null, 'Overrides'), h('ul', { class: 'overrides' }, overrides.map((o) => h('li', null,
      h('strong', null, `${o.action}`), o.gate ? ` of the ${o.gate} gate` : '',
      (o.scope ?? (o.step_id ? 'step' : 'plan')) === 'plan' ? ' for the whole plan' : ' of this step',
      ` by ${o.actor}`, o.reason ? `: ${o.reason}` : '', ' ', h('span', { class: 'muted' }, when(o.created_at)))))] : null,
    a.rollback ? [h('h3', null, 'If undone'), rollbackText(a.rollback)] : null);
}

function rollbackText(rollback) {
  if (rollback?.action === 'none') return h('p', { class: 'rollback' }, 'Nothing to undo: ', rollback.reason ?? 'it changes nothing.');
  if (rollback?.tool_id) {
    const inputs = rollback.inputs ?? {};
    return h('div', { class: 'rollback' },
      h('p', null, 'Undoing it runs ', h('code', null, rollback.tool_id), Object.keys(inputs).length ? ' with:' : '.'),
      Object.keys(inputs).length ? dl(inputs) : null);
  }
  return h('div', { class: 'rollback' }, typeof rollback === 'object' ? dl(rollback) : h('p', null, String(rollback)));
}

// A plan approval: the steps it releases and the items pulled in as dependencies.
function releasesSection(a) {
  if (a.kind !== 'plan' || (!a.releases?.length && !a.pulled_in?.length)) return null;
  const total = a.releases_total ?? a.releases?.length ?? 0;
  const shown = a.releases ?? [];
  return h('section', { class: 'releases', 'aria-label': 'What approving releases' },
    h('h3', null, `Approving releases ${plural(total, 'step')}`),
    shown.length ? h('ul', { class: 'release-list' }, shown.map((s) => h('li', null,
      h('code', null, s.item_key), ` ${s.title ?? ''}`,
      s.tool_id ? [', ', h('code', null, s.tool_id)] : null,
      s.environment ? `, ${s.environment}` : '',
      s.requires_approval ? h('span', { class: 'needs-approval' }, ' (asks its own approval)') : null))) : null,
    total > shown.length ? h('p', { class: 'muted' }, `and ${total - shown.length} more (see the plan)`) : null,
    a.pulled_in?.length ? [h('h3', null, `Pulled in as dependencies (${a.pulled_in.length})`),
      h('ul', { class: 'pulled-in' }, a.pulled_in.map((p) => h('li', null,
        h('code', null, p.item_key), ` ${p.title ?? ''}`, p.environment ? `, ${p.environment}` : '',
        p.needed_by?.length ? `, added as a dependency of ${names(p.needed_by)}` : '',
        p.pack_id ? h('span', { class: 'muted' }, ` (pack ${p.pack_id})`) : null)))] : null);
}

// A plan approval's findings per item (a step's own findings as one list).
function findingsSection(a) {
  const findings = a.findings ?? [];
  const keyed = findings.filter((f) => f.item_key);
  let groups = null;
  if (a.kind === 'plan' && keyed.length) {
    groups = new Map();
    for (const f of findings) groups.set(f.item_key ?? '', [...(groups.get(f.item_key ?? '') ?? []), f]);
  }
  return h('section', { class: 'approval-findings', 'aria-label': 'Gate findings' },
    h('h3', null, 'Gate findings'),
    groups
      ? [...groups].map(([key, list]) => h('div', { class: 'finding-group' },
        h('h4', null, key ? h('code', null, key) : 'The whole plan', ` (${list.length})`),
        findingsList(list, { fold: 3 })))
      : findingsList(findings, { empty: 'No gate findings.', fold: 4 }));
}

export function artifactList(a) {
  if (!a.artifacts?.length) return h('p', { class: 'muted' }, 'No artifacts.');
  return h('ul', { class: 'artifacts' }, a.artifacts.map((art) => h('li', null,
    art.url
      ? h('a', { href: art.url, target: '_blank', rel: 'noopener noreferrer', class: 'artifact-link' }, art.name)
      : h('span', null, art.name, h('span', { class: 'muted' }, ' (uploading)')),
    h('span', { class: 'muted' }, ' signed link, valid until ', when(art.expires_at)))));
}

export function details(a) {
  const planLink = h('a', { href: `#/plans/${a.plan?.id}` }, a.plan?.title ?? a.plan?.id);
  const meta = h('dl', { class: 'meta' },
    h('dt', null, 'Plan'), h('dd', null, planLink, ' ', statusBadge(a.plan?.status)),
    a.step ? [h('dt', null, 'Step'), h('dd', null, h('code', null, a.step.item_key), ' ', a.step.title ?? '', ' ', statusBadge(a.step.status),
      a.step.stage === undefined || a.step.stage === null ? '' : ` stage ${a.step.stage + 1}`)] : null,
    h('dt', null, 'Tool'), h('dd', null, a.tool_id ? h('code', null, a.tool_id) : h('span', { class: 'muted' }, 'the whole plan')),
    h('dt', null, 'Status'), h('dd', null, statusBadge(a.status), a.decision_reason ? ` ${a.decision_reason}` : ''),
    h('dt', null, 'Approvals'), h('dd', { class: 'votes' }, `${a.approvals} of ${a.required_approvals} (${a.approver_role ?? 'approver'} role)`),
    h('dt', null, 'Requested'), h('dd', null, 'by ', a.requested_by, ', ', when(a.requested_at)),
    h('dt', null, 'Expires'), h('dd', null, when(a.expires_at)));
  const inputs = a.inputs_summary && Object.keys(a.inputs_summary).length
    ? dl(a.inputs_summary) : h('p', { class: 'muted' }, 'No inputs.');
  return append(h('div', { class: 'approval-details' }), [
    pastWarning(a),
    meta,
    releasesSection(a),
    h('div', { class: 'approval-columns' },
      findingsSection(a),
      h('section', { 'aria-label': 'Inputs summary' }, h('h3', null, 'Inputs summary'), inputs),
      h('section', { 'aria-label': 'Artifacts' }, h('h3', null, 'Artifacts'), artifactList(a))),
    pastSection(a),
    a.history?.length ? h('details', { class: 'history' },
      h('summary', null, `History (${a.history.length})`),
      h('ol', null, a.history.map((e) => h('li', null, when(e.occurred_at), ` ${e.event} by ${e.actor}`,
        e.source ? h('span', { class: 'muted' }, ` via ${e.source}`) : null, e.reason ? ` — ${e.reason}` : '')))) : null,
  ]);
}

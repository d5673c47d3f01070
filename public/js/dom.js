// Small DOM helpers: build elements without innerHTML (API text is never parsed
// as HTML), format times, money and durations, and render problem documents.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, '');
      else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, dateTime.format(d));
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return 'unknown';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return formatDuration(ms / 1000);
}

export function formatUsd(value) {
  if (value === null || value === undefined) return 'unknown';
  const digits = value !== 0 && Math.abs(value) < 0.01 ? 6 : 4;
  return `$${Number(value).toFixed(digits)}`;
}

export function formatNumber(value) {
  return value === null || value === undefined ? '—' : Number(value).toLocaleString();
}

export function badge(kind, value, label) {
  const text = value ?? 'none';
  return h('span', { class: `badge ${kind}-${String(text).replace(/[^a-z_]/gi, '')}` }, label ?? text);
}

export function statusBadge(status) {
  return badge('status', status, (status ?? 'unknown').replace(/_/g, ' '));
}

export function verdictBadge(verdict, score) {
  return badge('verdict', verdict, score === undefined || score === null ? verdict ?? '—' : `${verdict} · ${score}`);
}

// What a problem's field errors mean, in words a person uses (the API's own
// message stays in the detail for whoever needs it).
const FIELD_WORDS = {
  'body.reason': 'the reason',
  'body.decision': 'the decision',
  'body.flags': 'the flags',
  'body.plan_id': 'the plan',
  'body.step_id': 'the step',
  'body.action': 'the action',
};

function fieldName(loc) {
  const key = (loc ?? []).join('.');
  return FIELD_WORDS[key] ?? (key.replace(/^(body|query|path)\./, '') || 'the request');
}

export function sentence(text) {
  const t = String(text).trim();
  return t ? `${t.charAt(0).toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}` : '';
}

// A problem document (RFC 9457) as one message: the caller's lead says what
// happened in words a person uses; then either each field error by name or
// the API's detail (only when it adds to the lead), never the same twice.
// The status stays out of the text (it is in the box's title for support).
// `detail: false` leaves the API's detail out where the lead says it all.
export function problemBox(error, lead, { detail = true } = {}) {
  const problem = error?.problem;
  const box = h('div', { class: 'problem', role: 'alert', title: problem ? `${problem.title ?? 'Error'} (${problem.status ?? error.status})` : null });
  if (lead) append(box, [h('p', { class: 'problem-lead' }, lead)]);
  const errors = Array.isArray(problem?.errors) ? problem.errors : [];
  if (errors.length) {
    append(box, [
      h('ul', { class: 'problem-errors' },
        errors.map((e) => h('li', null, h('strong', null, fieldName(e.loc)), ': ', e.msg ?? ''))),
    ]);
    if (problem.error_count > errors.length) append(box, [h('p', { class: 'muted small' }, `and ${problem.error_count - errors.length} more`)]);
  } else if (detail && problem?.detail && !(lead ?? '').toLowerCase().includes(String(problem.detail).toLowerCase())) {
    append(box, [h('p', { class: 'problem-detail' }, sentence(problem.detail))]);
  } else if (!problem) {
    append(box, [h('p', null, sentence(error?.message ?? String(error)))]);
  }
  return box;
}

export function showIn(container, node) {
  replace(container, node);
  return node;
}

let uniqueCounter = 0;
export function uid(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

// A definition list from an object (inputs summaries, details).
export function dl(obj, className = 'kv') {
  const list = h('dl', { class: className });
  for (const [key, value] of Object.entries(obj ?? {})) {
    append(list, [h('dt', null, key), h('dd', null, typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value))]);
  }
  return list;
}

const SEVERITY_RANK = { block: 0, error: 0, warn: 1, info: 2 };

function findingItem(f) {
  return h('li', { class: `finding severity-${f.severity ?? 'info'}` },
    h('span', { class: `severity severity-${f.severity ?? 'info'}` }, f.severity ?? 'info'), ' ',
    f.item_key && !String(f.message ?? '').includes(f.item_key) ? [h('code', null, f.item_key), ' '] : null,
    h('span', { class: 'finding-message' }, f.message),
    f.remediation ? h('p', { class: 'remediation' }, h('span', { class: 'tip' }, 'Tip: '), f.remediation) : null,
    f.code ? h('span', { class: 'finding-code muted' }, ` ${f.code}`) : null);
}

// Findings, the most severe first. With `fold`, informational findings (and any
// beyond the first `fold` others) sit in a disclosure so blocks and warnings stand out.
export function findingsList(findings, { empty = 'No findings.', fold = 0 } = {}) {
  if (!findings?.length) return h('p', { class: 'muted' }, empty);
  const sorted = [...findings].sort((a, b) => (SEVERITY_RANK[a.severity] ?? 2) - (SEVERITY_RANK[b.severity] ?? 2));
  const serious0 = sorted.filter((f) => f.severity !== 'info').length;
  if (!fold || (serious0 === 0 && sorted.length <= 3)) return h('ul', { class: 'findings' }, sorted.map(findingItem));
  const serious = sorted.filter((f) => f.severity !== 'info');
  const shown = serious.slice(0, fold);
  const rest = sorted.slice(shown.length);
  const infos = rest.filter((f) => f.severity === 'info').length;
  const label = rest.length === infos
    ? `${infos} informational finding${infos === 1 ? '' : 's'}`
    : `${rest.length} more finding${rest.length === 1 ? '' : 's'}${infos ? ` (${infos} informational)` : ''}`;
  return h('div', null,
    shown.length ? h('ul', { class: 'findings' }, shown.map(findingItem)) : null,
    rest.length ? h('details', { class: 'more-findings' }, h('summary', null, label), h('ul', { class: 'findings' }, rest.map(findingItem))) : null);
}

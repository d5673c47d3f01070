// The NOFX console: sign in, hash routes, live updates, and the views.
// Plain ES modules served as they are (no build step, nothing from a CDN).

import { Api } from './js/api.js';
import { clear, h } from './js/dom.js';
import { EventFollower, loadRealtimeConfig, RealtimeNudger } from './js/live.js';
import { forgetAllDrafts } from './js/drafts.js';
import { endSession, restoreSession, startSession } from './js/session.js';
import { refreshGrant, renewalDelay } from './js/supabase_auth.js';
import { ApprovalsView } from './js/views/approvals.js';
import { AuditView } from './js/views/audit.js';
import { FlagsView } from './js/views/flags.js';
import { PlanView } from './js/views/plan.js';
import { PlansView } from './js/views/plans.js';
import { SignInView } from './js/views/signin.js';

const $ = (id) => document.getElementById(id);

const app = {
  session: null,
  config: null,
  view: null,
  follower: null,
  realtime: null,
  api: null,
  notice: null,
};

app.api = new Api(() => app.session?.token, {
  onUnauthorized: (error) => {
    if (!app.session) return;
    signOut(`The API refused your token: ${error.problem?.detail ?? error.message}. Sign in again: what you were typing is kept.`, { keepDrafts: true });
  },
});

// Screen readers hear `message`; the activity log shows the latest few.
function announce(message, { log = true } = {}) {
  const announcer = $('announcer');
  announcer.textContent = '';
  setTimeout(() => { announcer.textContent = message; }, 50);
  if (!log) return;
  const list = $('activity-log');
  const time = new Date();
  list.prepend(h('li', null, h('time', { datetime: time.toISOString() }, time.toLocaleTimeString()), ' ', message));
  while (list.children.length > 8) list.lastElementChild.remove();
  $('activity').hidden = false;
}

function describeEvent(event) {
  const d = event.data ?? {};
  const what = d.item_key ? ` ${d.item_key}` : '';
  switch (event.type) {
    case 'approval.requested': return `Approval requested for${what || ' a plan'}${d.tool_id ? ` (${d.tool_id})` : ''}`;
    case 'approval.decided': return `Approval ${d.status === 'pending' ? `vote recorded (${d.approvals}/${d.required})` : d.status} by ${d.by}`;
    case 'approval.expired': return 'An approval expired';
    case 'approval.cancelled': return `An approval was cancelled: ${d.reason ?? ''}`;
    case 'flag.changed': return `${d.key} switched ${d.enabled ? 'on' : 'off'} by ${d.by}`;
    case 'override.applied': return `Override ${d.action} applied by ${d.by}`;
    case 'override.requested': return `${d.by} asked for an override (${d.action}): ${d.reason ?? ''}`;
    case 'override.request_decided': return `Override request ${d.status} by ${d.by}: ${d.reason ?? ''}`;
    case 'step.failed': return `Step${what} failed`;
    default:
      if (event.type.startsWith('plan.')) return `Plan ${event.type.slice(5).replace('_', ' ')}${d.reason ? `: ${d.reason}` : ''}`;
      return null;
  }
}

const ANNOUNCED = new Set([
  'approval.requested', 'approval.decided', 'approval.expired', 'approval.cancelled', 'flag.changed', 'override.applied',
  'override.requested', 'override.request_decided',
  'step.failed', 'plan.ready', 'plan.blocked', 'plan.approved', 'plan.paused', 'plan.completed', 'plan.failed',
  'plan.cancelled', 'plan.rolled_back',
]);

function onEvents(events) {
  const messages = events.filter((e) => ANNOUNCED.has(e.type)).map(describeEvent).filter(Boolean);
  if (messages.length) announce(messages.length > 3 ? `${messages.length} updates; latest: ${messages.at(-1)}` : messages.join('. '));
  if (events.some((e) => e.type.startsWith('approval.'))) refreshApprovalCount();
  app.view?.onEvents?.(events);
}

function setLiveStatus(state, detail) {
  // back from an outage: what the view shows may be stale, and its errors old
  const recovered = state === 'live' && app.liveState?.[0] === 'error';
  app.liveState = [state, detail];
  if (recovered) {
    announce('Connection restored; the view is up to date again.');
    refreshApprovalCount();
    app.view?.refresh?.();
  }
  const el = $('live-status');
  el.dataset.state = state;
  const realtime = app.realtime?.connected ? ' (Realtime)' : '';
  const labels = {
    connecting: 'Connecting…',
    live: `Live${realtime}`,
    error: `Updates paused: ${detail?.problem?.detail ?? detail?.message ?? 'error'} (retrying)`,
  };
  el.textContent = labels[state] ?? state;
  el.title = state === 'live' && detail ? `following events after #${detail}` : el.textContent;
}

// The latest call wins: a slow answer read before a new request was asked
// must not overwrite a newer count (the badge would hide a waiting request).
async function refreshApprovalCount() {
  const seq = (app.countSeq = (app.countSeq ?? 0) + 1);
  try {
    // the count of every pending request (the queue pages; this is its total)
    const { total } = await app.api.get('/api/approvals', { status: 'pending', limit: 1 });
    if (seq === app.countSeq) showPendingCount(total);
  } catch {
    // unknown for now: the last count stays until a read succeeds
  }
}

// Also set by the approval queue from its own total (newer than any count in flight).
function showPendingCount(total) {
  app.countSeq = (app.countSeq ?? 0) + 1;
  const counter = $('approvals-count');
  counter.replaceChildren(String(total), h('span', { class: 'visually-hidden' }, ' pending'));
  counter.hidden = total === 0;
}

function showChrome(signedIn) {
  $('nav').hidden = !signedIn;
  $('who').hidden = !signedIn;
  if (!signedIn) {
    $('activity').hidden = true;
    clear($('activity-log'));
    return;
  }
  $('who-name').textContent = app.session.name;
  $('who-role').textContent = app.session.role ?? 'no NOFX role';
  for (const item of document.querySelectorAll('[data-min-role]')) {
    item.hidden = !app.session.can(item.dataset.minRole);
  }
}

// A Supabase session is renewed ahead of its expiry; any other token signs out
// when it expires, rather than fail request by request, after a warning a few
// minutes ahead (what is typed into a reason is kept: js/drafts.js).
const WARN_BEFORE_MS = 3 * 60 * 1000;

function watchExpiry() {
  clearTimeout(app.expiryTimer);
  clearTimeout(app.warnTimer);
  clearInterval(app.warnTicker);
  hideExpiryWarning();
  const at = app.session?.expiresAt();
  if (!at) return;
  if (app.session.refreshToken && app.config) {
    app.expiryTimer = setTimeout(renewSession, Math.min(renewalDelay(at), 2 ** 31 - 1));
    return;
  }
  const wait = Math.min(at.getTime() - Date.now(), 2 ** 31 - 1);
  const warnIn = Math.max(0, wait - Math.min(WARN_BEFORE_MS, wait / 2));
  app.warnTimer = setTimeout(() => showExpiryWarning(at), Math.min(warnIn, 2 ** 31 - 1));
  app.expiryTimer = setTimeout(() => signOut('Your token expired. Sign in with a fresh one: what you were typing is kept.', { keepDrafts: true }), Math.max(0, wait));
}

function showExpiryWarning(at) {
  const box = $('session-warning');
  const text = $('session-warning-text');
  const tick = () => {
    const left = Math.max(0, Math.round((at.getTime() - Date.now()) / 1000));
    const shown = left >= 60 ? `${Math.floor(left / 60)} min ${String(left % 60).padStart(2, '0')} s` : `${left} s`;
    text.textContent = `Your session ends in ${shown}. Sign in again with a fresh token before then; a reason you are typing is kept.`;
  };
  tick();
  box.hidden = false;
  announce(`Your session ends at ${at.toLocaleTimeString()}. Sign in again with a fresh token; drafts are kept.`);
  app.warnTicker = setInterval(tick, 1000);
}

function hideExpiryWarning() {
  const box = $('session-warning');
  if (box) box.hidden = true;
}

async function renewSession() {
  const current = app.session;
  let session;
  try {
    const { accessToken, refreshToken } = await refreshGrant(app.config, current.refreshToken);
    session = startSession(accessToken, refreshToken);
  } catch (err) {
    if (app.session === current) signOut(`Your session could not be renewed (${err.message}). Sign in again.`);
    return;
  }
  if (app.session !== current) return; // signed out meanwhile
  app.session = session;
  app.realtime?.setToken(session.token);
  showChrome(true);
  watchExpiry();
}

function startLive() {
  watchExpiry();
  app.follower = new EventFollower(app.api, {
    interval: 1500,
    onEvents,
    onStatus: setLiveStatus,
    onCaughtUp: () => {
      refreshApprovalCount();
      app.view?.refresh?.();
    },
  });
  app.follower.start();
  if (app.config) {
    app.realtime = new RealtimeNudger({
      url: app.config.supabase_url,
      anonKey: app.config.supabase_anon_key,
      token: app.session.token,
      topics: ['nofx:events'],
      onMessage: () => {
        app.follower?.nudge();
        refreshSoon();
      },
      onState: (connected) => {
        if (!app.realtime || app.realtime.connected === connected) return;
        app.realtime.connected = connected;
        app.follower?.setRealtime(connected);
        if (app.liveState) setLiveStatus(...app.liveState);
      },
    });
    app.realtime.connect();
  }
}

// A broadcast means something committed: read the view again at once. The event
// feed may hold that event back a while (any open transaction in the database
// cluster does), so the view does not wait for it. Debounced: a burst of
// broadcasts is one refresh.
function refreshSoon() {
  if (app.refreshTimer) return;
  app.refreshTimer = setTimeout(() => {
    app.refreshTimer = null;
    refreshApprovalCount();
    app.view?.refresh?.();
  }, 100);
}

function stopLive() {
  clearTimeout(app.warnTimer);
  clearInterval(app.warnTicker);
  hideExpiryWarning();
  clearTimeout(app.refreshTimer);
  app.refreshTimer = null;
  clearTimeout(app.expiryTimer);
  app.follower?.stop();
  app.follower = null;
  app.realtime?.close();
  app.realtime = null;
}

function signedIn(session) {
  app.session = session;
  showChrome(true);
  startLive();
  refreshApprovalCount();
  const back = app.returnTo;
  app.returnTo = null;
  if (back) location.hash = back;
  else if (!location.hash || location.hash === '#/' || location.hash === '#/signin') location.hash = '#/approvals';
  else route();
}

function signOut(message, { keepDrafts = false } = {}) {
  stopLive();
  endSession();
  if (!keepDrafts) forgetAllDrafts();
  // signed in again, the person returns to where they were (and their draft)
  app.returnTo = keepDrafts && location.hash && location.hash !== '#/signin' ? location.hash : null;
  app.session = null;
  showChrome(false);
  app.notice = message ?? null;
  if (location.hash && location.hash !== '#/signin') {
    history.replaceState(null, '', '#/signin');
  }
  route();
}

const ROUTES = [
  [/^#\/approvals$/, () => new ApprovalsView(context())],
  // a link from Slack or Zig Todo to one request: the queue, opened at it
  [/^#\/approvals\/([0-9a-f-]{36})$/i, (m) => new ApprovalsView(context(), m[1])],
  [/^#\/plans$/, () => new PlansView(context())],
  [/^#\/plans\/([0-9a-f-]{36})$/i, (m) => new PlanView(context(), m[1])],
  [/^#\/flags$/, () => new FlagsView(context())],
  [/^#\/audit$/, () => new AuditView(context(), null)],
  [/^#\/audit\/([0-9a-f-]{36})$/i, (m) => new AuditView(context(), m[1])],
];

function context() {
  return {
    api: app.api,
    session: app.session,
    announce,
    nudge: () => app.follower?.nudge(),
    setPendingCount: showPendingCount,
    navigate: (hash) => { location.hash = hash; },
  };
}

function route() {
  app.view?.destroy?.();
  app.view = null;
  const main = $('main');
  clear(main);
  if (!app.session) {
    const view = new SignInView({ config: app.config, notice: app.notice, onSignedIn: signedIn });
    app.notice = null;
    app.view = view;
    view.mount(main);
    document.title = 'Sign in · NOFX console';
    return;
  }
  const hash = location.hash || '#/approvals';
  let view = null;
  for (const [pattern, make] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      view = make(match);
      break;
    }
  }
  if (!view) {
    location.replace('#/approvals');
    return;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    const section = hash.split('/')[1];
    if (link.dataset.route === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  app.view = view;
  view.mount(main);
  document.title = `${view.title} · NOFX console`;
  // Move focus to the new view's heading so keyboard and screen reader users land on it.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

async function boot() {
  $('sign-out').addEventListener('click', () => signOut('You signed out.'));
  $('session-warning-signin').addEventListener('click', () => signOut('Sign in with a fresh token: what you were typing is kept.', { keepDrafts: true }));
  window.addEventListener('hashchange', route);
  app.config = await loadRealtimeConfig();
  const session = restoreSession();
  if (session) {
    app.session = session;
    showChrome(true);
    startLive();
    refreshApprovalCount();
    if (!location.hash || location.hash === '#/signin') history.replaceState(null, '', '#/approvals');
  }
  route();
}

boot();

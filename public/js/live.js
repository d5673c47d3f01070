// Live updates. The `events` table is the record of truth: the console follows
// GET /api/events?after=<cursor> (every ~1.5 s), and when the page is configured
// with a Supabase URL and anon key, a Realtime Broadcast on the private channel
// `nofx:events` only nudges it to read now (polling then slows to a safety net).

const PAGE = 200;
const FAST_FORWARD_PAGE = 1000;

export class EventFollower {
  constructor(api, { interval = 1500, onEvents, onStatus, onCaughtUp }) {
    this.api = api;
    this.onCaughtUp = onCaughtUp;
    this.baseInterval = interval;
    this.interval = interval;
    this.onEvents = onEvents;
    this.onStatus = onStatus;
    this.cursor = null;
    this.timer = null;
    this.running = false;
    this.inFlight = null;
    this.failures = 0;
  }

  // Skip the history: the views load the current state themselves, so only what
  // happens from now on is interesting. (The API has no "latest cursor" shortcut,
  // so this pages to the end.)
  async start() {
    this.running = true;
    this.onStatus?.('connecting');
    try {
      for (;;) {
        const page = await this.api.get('/api/events', { after: this.cursor ?? undefined, limit: FAST_FORWARD_PAGE });
        if (!this.running) return;
        if (page.next_after !== null && page.next_after !== undefined) this.cursor = page.next_after;
        if (page.events.length < FAST_FORWARD_PAGE) break;
      }
      this.onStatus?.('live', this.cursor);
      // Whatever a view loaded before the cursor was set may be older than it.
      this.onCaughtUp?.();
    } catch (err) {
      this.onStatus?.('error', err);
    }
    this.schedule();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(delay = this.interval) {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), delay);
  }

  // Read now (a Realtime nudge, or a view that just changed something).
  nudge() {
    this.schedule(0);
  }

  setRealtime(connected) {
    this.interval = connected ? 10000 : this.baseInterval;
    this.schedule();
  }

  async poll() {
    if (!this.running) return;
    if (this.inFlight) return;
    this.inFlight = (async () => {
      let more = false;
      try {
        const page = await this.api.get('/api/events', { after: this.cursor ?? undefined, limit: PAGE });
        if (!this.running) return;
        this.failures = 0;
        if (page.events.length) {
          this.cursor = page.next_after;
          more = page.events.length === PAGE;
          this.onEvents(page.events);
        }
        this.onStatus?.('live', this.cursor);
      } catch (err) {
        this.failures += 1;
        if (err.status === 422 && err.problem?.errors?.[0]?.loc?.join('.') === 'query.after') this.cursor = null;
        this.onStatus?.('error', err);
        if (err.status === 401) {
          this.stop();
          return;
        }
      } finally {
        this.inFlight = null;
      }
      const backoff = this.failures ? Math.min(15000, this.interval * 2 ** this.failures) : this.interval;
      this.schedule(more ? 0 : backoff);
    })();
    await this.inFlight;
  }
}

// A minimal Supabase Realtime (Phoenix channels v1 JSON) client: join private
// topics with the user's access token, heartbeat, reconnect. Messages are only
// used as a signal; payloads are read back through the API.
export class RealtimeNudger {
  constructor({ url, anonKey, token, topics, onMessage, onState }) {
    this.endpoint = `${url.replace(/^http/, 'ws').replace(/\/$/, '')}/realtime/v1/websocket?apikey=${encodeURIComponent(anonKey)}&vsn=1.0.0`;
    this.token = token;
    this.topics = topics;
    this.onMessage = onMessage;
    this.onState = onState;
    this.ref = 0;
    this.retry = 0;
    this.closed = false;
    this.joined = new Set();
  }

  send(topic, event, payload) {
    this.ref += 1;
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ topic, event, payload, ref: String(this.ref), join_ref: String(this.ref) }));
    }
  }

  connect() {
    if (this.closed) return;
    let socket;
    try {
      socket = new WebSocket(this.endpoint);
    } catch {
      this.onState?.(false);
      return;
    }
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.retry = 0;
      for (const topic of this.topics) {
        this.send(`realtime:${topic}`, 'phx_join', {
          config: {
            broadcast: { ack: false, self: false }, presence: { key: '', enabled: false }, private: true, postgres_changes: [],
          },
          access_token: this.token,
        });
      }
      this.heartbeat = setInterval(() => this.send('phoenix', 'heartbeat', {}), 25000);
    });
    socket.addEventListener('message', (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.event === 'phx_reply' && frame.topic?.startsWith('realtime:')) {
        if (frame.payload?.status === 'ok') this.joined.add(frame.topic);
        this.onState?.(this.joined.size > 0);
      } else if (frame.event === 'broadcast') {
        this.onMessage?.(frame.payload);
      } else if (frame.event === 'phx_error' || frame.event === 'phx_close') {
        this.joined.delete(frame.topic);
        this.onState?.(this.joined.size > 0);
      }
    });
    socket.addEventListener('close', () => {
      clearInterval(this.heartbeat);
      this.joined.clear();
      this.onState?.(false);
      if (this.closed) return;
      this.retry += 1;
      setTimeout(() => this.connect(), Math.min(30000, 1000 * 2 ** this.retry));
    });
  }

  // A renewed access token: Realtime checks private channels against it (its
  // `access_token` message), so the joined topics stay authorized.
  setToken(token) {
    this.token = token;
    for (const topic of this.joined) this.send(topic, 'access_token', { access_token: token });
  }

  close() {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.socket?.close();
  }
}

// Supabase settings from this deployment only: the same-origin /config.json
// ({"supabase_url": …, "supabase_anon_key": …}). Never from the page's URL: a
// crafted link must not send a password or an admin token to another host
// (and the page's Content-Security-Policy would refuse that host anyway).
export async function loadRealtimeConfig() {
  try {
    const response = await fetch('config.json', { headers: { Accept: 'application/json' } });
    if (!response.ok) return null;
    const config = await response.json();
    return config?.supabase_url && config?.supabase_anon_key ? config : null;
  } catch {
    return null;
  }
}

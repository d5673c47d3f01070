// The JSON API: bearer token, the console's client header, idempotency keys on
// POSTs, and problem documents turned into ApiError with the document attached.

export class ApiError extends Error {
  constructor(status, problem, body) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.body = body;
  }

  // The last path segment of the problem type: "feature-disabled", "self-approval" …
  get kind() {
    const type = this.problem?.type ?? '';
    return type.slice(type.lastIndexOf('/') + 1);
  }
}

function idempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export class Api {
  constructor(tokenProvider, { onUnauthorized } = {}) {
    this.tokenProvider = tokenProvider;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { body, query, signal } = {}) {
    const url = new URL(path, window.location.origin);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = { Accept: 'application/json', 'X-NOFX-Client': 'console' };
    const token = this.tokenProvider();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method === 'POST') headers['Idempotency-Key'] = idempotencyKey();
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, { title: 'Network error', status: 0, detail: `could not reach the server (${err.message})` });
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const problem = data && typeof data === 'object' && 'status' in data
        ? data
        : { title: response.statusText || 'Error', status: response.status, detail: text.slice(0, 300) || `HTTP ${response.status}` };
      const error = new ApiError(response.status, problem, data);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    return { status: response.status, data };
  }

  async get(path, query, options) {
    return (await this.request('GET', path, { ...options, query })).data;
  }

  post(path, body) {
    return this.request('POST', path, { body });
  }

  put(path, body) {
    return this.request('PUT', path, { body });
  }
}

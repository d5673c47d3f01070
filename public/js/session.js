// Who is signed in: the bearer token (a Supabase access token, or the development
// token from `make dev`), and with a Supabase sign-in its refresh token, kept in
// sessionStorage for this tab only. The claims are
// read here only to decide what to show; the API checks the signature and the role.

const KEY = 'nofx.console.token';
const REFRESH_KEY = 'nofx.console.refresh';
export const ROLES = ['viewer', 'planner', 'approver', 'admin'];

function base64UrlDecode(part) {
  const padded = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// The claims of a JWT, or an Error saying why the text is not one.
export function decodeToken(token) {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw new Error('That is not a JWT: expected three parts separated by dots.');
  let claims;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1]));
  } catch {
    throw new Error('That is not a JWT: its payload is not base64url-encoded JSON.');
  }
  if (!claims || typeof claims !== 'object') throw new Error('That is not a JWT: its payload is not an object.');
  return claims;
}

export function roleOf(claims) {
  if (claims.role === 'service_role') return 'admin';
  const role = claims.app_metadata?.nofx_role;
  return ROLES.includes(role) ? role : null;
}

export class Session {
  constructor(token, claims, refreshToken = null) {
    this.token = token;
    this.refreshToken = refreshToken;
    this.claims = claims;
    this.role = roleOf(claims);
    this.name = claims.email || claims.sub || 'unknown user';
    this.subject = claims.sub ?? null;
  }

  // Does this session's role reach `minimum` (viewer < planner < approver < admin)?
  can(minimum) {
    return this.role !== null && ROLES.indexOf(this.role) >= ROLES.indexOf(minimum);
  }

  expiresAt() {
    return typeof this.claims.exp === 'number' ? new Date(this.claims.exp * 1000) : null;
  }

  expired(now = Date.now()) {
    const at = this.expiresAt();
    return at !== null && at.getTime() <= now;
  }
}

export function startSession(token, refreshToken = null) {
  const trimmed = token.trim().replace(/^Bearer\s+/i, '');
  const session = new Session(trimmed, decodeToken(trimmed), refreshToken);
  if (session.expired()) throw new Error(`This token expired at ${session.expiresAt().toLocaleString()}. Mint a new one.`);
  if (!session.role) {
    throw new Error('This token carries no NOFX role (app_metadata.nofx_role: viewer, planner, approver or admin); '
      + 'ask an admin to give your account one.');
  }
  sessionStorage.setItem(KEY, trimmed);
  if (refreshToken) sessionStorage.setItem(REFRESH_KEY, refreshToken);
  else sessionStorage.removeItem(REFRESH_KEY);
  return session;
}

export function restoreSession() {
  const token = sessionStorage.getItem(KEY);
  if (!token) return null;
  try {
    const session = new Session(token, decodeToken(token), sessionStorage.getItem(REFRESH_KEY));
    if (session.expired()) {
      endSession();
      return null;
    }
    return session;
  } catch {
    endSession();
    return null;
  }
}

export function endSession() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(REFRESH_KEY);
}

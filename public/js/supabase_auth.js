// Supabase Auth (GoTrue REST): the password grant that signs a person in, and the
// refresh grant that renews their access token before it expires. Supabase access
// tokens live an hour by default; without renewal the console would sign out hourly.

async function grant(config, type, body) {
  const url = `${config.supabase_url.replace(/\/$/, '')}/auth/v1/token?grant_type=${type}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { apikey: config.supabase_anon_key, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(answer.error_description || answer.msg || answer.message || `Supabase Auth answered ${response.status}`);
  }
  return { accessToken: answer.access_token, refreshToken: answer.refresh_token ?? null };
}

export function passwordGrant(config, email, password) {
  return grant(config, 'password', { email, password });
}

// Supabase rotates refresh tokens: each one works once, and the answer carries the next.
export function refreshGrant(config, refreshToken) {
  return grant(config, 'refresh_token', { refresh_token: refreshToken });
}

// When to renew a token that expires at `expiresAt`: a minute ahead, or a quarter of
// its remaining life ahead when that is shorter (a short-lived token).
export function renewalDelay(expiresAt, now = Date.now()) {
  const left = expiresAt.getTime() - now;
  return Math.max(0, left - Math.min(60000, left / 4));
}

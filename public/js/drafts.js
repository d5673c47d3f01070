// Half-written text that outlives a session: a reason typed into a field with
// a draft key is kept in this tab's sessionStorage as it is typed, so a
// session that ends (an expired token) and a sign-in again bring it back.
// An explicit sign-out forgets every draft; a sent decision forgets its own.

const KEY = 'nofx.console.drafts';

function all() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

function store(drafts) {
  if (Object.keys(drafts).length) sessionStorage.setItem(KEY, JSON.stringify(drafts));
  else sessionStorage.removeItem(KEY);
}

export function saveDraft(key, value) {
  const drafts = all();
  if (value && value.trim()) drafts[key] = value;
  else delete drafts[key];
  store(drafts);
}

export function draftOf(key) {
  return all()[key] ?? '';
}

export function forgetDraft(key) {
  saveDraft(key, '');
}

export function forgetAllDrafts() {
  sessionStorage.removeItem(KEY);
}

// Keep `field`'s text under `key`: fill it from a kept draft now (when it is
// empty) and save it on every keystroke. Returns whether a draft came back.
export function bindDraft(field, key) {
  const kept = draftOf(key);
  const restored = Boolean(kept) && !field.value;
  if (restored) field.value = kept;
  field.addEventListener('input', () => saveDraft(key, field.value));
  return restored;
}

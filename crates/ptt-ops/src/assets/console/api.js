// The ops JSON API (/api/v1/...) as the console reads it: same origin, so the
// view-token cookie (if the relay has one) goes along, and no CSP change.

/**
 * GETs `path` of the ops API and returns its JSON. Throws an Error whose
 * message says what failed in the API's own words (`{"error": "..."}`), so
 * the console can show the dispatcher why a panel stayed empty instead of
 * failing silently.
 */
export async function getJson(path) {
  let res;
  try {
    res = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    throw new Error(path + ': ' + e.message);
  }
  if (!res.ok) {
    let detail = 'HTTP ' + res.status;
    try {
      const body = await res.json();
      if (body && body.error) detail += ' (' + body.error + ')';
    } catch (e) {
      // Not JSON: the status says enough.
    }
    throw new Error(path + ': ' + detail);
  }
  return res.json();
}

/** An admin API call the relay refused: `status` is the HTTP status. */
export class AdminError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * Calls the admin API (`/api/v1/admin/...`) with the operator's bearer
 * token: `body` (if not undefined) goes as JSON, which the relay only reads
 * with `Content-Type: application/json`. Returns the answer's JSON; throws
 * an AdminError carrying the HTTP status and the API's own error text, so
 * the console can tell a refused token (401, 403) from a refused change.
 */
export async function adminJson(method, path, token, body) {
  const headers = { Authorization: 'Bearer ' + token };
  const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new AdminError(method + ' ' + path + ': ' + e.message, 0);
  }
  let answer = null;
  try {
    answer = await res.json();
  } catch (e) {
    // Not JSON: the status says enough.
  }
  if (!res.ok) {
    const detail = answer && answer.error ? answer.error : 'HTTP ' + res.status;
    const wait = res.status === 429 && res.headers.get('Retry-After');
    throw new AdminError(detail + (wait ? ' (retry in ' + wait + ' s)' : ''), res.status);
  }
  return answer;
}

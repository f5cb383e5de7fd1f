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

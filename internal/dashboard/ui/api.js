// The admin API, as the dashboard calls it: same origin, bearer token from
// this tab's session storage (never in a URL), JSON both ways.

const KEY = 'turnout.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// APIError carries the status and the API's error text (and, for an invalid
// config, its per-position problems).
export class APIError extends Error {
  constructor(status, message, errors) {
    super(message);
    this.status = status;
    this.errors = errors || [];
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

function headers(json) {
  const h = { 'Authorization': 'Bearer ' + token.get(), 'Accept': 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  return h;
}

async function failure(resp) {
  let msg = resp.status + ' ' + resp.statusText, errs = [];
  try {
    const body = await resp.json();
    if (body && body.error) msg = body.error;
    if (body && body.errors) errs = body.errors.map((e) => (e.pos ? e.pos + ': ' : '') + e.message);
  } catch (_) { /* not JSON */ }
  if (resp.status === 401) onUnauthorized(msg);
  return new APIError(resp.status, msg, errs);
}

export async function get(path, signal) {
  const resp = await fetch('/api/v1' + path, { headers: headers(false), cache: 'no-store', signal });
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

export async function post(path, body) {
  const resp = await fetch('/api/v1' + path, { method: 'POST', headers: headers(true), body: JSON.stringify(body || {}), cache: 'no-store' });
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

// stream calls each(obj) for every NDJSON line of path until the response
// ends or signal aborts.
export async function stream(path, signal, each) {
  const resp = await fetch('/api/v1' + path, { headers: headers(false), cache: 'no-store', signal });
  if (!resp.ok) throw await failure(resp);
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) {
        try { each(JSON.parse(line)); } catch (_) { /* skip a malformed line */ }
      }
    }
  }
}

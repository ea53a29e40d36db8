// Shadow page: each shadowed route's report (GET /api/v1/shadow) — its
// counts, the match rate minute by minute, where the shadow differs, the
// noise learned from the primary, and the latest examples with both
// answers side by side. Everything in an answer is untrusted text: it goes
// into the page as text nodes only (h appends strings as text), never as
// markup.

import * as api from './api.js';
import { h, int, num, when } from './ui.js';

const $ = (id) => document.getElementById(id);

// open are the examples unfolded, by route and request id, kept across
// refreshes.
const open = new Set();

export function init(changed) {
  $('shadow-since').addEventListener('change', changed);
}

export async function refresh() {
  const since = $('shadow-since').value || '1h';
  const res = await api.get('/shadow?since=' + encodeURIComponent(since));
  const list = res.routes || [];
  $('shadow-list').replaceChildren(...list.map((s) => card(s, since)));
  $('shadow-empty').hidden = list.length > 0;
}

const rate = (s) => (s.compared ? num(s.match_rate, 2) + '%' : '–');

function figure(v, label, testid) {
  return h('div', { class: 'figure' }, h('div', { class: 'v', 'data-testid': testid }, v), h('div', { class: 'l' }, label));
}

// timeline draws the match rate minute by minute over the span asked for,
// 0–100 %, a dot per minute with requests compared.
function timeline(s, since) {
  const W = 600, H = 90, top = 8;
  const t1 = Date.now(), t0 = Math.min(Date.parse(s.since), t1 - 60e3);
  const x = (t) => (((t - t0) / (t1 - t0)) * W).toFixed(1);
  const y = (r) => (H - 1 - (r / 100) * (H - 1 - top)).toFixed(1);
  const pts = (s.timeline || []).map((p) => ({ t: Date.parse(p.time), r: p.match_rate, n: p.compared, at: p.time }));
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'match rate by minute' });
  svg.append(h('svg:line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
  svg.append(h('svg:line', { class: 'axis', x1: 0, y1: y(100), x2: W, y2: y(100), 'stroke-dasharray': '2 3' }));
  if (pts.length) {
    const line = pts.map((p) => `${x(p.t)},${y(p.r)}`).join(' ');
    svg.append(h('svg:polyline', { class: 'l1', points: line, 'vector-effect': 'non-scaling-stroke' }));
    for (const p of pts) {
      svg.append(h('svg:circle', { class: 'dot', cx: x(p.t), cy: y(p.r), r: 2.5 },
        h('svg:title', {}, `${when(p.at)}: ${num(p.r, 2)}% of ${int(p.n)} compared`)));
    }
  }
  return h('div', { class: 'chart weight-chart', 'data-testid': 'chart-match-rate', 'data-points': pts.length },
    h('div', { class: 'chart-head' }, h('span', {}, 'match rate by minute'), h('span', { class: 'now' }, rate(s))),
    svg,
    h('div', { class: 'chart-head' }, h('span', {}, when(t0)), h('span', {}, 'last ' + since + ' · 0–100%')));
}

// reveal unfolds the example of request id on route's card, if kept.
function reveal(route, id) {
  const el = [...document.querySelectorAll('[data-testid=shadow-example]')]
    .find((d) => d.dataset.route === route && d.dataset.requestId === id);
  if (!el) return;
  el.open = true;
  el.scrollIntoView({ block: 'nearest' });
}

function ids(s, p) {
  const kept = new Set((s.examples || []).map((e) => e.request_id));
  return (p.examples || []).map((id) => (kept.has(id)
    ? h('button', { type: 'button', class: 'link mono', title: 'show this example', onclick: () => reveal(s.route, id) }, id)
    : h('span', { class: 'mono muted', title: 'no longer among the kept examples' }, id)));
}

function paths(s) {
  const list = s.paths || [];
  if (!list.length) return h('p', { class: 'muted small' }, 'No differences counted since the shadow started.');
  return h('table', { class: 'data', 'data-testid': 'shadow-paths' },
    h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'count'), h('th', {}, 'kind'), h('th', {}, 'path'), h('th', {}, 'example requests'))),
    h('tbody', {}, list.map((p) => h('tr', { 'data-testid': 'shadow-path', 'data-path': p.path, 'data-count': p.count },
      h('td', { class: 'num' }, int(p.count)), h('td', {}, p.kind), h('td', { class: 'mono' }, p.path), h('td', { class: 'ids' }, ids(s, p))))));
}

function noise(s) {
  const list = s.noise || [];
  if (!list.length) return h('p', { class: 'muted small' }, 'No noise learned yet: noise is where two answers of the primary to the same request differ.');
  const json = list.filter((p) => p.path.startsWith('$'));
  return h('div', {},
    h('table', { class: 'data compact', 'data-testid': 'shadow-noise' },
      h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'count'), h('th', {}, 'path'))),
      h('tbody', {}, list.map((p) => h('tr', { 'data-testid': 'shadow-noise-path', 'data-path': p.path },
        h('td', { class: 'num' }, int(p.count)), h('td', { class: 'mono' }, p.path))))),
    json.length ? h('p', { class: 'muted small' }, 'Turn these into ignore rules on the route\'s shadow: ',
      h('code', { 'data-testid': 'shadow-ignore' }, 'ignore: ' + JSON.stringify(json.map((p) => p.path)))) : null);
}

// indent lays JSON out one member a line, its text unchanged (numbers as
// written); anything else is returned as it is.
function indent(body) {
  try { JSON.parse(body); } catch (_) { return body; }
  let out = '', depth = 0, inString = false, escaped = false;
  const nl = () => '\n' + '  '.repeat(depth);
  for (const c of body) {
    if (inString) {
      out += c;
      if (escaped) escaped = false;
      else if (c === '\\') escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\r' || c === '\t') continue;
    if (c === '"') { inString = true; out += c; } else if (c === '{' || c === '[') { depth++; out += c + nl(); } else if (c === '}' || c === ']') { depth--; out += nl() + c; } else if (c === ',') out += c + nl();
    else if (c === ':') out += ': ';
    else out += c;
  }
  return out.replace(/([{[])\n\s*([}\]])/g, '$1$2');
}

function answerRows(e) {
  const p = e.primary, s = e.shadow;
  const names = [...new Set([...Object.keys(p.header || {}), ...Object.keys((s && s.header) || {})])].sort();
  const cellOf = (a, f) => (a ? f(a) : null);
  const row = (label, a, b, cls) => h('tr', {}, h('th', {}, label), h('td', { class: cls, 'data-side': 'primary' }, a), h('td', { class: cls, 'data-side': 'shadow' }, b));
  const body = (a) => h('pre', { class: 'body' }, indent(a.body) + (a.truncated ? '\n… (truncated)' : ''));
  return [
    row('status', String(p.status), s ? String(s.status) : 'error: ' + (e.error || 'no answer'), 'mono'),
    ...names.map((n) => row(n, (p.header || {})[n] ?? '–', s ? (s.header || {})[n] ?? '–' : '–', 'mono')),
    row('body', body(p), cellOf(s, body), 'answer'),
  ];
}

const RESULT_BADGE = { match: 'ok', noise_only: 'info', diff: 'bad', shadow_error: 'warn' };

function example(route, e) {
  const key = route + '\u0000' + e.request_id;
  const target = e.path + (e.query ? '?' + e.query : '');
  const d = h('details', { class: 'example', 'data-testid': 'shadow-example', 'data-route': route, 'data-request-id': e.request_id, 'data-result': e.result, open: open.has(key) },
    h('summary', {},
      h('span', { class: 'badge ' + (RESULT_BADGE[e.result] || '') }, e.result.replace('_', ' ')),
      h('span', { class: 'mono' }, e.method + ' ' + target),
      h('span', { class: 'muted small' }, when(e.time) + ' · ' + e.request_id)),
    (e.differences || []).length ? h('ul', { class: 'changes' }, e.differences.map((x) => h('li', {},
      h('span', { class: 'badge' }, x.kind), ' ', h('span', { class: 'mono' }, x.path), ': ',
      h('span', { class: 'mono' }, x.a || '–'), ' → ', h('span', { class: 'mono' }, x.b || '–')))) : null,
    (e.noise || []).length ? h('p', { class: 'muted small' }, 'noise: ', h('span', { class: 'mono' }, e.noise.join(' '))) : null,
    h('table', { class: 'data side-by-side' },
      h('thead', {}, h('tr', {}, h('th', {}), h('th', {}, 'primary'), h('th', {}, 'shadow'))),
      h('tbody', {}, answerRows(e))));
  d.addEventListener('toggle', () => { if (d.open) open.add(key); else open.delete(key); });
  return d;
}

function card(s, since) {
  const examples = s.examples || [];
  return h('div', { class: 'card shadow-card', 'data-testid': 'shadow-card', 'data-route': s.route, 'data-compared': s.compared },
    h('div', { class: 'route-title' },
      h('span', { class: 'match' }, s.route),
      h('span', { class: 'target' }, 'shadow → ' + s.target),
      h('div', { class: 'figures' },
        figure(int(s.compared), 'compared', 'shadow-compared'),
        figure(int(s.match), 'identical', 'shadow-match'),
        figure(int(s.noise_only), 'noise only', 'shadow-noise-only'),
        figure(int(s.diff), 'different', 'shadow-diff'),
        figure(int(s.shadow_error), 'shadow errors', 'shadow-errors'),
        figure(int(s.dropped), 'dropped', 'shadow-dropped'),
        figure(rate(s), 'match rate', 'shadow-rate'))),
    timeline(s, since),
    h('div', { class: 'grid-2 shadow-grid' },
      h('div', {}, h('h3', {}, 'Where the shadow differs'), paths(s)),
      h('div', {}, h('h3', {}, 'Learned noise'), noise(s))),
    h('h3', {}, 'Latest examples'),
    examples.length ? examples.map((e) => example(s.route, e)) : h('p', { class: 'muted small' }, 'None kept yet.'));
}

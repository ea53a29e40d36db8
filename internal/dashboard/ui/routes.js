// Routes page: live charts per route (requests/s, error rate, p50/p99,
// fallbacks and throttles) with a per-target breakdown, from
// GET /api/v1/live polled every second and GET /api/v1/status.

import * as api from './api.js';
import { h, int, num, pct, ms, lineChart, routeTargets } from './ui.js';

const WINDOW = 300;
const FIELDS = ['requests', 'errors', 'fallbacks', 'throttles', 'breaker_open', 'client_closed', 'p50_ms', 'p99_ms'];

// The client keeps its own 5-minute ring per series, fed by the new seconds
// of each poll (?since=the last second it has).
const state = { to: 0, series: new Map(), recent: new Map(), status: null };

function emptyCols() {
  const c = {};
  for (const f of FIELDS) c[f] = new Array(WINDOW).fill(0);
  return c;
}

function merge(p) {
  if (p.to < p.from) return false;
  const shift = state.to ? Math.min(WINDOW, p.to - state.to) : WINDOW;
  if (shift <= 0) return false;
  for (const cols of state.series.values()) {
    for (const f of FIELDS) {
      const a = cols[f];
      a.splice(0, shift);
      for (let i = 0; i < shift; i++) a.push(0);
    }
  }
  const put = (key, s) => {
    let cols = state.series.get(key);
    if (!cols) { cols = emptyCols(); state.series.set(key, cols); }
    const n = s.requests.length;
    for (const f of FIELDS) {
      const src = s[f] || [];
      for (let i = 0; i < n; i++) cols[f][WINDOW - n + i] = src[i] || 0;
    }
    state.recent.set(key, s.recent);
  };
  // Series that went quiet keep their old "recent" figures unless reset.
  for (const k of state.recent.keys()) state.recent.set(k, null);
  for (const s of p.routes) put('R\u0000' + s.route, s);
  for (const s of p.series) put('T\u0000' + s.route + '\u0000' + s.target, s);
  state.to = p.to;
  return true;
}

export async function pollLive() {
  const p = await api.get('/live?since=' + state.to);
  return merge(p);
}

export function setStatus(st) { state.status = st; }

// seriesOf returns the live series of route's target (named as /live names
// it: "origin:NAME", "function:NAME") — its per-second columns, oldest
// first, and its recent figures — or empty ones when it has none yet.
export function seriesOf(route, target) {
  const key = 'T\u0000' + route + '\u0000' + target;
  return { cols: state.series.get(key) || emptyCols(), recent: state.recent.get(key) || null };
}

function breakerBadge(b) {
  if (!b || b === 'closed') return null;
  return h('span', { class: 'badge ' + (b === 'open' ? 'bad' : 'warn') }, 'breaker ' + b);
}

// chart is one titled chart of up to two series; floor is the least top of
// its y axis, so that charts meant to be compared can share one.
export function chart(title, series, nowText, fmt, legend, testid, floor = 0) {
  const svg = lineChart(series, fmt, floor);
  return h('div', { class: 'chart', 'data-testid': testid },
    h('div', { class: 'chart-head' }, h('span', {}, title), h('span', { class: 'now' }, nowText)),
    svg,
    h('div', { class: 'chart-head' },
      legend ? h('span', { class: 'legend' }, legend.map(([k, t]) => h('span', {}, h('span', { class: 'key ' + k }), t))) : h('span', {}, '−5 min'),
      h('span', {}, 'max ' + svg.dataset.ymax)));
}

function sum(a, from) { let s = 0; for (let i = from; i < a.length; i++) s += a[i]; return s; }

function routeCard(rt, cols, recent, targets) {
  const r = recent || { requests: 0, errors: 0, fallbacks: 0, throttles: 0, breaker_open: 0, p50_ms: 0, p99_ms: 0, seconds: 10 };
  const secs = r.seconds || 10;
  const total = cols ? sum(cols.requests, 0) : 0;
  const errRate = cols ? cols.requests.map((n, i) => (n ? (cols.errors[i] / n) * 100 : 0)) : [];
  const title = h('div', { class: 'route-title' },
    h('span', { class: 'match' }, rt.match || '(no route matched)'),
    rt.target ? h('span', { class: 'target' }, '→ ' + rt.target) : null,
    rt.fallback ? h('span', { class: 'badge info' }, 'fallback ' + rt.fallback) : null,
    rt.off ? h('span', { class: 'badge warn', title: routeTargets(rt) }, 'switched off') : null,
    rt.off && rt.when_on ? h('span', { class: 'target' }, '(on → ' + rt.when_on + ')') : null,
    breakerBadge(rt.breaker),
    rt.stale ? h('span', { class: 'badge' }, 'not in the active deployment') : null,
    h('div', { class: 'figures' },
      h('div', { class: 'figure' }, h('div', { class: 'v', 'data-testid': 'route-rps' }, num(r.requests / secs, 1)), h('div', { class: 'l' }, 'req/s')),
      h('div', { class: 'figure' }, h('div', { class: 'v' }, pct(r.requests ? r.errors / r.requests : 0)), h('div', { class: 'l' }, 'errors')),
      h('div', { class: 'figure' }, h('div', { class: 'v' }, ms(r.p99_ms)), h('div', { class: 'l' }, 'p99')),
      h('div', { class: 'figure' }, h('div', { class: 'v', 'data-testid': 'route-total', 'data-total': total }, int(total)), h('div', { class: 'l' }, 'requests, 5 min'))));
  const c = cols || emptyCols();
  const charts = h('div', { class: 'charts' },
    chart('requests / s', [c.requests], num(r.requests / secs, 1), (v) => int(v), null, 'chart-rps'),
    chart('error rate', [errRate], pct(r.requests ? r.errors / r.requests : 0), (v) => num(v, 0) + '%', null, 'chart-errors'),
    chart('latency', [c.p50_ms, c.p99_ms], ms(r.p50_ms) + ' / ' + ms(r.p99_ms), ms, [['k1', 'p50'], ['k2', 'p99']], 'chart-latency'),
    chart('fallbacks · throttles', [c.fallbacks, c.throttles], int(r.fallbacks) + ' · ' + int(r.throttles), (v) => int(v), [['k1', 'fallbacks'], ['k2', 'throttles']], 'chart-fallbacks'));
  const card = h('div', { class: 'card route-card', 'data-route': rt.match, 'data-testid': 'route-card' }, title, charts);
  if (targets.length) {
    card.append(h('table', { class: 'data targets' },
      h('thead', {}, h('tr', {},
        h('th', {}, 'target'), h('th', { class: 'num' }, 'req/s'), h('th', { class: 'num' }, 'error rate'),
        h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p99'), h('th', { class: 'num' }, 'fallbacks'),
        h('th', { class: 'num' }, 'throttled'), h('th', { class: 'num' }, 'breaker open'),
        h('th', { class: 'num', title: 'the client went away before the answer (499): not an error' }, 'client closed'),
        h('th', { class: 'num' }, 'requests, 5 min'))),
      h('tbody', {}, targets.map(([name, tc, tr]) => {
        const x = tr || { requests: 0, errors: 0, fallbacks: 0, throttles: 0, breaker_open: 0, p50_ms: 0, p99_ms: 0, seconds: 10 };
        const s = x.seconds || 10;
        return h('tr', { 'data-target': name },
          h('td', { class: 'mono' }, name || '–'), h('td', { class: 'num' }, num(x.requests / s, 1)),
          h('td', { class: 'num' }, pct(x.requests ? x.errors / x.requests : 0)), h('td', { class: 'num' }, ms(x.p50_ms)),
          h('td', { class: 'num' }, ms(x.p99_ms)), h('td', { class: 'num' }, int(x.fallbacks)), h('td', { class: 'num' }, int(x.throttles)),
          h('td', { class: 'num' }, int(x.breaker_open)), h('td', { class: 'num' }, int(x.client_closed || 0)),
          h('td', { class: 'num' }, int(sum(tc.requests, 0))));
      }))));
  }
  return card;
}

export function render() {
  const list = document.getElementById('routes-list');
  const routes = [];
  const known = new Set();
  for (const r of (state.status && state.status.routes) || []) {
    routes.push(r);
    known.add(r.match);
  }
  for (const k of state.series.keys()) {
    const [kind, route] = k.split('\u0000');
    if (kind === 'R' && !known.has(route)) {
      known.add(route);
      routes.push({ match: route, stale: true });
    }
  }
  const cards = routes.map((rt) => {
    const key = 'R\u0000' + (rt.match || '');
    const targets = [];
    for (const [k, cols] of state.series) {
      const [kind, route, target] = k.split('\u0000');
      if (kind === 'T' && route === (rt.match || '')) targets.push([target, cols, state.recent.get(k)]);
    }
    targets.sort((a, b) => a[0].localeCompare(b[0]));
    return routeCard(rt, state.series.get(key), state.recent.get(key), targets);
  });
  list.replaceChildren(...cards);
  document.getElementById('routes-empty').hidden = cards.length > 0;
}

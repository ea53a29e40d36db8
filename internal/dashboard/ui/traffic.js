// Traffic page: path templates ranked by calls ("what to migrate next"),
// templates not seen for a chosen time ("unused endpoints"), and
// function-readiness risks, from GET /api/v1/traffic.

import * as api from './api.js';
import { h, int, pct, ms, ago } from './ui.js';

export function init(changed) {
  for (const id of ['traffic-sort', 'traffic-unused', 'traffic-risky', 'traffic-limit']) {
    document.getElementById(id).addEventListener('change', changed);
  }
  document.getElementById('traffic-form').addEventListener('submit', (ev) => { ev.preventDefault(); changed(); });
}

// What each risk kind means for a move to a function behind API Gateway.
const RISKS = {
  response_over_6mb: ['response > 6 MB', 'bad', 'Lambda refuses synchronous responses over 6 MB'],
  duration_over_29s: ['slower than 29 s', 'bad', 'API Gateway gives up on an integration after 29 s'],
  semicolon_in_query: ['; in query', 'warn', 'API Gateway splits the query string on ;'],
  repeated_query_key: ['repeated query key', 'warn', 'single-value parameter maps keep only the last value'],
  binary_body: ['binary body', 'warn', 'binary request bodies arrive base64-encoded'],
};

function riskBadge(r) {
  const kind = typeof r === 'string' ? r : r.kind;
  const [label, sev, why] = RISKS[kind] || [String(kind).replace(/_/g, ' '), 'warn', ''];
  let title = why;
  if (r.count) title += `${title ? '. ' : ''}${int(r.count)} request${r.count === 1 ? '' : 's'}`;
  if (r.example) title += `, e.g. ${r.example}`;
  return h('span', { class: 'badge ' + sev, title, 'data-risk': kind }, label);
}

function list(v) {
  if (!v) return [];
  if (Array.isArray(v)) return v;
  if (typeof v === 'object') return Object.keys(v);
  return [String(v)];
}

// methods shows a row's methods, busiest first, with their share of calls.
function methods(m) {
  if (Array.isArray(m)) return m.map((x) => h('span', { class: 'badge' }, x));
  const entries = Object.entries(m || {}).sort((a, b) => b[1] - a[1]);
  return entries.map(([k, n]) => h('span', { class: 'badge', title: `${int(n)} calls` }, k));
}

export async function refresh() {
  const q = new URLSearchParams();
  q.set('sort', document.getElementById('traffic-sort').value);
  q.set('limit', document.getElementById('traffic-limit').value);
  const unused = document.getElementById('traffic-unused').value;
  if (unused) q.set('unused_for', unused);
  if (document.getElementById('traffic-risky').checked) q.set('risky', '1');
  const rep = await api.get('/traffic?' + q);
  const rows = rep.rows || rep.templates || [];
  const tb = document.querySelector('#traffic-table tbody');
  document.getElementById('traffic-empty').hidden = rows.length > 0;
  document.getElementById('traffic-state').textContent =
    `showing ${int(rows.length)} of ${int(rep.templates || 0)} templates · ${int(rep.total || 0)} calls counted since start` +
    (rep.overflow ? ` · ${int(rep.overflow)} past the template limit` : '');
  tb.replaceChildren(...rows.map((r, i) => {
    const risks = list(r.risks);
    return h('tr', { 'data-template': r.template, 'data-testid': 'traffic-row' },
      h('td', { class: 'num' }, i + 1),
      h('td', { class: 'tmpl' }, r.template, r.host ? h('span', { class: 'sub nowrap' }, r.host) : null),
      h('td', {}, methods(r.methods)),
      h('td', { class: 'small wrap' }, list(r.targets).join(', ') || '–',
        list(r.routes).length ? h('span', { class: 'sub mono' }, list(r.routes).join(', ')) : null),
      h('td', { class: 'num' }, int(r.calls)),
      h('td', { class: 'num' }, pct(r.error_rate !== undefined ? r.error_rate : (r.calls ? (r.errors || 0) / r.calls : 0))),
      h('td', { class: 'num' }, ms(r.p50_ms)),
      h('td', { class: 'num' }, ms(r.p99_ms)),
      h('td', { class: 'num' }, int(r.fallbacks)),
      h('td', { class: 'num' }, int(r.throttled)),
      h('td', { class: 'nowrap', title: r.last_seen || '' }, ago(r.last_seen)),
      h('td', {}, risks.length ? risks.map(riskBadge) : h('span', { class: 'badge ok' }, 'none found')));
  }));
}

// Rollouts page: each route's progressive rollout (GET /api/v1/rollouts) —
// its weight over time, its baseline and canary side by side on the live
// series of their two targets, the last verdict — and the buttons that
// pause, resume, promote, abort or start it, each behind the confirm step.

import * as api from './api.js';
import { h, int, num, pct, ms, when, confirmAction } from './ui.js';
import { seriesOf, chart } from './routes.js';

const $ = (id) => document.getElementById(id);

let onChanged = () => {};

export function init(changed) { onChanged = changed; }

export async function refresh() {
  const res = await api.get('/rollouts');
  const list = res.rollouts || [];
  $('rollouts-list').replaceChildren(...list.map(card));
  $('rollouts-empty').hidden = list.length > 0;
}

// liveTarget names a status target ("legacy", "function:users") as the live
// series do: origins "origin:NAME".
function liveTarget(t) { return t.startsWith('function:') ? t : 'origin:' + t; }

// span says a duration in nanoseconds as `turnout rollout status` does:
// 1m03s, 5m, 1h30m, 45s, 200ms.
function span(ns) {
  const s = Math.round(ns / 1e9);
  if (ns < 1e9) return Math.round(ns / 1e6) + 'ms';
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const p2 = (n) => String(n).padStart(2, '0');
  if (hh) return hh + 'h' + (mm || ss ? p2(mm) + 'm' : '') + (ss ? p2(ss) + 's' : '');
  if (mm) return mm + 'm' + (ss ? p2(ss) + 's' : '');
  return ss + 's';
}

const STATE_BADGE = { running: 'info', paused: 'warn', aborted: 'bad' };

// actions are the buttons a rollout in its state offers, with what each
// would do in its own words.
function actions(st) {
  const to = st.steps && st.steps.length ? st.steps[0] : 0;
  const pause = ['pause', 'Pause', `Hold ${st.route} at ${st.weight}% on ${st.canary}? Nothing is judged or advanced until it is resumed.`];
  const resume = ['resume', 'Resume', `Continue the rollout of ${st.route} from ${st.weight}%? The step's time starts again.`];
  const promote = ['promote', 'Promote', `Make ${st.canary} the target of ${st.route} now, skipping the remaining steps?`];
  const abort = ['abort', 'Abort', `Send every client of ${st.route} back to ${st.baseline} at once (canary weight 0)? The rollout stays aborted until started again.`];
  const start = ['start', 'Start', `Start the rollout of ${st.route}: ${to}% of its requests to ${st.canary}, then the plan's next steps as each passes?`];
  switch (st.state) {
    case 'running': return [pause, promote, abort];
    case 'paused': return [resume, promote, abort];
    default: return [start];
  }
}

function button(st, [action, label, question]) {
  return h('button', {
    type: 'button', class: 'small' + (action === 'abort' || action === 'promote' ? ' danger' : ''),
    'data-testid': 'rollout-' + action, 'data-action': action,
    onclick: () => confirmAction(label, question, (message) => api.post('/rollouts/' + action, { route: st.route, message }),
      { error: $('rollouts-error'), ok: $('rollouts-ok'), done: onChanged }),
  }, label);
}

// weightChart draws the canary's weight over the rollout's deployments as a
// step line up to now, the plan's steps as dashed levels.
function weightChart(st) {
  const W = 600, H = 90, top = 8;
  const pts = (st.weights || []).map((p) => ({ t: Date.parse(p.time), w: p.weight, label: `#${p.deployment} ${p.cause} (${when(p.time)})` }));
  const now = Date.now();
  if (!pts.length) pts.push({ t: now - 1000, w: st.weight, label: `now ${st.weight}%` });
  const t0 = pts[0].t, t1 = Math.max(now, pts[pts.length - 1].t + 1000);
  const x = (t) => ((t - t0) / (t1 - t0)) * W;
  const y = (w) => H - 1 - (w / 100) * (H - 1 - top);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'canary weight over time' });
  svg.append(h('svg:line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
  for (const s of st.steps || []) {
    svg.append(h('svg:line', { class: 'axis', x1: 0, y1: y(s).toFixed(1), x2: W, y2: y(s).toFixed(1), 'stroke-dasharray': '2 3' }));
  }
  const line = [];
  pts.forEach((p, i) => {
    if (i > 0) line.push(`${x(p.t).toFixed(1)},${y(pts[i - 1].w).toFixed(1)}`);
    line.push(`${x(p.t).toFixed(1)},${y(p.w).toFixed(1)}`);
  });
  line.push(`${W},${y(pts[pts.length - 1].w).toFixed(1)}`);
  svg.append(h('svg:polygon', { class: 'a1', points: `0,${H} ${line.join(' ')} ${W},${H}` }));
  svg.append(h('svg:polyline', { class: 'l2', points: line.join(' '), 'vector-effect': 'non-scaling-stroke' }));
  // One mark per deployment, its cause on hover.
  for (const p of pts) {
    svg.append(h('svg:line', { class: 'mark', x1: x(p.t).toFixed(1), y1: y(p.w).toFixed(1), x2: x(p.t).toFixed(1), y2: H, 'vector-effect': 'non-scaling-stroke' },
      h('svg:title', {}, p.label)));
  }
  return h('div', { class: 'chart weight-chart', 'data-testid': 'chart-weight', 'data-points': pts.length },
    h('div', { class: 'chart-head' }, h('span', {}, 'canary weight'), h('span', { class: 'now' }, st.weight + '%')),
    svg,
    h('div', { class: 'chart-head' }, h('span', {}, when(pts[0].t)), h('span', {}, 'steps ' + (st.steps || []).map((s) => s + '%').join(' · '))));
}

// sides draws the baseline's and the canary's live series side by side,
// each pair of charts on one scale so that they compare at a glance.
function sides(st) {
  const b = seriesOf(st.route, liveTarget(st.baseline)), c = seriesOf(st.route, liveTarget(st.canary));
  const rate = (x) => x.cols.requests.map((n, i) => (n ? (x.cols.errors[i] / n) * 100 : 0));
  const top = (f) => Math.max(...f(b), ...f(c), 0);
  const now = (x) => x.recent || { requests: 0, errors: 0, p99_ms: 0, seconds: 10 };
  const floors = { rps: top((x) => x.cols.requests), err: top(rate), p99: top((x) => x.cols.p99_ms) };
  const panel = (side, name, x) => {
    const r = now(x), secs = r.seconds || 10;
    return h('div', { class: 'side', 'data-testid': 'rollout-' + side, 'data-target': name },
      h('h3', {}, side + ' ', h('span', { class: 'mono' }, name)),
      h('div', { class: 'charts charts-3' },
        chart('requests / s', [x.cols.requests], num(r.requests / secs, 1), (v) => int(v), null, 'chart-rps', floors.rps),
        chart('error rate', [rate(x)], pct(r.requests ? r.errors / r.requests : 0), (v) => num(v, 0) + '%', null, 'chart-errors', floors.err),
        chart('p99', [x.cols.p99_ms], ms(r.p99_ms), ms, null, 'chart-p99', floors.p99)));
  };
  return h('div', { class: 'sides' }, panel('baseline', st.baseline, b), panel('canary', st.canary, c));
}

function verdict(st) {
  const v = st.verdict;
  if (!v) return h('p', { class: 'verdict muted', 'data-testid': 'rollout-verdict', 'data-decision': '' }, 'No verdict yet: the step is judged every ' + span(st.interval) + '.');
  const badge = { pass: 'ok', fail: 'bad', wait: '' }[v.decision] || '';
  const row = (name, s) => h('tr', {}, h('td', {}, name), h('td', { class: 'num' }, int(s.requests)), h('td', { class: 'num' }, pct(s.error_rate)),
    h('td', { class: 'num' }, ms(s.p50 / 1e6)), h('td', { class: 'num' }, ms(s.p99 / 1e6)));
  return h('div', { class: 'verdict', 'data-testid': 'rollout-verdict', 'data-decision': v.decision },
    h('p', {}, h('span', { class: 'badge ' + badge }, v.decision), h('span', { 'data-testid': 'rollout-reason' }, v.reason),
      st.judged ? h('span', { class: 'muted small' }, ' · ' + when(st.judged)) : null),
    h('table', { class: 'data compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'this step'), h('th', { class: 'num' }, 'requests'), h('th', { class: 'num' }, 'error rate'),
        h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p99'))),
      h('tbody', {}, row('baseline', v.baseline), row('canary', v.canary))));
}

function card(st) {
  const steps = (st.steps || []).length;
  return h('div', { class: 'card rollout-card', 'data-testid': 'rollout-card', 'data-route': st.route, 'data-state': st.state, 'data-weight': st.weight },
    h('div', { class: 'route-title' },
      h('span', { class: 'match' }, st.route),
      h('span', { class: 'target' }, st.baseline + ' → ' + st.canary),
      h('span', { class: 'badge ' + (STATE_BADGE[st.state] || ''), 'data-testid': 'rollout-state' }, st.state),
      h('div', { class: 'figures' },
        h('div', { class: 'figure' }, h('div', { class: 'v' }, `${st.step}/${steps}`), h('div', { class: 'l' }, 'step')),
        h('div', { class: 'figure' }, h('div', { class: 'v', 'data-testid': 'rollout-weight' }, st.weight + '%'), h('div', { class: 'l' }, 'canary weight')),
        h('div', { class: 'figure' }, h('div', { class: 'v', 'data-testid': 'rollout-in-step' }, span(st.in_step) + ' / ' + span(st.step_for)), h('div', { class: 'l' }, 'time in step'))),
      h('span', { class: 'actions' }, actions(st).map((a) => button(st, a)))),
    weightChart(st),
    sides(st),
    verdict(st));
}

// Small DOM helpers, number formats and SVG line charts.

// h builds an element: h('td', {class: 'num'}, 'text', child, ...).
export function h(tag, attrs, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function show(el, on) { el.hidden = !on; }

// targets says where a route of /api/v1/status goes in both states, the
// current one first: "off → legacy; on → function:user". A route that is on
// and has nowhere else to go is its target alone (admin.RouteStatus.Targets).
export function routeTargets(r) {
  if (r.off) return `off → ${r.when_off || '(none)'}; on → ${r.when_on}`;
  if (r.can_switch_off) return `on → ${r.when_on}; off → ${r.when_off}`;
  return r.target;
}

export function setError(el, err) {
  if (!err) { el.hidden = true; el.textContent = ''; return; }
  let text = err.message || String(err);
  if (err.errors && err.errors.length) text += '\n' + err.errors.join('\n');
  el.textContent = text;
  el.hidden = false;
}

// confirmAction asks in the page's confirm dialog (with an optional message
// for the history), then runs call(message), a change that answers with
// the deployment it made, and reports it: the deployment in report.ok, or
// the error in report.error; then report.done().
export function confirmAction(title, text, call, report) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = title;
  const msg = document.getElementById('confirm-message');
  msg.value = '';
  dlg.returnValue = '';
  dlg.addEventListener('close', async () => {
    if (dlg.returnValue !== 'ok') return;
    setError(report.error, null);
    try {
      const d = await call(msg.value.trim());
      report.ok.textContent = `Deployment #${d.id} is active: ${d.cause}`;
      report.ok.hidden = false;
      setTimeout(() => { report.ok.hidden = true; }, 8000);
    } catch (e) {
      setError(report.error, e);
    }
    report.done();
  }, { once: true });
  dlg.showModal();
  document.getElementById('confirm-cancel').focus();
}

const intFmt = new Intl.NumberFormat('en-US');
export const int = (n) => intFmt.format(Math.round(n || 0));
export function num(n, digits = 1) {
  if (!isFinite(n)) return '–';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}
export function pct(r) {
  if (!isFinite(r) || r === 0) return '0%';
  if (r < 0.001) return '<0.1%';
  return (r * 100).toFixed(r < 0.1 ? 1 : 0) + '%';
}
export function ms(v) {
  if (!v) return '–';
  if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' s';
  if (v >= 10) return Math.round(v) + ' ms';
  return v.toFixed(v >= 1 ? 1 : 2) + ' ms';
}
export function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}
export function ago(t) {
  if (!t) return '–';
  const d = (Date.now() - new Date(t).getTime()) / 1000;
  if (!isFinite(d)) return '–';
  if (d < 5) return 'just now';
  if (d < 60) return Math.round(d) + ' s ago';
  if (d < 3600) return Math.round(d / 60) + ' min ago';
  if (d < 86400) return Math.round(d / 3600) + ' h ago';
  return Math.round(d / 86400) + ' d ago';
}
export function when(t) {
  if (!t) return '–';
  const d = new Date(t);
  if (isNaN(d)) return '–';
  const sameYear = d.getFullYear() === new Date().getFullYear();
  const day = d.toLocaleDateString('en-GB', sameYear ? { day: '2-digit', month: 'short' } : { day: '2-digit', month: 'short', year: 'numeric' });
  return day + ' ' + d.toLocaleTimeString('en-GB', { hour12: false });
}

// niceMax rounds a chart's top up to 1, 2 or 5 × 10^n.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// lineChart draws up to two series (arrays of numbers, one per second,
// oldest first) into an SVG; its data-ymax is the top of the y axis, as fmt
// formats it, for the caller to label.
export function lineChart(series, fmt, floor = 0) {
  const W = 300, H = 72, top = 10;
  const n = Math.max(...series.map((s) => s.length), 2);
  let maxV = floor;
  for (const s of series) for (const v of s) if (v > maxV) maxV = v;
  const ymax = niceMax(maxV);
  const x = (i) => (i / (n - 1)) * W;
  const y = (v) => H - 1 - (v / ymax) * (H - 1 - top);
  const svg = h('svg:svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  svg.append(h('svg:line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
  svg.append(h('svg:line', { class: 'axis', x1: 0, y1: top, x2: W, y2: top, 'stroke-dasharray': '2 3' }));
  series.forEach((s, k) => {
    if (!s.length) return;
    const pts = s.map((v, i) => `${x(i + n - s.length).toFixed(1)},${y(v).toFixed(1)}`);
    if (k === 0) {
      const area = `0,${H} ` + pts.join(' ') + ` ${W},${H}`;
      svg.append(h('svg:polygon', { class: 'a1', points: area }));
    }
    svg.append(h('svg:polyline', { class: k === 0 ? 'l1' : 'l2', points: pts.join(' '), 'vector-effect': 'non-scaling-stroke' }));
  });
  svg.dataset.ymax = fmt(ymax);
  return svg;
}

// Functions page: instances, concurrency headroom, counters, and the log
// viewer (by request id, optionally following live over streamed NDJSON).

import * as api from './api.js';
import { h, int, ms } from './ui.js';

let follow = null; // AbortController of the log request in flight
const MAX_LINES = 2000;

export function init() {
  document.getElementById('logs-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    showLogs();
  });
}

export async function refresh() {
  const fns = await api.get('/functions');
  const tb = document.querySelector('#functions-table tbody');
  document.getElementById('functions-empty').hidden = fns.length > 0;
  tb.replaceChildren(...fns.map((f) => {
    const used = f.inUse || 0, limit = f.concurrency || 0;
    const share = limit ? used / limit : 0;
    const bar = h('div', { class: 'bar' + (share >= 0.9 ? ' bad' : share >= 0.7 ? ' warn' : '') }, h('span'));
    bar.firstChild.style.width = Math.min(100, share * 100).toFixed(1) + '%';
    return h('tr', { 'data-function': f.function, 'data-testid': 'function-row' },
      h('td', { class: 'mono' }, f.function),
      h('td', { class: 'num' }, int(f.instances), h('span', { class: 'sub' }, `${int(f.busy)} busy · ${int(f.idle)} idle`)),
      h('td', {}, h('div', { class: 'headroom', title: `${used} of ${limit} in use; ${Math.max(0, limit - used)} free` }, bar, h('span', { class: 'num' }, `${used} / ${limit}`))),
      h('td', { class: 'num' }, int(f.invocations)),
      h('td', { class: 'num' }, int(f.errors)),
      h('td', { class: 'num' }, int(f.timeouts)),
      h('td', { class: 'num' }, int(f.throttles)),
      h('td', { class: 'num' }, int(f.coldStarts)),
      h('td', { class: 'num' }, f.lastInitDuration ? ms(f.lastInitDuration / 1e6) : '–'),
      h('td', { class: 'num' }, h('button', { type: 'button', class: 'small', onclick: () => { pick(f.function); showLogs(); } }, 'Logs')));
  }));
  const select = document.getElementById('logs-function');
  const cur = select.value;
  const names = fns.map((f) => f.function);
  if (names.join('\u0000') !== [...select.options].map((o) => o.value).join('\u0000')) {
    select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    if (names.includes(cur)) select.value = cur;
  }
}

function pick(name) { document.getElementById('logs-function').value = name; }

export function stop() {
  if (follow) { follow.abort(); follow = null; }
  document.getElementById('logs-state').textContent = '';
}

function lineEl(l) {
  const t = new Date(l.time);
  return h('div', { class: 'line' },
    h('span', { class: 't' }, isNaN(t) ? '' : t.toLocaleTimeString('en-GB', { hour12: false }) + '.' + String(t.getMilliseconds()).padStart(3, '0')),
    l.requestId ? h('span', { class: 'rid', title: 'show only this request', onclick: () => { document.getElementById('logs-request-id').value = l.requestId; showLogs(); } }, l.requestId) : null,
    h('span', { class: l.stream === 'stderr' ? 'stderr' : l.stream === 'platform' ? 'platform' : '' }, l.text));
}

async function showLogs() {
  stop();
  const name = document.getElementById('logs-function').value;
  const out = document.getElementById('logs-output');
  const state = document.getElementById('logs-state');
  if (!name) {
    out.replaceChildren(h('div', { class: 'none' }, 'No function selected.'));
    return;
  }
  const rid = document.getElementById('logs-request-id').value.trim();
  const live = document.getElementById('logs-follow').checked;
  const q = new URLSearchParams();
  if (rid) q.set('request_id', rid);
  if (live) q.set('follow', '1');
  out.replaceChildren();
  out.dataset.received = 0;
  const ctl = new AbortController();
  follow = ctl;
  state.textContent = live ? 'following…' : 'loading…';
  let n = 0;
  try {
    await api.stream(`/functions/${encodeURIComponent(name)}/logs?${q}`, ctl.signal, (l) => {
      const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
      out.append(lineEl(l));
      if (++n > MAX_LINES) out.firstChild.remove();
      out.dataset.received = n;
      if (stick) out.scrollTop = out.scrollHeight;
    });
    if (follow === ctl) state.textContent = `${int(n)} lines`;
  } catch (e) {
    if (e.name === 'AbortError') return;
    out.append(h('div', { class: 'stderr' }, e.message));
    state.textContent = '';
  }
  if (!n) out.append(h('div', { class: 'none' }, rid ? `No lines for request ${rid}.` : 'No log lines yet.'));
}

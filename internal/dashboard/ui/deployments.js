// Deployments page: history, diff of any two, rollback and route off/on,
// each behind a confirm step.

import * as api from './api.js';
import { h, when, setError, routeTargets, confirmAction } from './ui.js';

const sel = { a: 0, b: 0 };
let list = [];
let activeID = 0;
let onChanged = () => {};

export function init(changed) {
  onChanged = changed;
  document.getElementById('rollback-button').addEventListener('click', () => {
    const prev = list.find((d) => d.id < activeID);
    const target = prev ? prev.id : activeID - 1;
    ask('Roll back', `Restore deployment #${target} as a new deployment? The active deployment is #${activeID}.`,
      (message) => api.post('/rollback', { to: target, message }));
  });
  document.getElementById('diff-button').addEventListener('click', () => showDiff(sel.a, sel.b));
}

// ask asks in the confirm dialog, then runs call(message) and reports here.
function ask(title, text, call) {
  confirmAction(title, text, call, { error: document.getElementById('deploy-error'), ok: document.getElementById('deploy-ok'), done: onChanged });
}

export async function refresh(status) {
  activeID = (status && status.active && status.active.id) || 0;
  list = await api.get('/deployments?limit=50');
  if (!sel.b && list.length) sel.b = list[0].id;
  if (!sel.a && list.length > 1) sel.a = list[1].id;
  renderHistory();
  renderSwitches(status);
  const rb = document.getElementById('rollback-button');
  const prev = list.find((d) => d.id < activeID);
  rb.disabled = !prev;
  rb.textContent = prev ? `Roll back to #${prev.id}` : 'Roll back';
}

function radio(name, id) {
  return h('input', {
    type: 'radio', name: 'diff-' + name, value: id, checked: sel[name] === id, 'aria-label': `${name.toUpperCase()} = #${id}`,
    onchange: () => { sel[name] = id; },
  });
}

function renderHistory() {
  const tb = document.querySelector('#deployments-table tbody');
  tb.replaceChildren(...list.map((d) => {
    const active = d.id === activeID;
    return h('tr', { class: active ? 'active-row' : '', 'data-id': d.id, 'data-testid': 'deployment-row' },
      h('td', {}, radio('a', d.id)), h('td', {}, radio('b', d.id)),
      h('td', { class: 'num' }, h('strong', {}, '#' + d.id)),
      h('td', { class: 'nowrap' }, when(d.time)),
      h('td', {}, d.author || '–'),
      h('td', { class: 'wrap' }, d.cause, active ? h('span', { class: 'badge ok' }, 'active') : null,
        d.message ? h('span', { class: 'sub' }, d.message) : null),
      h('td', { class: 'num' }, active ? null : h('button', {
        type: 'button', class: 'small', 'data-testid': 'restore-' + d.id,
        onclick: () => ask('Restore', `Re-activate deployment #${d.id} as a new deployment? The active deployment is #${activeID}.`,
          (message) => api.post('/rollback', { to: d.id, message })),
      }, 'Restore')));
  }));
}

function renderSwitches(status) {
  const tb = document.querySelector('#switch-table tbody');
  const routes = (status && status.routes) || [];
  tb.replaceChildren(...routes.map((r) => h('tr', { 'data-route': r.match },
    h('td', { class: 'tmpl' }, r.match),
    h('td', { 'data-testid': 'route-targets-' + r.match }, routeTargets(r), r.fallback ? h('span', { class: 'sub' }, 'fallback ' + r.fallback) : null),
    h('td', {}, r.off ? h('span', { class: 'badge warn' }, 'off') : h('span', { class: 'badge ok' }, 'on')),
    h('td', { class: 'num' }, switchButton(r)))));
}

// switchButton offers what a switch would do, in its own words: on returns
// the route to its target, off sends it to its fallback or the legacy
// origin. A route that has nowhere else to go (its target is already where
// off would send it) gets no Switch off.
function switchButton(r) {
  if (r.off) {
    return h('button', {
      type: 'button', class: 'small', 'data-testid': 'route-on-' + r.match,
      onclick: () => ask('Switch on', `Send ${r.match} back to ${r.when_on}? While off it goes to ${r.when_off || 'the legacy origin'}.`,
        (message) => api.post('/routes/on', { match: r.match, message })),
    }, 'Switch on');
  }
  if (!r.can_switch_off) {
    return h('span', { class: 'muted small', 'data-testid': 'route-nowhere-' + r.match, title: 'Switching it off would send it where it already goes.' }, 'nowhere else to go');
  }
  return h('button', {
    type: 'button', class: 'small danger', 'data-testid': 'route-off-' + r.match,
    onclick: () => ask('Switch off', `Send ${r.match} to ${r.when_off} instead of ${r.when_on}?`,
      (message) => api.post('/routes/off', { match: r.match, message })),
  }, 'Switch off');
}

async function showDiff(a, b) {
  const errEl = document.getElementById('deploy-error');
  setError(errEl, null);
  if (!a || !b || a === b) {
    setError(errEl, new Error('Pick two different deployments: one in column A, one in column B.'));
    return;
  }
  let d;
  try {
    d = await api.get(`/diff?a=${a}&b=${b}`);
  } catch (e) {
    setError(errEl, e);
    return;
  }
  document.getElementById('diff-card').hidden = false;
  document.getElementById('diff-title').textContent = `What changed from #${d.a} to #${d.b}`;
  const parts = [];
  const items = (label, xs) => {
    if (!xs || !xs.length) return;
    parts.push(h('h3', { class: 'small' }, label));
    parts.push(h('ul', { class: 'changes' }, xs.map((c) => h('li', {},
      h('span', { class: 'badge ' + (c.change === 'added' ? 'ok' : c.change === 'removed' ? 'bad' : 'warn') }, c.change),
      h('code', {}, c.name),
      (c.fields || []).length ? h('ul', {}, c.fields.map((f) => h('li', {}, h('code', {}, f.field), ': ', f.from || '(none)', ' → ', f.to || '(none)'))) : null))));
  };
  items('Routes', d.routes);
  items('Origins', d.origins);
  if (d.settings && d.settings.length) {
    parts.push(h('h3', { class: 'small' }, 'Settings'));
    parts.push(h('ul', { class: 'changes' }, d.settings.map((f) => h('li', {}, h('code', {}, f.field), ': ', f.from || '(none)', ' → ', f.to || '(none)'))));
  }
  if (!parts.length && !d.unified) parts.push(h('p', { class: 'muted' }, 'The two deployments are identical.'));
  document.getElementById('diff-summary').replaceChildren(...parts);
  const pre = document.getElementById('diff-unified');
  pre.replaceChildren(...(d.unified || '').split('\n').map((line) => {
    const cls = line.startsWith('+++') || line.startsWith('---') ? 'hunk' : line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@@') ? 'hunk' : '';
    return h('span', { class: cls || null }, line + '\n');
  }));
  pre.hidden = !d.unified;
  document.getElementById('diff-card').scrollIntoView({ block: 'nearest' });
}

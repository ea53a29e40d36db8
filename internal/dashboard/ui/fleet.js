// Fleet page: the live nodes of the store (GET /api/v1/nodes), the
// deployment each serves and how far behind the fleet's active one it is;
// a node that refused a deployment (a NACK) in red, on the page and on its
// tab. A store that cannot be reached (503) is said as such, never shown as
// an empty fleet.

import * as api from './api.js';
import { h, when, ago } from './ui.js';

const $ = (id) => document.getElementById(id);

// state is the last answer: {fleet} or {unreachable: message}.
let state = null;
let inFlight = null;

// poll reads /nodes into state and updates the tab's alert. A 503 is the
// store being away; any other failure is thrown to the caller.
export function poll() {
  if (!inFlight) {
    inFlight = api.get('/nodes').then((f) => {
      state = { fleet: f };
    }, (e) => {
      if (e.status !== 503) throw e;
      state = { unreachable: e.message };
    }).finally(() => {
      inFlight = null;
      setAlert();
    });
  }
  return inFlight;
}

export async function refresh() {
  await poll();
  render();
}

function nacks(f) { return f.nodes.filter((n) => n.refused); }

// setAlert marks the Fleet tab, whatever page is shown, while a node
// refuses a deployment or the store cannot be reached.
function setAlert() {
  const el = $('fleet-alert');
  let text = '';
  if (state && state.unreachable) text = 'store unreachable';
  else if (state && nacks(state.fleet).length) text = 'NACK';
  el.textContent = text;
  el.hidden = !text;
}

// nackText is one refusal, in the words of `turnout nodes`.
function nackText(n) {
  return `NACK: node ${n.name} refused deployment ${n.refused} and still serves ${n.deployment}: ${n.error || '(no error given)'}`;
}

// address links a node's admin URL, when it is one, to that node's dashboard.
function address(u) {
  if (!u) return '–';
  if (!/^https?:\/\//i.test(u)) return u;
  return h('a', { href: u, target: '_blank', rel: 'noopener noreferrer' }, u);
}

function render() {
  if (!state) return;
  const table = $('fleet-table');
  const tb = table.querySelector('tbody');
  const un = $('fleet-unreachable');
  const nackEl = $('fleet-nack');
  if (state.unreachable) {
    un.replaceChildren(
      h('strong', {}, 'Store unreachable'),
      ': the fleet cannot be listed until etcd answers again. This node keeps serving its deployment from memory.',
      h('span', { class: 'sub' }, state.unreachable));
    un.hidden = false;
    table.hidden = true;
    tb.replaceChildren();
    $('fleet-empty').hidden = true;
    $('fleet-summary').textContent = 'Nodes';
    nackEl.hidden = true;
    return;
  }
  const f = state.fleet;
  un.hidden = true;
  table.hidden = f.nodes.length === 0;
  $('fleet-empty').hidden = f.nodes.length > 0;
  const current = f.nodes.filter((n) => n.lag === 0).length;
  $('fleet-summary').textContent = f.nodes.length
    ? `${f.nodes.length} live node${f.nodes.length === 1 ? '' : 's'} · fleet deployment #${f.active} · ${current} serve${current === 1 ? 's' : ''} it`
    : `fleet deployment #${f.active}`;
  const refused = nacks(f);
  nackEl.replaceChildren(...refused.map((n) => h('div', { 'data-node': n.name }, nackText(n))));
  nackEl.hidden = refused.length === 0;
  tb.replaceChildren(...f.nodes.map((n) => {
    const cls = n.refused ? 'nack-row' : n.lag > 0 ? 'lag-row' : '';
    return h('tr', { class: cls || null, 'data-testid': 'node-row', 'data-node': n.name, 'data-lag': n.lag, 'data-refused': n.refused || 0 },
      h('td', { class: 'mono' }, h('strong', {}, n.name), n.refused ? h('span', { class: 'badge nack' }, 'NACK') : null),
      h('td', { class: 'mono' }, address(n.admin_url)),
      h('td', { 'data-testid': 'node-serves' },
        n.deployment ? '#' + n.deployment : '–',
        n.deployment && n.deployment === f.active ? [' ', h('span', { class: 'badge ok' }, 'active')] : null,
        n.refused ? h('span', { class: 'nack-text', 'data-testid': 'nack-text' }, `refused deployment #${n.refused}: ${n.error || '(no error given)'}`) : null),
      h('td', { class: 'num', 'data-testid': 'node-lag' }, n.lag > 0
        ? h('span', { class: 'lag', title: `the fleet's active deployment is #${f.active}` }, `${n.lag} behind`)
        : h('span', { class: 'muted' }, '0')),
      h('td', { class: 'nowrap', title: n.applied_at || '' }, when(n.applied_at), n.applied_at ? h('span', { class: 'sub' }, ago(n.applied_at)) : null),
      h('td', {}, n.version || '–'));
  }));
}

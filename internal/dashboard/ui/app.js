// The dashboard shell: sign-in, tabs, and the refresh loop that feeds each
// page from the admin API.

import * as api from './api.js';
import { h, setError } from './ui.js';
import * as routes from './routes.js';
import * as deployments from './deployments.js';
import * as rollouts from './rollouts.js';
import * as shadow from './shadow.js';
import * as functions from './functions.js';
import * as traffic from './traffic.js';
import * as fleet from './fleet.js';

const PAGES = ['routes', 'deployments', 'rollouts', 'shadow', 'functions', 'traffic', 'fleet'];
const $ = (id) => document.getElementById(id);

let page = 'routes';
let status = null;
let timer = 0;
let tick = 0;

function currentPage() {
  const p = location.hash.replace(/^#\/?/, '');
  return PAGES.includes(p) ? p : 'routes';
}

function signedIn(on) {
  $('login').hidden = on;
  $('tabs').hidden = !on;
  $('session').hidden = !on;
  for (const p of PAGES) $('page-' + p).hidden = !on || p !== page;
  if (!on) {
    clearTimeout(timer);
    $('store-banner').hidden = true;
    functions.stop();
    $('token-input').focus();
  }
}

function showPage(p) {
  if (p !== 'functions') functions.stop();
  page = p;
  for (const q of PAGES) $('page-' + q).hidden = q !== p;
  for (const a of document.querySelectorAll('#tabs a')) a.classList.toggle('current', a.dataset.page === p);
  refreshPage(true);
}

function setActive(st) {
  const el = $('active-deployment');
  const id = st && st.active ? String(st.active.id) : '';
  if (el.dataset.id !== id) {
    if (el.dataset.id) {
      el.classList.add('changed');
      setTimeout(() => el.classList.remove('changed'), 1500);
    }
    el.dataset.id = id;
    el.textContent = id ? '#' + id : '–';
    el.title = st && st.active ? `${st.active.cause} by ${st.active.author}` : '';
  }
}

// setStore says, on every page, when this node's store cannot be reached.
function setStore(st) {
  const el = $('store-banner');
  if (!st || st.store !== 'disconnected') {
    el.hidden = true;
    return;
  }
  const id = st.active && st.active.id ? '#' + st.active.id : 'its last deployment';
  el.replaceChildren(
    h('strong', {}, 'Store disconnected.'),
    ` This node cannot reach etcd: it keeps serving deployment ${id} from memory. Applies, rollbacks and route switches fail until etcd is back.`);
  el.hidden = false;
}

async function loadStatus() {
  status = await api.get('/status');
  setActive(status);
  setStore(status);
  routes.setStatus(status);
}

// pollFleet reads the nodes in the background for the Fleet tab's alert,
// without holding up the page's own refresh.
function pollFleet() {
  fleet.poll().catch(() => { /* shown when the Fleet page is open */ });
}

// refreshPage reloads what the visible page shows; full also reloads the
// slower-changing parts.
async function refreshPage(full) {
  try {
    switch (page) {
      case 'routes':
        if (full) await loadStatus();
        routes.render();
        break;
      case 'deployments':
        await loadStatus();
        await deployments.refresh(status);
        break;
      case 'rollouts':
        await rollouts.refresh();
        break;
      case 'shadow':
        await shadow.refresh();
        break;
      case 'functions':
        await functions.refresh();
        break;
      case 'traffic':
        await traffic.refresh();
        break;
      case 'fleet':
        await loadStatus();
        await fleet.refresh();
        break;
    }
    setError($('global-error'), null);
  } catch (e) {
    if (e.status !== 401) setError($('global-error'), e);
  }
}

// loop runs once a second: the live series always (so charts are full when
// the Routes page opens), the visible page at its own pace.
async function loop() {
  const dot = $('live-dot');
  try {
    await routes.pollLive();
    dot.className = 'live-dot on';
  } catch (e) {
    dot.className = 'live-dot stale';
  }
  tick++;
  const every = { routes: 1, deployments: 3, rollouts: 1, shadow: 5, functions: 2, traffic: 5, fleet: 2 }[page];
  if (tick % 3 === 0 && page !== 'fleet') {
    pollFleet();
    if (page !== 'deployments') {
      try { await loadStatus(); } catch (_) { /* shown by the page refresh */ }
    }
  }
  if (tick % every === 0) await refreshPage(false);
  if (!$('tabs').hidden) timer = setTimeout(loop, 1000);
}

async function start() {
  try {
    await loadStatus();
  } catch (e) {
    api.token.clear();
    signedIn(false);
    setError($('login-error'), e.status === 401 ? new Error('That token was not accepted.') : e);
    return;
  }
  setError($('login-error'), null);
  signedIn(true);
  pollFleet();
  showPage(currentPage());
  clearTimeout(timer);
  loop();
}

function boot() {
  api.setUnauthorizedHandler((msg) => {
    api.token.clear();
    signedIn(false);
    setError($('login-error'), new Error('Signed out: ' + msg));
  });
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    api.token.set(t);
    $('token-input').value = '';
    start();
  });
  $('logout-button').addEventListener('click', () => {
    api.token.clear();
    signedIn(false);
  });
  window.addEventListener('hashchange', () => { if (!$('tabs').hidden) showPage(currentPage()); });
  deployments.init(() => refreshPage(true));
  rollouts.init(() => refreshPage(true));
  shadow.init(() => refreshPage(true));
  functions.init();
  traffic.init(() => refreshPage(true));
  if (api.token.get()) start();
  else signedIn(false);
}

boot();

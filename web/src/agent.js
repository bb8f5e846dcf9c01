// The agent console (坐席工作台): sign in, agent state, a built-in WebRTC video softphone registered as the
// agent's own extension, the caller's details and chosen service, call notes, and live queue numbers.
import { api } from './lib/api.js';
import * as i18n from './lib/i18n.js';
import { explainMedia, openMedia, stopMedia } from './lib/media.js';
import { PC_CONFIG, attachRemote, createUA, explainEnd, mediaStats } from './lib/phone.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);
const TOKEN = 'huiyan.token';

const st = {
  token: null, me: null, sip: null, ua: null, session: null, stream: null, ws: null, wsRetry: 1000,
  agent: null, callId: null, timer: null, queues: null, info: null,
};

window.huiyan = {
  pc: () => (st.session ? st.session.connection : null),
  stats: () => mediaStats(st.session ? st.session.connection : null),
  state: () => (st.session ? (st.session.isEnded() ? 'ended' : st.session.isEstablished() ? 'established' : 'ringing') : 'idle'),
  registered: () => !!(st.ua && st.ua.isRegistered()),
};

function show(el, on = true) { el.hidden = !on; }
function err(id, msg) { $(id).textContent = msg || ''; show($(id), !!msg); }
const apiErr = (e) => t('err_api', { detail: e.status === 0 ? t('err_network') : e.message });

function call(path, opts = {}) { return api(path, { ...opts, token: st.token }); }

// ---- sign in -----------------------------------------------------------------------------------
async function signIn(ev) {
  ev.preventDefault();
  err('login-error', '');
  try {
    const res = await api('/api/auth/login', { method: 'POST',
      body: { username: $('username').value.trim(), password: $('password').value } });
    st.token = res.access_token;
    sessionStorage.setItem(TOKEN, st.token);
    await start();
  } catch (e) {
    err('login-error', e.status === 401 ? t('bad_login') : apiErr(e));
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN);
  if (st.session && !st.session.isEnded()) st.session.terminate();
  if (st.ua) st.ua.stop();
  if (st.ws) { st.ws.onclose = null; st.ws.close(); }
  location.reload();
}

async function start() {
  try {
    st.me = await call('/api/me');
    st.sip = await call('/api/me/sip');
  } catch (e) {
    if (e.status === 401) { sessionStorage.removeItem(TOKEN); show($('login')); return; }
    err('login-error', apiErr(e));
    show($('login'));
    return;
  }
  show($('login'), false);
  show($('desk'));
  $('who').textContent = `${st.me.display_name || st.me.username} · ${st.me.extension}`;
  show($('who'));
  show($('signout'));
  startPhone();
  connectEvents();
  await refreshAgent();
}

// ---- agent state -------------------------------------------------------------------------------
function renderAgent(view) {
  st.agent = view;
  const s = view ? view.state : 'logged_out';
  $('agent-state').textContent = t(`s_${s}`);
  $('agent-state').dataset.state = s;
  $('agent-reason').textContent = view && s === 'paused' && view.reason ? `(${view.reason})` : '';
  $('btn-login').disabled = s !== 'logged_out';
  $('btn-logout').disabled = s === 'logged_out';
  $('btn-available').disabled = s !== 'paused';
  $('btn-pause').disabled = s === 'logged_out' || s === 'paused';
  $('btn-wrapup').disabled = s !== 'wrap_up';
}

async function refreshAgent() {
  try {
    renderAgent(await call(`/api/agents/${st.me.id}`));
    err('desk-error', '');
  } catch (e) {
    renderAgent(null);
    err('desk-error', apiErr(e));
  }
}

async function agentOp(op, body) {
  try {
    renderAgent(await call(`/api/agents/${st.me.id}/${op}`, { method: 'POST', body: body || {} }));
    err('desk-error', '');
  } catch (e) {
    err('desk-error', apiErr(e));
  }
}

// ---- live numbers ------------------------------------------------------------------------------
function fmtSeconds(v) { return v == null ? '—' : t('seconds', { n: Math.round(v) }); }

function renderQueues(stats) {
  st.queues = stats;
  const body = $('queues');
  body.replaceChildren();
  const names = stats.queue_names || {};
  for (const [id, q] of Object.entries(stats.queues || {})) {
    const tr = document.createElement('tr');
    tr.dataset.queue = id;
    const cells = [names[id] || id, q.waiting, fmtSeconds(q.longest_wait), q.answered, q.abandoned,
      q.service_level == null ? '—' : `${Math.round(q.service_level * 100)}%`,
      `${q.agents_available}/${q.agents_logged_in}`];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = String(c); tr.append(td); }
    body.append(tr);
  }
}

function connectEvents() {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/api/me/events?token=${encodeURIComponent(st.token)}`);
  st.ws = ws;
  ws.onopen = () => { st.wsRetry = 1000; };
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    if (ev.type === 'HotlineStats') {
      renderQueues(ev.stats);
      const mine = (ev.stats.agents || {})[String(st.me.id)];
      if (mine && st.agent && mine.state !== st.agent.state) refreshAgent();
    } else if (ev.type === 'HotlineEvent') {
      refreshAgent();
    }
  };
  ws.onclose = (e) => {
    if (e.code === 4401) { signOut(); return; }
    setTimeout(connectEvents, st.wsRetry);
    st.wsRetry = Math.min(st.wsRetry * 2, 30000);
  };
}

// ---- softphone ---------------------------------------------------------------------------------
function sipPill(key) { $('sip').textContent = t(key); $('sip').dataset.key = key; show($('sip')); }

function startPhone() {
  sipPill('sip_connecting');
  const ua = createUA({ wsUrl: st.sip.ws_url, uri: st.sip.uri, password: st.sip.password,
    displayName: st.sip.display_name, register: true });
  st.ua = ua;
  ua.on('registered', () => { sipPill('sip_registered'); err('desk-error', ''); });
  ua.on('unregistered', () => sipPill('sip_unregistered'));
  ua.on('registrationFailed', (e) => { sipPill('sip_unregistered'); err('desk-error', t('err_sip', { detail: e.cause })); });
  ua.on('disconnected', () => sipPill('sip_unregistered'));
  ua.on('newRTCSession', (e) => { if (e.originator === 'remote') incoming(e.session); });
  ua.start();
}

function clearCaller() {
  for (const id of ['ci-name', 'ci-phone', 'ci-service', 'ci-waited']) $(id).textContent = '—';
}

function renderCaller(c, session) {
  const from = session.remote_identity;
  const web = c && c.web;
  $('ci-name').textContent = (web && web.name) || (c && c.caller_name) || from.display_name || '—';
  $('ci-phone').textContent = (web && web.phone) || (c && c.caller) || from.uri.user || '—';
  $('ci-service').textContent = c ? `${i18n.label(c)} · ${c.number}${web ? ` (${t('source_web')})` : ''}` : '—';
  $('ci-waited').textContent = c ? fmtSeconds(c.waited_s) : '—';
}

async function loadCaller(session) {
  // The distributor knows the call a moment after the phone rings: ask a few times.
  for (let i = 0; i < 6 && st.session === session; i += 1) {
    try {
      const res = await call('/api/me/call');
      if (res.call) {
        st.info = res.call;
        st.callId = res.call.call_id;
        $('btn-note').disabled = false;
        $('notes').textContent = '';
        renderCaller(res.call, session);
        return;
      }
    } catch { /* retried */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  renderCaller(null, session);
}

function incoming(session) {
  if (st.session && !st.session.isEnded()) { session.terminate({ status_code: 486 }); return; }
  st.session = session;
  st.info = null;
  clearCaller();
  const from = session.remote_identity;
  $('ring-from').textContent = `${from.display_name || ''} ${from.uri.user}`.trim();
  show($('ringing'));
  $('call-state').textContent = t('incoming');
  loadCaller(session);
  attachRemote(session, $('remote'));
  session.on('accepted', () => {
    show($('ringing'), false);
    show($('btn-hangup'));
    $('call-state').textContent = t('st_connected');
    timer();
  });
  const end = (e) => {
    if (st.session !== session) return;
    show($('ringing'), false);
    show($('btn-hangup'), false);
    clearInterval(st.timer);
    st.timer = null;
    stopMedia(st.stream);
    st.stream = null;
    $('local').srcObject = null;
    $('remote').srcObject = null;
    const why = e.originator === 'local' ? null : explainEnd(e.cause);
    $('call-state').textContent = why || t('st_ended');
    refreshAgent();
  };
  session.on('ended', end);
  session.on('failed', end);
}

async function answer() {
  const session = st.session;
  if (!session || session.isEnded()) return;
  try {
    st.stream = await openMedia();
  } catch (e) {
    err('desk-error', explainMedia(e));
    return;
  }
  $('local').srcObject = st.stream;
  session.answer({ mediaStream: st.stream, pcConfig: PC_CONFIG });
}

function timer() {
  const t0 = Date.now();
  show($('call-timer'));
  const tick = () => {
    const s = Math.floor((Date.now() - t0) / 1000);
    $('call-timer').textContent = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  tick();
  st.timer = setInterval(tick, 1000);
}

async function saveNote() {
  const text = $('note').value.trim();
  if (!text || !st.callId) return;
  try {
    const res = await call(`/api/me/calls/${encodeURIComponent(st.callId)}/notes`, { method: 'POST', body: { text } });
    $('notes').textContent = res.notes;
    $('note').value = '';
    show($('note-saved'));
    setTimeout(() => show($('note-saved'), false), 2000);
  } catch (e) {
    err('desk-error', apiErr(e));
  }
}

i18n.onChange(() => {
  if (st.agent !== undefined) renderAgent(st.agent);
  if (st.queues) renderQueues(st.queues);
  if ($('sip').dataset.key) sipPill($('sip').dataset.key);
  if (st.session && st.info) renderCaller(st.info, st.session);
});

document.addEventListener('DOMContentLoaded', () => {
  i18n.apply();
  $('lang').addEventListener('click', () => i18n.toggle());
  $('login-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('btn-login').addEventListener('click', () => agentOp('login'));
  $('btn-logout').addEventListener('click', () => agentOp('logout'));
  $('btn-available').addEventListener('click', () => agentOp('unpause'));
  $('btn-pause').addEventListener('click', () => agentOp('pause', { reason: $('pause-reason').value }));
  $('btn-wrapup').addEventListener('click', () => agentOp('wrapup-done'));
  $('btn-answer').addEventListener('click', answer);
  $('btn-decline').addEventListener('click', () => st.session && st.session.terminate({ status_code: 486 }));
  $('btn-hangup').addEventListener('click', () => st.session && !st.session.isEnded() && st.session.terminate());
  $('btn-note').addEventListener('click', saveNote);
  window.addEventListener('pagehide', () => { if (st.ua) st.ua.stop(); });
  st.token = sessionStorage.getItem(TOKEN);
  if (st.token) start(); else show($('login'));
});

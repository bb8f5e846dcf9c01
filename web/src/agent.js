// The agent console (坐席工作台): sign in, agent state, a built-in WebRTC video softphone registered as the
// agent's own extension, the caller's details and chosen service, call notes, transfer (blind or attended, to
// a queue, an agent or an extension), inviting a third party (a lawyer) into the call, and live queue numbers.
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
  parties: new Map(), pending: [], partyPoll: null, transferred: null,
};
const PARTY_POLL_MS = 1500; // no party events on /api/me/events: the call's bridge is asked instead
const PENDING_MS = 35000; // the invitation rings for 30 s (Originate Timeout)

window.huiyan = {
  pc: () => (st.session ? st.session.connection : null),
  stats: () => mediaStats(st.session ? st.session.connection : null),
  state: () => (st.session ? (st.session.isEnded() ? 'ended' : st.session.isEstablished() ? 'established' : 'ringing') : 'idle'),
  registered: () => !!(st.ua && st.ua.isRegistered()),
  callId: () => st.callId,
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
        callTools();
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
  st.callId = null;
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
    callTools();
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
    $('call-state').textContent = st.transferred ? t('transferred_to', { to: st.transferred })
      : why || t('st_ended');
    st.transferred = null;
    endCallTools();
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

// ---- transfer and third parties -------------------------------------------------------------------
const EXT = /^8[0-9]{4}$/;
const TARGETS = { ext: EXT, sip: /^sips?:[A-Za-z0-9._~%+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, phone: /^\+?[0-9]{3,20}$/ };
const connected = () => !!(st.session && st.session.isEstablished() && !st.session.isEnded() && st.callId);

function callTools() {
  const on = connected();
  show($('call-tools'), on);
  if (on && !st.partyPoll) {
    st.partyPoll = setInterval(pollParties, PARTY_POLL_MS);
    pollParties();
  }
}

function endCallTools() {
  clearInterval(st.partyPoll);
  st.partyPoll = null;
  st.parties.clear();
  st.pending = [];
  renderParties();
  show($('call-tools'), false);
  err('call-error', '');
  for (const d of ['dlg-transfer', 'dlg-invite']) if ($(d).open) $(d).close();
}

/** A control failure in plain words: what went wrong, then the server's own reason. */
function controlErr(e) {
  if (e.status === 0) return t('err_network');
  if (e.status === 404) return t('err_ctl_404', { detail: e.message });
  if (e.status === 409) return t('err_ctl_409');
  if (e.status === 403) return t('err_ctl_403');
  if (e.status === 503) return t('err_ctl_503');
  return t('err_ctl', { detail: e.message });
}

function partyName(channel) {
  const m = /^PJSIP\/([^-]+)-/.exec(channel);
  return (m && m[1] !== 'anonymous' && m[1]) || channel;
}

function renderParties() {
  const list = $('parties');
  list.replaceChildren();
  for (const [channel, p] of st.parties) {
    const li = document.createElement('li');
    li.dataset.channel = channel;
    li.dataset.state = p.removing ? 'removing' : 'joined';
    const who = document.createElement('strong');
    who.textContent = p.label;
    const what = document.createElement('span');
    what.className = 'muted';
    what.textContent = t(p.removing ? 'party_removing' : 'party_joined');
    const rm = document.createElement('button');
    rm.type = 'button';
    rm.className = 'danger';
    rm.textContent = t('party_remove');
    rm.disabled = !!p.removing;
    rm.addEventListener('click', () => removeParty(channel));
    li.append(who, what, rm);
    list.append(li);
  }
  for (const p of st.pending) {
    const li = document.createElement('li');
    li.dataset.state = p.failed ? 'failed' : 'dialling';
    const who = document.createElement('strong');
    who.textContent = p.target;
    const what = document.createElement('span');
    what.className = 'muted';
    what.textContent = t(p.failed ? 'party_failed' : 'party_dialling');
    li.append(who, what);
    list.append(li);
  }
  show($('parties-box'), st.parties.size > 0 || st.pending.length > 0);
}

async function pollParties() {
  const callId = st.callId;
  if (!connected()) return;
  let res;
  try {
    res = await call(`/api/hotline/calls/${encodeURIComponent(callId)}/parties`);
  } catch (e) {
    if (e.status !== 404 && e.status !== 409) err('call-error', controlErr(e));
    return;
  }
  if (callId !== st.callId) return;
  const now = (res.parties || []).filter((c) => c !== res.caller && c !== res.agent);
  for (const c of [...st.parties.keys()]) if (!now.includes(c)) st.parties.delete(c);
  for (const c of now) {
    if (st.parties.has(c)) continue;
    // A new channel in the bridge is the invitation that was answered: its own number if it shows one.
    const name = partyName(c);
    let i = st.pending.findIndex((p) => p.target === name);
    if (i < 0) i = st.pending.findIndex((p) => !p.failed);
    const label = i >= 0 && name === c ? st.pending[i].target : name;
    if (i >= 0) st.pending.splice(i, 1);
    st.parties.set(c, { label, removing: false });
  }
  const t0 = Date.now();
  for (const p of st.pending) if (!p.failed && t0 - p.since > PENDING_MS) { p.failed = true; p.since = t0; }
  st.pending = st.pending.filter((p) => !p.failed || t0 - p.since < 8000);
  renderParties();
}

async function removeParty(channel) {
  const p = st.parties.get(channel);
  if (!p || !st.callId) return;
  p.removing = true;
  renderParties();
  try {
    const path = channel.split('/').map(encodeURIComponent).join('/');
    await call(`/api/hotline/calls/${encodeURIComponent(st.callId)}/parties/${path}`, { method: 'DELETE' });
    err('call-error', '');
  } catch (e) {
    p.removing = false;
    renderParties();
    err('call-error', controlErr(e));
  }
}

function openInvite() {
  if (!connected()) return;
  err('inv-error', '');
  $('inv-target').value = '';
  inviteType();
  $('dlg-invite').showModal();
  $('inv-target').focus();
}

function inviteType() {
  const kind = $('inv-type').value;
  $('inv-target').dataset.i18nPlaceholder = `inv_${kind}_ph`;
  $('inv-target').placeholder = t(`inv_${kind}_ph`);
  $('inv-target').inputMode = kind === 'sip' ? 'email' : 'tel';
}

async function invite(ev) {
  ev.preventDefault();
  const kind = $('inv-type').value;
  const target = $('inv-target').value.trim();
  if (!TARGETS[kind].test(target)) { err('inv-error', t(`bad_${kind}`)); return; }
  if (!connected()) { err('inv-error', t('err_ctl_409')); return; }
  $('inv-go').disabled = true;
  try {
    await call(`/api/hotline/calls/${encodeURIComponent(st.callId)}/parties`, { method: 'POST', body: { target } });
    st.pending.push({ target, since: Date.now(), failed: false });
    renderParties();
    $('dlg-invite').close();
  } catch (e) {
    err('inv-error', controlErr(e));
  } finally {
    $('inv-go').disabled = false;
  }
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

async function loadTargets() {
  // Supervisors and admins may read queue and agent lists; an agent gets the queue names from the live
  // numbers (HotlineStats) and transfers to a colleague by extension.
  // (Asked only when allowed: a refused request would show as an error in the browser's console.)
  const canList = st.me.role === 'admin' || st.me.role === 'supervisor';
  const queues = $('tr-queue');
  const prevQ = queues.value;
  queues.replaceChildren();
  let listed = false;
  if (canList) {
    try {
      const page = await call('/api/queues?active=true&limit=500');
      const en = i18n.currentLang() === 'en';
      for (const q of page.items) queues.append(option(String(q.id), en ? q.name_en || q.name : q.name));
      listed = true;
    } catch { /* the live numbers' names below */ }
  }
  if (!listed) {
    const names = (st.queues && st.queues.queue_names) || {};
    for (const [id, name] of Object.entries(names)) queues.append(option(id, name));
  }
  if ([...queues.options].some((o) => o.value === prevQ)) queues.value = prevQ;
  const agents = $('tr-agent');
  agents.replaceChildren();
  if (canList) {
    try {
      for (const a of await call('/api/agents')) {
        if (String(a.id) === String(st.me.id)) continue;
        agents.append(option(String(a.id), `${a.name || a.id} · ${a.extension || ''} · ${t(`s_${a.state}`)}`));
      }
    } catch (e) { err('tr-error', controlErr(e)); }
  }
  $('tr-type').querySelector('option[value=agent]').hidden = !canList;
  if (!canList && $('tr-type').value === 'agent') $('tr-type').value = 'ext';
}

function transferType() {
  const kind = $('tr-type').value;
  show($('tr-queue-row'), kind === 'queue');
  show($('tr-agent-row'), kind === 'agent');
  show($('tr-ext-row'), kind === 'ext');
}

async function openTransfer() {
  if (!connected()) return;
  err('tr-error', '');
  $('tr-ext').value = '';
  await loadTargets();
  transferType();
  $('dlg-transfer').showModal();
}

async function transfer(ev) {
  ev.preventDefault();
  const kind = $('tr-type').value;
  let target;
  let label;
  if (kind === 'queue') {
    const o = $('tr-queue').selectedOptions[0];
    if (!o) { err('tr-error', t('no_queue')); return; }
    target = `queue:${o.value}`;
    label = o.textContent;
  } else if (kind === 'agent') {
    const o = $('tr-agent').selectedOptions[0];
    if (!o) { err('tr-error', t('no_agent')); return; }
    target = `agent:${o.value}`;
    label = o.textContent.split(' · ')[0];
  } else {
    target = $('tr-ext').value.trim();
    if (!EXT.test(target)) { err('tr-error', t('bad_ext')); return; }
    label = target;
  }
  if (!connected()) { err('tr-error', t('err_ctl_409')); return; }
  const how = $('tr-kind').value;
  const session = st.session;
  $('tr-go').disabled = true;
  // Set before asking: Asterisk may end this leg (blind transfer) before the API's answer arrives.
  st.transferred = label;
  clearInterval(st.partyPoll); // the call is leaving this agent: its bridge is no longer ours to ask about
  st.partyPoll = null;
  try {
    await call(`/api/hotline/calls/${encodeURIComponent(st.callId)}/transfer`, { method: 'POST',
      body: { kind: how, target } });
    if ($('dlg-transfer').open) $('dlg-transfer').close();
    show($('call-tools'), false);
    if (st.session === session && !session.isEnded()) {
      $('call-state').textContent = t(how === 'blind' ? 'transferring' : 'consulting', { to: label });
    }
  } catch (e) {
    st.transferred = null;
    if (st.session === session && !session.isEnded()) callTools();
    err('tr-error', controlErr(e));
  } finally {
    $('tr-go').disabled = false;
  }
}

i18n.onChange(() => {
  if (st.agent !== undefined) renderAgent(st.agent);
  renderParties();
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
  $('btn-transfer').addEventListener('click', openTransfer);
  $('btn-invite').addEventListener('click', openInvite);
  $('tr-type').addEventListener('change', transferType);
  $('transfer-form').addEventListener('submit', transfer);
  $('tr-cancel').addEventListener('click', () => $('dlg-transfer').close());
  $('inv-type').addEventListener('change', () => { inviteType(); err('inv-error', ''); });
  $('invite-form').addEventListener('submit', invite);
  $('inv-cancel').addEventListener('click', () => $('dlg-invite').close());
  $('inv-target').addEventListener('input', () => err('inv-error', ''));
  $('tr-ext').addEventListener('input', () => err('tr-error', ''));
  window.addEventListener('pagehide', () => { if (st.ua) st.ua.stop(); });
  st.token = sessionStorage.getItem(TOKEN);
  if (st.token) start(); else show($('login'));
});

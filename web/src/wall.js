// The supervisor wall (班长监控墙): queues, waiting calls, live calls and agents, live over WS /api/events; a
// service-level chart; listen / whisper / barge on any live call through the spy API, which rings this
// page's own softphone (registered as the supervisor): the spy call is answered here automatically.
import * as i18n from './lib/i18n.js';
import { PC_CONFIG, attachRemote } from './lib/phone.js';
import { apiErr, call, clock, el, err, events, session, show, signIn, startPhone } from './lib/session.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);
const now = () => Date.now() / 1000;
const COLORS = ['#0b5cad', '#c62828', '#2e7d32', '#b26a00', '#6a1b9a', '#00838f'];
const CHART_WINDOW_S = 15 * 60;

const st = {
  names: {}, // queue id -> name
  info: {}, // agent id -> {name, extension}
  agents: {}, // agent id -> {state, reason, since (local s), handled, changedAt (ms)}
  stats: null,
  offset: null, // local seconds minus the distributor's clock
  calls: new Map(), // call id -> {id, queue_id, state, caller, position, answered_by, arrived (local s), shownAt}
  samples: [], // [{t, sl: {queue id: 0..1 | null}, target: {queue id: 0..1}}]
  spy: { pending: null, session: null, channel: null, callId: null, agentId: null, mode: null },
  live: false,
};

// Test and support hook.
window.huiyan = {
  registered: () => !!(session.ua && session.ua.isRegistered()),
  spy: () => ({ state: st.spy.session ? (st.spy.session.isEstablished() ? 'established' : 'ringing') : 'idle',
    mode: st.spy.mode, channel: st.spy.channel }),
};

// ---- rendering ----------------------------------------------------------------------------------
const pct = (v) => (v == null ? '—' : `${Math.round(v * 100)}%`);
const secs = (v) => (v == null ? '—' : t('seconds', { n: Math.round(v) }));
const agentName = (id) => (st.info[id] && st.info[id].name) || t('agent_n', { id });
const queueName = (id) => st.names[id] || id;

function renderQueues() {
  const body = $('queues');
  body.replaceChildren();
  for (const [id, q] of Object.entries((st.stats && st.stats.queues) || {})) {
    const warn = q.service_level != null && q.service_level < q.sl_target;
    body.append(el('tr', { dataset: { queue: id } },
      el('td', {}, queueName(id)), el('td', { class: q.waiting ? 'hot' : null }, q.waiting), el('td', {}, q.ringing),
      el('td', {}, secs(q.longest_wait)), el('td', {}, q.answered), el('td', {}, q.abandoned),
      el('td', { class: warn ? 'bad' : null }, pct(q.service_level)), el('td', {}, secs(q.average_speed_of_answer)),
      el('td', {}, `${q.agents_available}/${q.agents_logged_in}`)));
  }
}

function renderAgents() {
  const body = $('agents');
  body.replaceChildren();
  const ids = Object.keys({ ...st.info, ...st.agents }).sort((a, b) => a.length - b.length || a.localeCompare(b));
  for (const id of ids) {
    const a = st.agents[id] || { state: 'logged_out', reason: '', since: null, handled: 0 };
    const reason = a.state === 'paused' && a.reason ? ` (${a.reason})` : '';
    body.append(el('tr', { dataset: { agent: id, state: a.state, changedAt: a.changedAt || '' } },
      el('td', {}, agentName(id)), el('td', {}, (st.info[id] && st.info[id].extension) || '—'),
      el('td', {}, el('span', { class: 'state', dataset: { state: a.state } }, t(`s_${a.state}`)), reason),
      el('td', { class: 'tick', dataset: { since: a.since == null ? '' : a.since } }, clock(a.since == null ? null : now() - a.since)),
      el('td', {}, a.handled ?? 0)));
  }
}

function spyButtons(c) {
  const busy = !!(st.spy.session || st.spy.pending);
  return el('div', { class: 'buttons' }, ...['listen', 'whisper', 'barge'].map((mode) => el('button', {
    type: 'button', class: mode === 'barge' ? 'danger small' : 'small', dataset: { spy: mode, call: c.id },
    disabled: busy || null, onclick: () => spy(c, mode) }, t(mode))));
}

function renderCalls() {
  const waiting = [...st.calls.values()].filter((c) => c.state === 'waiting' || c.state === 'offered')
    .sort((a, b) => (a.position || 99) - (b.position || 99) || a.arrived - b.arrived);
  const live = [...st.calls.values()].filter((c) => c.state === 'on_call');
  const wb = $('waiting');
  wb.replaceChildren();
  for (const c of waiting) {
    if (!c.shownAt) c.shownAt = Date.now();
    wb.append(el('tr', { dataset: { call: c.id, state: c.state, shownAt: c.shownAt } },
      el('td', {}, c.state === 'waiting' ? (c.position ?? '—') : '—'), el('td', {}, c.caller || '…'),
      el('td', {}, queueName(c.queue_id)),
      el('td', { class: 'tick', dataset: { since: c.arrived ?? '' } }, clock(c.arrived == null ? null : now() - c.arrived)),
      el('td', {}, c.state === 'offered' ? t('s_offered') : t('c_waiting'))));
  }
  $('waiting-count').textContent = String(waiting.length);
  show($('waiting-empty'), !waiting.length);
  const lb = $('calls');
  lb.replaceChildren();
  for (const c of live) {
    const a = st.agents[c.answered_by];
    const since = a && a.state === 'on_call' ? a.since : null;
    lb.append(el('tr', { dataset: { call: c.id, agent: c.answered_by || '' } },
      el('td', {}, c.caller || '…'), el('td', {}, c.answered_by ? agentName(c.answered_by) : '—'),
      el('td', {}, queueName(c.queue_id)),
      el('td', { class: 'tick', dataset: { since: since ?? '' } }, clock(since == null ? null : now() - since)),
      el('td', {}, spyButtons(c))));
  }
  show($('calls-empty'), !live.length);
}

function renderChart() {
  const svg = $('sl-chart');
  const W = 600; const H = 220; const L = 40; const R = 10; const T = 10; const B = 24;
  const ns = 'http://www.w3.org/2000/svg';
  const node = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    return e;
  };
  svg.replaceChildren(node('title', { id: 'sl-chart-title' }, t('sl_chart')));
  const y = (v) => T + (1 - v) * (H - T - B);
  for (const v of [0, 0.5, 1]) {
    svg.append(node('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(node('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, `${v * 100}%`));
  }
  const end = now();
  const start = end - CHART_WINDOW_S;
  const x = (ts) => L + ((ts - start) / CHART_WINDOW_S) * (W - L - R);
  svg.append(node('text', { x: L, y: H - 6, class: 'axis' }, t('chart_ago', { m: CHART_WINDOW_S / 60 })));
  svg.append(node('text', { x: W - R, y: H - 6, 'text-anchor': 'end', class: 'axis' }, t('chart_now')));
  const legend = $('sl-legend');
  legend.replaceChildren();
  const ids = Object.keys((st.stats && st.stats.queues) || {});
  ids.forEach((id, i) => {
    const color = COLORS[i % COLORS.length];
    const target = st.stats.queues[id].sl_target;
    if (target != null) {
      svg.append(node('line', { x1: L, x2: W - R, y1: y(target), y2: y(target), stroke: color, class: 'target' }));
    }
    // One polyline per run of known values (a gap where the service level was not defined yet).
    let run = [];
    const flush = () => {
      if (run.length === 1) svg.append(node('circle', { cx: run[0][0], cy: run[0][1], r: 3, fill: color }));
      else if (run.length > 1) {
        svg.append(node('polyline', { points: run.map((p) => p.join(',')).join(' '), stroke: color, class: 'series',
          'data-queue': id }));
      }
      run = [];
    };
    for (const s of st.samples) {
      if (s.t < start) continue;
      const v = s.sl[id];
      if (v == null) flush(); else run.push([x(s.t).toFixed(1), y(v).toFixed(1)]);
    }
    flush();
    const cur = st.stats.queues[id].service_level;
    const swatch = el('i');
    swatch.style.background = color; // CSSOM, not a style attribute: the page's CSP allows only our own styles
    legend.append(el('span', { class: 'key', dataset: { queue: id } }, swatch,
      `${queueName(id)} ${pct(cur)}`, target != null ? el('small', {}, ` (${t('target')} ${pct(target)})`) : null));
  });
}

function tick() {
  for (const td of document.querySelectorAll('td.tick[data-since]')) {
    const s = td.dataset.since;
    td.textContent = clock(s === '' ? null : now() - Number(s));
  }
}

function renderAll() { renderQueues(); renderAgents(); renderCalls(); renderChart(); }

// ---- data ---------------------------------------------------------------------------------------
function takeStats(stats) {
  st.stats = stats;
  st.offset = now() - stats.at;
  for (const [id, a] of Object.entries(stats.agents || {})) {
    const prev = st.agents[id];
    const since = now() - a.seconds_in_state;
    st.agents[id] = { state: a.state, reason: a.reason, handled: a.calls_handled,
      since: prev && prev.state === a.state && prev.since != null ? prev.since : since,
      changedAt: prev && prev.state === a.state ? prev.changedAt : Date.now() };
    if (!st.info[id]) loadAgents();
  }
  const sl = {};
  const target = {};
  for (const [id, q] of Object.entries(stats.queues || {})) { sl[id] = q.service_level; target[id] = q.sl_target; }
  st.samples.push({ t: now(), sl, target });
  while (st.samples.length && st.samples[0].t < now() - CHART_WINDOW_S - 60) st.samples.shift();
}

let agentsLoading = null;
function loadAgents() {
  if (agentsLoading) return agentsLoading;
  agentsLoading = call('/api/agents').then((list) => {
    for (const a of list) st.info[a.id] = { name: a.name, extension: a.extension };
    renderAgents();
    renderCalls();
  }).catch((e) => err('board-error', apiErr(e))).finally(() => { setTimeout(() => { agentsLoading = null; }, 2000); });
  return agentsLoading;
}

let liveTimer = null;
function refreshLive() {
  clearTimeout(liveTimer);
  liveTimer = setTimeout(async () => {
    try {
      const list = await call('/api/hotline/live');
      const seen = new Set();
      for (const v of list) {
        seen.add(v.id);
        const old = st.calls.get(v.id) || {};
        st.calls.set(v.id, { ...old, id: v.id, queue_id: v.queue_id, state: v.state, caller: v.caller,
          position: v.position, answered_by: v.answered_by,
          arrived: st.offset != null && v.arrived_at != null ? v.arrived_at + st.offset : old.arrived });
      }
      for (const id of [...st.calls.keys()]) if (!seen.has(id)) st.calls.delete(id);
      renderCalls();
    } catch (e) {
      err('board-error', apiErr(e));
    }
  }, 120);
}

function onEvent(ev) {
  if (ev.type === 'HotlineStats') {
    takeStats(ev.stats);
    renderQueues();
    renderAgents();
    renderChart();
    renderCalls();
  } else if (ev.type === 'HotlineEvent') {
    const d = ev.data || {};
    if (ev.kind === 'AgentStateChanged') {
      const prev = st.agents[d.agent_id] || {};
      st.agents[d.agent_id] = { ...prev, state: d.new, reason: d.reason, since: now(), changedAt: Date.now() };
      if (!st.info[d.agent_id]) loadAgents();
      renderAgents();
      renderCalls();
    } else if (ev.kind === 'CallQueued') {
      // Shown at once from the event; the caller's number and exact place follow from /api/hotline/live.
      const old = st.calls.get(d.call_id) || {};
      st.calls.set(d.call_id, { ...old, id: d.call_id, queue_id: d.queue_id, state: 'waiting', position: d.position,
        arrived: old.arrived ?? now() });
      renderCalls();
      refreshLive();
    } else if (d.call_id) {
      if (['CallAbandoned', 'CallCompleted', 'CallTimedOut', 'CallRefused'].includes(ev.kind)) {
        st.calls.delete(d.call_id);
        renderCalls();
      }
      refreshLive();
    }
  } else if (ev.type === 'ChanSpyStart' || ev.type === 'ChanSpyStop') {
    const f = ev.fields || {};
    if (!(f.SpyerChannel || '').startsWith(`PJSIP/${session.me.extension}-`)) return;
    if (ev.type === 'ChanSpyStart') { st.spy.channel = f.SpyerChannel; renderSpy(); }
    else if (st.spy.channel === f.SpyerChannel) st.spy.channel = null;
  }
}

// ---- listen / whisper / barge -------------------------------------------------------------------
function renderSpy() {
  const s = st.spy;
  show($('spy'), !!(s.session || s.pending));
  $('spy-who').textContent = s.agentId ? agentName(s.agentId) : '';
  $('spy-mode').textContent = s.mode ? t(s.mode) : '';
  $('spy-mode').dataset.mode = s.mode || '';
  for (const b of document.querySelectorAll('[data-spy-switch]')) {
    b.disabled = !(s.session && s.session.isEstablished()) || b.dataset.spySwitch === s.mode;
  }
}

async function spy(c, mode) {
  if (!window.huiyan.registered()) { err('board-error', t('err_phone_offline')); return; }
  err('board-error', '');
  st.spy = { ...st.spy, pending: { until: now() + 40 }, callId: c.id, agentId: c.answered_by, mode };
  renderSpy();
  renderCalls();
  try {
    await call(`/api/hotline/calls/${encodeURIComponent(c.id)}/spy`, { method: 'POST', body: { mode } });
  } catch (e) {
    st.spy.pending = null;
    err('board-error', apiErr(e));
    renderSpy();
    renderCalls();
  }
}

function incoming(s) {
  const p = st.spy.pending;
  const isSpy = (p && now() < p.until) || /^spy /.test(s.remote_identity.display_name || '');
  if (!isSpy || st.spy.session) { s.terminate({ status_code: 486 }); return; }
  st.spy.pending = null;
  st.spy.session = s;
  attachRemote(s, $('spy-audio'));
  const end = () => {
    if (st.spy.session !== s) return;
    st.spy = { pending: null, session: null, channel: null, callId: null, agentId: null, mode: null };
    renderSpy();
    renderCalls();
  };
  s.on('ended', end);
  s.on('failed', end);
  s.on('confirmed', renderSpy);
  // ChanSpy carries audio only: answer with the microphone (heard by the agent when whispering or barging).
  s.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: PC_CONFIG });
  renderSpy();
}

async function switchSpy(mode) {
  const s = st.spy;
  if (!s.session) return;
  try {
    if (s.channel) await call('/api/hotline/spy/switch', { method: 'POST', body: { channel: s.channel, mode } });
    else s.session.sendDTMF({ listen: '4', whisper: '5', barge: '6' }[mode], { transportType: 'RFC2833' });
    s.mode = mode;
    renderSpy();
  } catch (e) {
    err('board-error', apiErr(e));
  }
}

// ---- start --------------------------------------------------------------------------------------
function livePill(on) {
  st.live = on;
  $('live').textContent = t(on ? 'live_on' : 'live_off');
  $('live').dataset.on = on ? '1' : '0';
  show($('live'));
}

async function ready() {
  show($('board'));
  if (!['admin', 'supervisor'].includes(session.me.role)) { err('board-error', t('err_wall_role')); return; }
  try {
    const [queues, stats] = await Promise.all([call('/api/queues?limit=500'), call('/api/hotline/stats')]);
    for (const q of queues.items) st.names[String(q.id)] = q.name;
    takeStats(stats);
  } catch (e) {
    err('board-error', e.status === 403 ? t('err_wall_role') : apiErr(e));
    return;
  }
  await loadAgents();
  renderAll();
  refreshLive();
  events('/api/events', onEvent, { onOpen: () => { livePill(true); refreshLive(); }, onClose: () => livePill(false),
    onDenied: () => err('board-error', t('err_wall_role')) });
  startPhone(incoming);
  setInterval(tick, 1000);
  setInterval(renderChart, 15000);
}

i18n.onChange(() => { if (st.stats) renderAll(); renderSpy(); if ($('live').dataset.on) livePill(st.live); });

document.addEventListener('DOMContentLoaded', () => {
  i18n.apply();
  $('lang').addEventListener('click', () => i18n.toggle());
  for (const b of document.querySelectorAll('[data-spy-switch]')) {
    b.addEventListener('click', () => switchSpy(b.dataset.spySwitch));
  }
  $('spy-hangup').addEventListener('click', () => { if (st.spy.session && !st.spy.session.isEnded()) st.spy.session.terminate(); });
  signIn(ready);
});

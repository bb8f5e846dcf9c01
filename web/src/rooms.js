// The meeting and dispatch console (会议与指挥调度): the rooms; a room's live participants (talking, muted,
// video) from RoomEvents; mute/unmute, kick, lock, presenter, recording, end and invite for the room's chairs;
// a join button (a WebRTC video call to the room's number as the signed-in user); and the dispatch panel:
// one button per dispatch group and the live roll of each dispatch's legs from DispatchEvents.
import * as i18n from './lib/i18n.js';
import { explainMedia, openMedia, stopMedia } from './lib/media.js';
import { PC_CONFIG, explainEnd, mediaStats } from './lib/phone.js';
import { apiErr, call, el, err, events, session, show, signIn, startPhone } from './lib/session.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);
const tt = (key, fallback) => { const s = t(key); return s === key ? fallback : s; }; // a text, or the raw value

const st = {
  rooms: [], liveNumbers: new Set(), sel: null, view: null, chair: false, filter: '',
  join: { session: null, stream: null, roomId: null },
  groups: [], dispatches: new Map(), commander: false, watching: false,
};

// Test and support hook.
window.huiyan = {
  registered: () => !!(session.ua && session.ua.isRegistered()),
  joined: () => {
    const s = st.join.session;
    return s ? (s.isEnded() ? 'ended' : s.isEstablished() ? 'established' : 'calling') : 'idle';
  },
  stats: () => mediaStats(st.join.session ? st.join.session.connection : null),
  view: () => st.view,
};

const roomError = (msg) => err('room-error', msg);
// Who may do what, known up front so the console never asks for what the API would refuse.
const reader = () => ['admin', 'supervisor'].includes(session.me.role);
const chairOf = (room) => reader() || (room.moderator_user_ids || []).includes(session.me.id);

// ---- rooms list ---------------------------------------------------------------------------------
async function loadRooms() {
  try {
    const page = await call('/api/rooms?active=true&limit=500');
    st.rooms = page.items;
  } catch (e) {
    roomError(apiErr(e));
  }
  renderRoomList();
}

function renderRoomList() {
  const ul = $('room-list');
  ul.replaceChildren();
  const f = st.filter.trim().toLowerCase();
  const rooms = st.rooms.filter((r) => !f || r.name.toLowerCase().includes(f) || r.number.includes(f));
  for (const r of rooms) {
    const live = st.liveNumbers.has(r.number);
    ul.append(el('li', {}, el('button', {
      type: 'button', class: `room-item${st.sel && st.sel.id === r.id ? ' on' : ''}`,
      dataset: { room: r.id, number: r.number, live: live ? '1' : '0' }, onclick: () => selectRoom(r.id) },
    el('span', { class: 'dot', dataset: { on: live ? '1' : '0' } }), el('strong', {}, r.name),
    el('span', { class: 'muted' }, ` ${r.number} · ${t(`kind_${r.kind}`)}`))));
  }
  show($('rooms-empty'), !rooms.length);
}

// ---- one room -----------------------------------------------------------------------------------
async function selectRoom(id) {
  const room = st.rooms.find((r) => r.id === id);
  if (!room) return;
  st.sel = room;
  st.view = null;
  roomError('');
  show($('room-none'), false);
  show($('room-body'));
  $('room-name').textContent = room.name;
  $('room-number').textContent = room.number;
  renderRoomList();
  await refreshLive();
}

async function refreshLive() {
  const room = st.sel;
  if (!room) return;
  if (!chairOf(room)) { st.chair = false; st.view = null; renderRoom(); return; }
  try {
    const v = await call(`/api/rooms/${room.id}/live`);
    if (st.sel !== room) return;
    st.chair = true;
    st.view = v;
    if (v.live) st.liveNumbers.add(room.number); else st.liveNumbers.delete(room.number);
  } catch (e) {
    if (st.sel !== room) return;
    if (e.status === 403) { st.chair = false; st.view = null; } else roomError(apiErr(e));
  }
  renderRoom();
  renderRoomList();
}

let liveTimer = null;
function refreshSoon() { clearTimeout(liveTimer); liveTimer = setTimeout(refreshLive, 600); }

function mine(p) { return p.channel && session.me && p.channel.startsWith(`PJSIP/${session.me.extension}-`); }

function act(label, fn) {
  return async () => {
    roomError('');
    try { await fn(); } catch (e) { roomError(`${label}: ${apiErr(e)}`); }
  };
}

function participantRow(p, v) {
  const base = `/api/rooms/${st.sel.id}/participants/${encodeURIComponent(p.id)}`;
  const who = p.name || p.number || p.channel;
  const video = p.video || {};
  const canPresent = v.video_mode !== 'sfu' && video.sends !== false;
  return el('tr', { dataset: { participant: p.id, muted: p.muted ? '1' : '0', talking: p.talking ? '1' : '0' } },
    el('td', {}, el('span', { class: 'dot talk', dataset: { on: p.talking ? '1' : '0' }, title: t('talking') }), ` ${who}`,
      p.number && p.name ? el('span', { class: 'muted' }, ` ${p.number}`) : null,
      mine(p) ? el('span', { class: 'badge' }, t('me')) : null),
    el('td', {}, t(`role_${p.role}`)),
    el('td', { class: 'audio' }, p.muted ? el('span', { class: 'muted-flag' }, t('muted')) : t('unmuted')),
    el('td', {}, video.presenter ? el('span', { class: 'badge' }, t('presenter')) : null,
      ` ${video.sends === false ? t('v_none') : t('v_sends')} · ${tt(`v_recv_${video.receives}`, video.receives)}`),
    el('td', {}, el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'small', dataset: { act: p.muted ? 'unmute' : 'mute' },
        onclick: act(t(p.muted ? 'unmute' : 'mute'), () => call(`${base}/${p.muted ? 'unmute' : 'mute'}`, { method: 'POST' })) },
      t(p.muted ? 'unmute' : 'mute')),
      canPresent && !video.presenter ? el('button', { type: 'button', class: 'small', dataset: { act: 'presenter' },
        onclick: act(t('make_presenter'), () => call(`/api/rooms/${st.sel.id}/presenter`, { method: 'PUT', body: { participant: p.id } })) },
      t('make_presenter')) : null,
      el('button', { type: 'button', class: 'small danger', dataset: { act: 'kick' },
        onclick: act(t('kick'), () => call(base, { method: 'DELETE' })) }, t('kick')))));
}

function renderRoom() {
  const v = st.view;
  const room = st.sel;
  if (!room) return;
  show($('chair'), st.chair && !!v);
  const notChair = !st.chair;
  show($('not-chair'), notChair);
  $('not-chair').textContent = notChair ? t('not_chair') : '';
  const s = st.join.session;
  const inIt = !!(s && s.isEstablished() && st.join.roomId === room.id);
  const live = v ? v.live : (st.liveNumbers.has(room.number) || inIt);
  $('p-live').textContent = t(live ? 'r_live' : 'r_not_live');
  $('p-live').dataset.on = live ? '1' : '0';
  show($('p-locked'), !!(v && v.locked));
  show($('p-rec'), !!(v && v.recording));
  $('p-mode').textContent = t(`mode_${(v && v.video_mode) || room.video_mode}`);
  renderJoin();
  if (!v) return;
  const body = $('participants');
  body.replaceChildren(...v.participants.map((p) => participantRow(p, v)));
  show($('participants-empty'), !v.participants.length);
  show($('btn-lock'), !v.locked);
  show($('btn-unlock'), v.locked);
  show($('btn-rec'), !v.recording);
  show($('btn-rec-stop'), v.recording);
  show($('btn-presenter-off'), !!v.presenter);
  for (const id of ['btn-lock', 'btn-unlock', 'btn-mute-all', 'btn-unmute-all', 'btn-rec', 'btn-rec-stop', 'btn-end']) {
    $(id).disabled = !v.live;
  }
  const inv = $('invitations');
  inv.replaceChildren(...(v.invitations || []).slice(-8).reverse().map((i) => el('li', { dataset: { invitation: i.id, status: i.status } },
    el('span', { class: 'badge', dataset: { status: i.status } }, tt(`inv_${i.status}`, i.status)), ` ${i.name || i.target}`,
    i.reason ? el('span', { class: 'muted' }, ` (${tt(`why_${i.reason}`, i.reason)})`) : null)));
}

// RoomEvents change the view in place at once; a read of /live shortly after keeps it exact.
function applyRoomEvent(ev) {
  const number = ev.number;
  if (['started', 'joined'].includes(ev.kind)) st.liveNumbers.add(number);
  if (ev.kind === 'ended') st.liveNumbers.delete(number);
  if (['started', 'ended'].includes(ev.kind)) renderRoomList();
  if (!st.sel || st.sel.number !== number) return;
  const v = st.view;
  if (!v) { renderRoom(); return; }
  const d = ev.data || {};
  const find = (id) => v.participants.find((p) => p.id === id);
  switch (ev.kind) {
    case 'started': v.live = true; v.participants = []; break;
    case 'ended': v.live = false; v.participants = []; v.locked = false; v.recording = false; v.presenter = null; break;
    case 'joined': v.participants = [...v.participants.filter((p) => p.id !== d.id), d]; break;
    case 'left': v.participants = v.participants.filter((p) => p.id !== d.id); break;
    case 'talking': { const p = find(d.id); if (p) p.talking = d.talking; break; }
    case 'muted': case 'unmuted': { const p = find(d.id); if (p) p.muted = ev.kind === 'muted'; break; }
    case 'locked': case 'unlocked': v.locked = ev.kind === 'locked'; break;
    case 'presenter':
      v.presenter = d.id;
      for (const p of v.participants) p.video = { ...(p.video || {}), presenter: p.id === d.id };
      break;
    case 'recording_started': case 'recording_stopped': v.recording = ev.kind === 'recording_started'; break;
    case 'invitation':
      v.invitations = [...(v.invitations || []).filter((i) => i.id !== d.id), d];
      break;
    default: break;
  }
  renderRoom();
  if (ev.kind !== 'talking') refreshSoon();
}

// ---- joining from the browser -------------------------------------------------------------------
function renderJoin() {
  const s = st.join.session;
  const inThis = s && !s.isEnded() && st.sel && st.join.roomId === st.sel.id;
  show($('btn-join'), !inThis);
  $('btn-join').disabled = !!(s && !s.isEnded());
  show($('btn-leave'), !!inThis);
  show($('stage'), !!inThis);
}

function addTile(track, stream) {
  const stage = $('stage');
  if (track.kind === 'audio') {
    const a = el('audio', { autoplay: true, dataset: { track: track.id } });
    a.srcObject = stream;
    stage.append(a);
    a.play().catch(() => {});
    return;
  }
  const v = el('video', { autoplay: true, playsinline: true, muted: true, dataset: { track: track.id } });
  v.muted = true; // the sound comes from the audio element
  v.srcObject = stream;
  const fig = el('figure', { class: 'tile remote', dataset: { track: track.id } }, v);
  stage.append(fig);
  v.play().catch(() => {});
  track.addEventListener('ended', () => fig.remove());
}

async function join() {
  const room = st.sel;
  if (!room || (st.join.session && !st.join.session.isEnded())) return;
  if (!window.huiyan.registered()) { roomError(t('err_phone_offline')); return; }
  roomError('');
  $('btn-join').disabled = true;
  $('join-state').textContent = t('st_media');
  let stream;
  try {
    stream = await openMedia();
  } catch (e) {
    $('btn-join').disabled = false;
    $('join-state').textContent = '';
    roomError(explainMedia(e));
    return;
  }
  for (const x of $('stage').querySelectorAll('.remote, audio')) x.remove();
  $('local').srcObject = stream;
  $('join-state').textContent = t('st_connecting');
  const s = session.ua.call(`sip:${room.number}@${session.sip.domain}`, {
    mediaStream: stream, pcConfig: PC_CONFIG,
    rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: true },
  });
  st.join = { session: s, stream, roomId: room.id };
  const watch = (pc) => pc.addEventListener('track', (ev) => addTile(ev.track, ev.streams[0] || new MediaStream([ev.track])));
  if (s.connection) watch(s.connection); else s.on('peerconnection', (e) => watch(e.peerconnection));
  s.on('confirmed', () => { $('join-state').textContent = t('in_meeting'); renderRoom(); });
  const end = (e) => {
    if (st.join.session !== s) return;
    stopMedia(stream);
    $('local').srcObject = null;
    for (const x of $('stage').querySelectorAll('.remote, audio')) x.remove();
    const why = e.originator === 'local' ? null : explainEnd(e.cause);
    $('join-state').textContent = why || t('left_meeting');
    renderRoom();
  };
  s.on('ended', end);
  s.on('failed', end);
  renderJoin();
}

function leave() { const s = st.join.session; if (s && !s.isEnded()) s.terminate(); }

// ---- dispatch -----------------------------------------------------------------------------------
async function loadDispatch() {
  if (!reader()) { st.commander = false; renderDispatch(); return; }
  try {
    const [groups, active] = await Promise.all([call('/api/dispatch/groups?limit=500'),
      call('/api/dispatch?status=active&limit=20')]);
    st.commander = true;
    st.groups = groups.items;
    for (const d of active.items) await loadOneDispatch(d.id);
  } catch (e) {
    st.commander = false;
    if (e.status !== 403) roomError(apiErr(e));
  }
  renderDispatch();
}

async function loadOneDispatch(id) {
  try { st.dispatches.set(id, await call(`/api/dispatch/${id}`)); } catch { /* ended and pruned meanwhile */ }
}

async function dispatchGroup(group, button) {
  button.disabled = true;
  roomError('');
  try {
    const d = await call(`/api/dispatch/groups/${group.id}/dispatch`, { method: 'POST', body: {} });
    st.dispatches.set(d.id, d);
    renderDispatch();
    await loadRooms();
    selectRoom(d.room_id);
  } catch (e) {
    roomError(`${group.name}: ${apiErr(e)}`);
  } finally {
    button.disabled = false;
  }
}

function renderDispatch() {
  show($('dispatch'), st.commander);
  if (!st.commander) return;
  $('groups').replaceChildren(...st.groups.map((g) => {
    const b = el('button', { type: 'button', class: 'primary dispatch-btn', dataset: { group: g.id } },
      el('strong', {}, g.name), el('small', {}, t(`gkind_${g.kind}`)));
    b.addEventListener('click', () => dispatchGroup(g, b));
    return b;
  }));
  show($('groups-empty'), !st.groups.length);
  const list = [...st.dispatches.values()].sort((a, b) => b.id - a.id).slice(0, 5);
  $('dispatches').replaceChildren(...list.map((d) => {
    const counts = {};
    for (const leg of d.legs || []) counts[leg.status] = (counts[leg.status] || 0) + 1;
    const summary = Object.entries(counts).map(([k, n]) => `${tt(`leg_${k}`, k)} ${n}`).join(' · ');
    return el('div', { class: 'roll', dataset: { dispatch: d.id, status: d.status } },
      el('div', { class: 'roll-head' },
        el('button', { type: 'button', class: 'link-dark', onclick: async () => { await loadRooms(); selectRoom(d.room_id); } },
          `${d.name} · ${d.room_number}`),
        el('span', { class: 'badge', dataset: { status: d.status } }, t(`d_${d.status}`)),
        d.status === 'active' ? el('button', { type: 'button', class: 'small danger', dataset: { act: 'end-dispatch' },
          onclick: act(t('end_dispatch'), async () => { st.dispatches.set(d.id, await call(`/api/dispatch/${d.id}/end`, { method: 'POST' })); renderDispatch(); }) },
        t('end_dispatch')) : null),
      el('p', { class: 'muted small' }, summary || '—'),
      el('table', { class: 'legs' }, el('tbody', {}, ...(d.legs || []).map((leg) => el('tr', { dataset: { leg: leg.id, status: leg.status, target: leg.target } },
        el('td', {}, leg.name || leg.target, leg.name ? el('span', { class: 'muted' }, ` ${leg.target}`) : null), el('td', {}, el('span', { class: 'badge', dataset: { status: leg.status } }, tt(`leg_${leg.status}`, leg.status))),
        el('td', { class: 'muted' }, leg.attempts > 1 ? t('attempts', { n: leg.attempts }) : ''))))));
  }));
}

function applyDispatchEvent(ev) {
  const d = st.dispatches.get(ev.dispatch_id);
  if (ev.kind === 'leg' && d) {
    d.legs = [...(d.legs || []).filter((l) => l.id !== ev.data.id), ev.data].sort((a, b) => a.id - b.id);
  } else if (ev.kind === 'ended' && d) {
    d.status = 'ended';
  } else if (!d || ev.kind === 'started') {
    loadOneDispatch(ev.dispatch_id).then(renderDispatch);
    return;
  }
  renderDispatch();
}

// ---- events and start ---------------------------------------------------------------------------
function onEvent(ev) {
  if (ev.type === 'RoomEvent') applyRoomEvent(ev);
  else if (ev.type === 'RoomsChanged') loadRooms();
  else if (ev.type === 'DispatchEvent' && st.commander) applyDispatchEvent(ev);
}

async function ready() {
  show($('console'));
  startPhone((s) => s.terminate({ status_code: 486 })); // invitations ring desk phones, not this console
  await Promise.all([loadRooms(), loadDispatch()]);
  // Admins and supervisors watch every room live; a room's moderator of another role reads /live on a timer.
  if (reader()) {
    events('/api/events', onEvent, { onOpen: () => { st.watching = true; if (st.sel) refreshLive(); } });
  } else {
    setInterval(() => { if (st.sel && st.chair) refreshLive(); }, 3000);
  }
  const want = Number(new URLSearchParams(location.search).get('room'));
  if (want) selectRoom(want);
}

i18n.onChange(() => { renderRoomList(); if (st.sel) renderRoom(); renderDispatch(); });

document.addEventListener('DOMContentLoaded', () => {
  i18n.apply();
  $('lang').addEventListener('click', () => i18n.toggle());
  $('room-search').addEventListener('input', (e) => { st.filter = e.target.value; renderRoomList(); });
  $('btn-join').addEventListener('click', join);
  $('btn-leave').addEventListener('click', leave);
  const r = (path, method = 'POST') => () => call(`/api/rooms/${st.sel.id}${path}`, { method });
  $('btn-lock').addEventListener('click', act(t('lock'), r('/lock')));
  $('btn-unlock').addEventListener('click', act(t('unlock'), r('/unlock')));
  $('btn-mute-all').addEventListener('click', act(t('mute_all'), r('/mute')));
  $('btn-unmute-all').addEventListener('click', act(t('unmute_all'), r('/unmute')));
  $('btn-rec').addEventListener('click', act(t('record'), r('/recording')));
  $('btn-rec-stop').addEventListener('click', act(t('record_stop'), r('/recording', 'DELETE')));
  $('btn-presenter-off').addEventListener('click', act(t('presenter_off'), r('/presenter', 'DELETE')));
  $('btn-end').addEventListener('click', act(t('end_meeting'), r('/end')));
  $('invite-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    act(t('invite'), async () => {
      await call(`/api/rooms/${st.sel.id}/invitations`, { method: 'POST',
        body: { target: $('invite-target').value.trim(), name: $('invite-name').value.trim() } });
      $('invite-target').value = '';
      $('invite-name').value = '';
    })();
  });
  window.addEventListener('pagehide', leave);
  signIn(ready);
});

// The subject's check-in page (社区矫正视频点验), phone-first: subject number + PIN (or a one-time code) →
// the browser's geolocation (a refusal is reported, not hidden) → the recorded video call to the check-in
// number with the liveness digits on screen → snapshots from the camera at random moments → finish → the
// outcome in plain words. The call is placed like the citizen page's (lib/phone.js guestCall).
import { api } from './lib/api.js';
import * as i18n from './lib/i18n.js';
import { explainMedia, openMedia, stopMedia } from './lib/media.js';
import { guestCall, mediaStats } from './lib/phone.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);

const SNAPSHOTS = 3; // stills taken during the call, each at a random moment
const FIRST_SNAP_MS = [1500, 3500]; // after the call is answered
const NEXT_SNAP_MS = [2000, 5000];
const GEO_TIMEOUT_MS = 15000;

const st = {
  ck: null, stream: null, ua: null, session: null, ended: true, timer: null, snapTimer: null, snaps: 0,
  identity: null, location: null, distance: null, recorded: false, result: null, busy: false, phase: 'start',
};

// Test and support hook.
window.huiyan = {
  stats: () => mediaStats(st.session ? st.session.connection : null),
  state: () => {
    if (!st.session) return 'idle';
    return st.session.isEnded() ? 'ended' : st.session.isEstablished() ? 'established' : 'calling';
  },
  phase: () => st.phase,
  snapshots: () => st.snaps,
  checkinId: () => (st.ck ? st.ck.checkin_id : null),
};

function show(el, on = true) { el.hidden = !on; }
function msg(id, text) { $(id).textContent = text || ''; show($(id), !!text); }
function setStatus(main, detail = '') { $('status').textContent = main; $('detail').textContent = detail; }
const rand = ([a, b]) => a + Math.random() * (b - a);
const auth = () => ({ Authorization: `Bearer ${st.ck.token}` });
const session = (path, opts = {}) => api(`/api/checkin/sessions/${st.ck.checkin_id}${path}`,
  { ...opts, token: st.ck.token });

// ---- 1. who: subject number + PIN, or a one-time code ---------------------------------------------
function mode() { return $('mode-code').checked ? 'code' : 'pin'; }

function renderMode() {
  const code = mode() === 'code';
  show($('row-number'), !code);
  show($('row-pin'), !code);
  show($('row-code'), code);
  msg('form-error', '');
}

/** Why the check-in could not start, in plain words (the API's status says which case it is). */
function startError(e, byCode) {
  if (e.status === 0) return t('err_network');
  if (e.status === 401 && byCode) return t('ck_bad_code');
  if (e.status === 401) {
    const m = /(\d+) tries left/.exec(e.message || '');
    return m ? t('ck_bad_pin', { n: m[1] }) : t('ck_bad_pin_plain');
  }
  if (e.status === 423) return t('ck_rejected');
  if (e.status === 404) return t('ck_unknown');
  if (e.status === 409) return t('ck_no_window');
  if (e.status === 422) return t('ck_bad_input', { detail: e.message });
  return t('err_server', { detail: e.message });
}

async function begin(ev) {
  ev.preventDefault();
  if (st.busy) return;
  msg('form-error', '');
  const byCode = mode() === 'code';
  const number = $('number').value.replace(/\s/g, '');
  const pin = $('pin').value.trim();
  const code = $('code').value.replace(/\s/g, '');
  if (byCode && !/^[0-9]{6,12}$/.test(code)) return msg('form-error', t('ck_need_code'));
  if (!byCode && !/^[0-9A-Za-z-]{1,20}$/.test(number)) return msg('form-error', t('ck_need_number'));
  if (!byCode && !pin) return msg('form-error', t('ck_need_pin'));
  st.busy = true;
  $('go').disabled = true;
  try {
    // The camera first: without it there is no check-in, and no attempt should be started for nothing.
    try {
      st.stream = await openMedia();
    } catch (e) {
      return msg('form-error', explainMedia(e));
    }
    try {
      st.ck = await api('/api/checkin/sessions', { method: 'POST',
        body: byCode ? { code } : { subject_number: number, pin } });
    } catch (e) {
      stopMedia(st.stream);
      st.stream = null;
      $('form').dataset.outcome = e.status === 423 ? 'rejected' : '';
      return msg('form-error', startError(e, byCode));
    }
    $('pin').value = '';
    $('code').value = '';
    st.snaps = 0;
    st.identity = st.location = st.distance = null;
    st.recorded = false;
    show($('start'), false);
    show($('incall'));
    $('local').srcObject = st.stream;
    $('digits').textContent = st.ck.challenge.digits.split('').join(' ');
    await locate();
    await dial();
  } finally {
    st.busy = false;
    $('go').disabled = false;
  }
}

// ---- 2. where: the browser's geolocation -----------------------------------------------------------
function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) { reject(Object.assign(new Error('unsupported'), { code: 0 })); return; }
    navigator.geolocation.getCurrentPosition(resolve, reject,
      { enableHighAccuracy: true, timeout: GEO_TIMEOUT_MS, maximumAge: 0 });
  });
}

function renderWhere() {
  if (!st.location) { $('where').textContent = ''; return; }
  $('where').textContent = locationText(st.location, st.distance);
}

async function locate() {
  st.phase = 'locating';
  setStatus(t('ck_locating'));
  msg('loc-error', '');
  let pos;
  try {
    pos = await position();
  } catch (e) {
    const why = { 1: 'denied', 2: 'unavailable', 3: 'timeout' }[e.code] || 'unsupported';
    msg('loc-error', t(`ck_geo_${why}`));
    try {
      const r = await session('/location/refused', { method: 'POST', body: { why } });
      st.location = r.location;
    } catch (err) {
      msg('loc-error', `${t(`ck_geo_${why}`)} ${t('ck_report_failed', { detail: err.message })}`);
    }
    renderWhere();
    return;
  }
  try {
    const r = await session('/location', { method: 'POST', body: {
      latitude: pos.coords.latitude, longitude: pos.coords.longitude,
      accuracy_m: Number.isFinite(pos.coords.accuracy) ? Math.min(pos.coords.accuracy, 100000) : null } });
    st.location = r.location;
    st.distance = r.distance_m;
  } catch (e) {
    msg('loc-error', t('ck_report_failed', { detail: e.status === 0 ? t('err_network') : e.message }));
  }
  renderWhere();
}

// ---- 3. the recorded video call, the challenge, snapshots ---------------------------------------------
function clock() {
  const start = Date.now();
  show($('timer'));
  const tick = () => {
    const s = Math.floor((Date.now() - start) / 1000);
    $('timer').textContent = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  tick();
  st.timer = setInterval(tick, 1000);
}

function callEnded(message) {
  if (st.ended) return;
  st.ended = true;
  clearInterval(st.timer);
  clearTimeout(st.snapTimer);
  st.timer = st.snapTimer = null;
  show($('challenge'), false);
  if (st.ua) { const ua = st.ua; st.ua = null; setTimeout(() => ua.stop(), 500); }
  if (st.phase === 'finishing' || st.phase === 'done') return;
  msg('call-error', message || t('ck_call_ended'));
  show($('redial'));
  setStatus(t('ck_call_over'), t('ck_finish_now'));
  $('done').disabled = false;
}

async function dial() {
  st.phase = 'calling';
  msg('call-error', '');
  show($('redial'), false);
  setStatus(t('st_connecting'));
  let sip;
  try {
    sip = await session('/call', { method: 'POST' });
  } catch (e) {
    msg('call-error', e.status === 0 ? t('err_network') : t('ck_call_unavailable', { detail: e.message }));
    show($('redial'));
    $('done').disabled = false;
    return;
  }
  st.ended = false;
  st.ua = guestCall(sip, st.stream, $('remote'), {
    wanted: () => !st.ended,
    session: (s) => { st.session = s; },
    confirmed: () => {
      st.phase = 'in_call';
      st.recorded = true;
      setStatus(t('ck_in_call'), t('ck_snaps', { n: st.snaps }));
      show($('challenge'));
      clock();
      st.snapTimer = setTimeout(snapLoop, rand(FIRST_SNAP_MS));
    },
    end: callEnded,
  });
}

function still() {
  const video = $('local');
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) return Promise.resolve(null);
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  canvas.getContext('2d').drawImage(video, 0, 0, w, h);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.85));
}

async function snapshot() {
  const blob = await still();
  if (!blob) return false;
  let res;
  try {
    res = await fetch(`/api/checkin/sessions/${st.ck.checkin_id}/snapshots`, {
      method: 'POST', headers: { ...auth(), 'Content-Type': 'image/jpeg', Accept: 'application/json' }, body: blob });
  } catch {
    return false;
  }
  if (!res.ok) return false;
  const body = await res.json();
  st.snaps += 1;
  st.identity = body.checkin_identity;
  if (st.phase === 'in_call') setStatus(t('ck_in_call'), t('ck_snaps', { n: st.snaps }));
  return true;
}

async function snapLoop() {
  if (st.ended || st.phase !== 'in_call') return;
  await snapshot();
  if (st.snaps >= 1) $('done').disabled = false;
  if (st.snaps < SNAPSHOTS && !st.ended) st.snapTimer = setTimeout(snapLoop, rand(NEXT_SNAP_MS));
}

// ---- 4. finish and the outcome ----------------------------------------------------------------------
async function finish() {
  if (!st.ck || st.phase === 'finishing' || st.phase === 'done') return;
  $('done').disabled = true;
  if (st.snaps === 0 && !st.ended) await snapshot(); // at least one still, taken now
  st.phase = 'finishing';
  setStatus(t('ck_finishing'));
  if (st.session && !st.session.isEnded()) st.session.terminate();
  else callEnded(null);
  try {
    st.result = await session('/finish', { method: 'POST' });
  } catch (e) {
    st.phase = 'in_call';
    $('done').disabled = false;
    msg('call-error', e.status === 0 ? t('err_network') : t('err_server', { detail: e.message }));
    return;
  }
  st.phase = 'done';
  stopMedia(st.stream);
  st.stream = null;
  $('local').srcObject = null;
  show($('incall'), false);
  show($('result'));
  renderResult();
}

function locationText(where, distance) {
  if (where === 'outside_area') return t('ck_loc_outside_area', { m: Math.round(distance || 0) });
  return t(`ck_loc_${where || 'none'}`);
}

function renderResult() {
  const r = st.result;
  if (!r) return;
  $('outcome').textContent = t(`ck_out_${r.outcome}`);
  $('outcome').dataset.outcome = r.outcome;
  $('outcome').dataset.passed = r.passed ? '1' : '0';
  $('r-location').textContent = locationText(r.location, st.distance);
  $('r-identity').textContent = t(`ck_id_${r.identity}`);
  $('r-identity').dataset.identity = r.identity;
  $('r-snaps').textContent = t('ck_snaps_n', { n: st.snaps });
  $('r-recording').textContent = t(st.recorded ? 'ck_recorded' : 'ck_not_recorded');
  $('r-reason').textContent = r.passed ? t('ck_passed_note') : t('ck_review_note');
}

function back() {
  st.ck = null;
  st.result = null;
  st.phase = 'start';
  show($('result'), false);
  show($('incall'), false);
  show($('start'));
  msg('loc-error', '');
  msg('call-error', '');
  $('done').disabled = true;
  $('where').textContent = '';
}

i18n.onChange(() => {
  renderResult();
  renderWhere();
});

document.addEventListener('DOMContentLoaded', () => {
  i18n.apply();
  $('lang').addEventListener('click', () => i18n.toggle());
  $('mode-pin').addEventListener('change', renderMode);
  $('mode-code').addEventListener('change', renderMode);
  $('form').addEventListener('submit', begin);
  $('done').addEventListener('click', finish);
  $('redial').addEventListener('click', () => { if (st.ck && st.phase !== 'done') dial(); });
  $('back').addEventListener('click', back);
  window.addEventListener('pagehide', () => { if (st.session && !st.session.isEnded()) st.session.terminate(); });
  const code = new URLSearchParams(location.search).get('code');
  if (code) { $('mode-code').checked = true; $('code').value = code; }
  renderMode();
});

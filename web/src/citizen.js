// The citizen page (市民视频呼叫): choose a service, say who you are, accept the recording notice, and make a
// video call to the hotline as an anonymous WebRTC guest; see your place in line while you wait.
import { api, ApiError } from './lib/api.js';
import * as i18n from './lib/i18n.js';
import { explainMedia, openMedia, stopMedia } from './lib/media.js';
import { guestCall, mediaStats } from './lib/phone.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);

const state = { services: [], ua: null, session: null, stream: null, ticket: null, poll: null, timer: null,
  ended: false, lastStatus: null, entry: null };

// ---- QR entry points (?entry=<slug>): the poster's service preset, with its title and instructions ----
function renderEntry() {
  let box = $('entry');
  const e = state.entry;
  if (!e) { if (box) box.remove(); return; }
  if (!box) {
    box = document.createElement('div');
    box.id = 'entry';
    $('form').before(box);
  }
  const en = i18n.currentLang() === 'en';
  const h = document.createElement('h2');
  h.textContent = e.retired ? '' : (en ? e.title_en : e.title);
  const org = document.createElement('p');
  org.className = 'muted';
  org.textContent = e.organisation ? t('entry_by', { org: en ? e.organisation_en : e.organisation }) : '';
  const lines = e.retired ? [t('entry_retired')] : (en ? e.instructions_en : e.instructions).split('\n');
  const how = lines.map((line) => {
    const p = document.createElement('p');
    p.className = e.retired ? 'error' : 'muted';
    p.textContent = line;
    return p;
  });
  box.replaceChildren(...[h, org, ...how].filter((x) => x.textContent));
}

async function loadEntry() {
  const slug = new URLSearchParams(location.search).get('entry');
  if (!slug) return;
  try {
    state.entry = await api(`/api/public/entries/${encodeURIComponent(slug)}`);
  } catch (e) {
    // A retired or mistyped code still leads to the page: every service stays available.
    state.entry = e.status === 404 ? { retired: true } : null;
  }
  renderEntry();
}

// Test and support hook: the live peer connection and its counters.
window.huiyan = {
  pc: () => (state.session ? state.session.connection : null),
  stats: () => mediaStats(state.session ? state.session.connection : null),
  state: () => (state.session ? (state.session.isEnded() ? 'ended' : state.session.isEstablished() ? 'established' : 'calling') : 'idle'),
};

function show(el, on = true) { el.hidden = !on; }

function formError(msg) { $('form-error').textContent = msg || ''; show($('form-error'), !!msg); }
function callError(msg) { $('call-error').textContent = msg || ''; show($('call-error'), !!msg); }

function setStatus(main, detail = '') { $('status').textContent = main; $('detail').textContent = detail; }

function renderServices() {
  const sel = $('service');
  const params = new URLSearchParams(location.search);
  const preset = state.entry && !state.entry.retired ? state.entry : null;
  const want = preset ? `${preset.number}/${preset.option}`
    : `${params.get('service') || ''}/${params.get('option') || ''}`;
  const prev = sel.value;
  sel.replaceChildren();
  for (const s of state.services) {
    for (const o of s.options) {
      const opt = document.createElement('option');
      opt.value = `${s.number}/${o.digit}`;
      opt.textContent = `${i18n.label(o)} · ${s.number}`;
      sel.append(opt);
    }
  }
  const values = [...sel.options].map((o) => o.value);
  if (values.includes(prev)) sel.value = prev;
  else if (values.includes(want)) sel.value = want;
  else if (params.get('service')) {
    const first = values.find((v) => v.startsWith(`${params.get('service')}/`));
    if (first) sel.value = first;
  }
  const msg = $('services-msg');
  if (!values.length) { msg.dataset.i18n = 'no_services'; msg.textContent = t('no_services'); show(msg); }
  else show(msg, false);
  $('call').disabled = !values.length;
}

async function loadServices() {
  await loadEntry();
  try {
    const res = await api('/api/public/services');
    state.services = res.services;
  } catch (e) {
    formError(e instanceof ApiError && e.status === 0 ? t('err_network') : t('err_server', { detail: e.message }));
    state.services = [];
  }
  renderServices();
}

function clock() {
  const start = Date.now();
  show($('timer'));
  const tick = () => {
    const s = Math.floor((Date.now() - start) / 1000);
    $('timer').textContent = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  };
  tick();
  state.timer = setInterval(tick, 1000);
}

function renderStatus(st) {
  state.lastStatus = st;
  if (!state.session || state.ended) return;
  if (st.state === 'waiting') {
    const parts = [st.ahead > 0 ? t('st_ahead', { n: st.ahead }) : t('st_next')];
    if (st.estimated_wait_s && st.ahead > 0) parts.push(t('st_eta', { m: Math.max(1, Math.round(st.estimated_wait_s / 60)) }));
    setStatus(t('st_waiting'), parts.join(' '));
  } else if (st.state === 'ringing') {
    setStatus(t('st_ringing'));
  } else if (st.state === 'connected') {
    if (!state.timer) clock();
    setStatus(t('st_connected'), `${i18n.label(st)} · ${st.number}`);
  }
}

async function pollTicket() {
  if (!state.ticket || state.ended) return;
  try {
    renderStatus(await api(`/api/public/calls/${encodeURIComponent(state.ticket.token)}`));
  } catch { /* a missed poll is retried at the next tick; the call itself is unaffected */ }
}

function finish(message) {
  if (state.ended) return;
  state.ended = true;
  clearInterval(state.poll);
  clearInterval(state.timer);
  state.poll = state.timer = null;
  stopMedia(state.stream);
  state.stream = null;
  $('local').srcObject = null;
  $('remote').srcObject = null;
  setStatus(t('st_ended'));
  $('incall').classList.add('ended');
  callError(message);
  show($('hangup'), false);
  show($('again'));
  if (state.ua) { const ua = state.ua; state.ua = null; setTimeout(() => ua.stop(), 500); }
}

async function placeCall(ev) {
  ev.preventDefault();
  formError('');
  const [number, option] = ($('service').value || '').split('/');
  const name = $('name').value.trim();
  const phone = $('phone').value.replace(/[\s-]/g, '');
  if (!number) return formError(t('no_services'));
  if (!name) return formError(t('need_name'));
  if (!/^\+?[0-9]{5,20}$/.test(phone)) return formError(t('need_phone'));
  if (!$('consent').checked) return formError(t('need_consent'));
  $('call').disabled = true;
  try {
    state.stream = await openMedia();
  } catch (e) {
    $('call').disabled = false;
    return formError(explainMedia(e));
  }
  try {
    state.ticket = await api('/api/public/calls', {
      method: 'POST', body: { number, option, name, phone, consent: true, lang: i18n.currentLang() } });
  } catch (e) {
    stopMedia(state.stream);
    $('call').disabled = false;
    return formError(e.status === 0 ? t('err_network') : t('err_ticket', { detail: e.message }));
  }
  $('call').disabled = false;
  startCall();
}

function startCall() {
  const sip = state.ticket.sip;
  state.ended = false;
  callError('');
  show($('start'), false);
  $('incall').classList.remove('ended');
  show($('incall'));
  show($('hangup'));
  show($('again'), false);
  show($('timer'), false);
  $('local').srcObject = state.stream;
  setStatus(t('st_connecting'));
  state.ua = guestCall(sip, state.stream, $('remote'), {
    wanted: () => !state.ended,
    session: (session) => { state.session = session; },
    confirmed: (session) => {
      // The hotline answers with its greeting and menu; the option chosen on the page is its digit.
      setTimeout(() => { if (session.isEstablished()) session.sendDTMF(sip.dtmf, { duration: 160 }); }, 800);
      state.poll = setInterval(pollTicket, 1500);
      pollTicket();
    },
    end: finish,
  });
}

function hangup() {
  if (state.session && !state.session.isEnded()) state.session.terminate();
  else finish(null);
}

async function again() {
  show($('incall'), false);
  show($('start'));
  state.session = null;
}

i18n.onChange(() => { renderServices(); renderEntry(); if (state.lastStatus) renderStatus(state.lastStatus); });
document.addEventListener('DOMContentLoaded', () => {
  i18n.apply();
  $('lang').addEventListener('click', () => i18n.toggle());
  $('form').addEventListener('submit', placeCall);
  $('hangup').addEventListener('click', hangup);
  $('again').addEventListener('click', again);
  window.addEventListener('pagehide', () => { if (state.session && !state.session.isEnded()) state.session.terminate(); });
  loadServices();
});

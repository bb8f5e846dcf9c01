// What the staff consoles (wall, rooms) share: signing in (the token is kept for this tab, as the agent
// console does), API calls with it, the event WebSocket with reconnects, and the softphone registered as the
// signed-in user's own extension.
import { api } from './api.js';
import * as i18n from './i18n.js';
import { createUA } from './phone.js';

const { t } = i18n;
const $ = (id) => document.getElementById(id);
const TOKEN = 'huiyan.token';

export const session = { token: null, me: null, sip: null, ua: null };

export function show(el, on = true) { el.hidden = !on; }
export function err(id, msg) { $(id).textContent = msg || ''; show($(id), !!msg); }
export const apiErr = (e) => t('err_api', { detail: e.status === 0 ? t('err_network') : e.message });
export function call(path, opts = {}) { return api(path, { ...opts, token: session.token }); }

/** Wire the page's #login-form; `ready()` runs once signed in (also at once with a token from this tab). */
export function signIn(ready) {
  async function start() {
    try {
      session.me = await call('/api/me');
      session.sip = await call('/api/me/sip');
    } catch (e) {
      sessionStorage.removeItem(TOKEN);
      session.token = null;
      if (e.status !== 401) err('login-error', apiErr(e));
      show($('login'));
      return;
    }
    show($('login'), false);
    $('who').textContent = `${session.me.display_name || session.me.username} · ${session.me.extension}`;
    show($('who'));
    show($('signout'));
    await ready(session);
  }
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err('login-error', '');
    try {
      const res = await api('/api/auth/login', { method: 'POST',
        body: { username: $('username').value.trim(), password: $('password').value } });
      session.token = res.access_token;
      sessionStorage.setItem(TOKEN, session.token);
      await start();
    } catch (e) {
      err('login-error', e.status === 401 ? t('bad_login') : apiErr(e));
    }
  });
  $('signout').addEventListener('click', signOut);
  session.token = sessionStorage.getItem(TOKEN);
  if (session.token) start(); else show($('login'));
}

const closers = [];
export function onSignOut(fn) { closers.push(fn); }

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  for (const fn of closers) { try { fn(); } catch { /* closing anyway */ } }
  if (session.ua) session.ua.stop();
  location.reload();
}

/** WS /api/events (or another event path): `onEvent(ev)` per event; reconnects with backoff; stops for good
 *  on 4401 (signed out) and 4403 (this role may not watch), telling `onDenied(code)`. */
export function events(path, onEvent, { onOpen, onDenied, onClose } = {}) {
  let retry = 1000;
  let ws = null;
  let stopped = false;
  const connect = () => {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${proto}://${location.host}${path}?token=${encodeURIComponent(session.token)}`);
    ws.onopen = () => { retry = 1000; if (onOpen) onOpen(); };
    ws.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { console.warn('event', e); } };
    ws.onclose = (e) => {
      if (stopped) return;
      if (e.code === 4401) { signOut(); return; }
      if (e.code === 4403) { if (onDenied) onDenied(e.code); return; }
      if (onClose) onClose(e.code);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  };
  connect();
  const stop = () => { stopped = true; if (ws) ws.close(); };
  onSignOut(stop);
  return stop;
}

function pill(key) { $('sip').textContent = t(key); $('sip').dataset.key = key; show($('sip')); }

/** The softphone, registered as me; `onIncoming(session)` for calls to me. */
export function startPhone(onIncoming) {
  pill('sip_connecting');
  const ua = createUA({ wsUrl: session.sip.ws_url, uri: session.sip.uri, password: session.sip.password,
    displayName: session.sip.display_name, register: true });
  session.ua = ua;
  ua.on('registered', () => pill('sip_registered'));
  ua.on('unregistered', () => pill('sip_unregistered'));
  ua.on('registrationFailed', () => pill('sip_unregistered'));
  ua.on('disconnected', () => pill('sip_unregistered'));
  ua.on('newRTCSession', (e) => { if (e.originator === 'remote' && onIncoming) onIncoming(e.session); });
  ua.start();
  i18n.onChange(() => { if ($('sip').dataset.key) pill($('sip').dataset.key); });
  window.addEventListener('pagehide', () => ua.stop());
  return ua;
}

/** "mm:ss" (or "h:mm:ss") of a number of seconds. */
export function clock(s) {
  if (s == null || !Number.isFinite(s)) return '—';
  const v = Math.max(0, Math.floor(s));
  const h = Math.floor(v / 3600);
  const mm = String(Math.floor((v % 3600) / 60)).padStart(2, '0');
  const ss = String(v % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A <td>/<span>…: `el('td', {class: 'x', dataset: {a: 1}}, 'text', child)`. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

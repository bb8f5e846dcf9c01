// Recordings (录音录像): search what GET /api/recordings lets the signed-in user see, page through it, play
// one in the page, download it, check its integrity, and (admins) read its access audit.
//
// Playing and downloading: a <video>/<audio> element cannot send the Authorization header, so the page asks
// for a signed share link (POST /api/recordings/{id}/share, the API's own mechanism: HMAC-signed, expiring,
// audited under the user who asked for it) with a short lifetime and plays from it; the link's media route
// serves HTTP Range, so seeking works. No token ever goes into a URL.
import { apiErr, call, el, err, session, show, signIn } from './lib/session.js';
import { initText, shanghaiTime, tr } from './lib/report_text.js';

const $ = (id) => document.getElementById(id);
const LIMIT = 20;
const LINK_TTL_S = 600;
const st = { offset: 0, total: 0, items: [], current: null, links: new Map(), orgs: [] };

window.huiyan = { results: () => st.items.map((r) => r.id), current: () => st.current && st.current.id };

const mmss = (s) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;
const mb = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.ceil(n / 1024)} KB`);
const who = (r) => r.participants.map((p) => p.name || p.number).filter(Boolean).join('、') || '—';

/** `since`/`until` for a local (Asia/Shanghai) date range: [from 00:00, the day after `to` 00:00). */
function dayStart(d) { return `${d}T00:00:00+08:00`; }
function dayAfter(d) {
  const t = new Date(`${d}T00:00:00+08:00`).getTime() + 86400e3;
  return new Date(t).toISOString().replace('.000Z', 'Z');
}

function query() {
  const q = new URLSearchParams({ offset: st.offset, limit: LIMIT });
  const put = (k, v) => { if (v) q.set(k, v); };
  put('session_type', $('f-type').value);
  put('organisation_id', $('f-org').value);
  put('participant', $('f-participant').value.trim());
  put('call_id', $('f-call').value.trim());
  put('case_id', $('f-case').value);
  put('status', $('f-status').value);
  if ($('f-from').value) q.set('since', dayStart($('f-from').value));
  if ($('f-to').value) q.set('until', dayAfter($('f-to').value));
  return q.toString();
}

function renderRows() {
  $('count').textContent = tr('results', { n: st.total });
  show($('empty'), st.items.length === 0);
  $('rows').replaceChildren(...st.items.map((r) => el('tr', { dataset: { id: r.id }, class: st.current && st.current.id === r.id ? 'on' : null },
    el('td', {}, r.id),
    el('td', {}, tr(`st_${r.session_type}`)),
    el('td', {}, shanghaiTime(r.started_at)),
    el('td', { class: 'num' }, mmss(r.duration_s)),
    el('td', { class: 'num' }, mb(r.size_bytes)),
    el('td', {}, who(r)),
    el('td', { dataset: { status: r.status } }, tr(`rs_${r.status}`)),
    el('td', {}, el('div', { class: 'buttons' },
      el('button', { type: 'button', class: 'small primary', dataset: { play: r.id }, disabled: r.status !== 'complete' || null,
        onclick: () => open(r) }, tr('play')),
      el('button', { type: 'button', class: 'small', dataset: { download: r.id }, disabled: r.status !== 'complete' || null,
        onclick: () => download(r) }, tr('download')))))));
  const pages = Math.max(1, Math.ceil(st.total / LIMIT));
  $('page').textContent = tr('page', { p: Math.floor(st.offset / LIMIT) + 1, n: pages });
  $('prev').disabled = st.offset === 0;
  $('next').disabled = st.offset + LIMIT >= st.total;
}

async function search() {
  err('board-error', '');
  try {
    const page = await call(`/api/recordings?${query()}`);
    st.items = page.items;
    st.total = page.total;
    renderRows();
  } catch (e) {
    err('board-error', apiErr(e));
  }
}

/** A share link for `r`, reused while it has more than a minute left. */
async function link(r) {
  const have = st.links.get(r.id);
  if (have && have.expires - Date.now() > 60e3) return have.path;
  const res = await call(`/api/recordings/${r.id}/share`, { method: 'POST', body: { ttl_s: LINK_TTL_S } });
  const path = `/api/recordings/shared/${encodeURIComponent(res.token)}`;
  st.links.set(r.id, { path, expires: new Date(res.expires_at).getTime() });
  return path;
}

function renderDetail() {
  const r = st.current;
  if (!r) return;
  $('d-id').textContent = r.id;
  $('d-what').textContent = `${tr(`st_${r.session_type}`)} · ${shanghaiTime(r.started_at)}`;
  $('d-status').textContent = tr(`rs_${r.status}`);
  $('d-sha').textContent = r.sha256;
  $('d-seq').textContent = r.seq;
  $('d-digest').textContent = r.digest;
  $('d-prev').textContent = r.prev_digest;
  $('d-link').textContent = tr('link_note', { m: LINK_TTL_S / 60 });
}

async function open(r) {
  st.current = r;
  err('d-error', '');
  $('d-verify-result').textContent = '';
  renderDetail();
  renderRows();
  show($('detail'));
  const video = r.container === 'mp4';
  const media = el(video ? 'video' : 'audio', { id: 'player', controls: true, preload: 'auto', playsinline: true });
  media.addEventListener('error', () => {
    err('d-error', tr('media_error', { detail: (media.error && media.error.message) || (media.error && media.error.code) || '' }));
  });
  $('d-player').replaceChildren(media);
  try {
    media.src = await link(r);
    await media.play().catch(() => { /* autoplay refused: the controls are there */ });
  } catch (e) {
    err('d-error', apiErr(e));
  }
  $('detail').scrollIntoView({ block: 'nearest' });
  loadAudit(r);
}

async function download(r) {
  try {
    const a = el('a', { href: `${await link(r)}?download=true`, download: '' });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) {
    err('board-error', apiErr(e));
  }
}

/** Re-hash the file in the browser and compare with the SHA-256 recorded in the evidence chain. */
async function verify() {
  const r = st.current;
  const out = $('d-verify-result');
  out.className = '';
  if (!(window.crypto && crypto.subtle)) { out.textContent = tr('verify_na'); return; }
  out.textContent = tr('verifying');
  try {
    const res = await fetch(await link(r));
    if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
    const hash = await crypto.subtle.digest('SHA-256', await res.arrayBuffer());
    const hex = [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, '0')).join('');
    const ok = hex === r.sha256;
    out.textContent = tr(ok ? 'verify_ok' : 'verify_bad');
    out.className = ok ? 'ok' : 'bad';
    out.dataset.ok = ok ? '1' : '0';
  } catch (e) {
    out.textContent = apiErr(e);
    out.className = 'bad';
  }
  loadAudit(r);
}

async function loadAudit(r) {
  if (session.me.role !== 'admin') return;
  try {
    const page = await call(`/api/recordings/audit?recording_id=${r.id}&limit=20`);
    $('audit').replaceChildren(...page.items.map((a) => el('tr', { dataset: { action: a.action } },
      el('td', {}, shanghaiTime(a.at)), el('td', {}, a.username || a.role || '—'), el('td', {}, a.action),
      el('td', { class: a.allowed ? 'ok' : 'bad' }, `${tr(a.allowed ? 'allowed' : 'denied')} ${a.status_code}`),
      el('td', {}, a.reason || ''))));
    show($('audit-box'));
  } catch { /* the audit is a convenience here; the API refuses non-admins */ }
}

async function loadOrgs() {
  if (session.me.role !== 'admin' && session.me.role !== 'supervisor') return;
  try {
    const page = await call('/api/organisations?limit=500');
    for (const o of page.items) $('f-org').append(el('option', { value: o.id }, o.name));
  } catch { /* the filter stays at "all" */ }
}

initText(() => { renderRows(); renderDetail(); });
signIn(async () => {
  show($('board'));
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); st.offset = 0; search(); });
  $('prev').addEventListener('click', () => { st.offset = Math.max(0, st.offset - LIMIT); search(); });
  $('next').addEventListener('click', () => { st.offset += LIMIT; search(); });
  $('d-close').addEventListener('click', () => {
    const m = $('player');
    if (m) { m.pause(); m.removeAttribute('src'); m.load(); }
    st.current = null;
    show($('detail'), false);
    renderRows();
  });
  $('d-download').addEventListener('click', () => st.current && download(st.current));
  $('d-verify').addEventListener('click', () => st.current && verify());
  const params = new URLSearchParams(location.search);
  if (params.get('call_id')) $('f-call').value = params.get('call_id');
  if (params.get('case_id')) $('f-case').value = params.get('case_id');
  await loadOrgs();
  await search();
});

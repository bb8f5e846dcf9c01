// Reports (统计报表): the 12348 hotline per local day and per organisation (GET /api/reports/hotline, charts
// drawn as inline SVG by lib/charts.js), and the community-correction check-in month per office
// (GET /api/checkin/reports), each with its CSV (and XLSX) export.
import * as charts from './lib/charts.js';
import { apiErr, call, el, err, session, show, signIn } from './lib/session.js';
import { initText, saveAuthed, shanghaiDate, tr } from './lib/report_text.js';

const $ = (id) => document.getElementById(id);
const st = { hotline: null, checkin: null, orgs: [] };

const pct = (v) => (v == null ? '—' : `${Math.round(v * 1000) / 10}%`);
const secs = (v) => (v == null ? '—' : tr('seconds', { n: Math.round(v) }));
const num = (v) => String(Math.round(v));
const short = (d) => d.slice(5); // MM-DD on the axis

window.huiyan = { report: () => st.hotline, checkin: () => st.checkin };

function hotlineQuery() {
  const q = new URLSearchParams({ from: $('from').value, to: $('to').value });
  if ($('org').value) q.set('org_id', $('org').value);
  return q.toString();
}

function drawHotline() {
  const r = st.hotline;
  if (!r) return;
  $('days-note').textContent = tr('days_local', { n: r.short_abandon_s });
  const t = r.total;
  $('summary').replaceChildren(...[
    ['offered', t.offered], ['answered', t.answered], ['abandoned', t.abandoned],
    ['service_level', pct(t.service_level)], ['abandon_rate', pct(t.abandon_rate)],
    ['avg_answer', secs(t.avg_answer_wait_s)], ['short_abandoned', t.short_abandoned],
  ].map(([k, v]) => el('div', { dataset: { figure: k } }, el('dt', {}, tr(k)), el('dd', {}, v))));

  const labels = r.days.map((d) => short(d.date));
  const empty = tr('no_calls');
  const callSeries = charts.bars($('chart-calls'), { labels, series: [
    { key: 'answered', label: tr('answered'), values: r.days.map((d) => d.answered), color: '#2e7d32' },
    { key: 'abandoned', label: tr('abandoned'), values: r.days.map((d) => d.abandoned), color: '#c62828' },
    { key: 'other', label: tr('other'), values: r.days.map((d) => d.other), color: '#b0bac6' },
  ] }, { stacked: true, integer: true, format: num, rotate: labels.length > 10, empty });
  charts.legend($('legend-calls'), callSeries);

  const target = r.sl_target == null ? null : { value: r.sl_target, label: tr('target') };
  const slSeries = charts.lines($('chart-sl'), { labels, series: [
    { key: 'service_level', label: tr('service_level'), values: r.days.map((d) => d.service_level), color: '#0b5cad' },
  ] }, { max: 1, format: pct, target, rotate: labels.length > 10 });
  charts.legend($('legend-sl'), slSeries, target ? [{ label: `${tr('target')} ${pct(target.value)}`, color: '#c62828', dashed: true }] : []);

  const abSeries = charts.lines($('chart-abandon'), { labels, series: [
    { key: 'abandon_rate', label: tr('abandon_rate'), values: r.days.map((d) => d.abandon_rate), color: '#c62828' },
  ] }, { max: 1, format: pct, rotate: labels.length > 10 });
  charts.legend($('legend-abandon'), abSeries);

  const orgLabels = r.organisations.map((o) => o.organisation || tr('unassigned'));
  const orgSeries = charts.bars($('chart-orgs'), { labels: orgLabels, series: [
    { key: 'offered', label: tr('offered'), values: r.organisations.map((o) => o.offered), color: '#0b5cad' },
    { key: 'answered', label: tr('answered'), values: r.organisations.map((o) => o.answered), color: '#2e7d32' },
    { key: 'abandoned', label: tr('abandoned'), values: r.organisations.map((o) => o.abandoned), color: '#c62828' },
  ] }, { integer: true, format: num, rotate: orgLabels.length > 4, empty });
  charts.legend($('legend-orgs'), orgSeries);

  $('days').replaceChildren(...[...r.days, { ...r.total, date: tr('total'), total: true }].map((d) => el('tr',
    { dataset: { date: d.total ? 'total' : d.date } },
    el('td', {}, d.date), el('td', { class: 'num' }, d.offered), el('td', { class: 'num' }, d.answered),
    el('td', { class: 'num' }, d.answered_within_sl), el('td', { class: 'num' }, d.abandoned),
    el('td', { class: 'num' }, d.short_abandoned), el('td', { class: 'num' }, pct(d.service_level)),
    el('td', { class: 'num' }, pct(d.abandon_rate)), el('td', { class: 'num' }, secs(d.avg_wait_s)))));
}

async function loadHotline() {
  err('board-error', '');
  try {
    st.hotline = await call(`/api/reports/hotline?${hotlineQuery()}`);
    drawHotline();
  } catch (e) {
    err('board-error', apiErr(e)); // e.g. 403 for an organisation outside a supervisor's subtree, with the reason
  }
}

function drawCheckin() {
  const r = st.checkin;
  if (!r) return;
  const labels = r.rows.map((x) => x.organisation);
  charts.bars($('chart-completion'), { labels, series: [
    { key: 'completion_rate', label: tr('completion_rate'), values: r.rows.map((x) => x.completion_rate ?? 0), color: '#2e7d32' },
  ] }, { format: pct, rotate: labels.length > 4, empty: tr('no_offices') });
  const missSeries = charts.bars($('chart-misses'), { labels, series: [
    { key: 'misses', label: tr('misses'), values: r.rows.map((x) => x.misses), color: '#b26a00' },
    { key: 'alerts', label: tr('alerts'), values: r.rows.map((x) => x.alerts), color: '#c62828' },
  ] }, { integer: true, format: num, rotate: labels.length > 4, empty: tr('no_offices') });
  charts.legend($('legend-misses'), missSeries);
  $('offices').replaceChildren(...[...r.rows, { ...r.totals, organisation: tr('total'), total: true }].map((x) => el('tr',
    { dataset: { office: x.total ? 'total' : x.organisation_id } },
    el('td', {}, x.organisation), el('td', { class: 'num' }, x.subjects), el('td', { class: 'num' }, x.windows_due),
    el('td', { class: 'num' }, x.windows_passed), el('td', { class: 'num' }, pct(x.completion_rate)),
    el('td', { class: 'num' }, x.rollcalls), el('td', { class: 'num' }, x.misses), el('td', { class: 'num' }, x.alerts),
    el('td', { class: 'num' }, x.alerts_escalated))));
}

function checkinQuery() {
  const q = new URLSearchParams({ month: $('month').value });
  if ($('org').value) q.set('organisation_id', $('org').value);
  return q.toString();
}

async function loadCheckin() {
  err('checkin-error', '');
  try {
    st.checkin = await call(`/api/checkin/reports?${checkinQuery()}`);
    drawCheckin();
  } catch (e) {
    err('checkin-error', apiErr(e));
  }
}

async function save(path, name, box) {
  err(box, '');
  try { await saveAuthed(path, session.token, name); } catch (e) { err(box, apiErr(e)); }
}

async function loadOrgs() {
  try {
    const page = await call('/api/organisations?limit=500');
    st.orgs = page.items || [];
  } catch { st.orgs = []; }
  const sel = $('org');
  for (const o of st.orgs) sel.append(el('option', { value: o.id }, o.name));
}

function redraw() { drawHotline(); drawCheckin(); }

initText(redraw);
signIn(async () => {
  if (session.me.role !== 'admin' && session.me.role !== 'supervisor') {
    err('board-error', tr('err_role'));
    show($('board'));
    return;
  }
  const params = new URLSearchParams(location.search);
  const today = shanghaiDate();
  const back = new Date(Date.now() - 29 * 86400e3);
  $('to').value = params.get('to') || today;
  $('from').value = params.get('from') || shanghaiDate(back);
  $('month').value = params.get('month') || today.slice(0, 7);
  show($('board'));
  await loadOrgs();
  if (params.get('org_id')) $('org').value = params.get('org_id');
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadHotline(); loadCheckin(); });
  $('checkin-filters').addEventListener('submit', (ev) => { ev.preventDefault(); loadCheckin(); });
  $('hotline-csv').addEventListener('click', () => save(`/api/reports/hotline.csv?${hotlineQuery()}`, 'hotline-report.csv', 'board-error'));
  $('checkin-csv').addEventListener('click', () => save(`/api/checkin/reports.csv?${checkinQuery()}`, 'checkin-report.csv', 'checkin-error'));
  $('checkin-xlsx').addEventListener('click', () => save(`/api/checkin/reports.xlsx?${checkinQuery()}`, 'checkin-report.xlsx', 'checkin-error'));
  await Promise.all([loadHotline(), loadCheckin()]);
});

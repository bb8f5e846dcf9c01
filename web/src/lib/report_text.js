// The admin console's recordings and reports pages: their own words (Chinese by default, English by the
// shared switch in lib/i18n.js), the nav bar they share with the directory page, and a download helper.
// Elements carry data-tr="key" (text) or data-tr-placeholder="key"; `applyTr()` runs on every language change.
import * as i18n from './i18n.js';

const TEXT = {
  zh: {
    app_reports: '慧眼 · 统计报表',
    app_recordings: '慧眼 · 录音录像',
    nav_admin: '组织与设备',
    nav_recordings: '录音录像',
    nav_reports: '统计报表',
    nav_agent: '坐席',
    nav_wall: '监控墙',
    nav_rooms: '会议调度',
    from: '开始日期',
    to: '结束日期',
    organisation: '机构',
    all_orgs: '全部机构',
    unassigned: '未归属机构',
    query: '查询',
    export_csv: '导出 CSV',
    export_xlsx: '导出 Excel',
    hotline_report: '12348 热线统计',
    days_local: '按北京时间（Asia/Shanghai）自然日统计；{n} 秒内挂机视为短时放弃，不计入放弃率。',
    calls_per_day: '每日呼入（接通 / 放弃 / 其他）',
    sl_per_day: '每日服务水平',
    abandon_per_day: '每日放弃率',
    per_org: '各机构话务量',
    answered: '接通',
    abandoned: '放弃',
    other: '其他未接',
    offered: '呼入',
    within_sl: '服务水平内接通',
    short_abandoned: '短时放弃',
    service_level: '服务水平',
    abandon_rate: '放弃率',
    avg_wait: '平均等待',
    avg_answer: '平均应答',
    target: '目标',
    date: '日期',
    total: '合计',
    no_calls: '该时段没有来电',
    seconds: '{n} 秒',
    checkin_report: '社区矫正点验月报',
    month: '月份',
    office: '司法所',
    subjects: '矫正对象',
    windows_due: '应点验',
    windows_passed: '已完成',
    completion_rate: '完成率',
    misses: '缺失',
    alerts: '告警',
    escalated: '已上报',
    rollcalls: '点名',
    completion_chart: '各司法所完成率',
    misses_chart: '各司法所缺失与告警',
    no_offices: '该月没有点验数据',
    err_role: '统计报表需要班长或管理员账号。',
    // recordings
    search: '搜索',
    session_type: '业务类型',
    any: '全部',
    st_hotline: '热线',
    st_meeting: '会议',
    st_mediation: '调解',
    st_dispatch: '调度',
    st_education: '教育',
    st_checkin: '点验',
    case_id: '调解案件号',
    call_id: '呼叫 ID',
    participant: '参与人',
    participant_ph: '号码或姓名',
    status: '状态',
    rs_complete: '完整',
    rs_purged: '已清理',
    rs_superseded: '已替换',
    started: '开始时间',
    duration: '时长',
    size: '大小',
    participants: '参与人',
    actions: '操作',
    play: '播放',
    download: '下载',
    details: '详情',
    results: '共 {n} 条',
    no_results: '没有符合条件的录音录像',
    prev: '上一页',
    next: '下一页',
    page: '第 {p} / {n} 页',
    player: '播放',
    close: '关闭',
    integrity: '完整性',
    sha256: 'SHA-256',
    chain: '证据链',
    seq: '链序号',
    digest: '本条摘要',
    prev_digest: '上一条摘要',
    verify_file: '校验文件',
    verifying: '正在下载并计算 SHA-256…',
    verify_ok: '文件 SHA-256 与登记值一致',
    verify_bad: '文件 SHA-256 与登记值不一致！',
    verify_na: '此浏览器无法在本页计算 SHA-256（需要 https）；请用命令 huiyan recordings verify 校验。',
    link_note: '播放和下载使用有效期 {m} 分钟的签名链接（每次使用都记入审计）。',
    audit: '访问审计',
    audit_at: '时间',
    audit_user: '用户',
    audit_action: '操作',
    audit_result: '结果',
    audit_reason: '说明',
    allowed: '允许',
    denied: '拒绝',
    media_error: '无法播放：{detail}',
  },
  en: {
    app_reports: 'huiyan · Reports',
    app_recordings: 'huiyan · Recordings',
    nav_admin: 'Directory',
    nav_recordings: 'Recordings',
    nav_reports: 'Reports',
    nav_agent: 'Agent',
    nav_wall: 'Wall',
    nav_rooms: 'Rooms',
    from: 'From',
    to: 'To',
    organisation: 'Organisation',
    all_orgs: 'All organisations',
    unassigned: 'No organisation',
    query: 'Show',
    export_csv: 'Export CSV',
    export_xlsx: 'Export Excel',
    hotline_report: '12348 hotline',
    days_local: 'Days are local days in Beijing time (Asia/Shanghai); hang-ups within {n} s are short abandons, left out of the abandon rate.',
    calls_per_day: 'Calls per day (answered / abandoned / other)',
    sl_per_day: 'Service level per day',
    abandon_per_day: 'Abandon rate per day',
    per_org: 'Calls per organisation',
    answered: 'Answered',
    abandoned: 'Abandoned',
    other: 'Other unanswered',
    offered: 'Offered',
    within_sl: 'Answered within SL',
    short_abandoned: 'Short abandons',
    service_level: 'Service level',
    abandon_rate: 'Abandon rate',
    avg_wait: 'Avg. wait',
    avg_answer: 'Avg. answer',
    target: 'target',
    date: 'Date',
    total: 'Total',
    no_calls: 'No calls in this period',
    seconds: '{n} s',
    checkin_report: 'Community-correction check-ins per month',
    month: 'Month',
    office: 'Office',
    subjects: 'Subjects',
    windows_due: 'Due',
    windows_passed: 'Passed',
    completion_rate: 'Completion',
    misses: 'Misses',
    alerts: 'Alerts',
    escalated: 'Escalated',
    rollcalls: 'Roll-calls',
    completion_chart: 'Completion rate per office',
    misses_chart: 'Misses and alerts per office',
    no_offices: 'No check-in data for this month',
    err_role: 'Reports need a supervisor or admin account.',
    search: 'Search',
    session_type: 'Type',
    any: 'Any',
    st_hotline: 'Hotline',
    st_meeting: 'Meeting',
    st_mediation: 'Mediation',
    st_dispatch: 'Dispatch',
    st_education: 'Education',
    st_checkin: 'Check-in',
    case_id: 'Case no.',
    call_id: 'Call ID',
    participant: 'Participant',
    participant_ph: 'number or name',
    status: 'Status',
    rs_complete: 'Complete',
    rs_purged: 'Purged',
    rs_superseded: 'Superseded',
    started: 'Started',
    duration: 'Length',
    size: 'Size',
    participants: 'Participants',
    actions: 'Actions',
    play: 'Play',
    download: 'Download',
    details: 'Details',
    results: '{n} found',
    no_results: 'No recording matches',
    prev: 'Previous',
    next: 'Next',
    page: 'Page {p} of {n}',
    player: 'Playing',
    close: 'Close',
    integrity: 'Integrity',
    sha256: 'SHA-256',
    chain: 'Evidence chain',
    seq: 'Chain position',
    digest: 'Row digest',
    prev_digest: 'Previous digest',
    verify_file: 'Verify file',
    verifying: 'Downloading and hashing…',
    verify_ok: 'The file\'s SHA-256 matches the recorded one',
    verify_bad: 'The file\'s SHA-256 does NOT match the recorded one!',
    verify_na: 'This browser cannot hash here (needs https); use `huiyan recordings verify`.',
    link_note: 'Playing and downloading use signed links valid for {m} minutes (each use is audited).',
    audit: 'Access audit',
    audit_at: 'When',
    audit_user: 'User',
    audit_action: 'Action',
    audit_result: 'Result',
    audit_reason: 'Reason',
    allowed: 'allowed',
    denied: 'denied',
    media_error: 'Cannot play: {detail}',
  },
};

export function tr(key, vars = {}) {
  const lang = i18n.currentLang();
  const s = TEXT[lang][key] ?? TEXT.zh[key];
  if (s == null) return i18n.t(key, vars);
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

export function applyTr(root = document) {
  for (const el of root.querySelectorAll('[data-tr]')) el.textContent = tr(el.dataset.tr);
  for (const el of root.querySelectorAll('[data-tr-placeholder]')) el.placeholder = tr(el.dataset.trPlaceholder);
}

/** Wire the language switch (#lang) and translate the page now and on every change. */
export function initText(redraw) {
  i18n.onChange(() => { applyTr(); if (redraw) redraw(); });
  document.getElementById('lang').addEventListener('click', () => i18n.toggle());
  i18n.apply();
}

/** Local date "YYYY-MM-DD" of a Date in Asia/Shanghai (the province's days). */
export function shanghaiDate(d = new Date()) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(d);
}

/** "YYYY-MM-DD HH:mm:ss" in Asia/Shanghai. */
export function shanghaiTime(iso) {
  if (!iso) return '—';
  return new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));
}

/** Fetch `path` with the bearer token and save it under the server's file name (exports need the token,
 *  which a plain <a href> cannot send). */
export async function saveAuthed(path, token, fallbackName) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!res.ok) {
    let detail = `HTTP ${res.status}`;
    try { detail = (await res.json()).detail || detail; } catch { /* not JSON */ }
    throw Object.assign(new Error(typeof detail === 'string' ? detail : JSON.stringify(detail)), { status: res.status });
  }
  const cd = res.headers.get('content-disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = m ? m[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// A tiny i18n table: Chinese by default, English by the switch (or ?lang=en); the choice is remembered.
// Elements carry data-i18n="key" (text), data-i18n-placeholder="key" or data-i18n-title="key".

const TEXT = {
  zh: {
    lang_switch: 'English',
    app_citizen: '12348 法律服务视频热线',
    app_agent: '慧眼 · 坐席工作台',
    tagline: '足不出户，视频连线法律服务人员',
    service: '选择服务',
    name: '您的称呼',
    name_ph: '例如：张先生',
    phone: '联系电话',
    phone_ph: '用于必要时回拨',
    consent: '我已知悉：为保障双方权益，本次通话将全程录音录像。',
    call: '视频呼叫',
    hangup: '挂断',
    call_again: '再次呼叫',
    back: '返回',
    loading_services: '正在加载服务列表…',
    no_services: '暂无可呼叫的服务，请稍后再试或拨打 12348 热线电话。',
    need_name: '请填写您的称呼。',
    need_phone: '请填写正确的联系电话（5–20 位数字）。',
    need_consent: '请先阅读并同意录音录像提示。',
    st_media: '正在打开摄像头和麦克风…',
    st_connecting: '正在连接…',
    st_waiting: '正在排队，请稍候。',
    st_ahead: '您前面还有 {n} 位。',
    st_next: '下一位就是您，请稍候。',
    st_eta: '预计等待约 {m} 分钟。',
    st_ringing: '正在为您接通工作人员…',
    st_connected: '通话中',
    st_ended: '通话已结束，感谢您的来电。',
    me: '我',
    remote: '对方',
    err_camera_denied: '您拒绝了摄像头或麦克风权限。请在浏览器地址栏左侧的权限设置中允许使用摄像头和麦克风，然后再试。',
    err_no_device: '没有找到摄像头或麦克风。请确认设备已连接，或换一台手机/电脑再试。',
    err_device_busy: '摄像头或麦克风正被其他应用占用。请关闭其他视频或录音应用后再试。',
    err_insecure: '浏览器只允许在安全连接（https）下使用摄像头。请使用工作人员提供的正式网址。',
    err_media: '无法打开摄像头或麦克风（{detail}）。',
    err_network: '无法连接到服务器。请检查网络（Wi‑Fi 或移动数据）后再试。',
    err_network_lost: '网络连接中断，通话已结束。请检查网络后再次呼叫。',
    err_busy: '当前线路繁忙，请稍后再试。',
    err_unavailable: '该服务暂时无法接通，请稍后再试或拨打 12348 热线电话。',
    err_failed: '呼叫未能接通（{detail}）。',
    err_server: '服务器暂时无法处理请求（{detail}）。',
    err_ticket: '提交失败：{detail}',
    // agent console
    username: '用户名',
    password: '密码',
    login: '登录',
    logout: '退出',
    bad_login: '用户名或密码错误。',
    sip_registered: '软电话已就绪',
    sip_unregistered: '软电话未连接',
    sip_connecting: '软电话连接中…',
    state: '状态',
    s_logged_out: '未签入',
    s_available: '空闲',
    s_offered: '振铃中',
    s_on_call: '通话中',
    s_wrap_up: '话后整理',
    s_paused: '示忙',
    agent_login: '签入',
    agent_logout: '签出',
    available: '示闲',
    pause: '示忙',
    wrapup_done: '整理完成',
    reason: '示忙原因',
    r_rest: '休息',
    r_training: '培训',
    r_meeting: '会议',
    r_other: '其他',
    incoming: '来电',
    answer: '接听',
    decline: '拒接',
    no_call: '暂无通话',
    caller: '来电人',
    caller_phone: '电话',
    chosen_service: '所选服务',
    waited: '等待时长',
    source_web: '来自网页视频',
    notes: '通话记录',
    notes_ph: '记录咨询要点…',
    save_note: '保存记录',
    note_saved: '已保存',
    queues: '队列实时数据',
    q_name: '队列',
    q_waiting: '排队',
    q_longest: '最长等待',
    q_answered: '已接',
    q_abandoned: '放弃',
    q_sl: '服务水平',
    q_agents: '空闲/签入',
    seconds: '{n} 秒',
    err_api: '操作失败：{detail}',
    err_sip: '软电话连接失败：{detail}',
  },
  en: {
    lang_switch: '中文',
    app_citizen: '12348 Legal Services Video Line',
    app_agent: 'huiyan · Agent console',
    tagline: 'Talk face to face with legal services staff, from wherever you are',
    service: 'Service',
    name: 'Your name',
    name_ph: 'e.g. Ms Zhang',
    phone: 'Phone number',
    phone_ph: 'so we can call you back if needed',
    consent: 'I understand that this call is recorded (audio and video) to protect both parties.',
    call: 'Video call',
    hangup: 'Hang up',
    call_again: 'Call again',
    back: 'Back',
    loading_services: 'Loading services…',
    no_services: 'No service can be called right now. Please try later or dial the 12348 hotline.',
    need_name: 'Please enter your name.',
    need_phone: 'Please enter a valid phone number (5–20 digits).',
    need_consent: 'Please read and accept the recording notice first.',
    st_media: 'Opening camera and microphone…',
    st_connecting: 'Connecting…',
    st_waiting: 'You are in line, please wait.',
    st_ahead: '{n} caller(s) ahead of you.',
    st_next: 'You are next, please hold on.',
    st_eta: 'Estimated wait: about {m} min.',
    st_ringing: 'Connecting you to a staff member…',
    st_connected: 'In call',
    st_ended: 'The call has ended. Thank you for calling.',
    me: 'Me',
    remote: 'Staff',
    err_camera_denied: 'Camera or microphone access was refused. Allow them in the browser\'s site permissions (left of the address bar) and try again.',
    err_no_device: 'No camera or microphone was found. Check that they are connected, or try another phone or computer.',
    err_device_busy: 'The camera or microphone is in use by another app. Close other video or recording apps and try again.',
    err_insecure: 'Browsers allow the camera only on secure (https) pages. Please use the official address you were given.',
    err_media: 'Could not open the camera or microphone ({detail}).',
    err_network: 'Cannot reach the server. Check your network (Wi-Fi or mobile data) and try again.',
    err_network_lost: 'The network connection was lost and the call ended. Check your network and call again.',
    err_busy: 'All lines are busy. Please try again later.',
    err_unavailable: 'This service cannot be reached right now. Please try later or dial the 12348 hotline.',
    err_failed: 'The call could not be connected ({detail}).',
    err_server: 'The server could not handle the request ({detail}).',
    err_ticket: 'Could not start the call: {detail}',
    username: 'Username',
    password: 'Password',
    login: 'Sign in',
    logout: 'Sign out',
    bad_login: 'Wrong username or password.',
    sip_registered: 'Softphone ready',
    sip_unregistered: 'Softphone offline',
    sip_connecting: 'Softphone connecting…',
    state: 'State',
    s_logged_out: 'Logged out',
    s_available: 'Available',
    s_offered: 'Ringing',
    s_on_call: 'On call',
    s_wrap_up: 'Wrap-up',
    s_paused: 'Paused',
    agent_login: 'Log in to queues',
    agent_logout: 'Log out of queues',
    available: 'Available',
    pause: 'Pause',
    wrapup_done: 'Wrap-up done',
    reason: 'Pause reason',
    r_rest: 'Break',
    r_training: 'Training',
    r_meeting: 'Meeting',
    r_other: 'Other',
    incoming: 'Incoming call',
    answer: 'Answer',
    decline: 'Decline',
    no_call: 'No call',
    caller: 'Caller',
    caller_phone: 'Phone',
    chosen_service: 'Service',
    waited: 'Waited',
    source_web: 'from the web video page',
    notes: 'Call notes',
    notes_ph: 'Key points of the consultation…',
    save_note: 'Save note',
    note_saved: 'Saved',
    queues: 'Live queues',
    q_name: 'Queue',
    q_waiting: 'Waiting',
    q_longest: 'Longest wait',
    q_answered: 'Answered',
    q_abandoned: 'Abandoned',
    q_sl: 'Service level',
    q_agents: 'Free/in',
    seconds: '{n} s',
    err_api: 'Failed: {detail}',
    err_sip: 'Softphone could not connect: {detail}',
  },
};

const KEY = 'huiyan.lang';
let lang = (() => {
  const q = new URLSearchParams(location.search).get('lang');
  if (q === 'en' || q === 'zh') return q;
  try { return localStorage.getItem(KEY) === 'en' ? 'en' : 'zh'; } catch { return 'zh'; }
})();

const listeners = [];

export function currentLang() { return lang; }

export function t(key, vars = {}) {
  const s = TEXT[lang][key] ?? TEXT.zh[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

/** A label in the current language from a {label_zh, label_en} pair (the API's bilingual fields). */
export function label(obj) {
  return (lang === 'en' ? obj.label_en || obj.label_zh : obj.label_zh) || '';
}

export function apply(root = document) {
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const fn of listeners) fn(lang);
}

export function onChange(fn) { listeners.push(fn); }

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  try { localStorage.setItem(KEY, lang); } catch { /* private mode: not remembered */ }
  apply();
}

export function toggle() { setLang(lang === 'en' ? 'zh' : 'en'); }

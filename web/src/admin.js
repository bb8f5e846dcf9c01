// The admin console (管理控制台), directory part: the organisation tree, users and roles, devices (live
// online dot and last seen from DevicePresence events, create/edit, bulk CSV import with a per-row error
// report, the seed's allocation plan), queues and their members, rooms. Admins change things; supervisors
// may look. Recordings and reports are pages of their own (linked in the nav bar).
import * as i18n from './lib/i18n.js';
import { apiErr, call, el, err, events, session, show, signIn } from './lib/session.js';

const $ = (id) => document.getElementById(id);

// This page's own words (the shared table in lib/i18n.js holds the ones every console uses).
const TEXT = {
  zh: {
    app_admin: '慧眼 · 管理控制台',
    nav_admin: '管理控制台', nav_recordings: '录音录像', nav_reports: '统计报表', nav_agent: '坐席工作台',
    nav_wall: '班长监控墙', nav_rooms: '会议与调度',
    tab_orgs: '组织机构', tab_users: '用户与角色', tab_devices: '终端设备', tab_queues: '队列', tab_rooms: '会议室',
    read_only: '您以班长身份登录：可以查看，修改需要管理员账号。',
    need_reader: '管理控制台需要管理员或班长账号。',
    expand_all: '全部展开', collapse_all: '全部收起',
    add_child: '新增下级', rename: '重命名', delete: '删除', confirm_delete: '确认删除？',
    new_child_of: '在“{name}”下新增{level}', rename_org: '重命名“{name}”',
    f_name: '名称', f_code: '机构代码', save: '保存', cancel: '取消', create: '创建', edit: '编辑',
    lv_province: '省', lv_city: '市州', lv_county: '县区', lv_office: '司法所',
    err_400: '不符合规则：{detail}', err_404: '已不存在（可能已被他人删除）：{detail}',
    err_409: '无法完成：{detail}', err_422: '请检查填写的内容：{detail}', err_403: '没有权限：{detail}',
    c_username: '用户名', c_display: '姓名', c_role: '角色', c_org: '所属机构', c_status: '状态', c_actions: '操作',
    search_users: '按用户名、姓名或分机查找', all_orgs: '全部机构', no_org: '（无）',
    role_admin: '管理员', role_agent: '坐席', role_supervisor: '班长', role_mediator: '调解员',
    role_officer: '矫正工作人员', role_lawyer: '律师',
    active: '在用', inactive: '已停用', deactivate: '停用', activate: '启用', reset_pw: '重置密码',
    new_pw: '新密码（至少 8 位）', ok: '确定', pw_done: '已为 {user} 重置密码。', new_user: '新建用户',
    user_created: '已创建用户 {user}，分机 {ext}。',
    c_serial: '序列号', c_kind: '类型', c_department: '部门', c_model: '型号', c_last_seen: '最后在线',
    all_states: '全部状态', online: '在线', offline: '离线', search_devices: '按序列号、名称、分机或型号查找',
    kind_terminal: '视频终端', kind_softphone: '软电话', kind_browser: '浏览器席位', kind_kiosk: '自助终端',
    dev_count: '共 {n} 台，在线 {on} 台', live_on: '实时', live_off: '未连接', never: '从未',
    new_device: '新建终端', edit_device: '编辑终端 {serial}',
    device_secret: '终端 {serial}：分机 {ext}，SIP 密码 {pw}（请配置到终端上）',
    import_title: '批量导入（CSV）',
    import_help: '第一行为列名：org_code（机构代码）、kind（terminal / softphone / browser / kiosk）、serial（序列号）、'
      + 'name（名称），可选 department、model、extension。UTF-8 或 GBK（Excel 另存为 CSV）均可。'
      + '只要有一行不对，整个文件都不会导入。',
    import_btn: '导入', pick_file: '请先选择一个 CSV 文件。', uploading: '正在上传… {p}%', checking: '正在校验并导入…',
    imported: '已导入 {n} 台终端。', import_bad: '文件未导入（没有创建任何终端），请修改以下 {n} 处后重试：',
    import_failed: '导入失败：{detail}', c_row: '行', c_column: '列', c_reason: '问题', whole_file: '整个文件',
    plan_title: '设备发放计划', plan_per_org: '各机构', c_level: '层级', c_orgs: '机构数', c_each: '每个计划',
    c_planned: '计划', c_actual: '现有', c_missing: '缺口',
    plan_summary: '全省计划 {planned} 台，现有 {actual} 台，缺口 {missing} 台。',
    q_name: '队列', c_strategy: '分配策略', c_ring: '振铃(秒)', c_wrapup: '整理(秒)', c_members: '成员',
    st_longest_idle: '最长空闲优先', st_fewest_calls: '接听最少优先', st_round_robin: '轮流',
    st_ring_all: '同时振铃', st_skills: '按技能',
    members_of: '“{name}”的成员', add_member: '添加成员', remove: '移除', penalty: '优先级 {n}', show: '查看',
    saved: '已保存。',
    c_number: '号码', c_mode: '视频模式', c_max: '人数上限', new_room: '新建会议室', edit_room: '编辑会议室 {number}',
    auto: '自动分配',
  },
  en: {
    app_admin: 'huiyan · Admin console',
    nav_admin: 'Admin', nav_recordings: 'Recordings', nav_reports: 'Reports', nav_agent: 'Agent console',
    nav_wall: 'Supervisor wall', nav_rooms: 'Meetings & dispatch',
    tab_orgs: 'Organisations', tab_users: 'Users & roles', tab_devices: 'Devices', tab_queues: 'Queues',
    tab_rooms: 'Rooms',
    read_only: 'Signed in as a supervisor: you can look; changes need an admin account.',
    need_reader: 'The admin console needs an admin or supervisor account.',
    expand_all: 'Expand all', collapse_all: 'Collapse all',
    add_child: 'Add below', rename: 'Rename', delete: 'Delete', confirm_delete: 'Really delete?',
    new_child_of: 'New {level} under “{name}”', rename_org: 'Rename “{name}”',
    f_name: 'Name', f_code: 'Code', save: 'Save', cancel: 'Cancel', create: 'Create', edit: 'Edit',
    lv_province: 'province', lv_city: 'city', lv_county: 'county', lv_office: 'judicial office',
    err_400: 'Not allowed: {detail}', err_404: 'No longer there (someone may have deleted it): {detail}',
    err_409: 'Cannot do that: {detail}', err_422: 'Please check what you typed: {detail}',
    err_403: 'Not permitted: {detail}',
    c_username: 'Username', c_display: 'Name', c_role: 'Role', c_org: 'Organisation', c_status: 'Status',
    c_actions: 'Actions',
    search_users: 'Find by username, name or extension', all_orgs: 'All organisations', no_org: '(none)',
    role_admin: 'Admin', role_agent: 'Agent', role_supervisor: 'Supervisor', role_mediator: 'Mediator',
    role_officer: 'Correction officer', role_lawyer: 'Lawyer',
    active: 'Active', inactive: 'Disabled', deactivate: 'Disable', activate: 'Enable', reset_pw: 'Reset password',
    new_pw: 'New password (8+ characters)', ok: 'OK', pw_done: 'Password of {user} reset.', new_user: 'New user',
    user_created: 'User {user} created, extension {ext}.',
    c_serial: 'Serial', c_kind: 'Kind', c_department: 'Department', c_model: 'Model', c_last_seen: 'Last seen',
    all_states: 'Online or not', online: 'Online', offline: 'Offline',
    search_devices: 'Find by serial, name, extension or model',
    kind_terminal: 'Video terminal', kind_softphone: 'Softphone', kind_browser: 'Browser seat', kind_kiosk: 'Kiosk',
    dev_count: '{n} devices, {on} online', live_on: 'Live', live_off: 'Not connected', never: 'never',
    new_device: 'New device', edit_device: 'Edit device {serial}',
    device_secret: 'Device {serial}: extension {ext}, SIP password {pw} (configure the terminal with it)',
    import_title: 'Bulk import (CSV)',
    import_help: 'First row names the columns: org_code, kind (terminal / softphone / browser / kiosk), serial, '
      + 'name; optional department, model, extension. UTF-8 or GBK (Excel "Save as CSV"). '
      + 'If any row is wrong, nothing in the file is imported.',
    import_btn: 'Import', pick_file: 'Choose a CSV file first.', uploading: 'Uploading… {p}%',
    checking: 'Checking and importing…', imported: '{n} devices imported.',
    import_bad: 'Not imported (no device was created). Fix these {n} problem(s) and try again:',
    import_failed: 'Import failed: {detail}', c_row: 'Row', c_column: 'Column', c_reason: 'Problem',
    whole_file: 'whole file',
    plan_title: 'Device allocation plan', plan_per_org: 'Per organisation', c_level: 'Level',
    c_orgs: 'Organisations', c_each: 'Planned each', c_planned: 'Planned', c_actual: 'Existing', c_missing: 'Missing',
    plan_summary: 'Planned {planned}, existing {actual}, missing {missing}.',
    q_name: 'Queue', c_strategy: 'Strategy', c_ring: 'Ring (s)', c_wrapup: 'Wrap-up (s)', c_members: 'Members',
    st_longest_idle: 'Longest idle', st_fewest_calls: 'Fewest calls', st_round_robin: 'Round robin',
    st_ring_all: 'Ring all', st_skills: 'Skills',
    members_of: 'Members of “{name}”', add_member: 'Add member', remove: 'Remove', penalty: 'penalty {n}',
    show: 'Show', saved: 'Saved.',
    c_number: 'Number', c_mode: 'Video mode', c_max: 'Max. participants', new_room: 'New room',
    edit_room: 'Edit room {number}', auto: 'automatic',
  },
};

function a(key, vars = {}) {
  const s = TEXT[i18n.currentLang()][key] ?? TEXT.zh[key];
  if (s == null) return i18n.t(key, vars);
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

function applyText() {
  for (const e of document.querySelectorAll('[data-a]')) e.textContent = a(e.dataset.a);
  for (const e of document.querySelectorAll('[data-a-ph]')) e.placeholder = a(e.dataset.aPh);
  document.title = a('app_admin');
}

/** An API error in plain words: what kind of refusal, then the API's own reason. */
function plain(e) {
  if (e && [400, 403, 404, 409, 422].includes(e.status)) return a(`err_${e.status}`, { detail: e.message });
  return apiErr(e);
}

const LEVELS = ['province', 'city', 'county', 'office'];
const ROLES = ['admin', 'supervisor', 'agent', 'mediator', 'officer', 'lawyer'];
const KINDS = ['terminal', 'softphone', 'browser', 'kiosk'];
const STRATEGIES = ['longest-idle', 'fewest-calls', 'round-robin', 'ring-all', 'skills'];
const ROOM_KINDS = ['meeting', 'mediation', 'dispatch', 'education'];
const MODES = ['follow_talker', 'presenter', 'sfu'];

const st = {
  tab: 'orgs', admin: false,
  orgs: [], orgById: new Map(), expanded: new Set(), armed: null,
  users: [], devices: [], deviceTotal: 0, plan: null, queues: [], members: null, rooms: [],
  live: false,
};

// Test and support hook.
window.huiyan = {
  ready: () => st.orgs.length > 0,
  device: (serial) => st.devices.find((d) => d.serial === serial) || null,
  live: () => st.live,
};

/** Every item of a paged list (the API caps a page at 500). */
async function all(path) {
  const sep = path.includes('?') ? '&' : '?';
  let items = [];
  for (let offset = 0; ; offset += 500) {
    const page = await call(`${path}${sep}limit=500&offset=${offset}`);
    items = items.concat(page.items);
    if (items.length >= page.total || !page.items.length) return items;
  }
}

const orgName = (id) => (id == null ? a('no_org') : (st.orgById.get(id) || { name: `#${id}` }).name);
const locale = () => (i18n.currentLang() === 'en' ? 'en-GB' : 'zh-CN');
const when = (iso) => (iso ? new Date(iso).toLocaleString(locale()) : a('never'));
const opt = (value, text, selected = false) => el('option', { value, selected }, text);

function fillOrgSelect(select, { any = null, none = false } = {}) {
  const keep = select.value;
  select.replaceChildren();
  if (any) select.append(opt('', any));
  if (none) select.append(opt('', a('no_org')));
  for (const o of orderedOrgs()) select.append(opt(String(o.id), `${'\u3000'.repeat(o.depth)}${o.name} (${o.code})`));
  if ([...select.options].some((x) => x.value === keep)) select.value = keep;
}

// ---- 组织机构 the organisation tree ---------------------------------------------------------------
function children(parentId) {
  return st.orgs.filter((o) => o.parent_id === parentId).sort((x, y) => x.code.localeCompare(y.code));
}

function orderedOrgs() {
  const out = [];
  const walk = (parentId, depth) => {
    for (const o of children(parentId)) { out.push({ ...o, depth }); walk(o.id, depth + 1); }
  };
  walk(null, 0);
  // Orphans (a parent we could not read) still show, at the top level.
  for (const o of st.orgs) if (o.parent_id != null && !st.orgById.has(o.parent_id)) out.push({ ...o, depth: 0 });
  return out;
}

async function loadOrgs() {
  try {
    st.orgs = await all('/api/organisations');
  } catch (e) {
    err('org-error', plain(e));
    return;
  }
  st.orgById = new Map(st.orgs.map((o) => [o.id, o]));
  if (!st.expanded.size) for (const o of st.orgs) if (o.level === 'province') st.expanded.add(o.id);
  renderTree();
  for (const id of ['user-org', 'dev-org']) fillOrgSelect($(id), { any: a('all_orgs') });
  fillOrgSelect($('nu-org'), { none: true });
  fillOrgSelect($('df-org'));
}

function renderTree() {
  const build = (parentId) => {
    const ul = el('ul', parentId == null ? { id: 'org-tree', class: 'tree' } : {});
    for (const o of children(parentId)) {
      const kids = children(o.id);
      const open = st.expanded.has(o.id);
      const below = LEVELS[LEVELS.indexOf(o.level) + 1];
      const armed = st.armed === o.id;
      const li = el('li', { dataset: { org: o.id, code: o.code } },
        el('div', { class: 'node' },
          el('button', { type: 'button', class: 'toggle', disabled: !kids.length, 'aria-expanded': String(open),
            onclick: () => { if (open) st.expanded.delete(o.id); else st.expanded.add(o.id); renderTree(); } },
          kids.length ? (open ? '▾' : '▸') : '·'),
          el('strong', { class: 'org-name' }, o.name), el('span', { class: 'muted small' }, o.code),
          el('span', { class: 'badge' }, a(`lv_${o.level}`)),
          st.admin && el('span', { class: 'acts' },
            below && el('button', { type: 'button', class: 'add-child', onclick: () => orgForm('create', o) },
              a('add_child')),
            el('button', { type: 'button', class: 'rename', onclick: () => orgForm('rename', o) }, a('rename')),
            el('button', { type: 'button', class: armed ? 'delete danger' : 'delete',
              onclick: () => deleteOrg(o) }, armed ? a('confirm_delete') : a('delete')))));
      if (kids.length && open) li.append(build(o.id));
      ul.append(li);
    }
    return ul;
  };
  $('org-tree').replaceWith(build(null));
}

function orgForm(mode, org) {
  err('org-error', '');
  st.armed = null;
  $('org-form-mode').value = mode;
  $('org-form-id').value = String(org.id);
  const below = LEVELS[LEVELS.indexOf(org.level) + 1];
  $('org-form-title').textContent = mode === 'create'
    ? a('new_child_of', { name: org.name, level: a(`lv_${below}`) }) : a('rename_org', { name: org.name });
  $('org-name').value = mode === 'create' ? '' : org.name;
  $('org-code').value = '';
  $('org-code').required = mode === 'create';
  for (const e of document.querySelectorAll('#org-form .create-only')) show(e, mode === 'create');
  show($('org-form'));
  $('org-name').focus();
}

async function submitOrg(ev) {
  ev.preventDefault();
  err('org-error', '');
  const org = st.orgById.get(Number($('org-form-id').value));
  if (!org) return;
  try {
    if ($('org-form-mode').value === 'create') {
      const created = await call('/api/organisations', { method: 'POST', body: {
        name: $('org-name').value.trim(), code: $('org-code').value.trim(),
        level: LEVELS[LEVELS.indexOf(org.level) + 1], parent_id: org.id } });
      st.expanded.add(org.id);
      st.expanded.add(created.id);
    } else {
      await call(`/api/organisations/${org.id}`, { method: 'PATCH', body: { name: $('org-name').value.trim() } });
    }
    show($('org-form'), false);
    await loadOrgs();
  } catch (e) {
    err('org-error', plain(e));
  }
}

async function deleteOrg(org) {
  err('org-error', '');
  if (st.armed !== org.id) { st.armed = org.id; renderTree(); return; } // a second click confirms
  st.armed = null;
  try {
    await call(`/api/organisations/${org.id}`, { method: 'DELETE' });
    st.expanded.delete(org.id);
    await loadOrgs();
  } catch (e) {
    renderTree();
    err('org-error', plain(e));
  }
}

// ---- 用户与角色 users and roles ---------------------------------------------------------------------
async function loadUsers() {
  const q = new URLSearchParams();
  if ($('user-org').value) q.set('organisation_id', $('user-org').value);
  if ($('user-q').value.trim()) q.set('q', $('user-q').value.trim());
  try {
    st.users = await all(`/api/users?${q}`);
    err('user-error', '');
  } catch (e) {
    err('user-error', plain(e));
  }
  renderUsers();
}

async function patchUser(u, body, done) {
  err('user-error', '');
  show($('user-ok'), false);
  try {
    await call(`/api/users/${u.id}`, { method: 'PATCH', body });
    if (done) { $('user-ok').textContent = done; show($('user-ok')); }
  } catch (e) {
    err('user-error', plain(e));
  }
  await loadUsers();
}

function renderUsers() {
  const tb = $('users');
  tb.replaceChildren();
  for (const u of st.users) {
    const role = st.admin
      ? el('select', { class: 'role', 'aria-label': 'role', onchange: (ev) => patchUser(u, { role: ev.target.value }) },
        ...ROLES.map((r) => opt(r, a(`role_${r}`), r === u.role)))
      : a(`role_${u.role}`);
    const actions = el('td', { class: 'actions' });
    if (st.admin) {
      actions.append(
        el('button', { type: 'button', class: 'small toggle-active',
          onclick: () => patchUser(u, { active: !u.active }) }, u.active ? a('deactivate') : a('activate')), ' ',
        el('button', { type: 'button', class: 'small reset-pw', onclick: () => {
          const input = el('input', { type: 'password', minlength: 8, placeholder: a('new_pw'),
            autocomplete: 'new-password' });
          actions.replaceChildren(input, ' ', el('button', { type: 'button', class: 'small primary', onclick: () => {
            patchUser(u, { password: input.value }, a('pw_done', { user: u.username }));
          } }, a('ok')));
          input.focus();
        } }, a('reset_pw')));
    }
    tb.append(el('tr', { dataset: { user: u.username, active: u.active ? '1' : '0' } },
      el('td', {}, u.username), el('td', {}, u.display_name), el('td', {}, role),
      el('td', {}, orgName(u.organisation_id)),
      el('td', {}, u.extension), el('td', {}, u.active ? a('active') : a('inactive')), actions));
  }
}

async function createUser(ev) {
  ev.preventDefault();
  err('user-error', '');
  show($('user-ok'), false);
  try {
    const u = await call('/api/users', { method: 'POST', body: {
      username: $('nu-username').value.trim(), display_name: $('nu-display').value.trim(),
      password: $('nu-password').value, role: $('nu-role').value,
      organisation_id: $('nu-org').value ? Number($('nu-org').value) : null } });
    $('user-form').reset();
    $('user-ok').textContent = a('user_created', { user: u.username, ext: u.extension });
    show($('user-ok'));
    await loadUsers();
  } catch (e) {
    err('user-error', plain(e));
  }
}

// ---- 终端设备 devices, presence, import, plan --------------------------------------------------------
async function loadDevices() {
  const q = new URLSearchParams();
  if ($('dev-org').value) q.set('organisation_id', $('dev-org').value);
  if ($('dev-online').value) q.set('online', $('dev-online').value);
  if ($('dev-q').value.trim()) q.set('q', $('dev-q').value.trim());
  try {
    st.devices = await all(`/api/devices?${q}`);
    err('device-error', '');
  } catch (e) {
    err('device-error', plain(e));
  }
  renderDevices();
}

function deviceRow(d) {
  const on = d.online ? '1' : '0';
  return el('tr', { dataset: { device: d.id, serial: d.serial, online: on, active: d.active ? '1' : '0' } },
    el('td', {}, el('span', { class: 'dot', dataset: { on }, title: d.online ? a('online') : a('offline') })),
    el('td', { class: 'serial' }, d.serial), el('td', {}, d.display_name), el('td', {}, a(`kind_${d.kind}`)),
    el('td', {}, orgName(d.organisation_id)), el('td', {}, d.department || ''), el('td', {}, d.extension),
    el('td', { class: 'seen' }, when(d.last_seen)),
    st.admin && el('td', {},
      el('button', { type: 'button', class: 'small edit', onclick: () => editDevice(d) }, a('edit'))));
}

function renderDevices() {
  $('devices').replaceChildren(...st.devices.map(deviceRow));
  $('dev-count').textContent = a('dev_count', { n: st.devices.length, on: st.devices.filter((d) => d.online).length });
}

function onPresence(ev) {
  const i = st.devices.findIndex((d) => d.id === ev.device_id);
  if (i < 0) return;
  const filter = $('dev-online').value;
  const d = { ...st.devices[i], online: ev.online, last_seen: ev.last_seen };
  if (filter && String(ev.online) !== filter) st.devices.splice(i, 1); else st.devices[i] = d;
  renderDevices();
}

function editDevice(d) {
  $('df-id').value = String(d.id);
  $('df-serial').value = d.serial;
  $('df-name').value = d.display_name;
  $('df-kind').value = d.kind;
  $('df-org').value = String(d.organisation_id);
  $('df-department').value = d.department || '';
  $('df-model').value = d.model || '';
  $('device-form-title').textContent = a('edit_device', { serial: d.serial });
  show($('df-cancel'));
  show($('df-secret'), false);
  $('df-serial').focus();
}

function resetDeviceForm() {
  $('device-form').reset();
  $('df-id').value = '';
  $('device-form-title').textContent = a('new_device');
  show($('df-cancel'), false);
}

async function submitDevice(ev) {
  ev.preventDefault();
  err('device-error', '');
  const id = $('df-id').value;
  const body = { serial: $('df-serial').value.trim(), display_name: $('df-name').value.trim(), kind: $('df-kind').value,
    organisation_id: Number($('df-org').value), department: $('df-department').value.trim() || null,
    model: $('df-model').value.trim() };
  try {
    const d = await call(id ? `/api/devices/${id}` : '/api/devices', { method: id ? 'PATCH' : 'POST', body });
    resetDeviceForm();
    if (!id) {
      $('df-secret').textContent = a('device_secret', { serial: d.serial, ext: d.extension, pw: d.sip_password });
      show($('df-secret'));
    }
    await Promise.all([loadDevices(), loadPlan()]);
  } catch (e) {
    err('device-error', plain(e));
  }
}

/** POST the file's bytes with upload progress (fetch has none); resolves {status, body}. */
function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/devices/import');
    xhr.setRequestHeader('Authorization', `Bearer ${session.token}`);
    xhr.setRequestHeader('Content-Type', 'text/csv');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new Error(i18n.t('err_network')));
    xhr.send(file);
  });
}

async function importCsv() {
  const file = $('csv-file').files[0];
  const status = $('csv-status');
  show($('csv-errors'), false);
  status.classList.remove('error');
  if (!file) { status.textContent = a('pick_file'); return; }
  const bar = $('csv-progress');
  bar.value = 0;
  show(bar);
  $('csv-import').disabled = true;
  const progress = (f) => {
    bar.value = Math.round(f * 90); // the last tenth is the server's check and import
    status.textContent = f < 1 ? a('uploading', { p: Math.round(f * 100) }) : a('checking');
  };
  try {
    const res = await upload(file, progress);
    bar.value = 100;
    if (res.status === 201) {
      status.textContent = a('imported', { n: res.body.created });
      $('csv-file').value = '';
      await Promise.all([loadDevices(), loadPlan()]);
    } else if (res.status === 422 && res.body && Array.isArray(res.body.errors)) {
      status.textContent = a('import_bad', { n: res.body.errors.length });
      status.classList.add('error');
      $('csv-error-rows').replaceChildren(...res.body.errors.map((e) => el('tr', { dataset: { row: e.row } },
        el('td', {}, e.row ? String(e.row) : a('whole_file')), el('td', {}, e.column || ''), el('td', {}, e.reason))));
      show($('csv-errors'));
    } else {
      const detail = res.body && typeof res.body.detail === 'string' ? res.body.detail : `HTTP ${res.status}`;
      status.textContent = a('import_failed', { detail });
      status.classList.add('error');
    }
  } catch (e) {
    status.textContent = a('import_failed', { detail: e.message });
    status.classList.add('error');
  } finally {
    $('csv-import').disabled = false;
    setTimeout(() => show(bar, false), 800);
  }
}

async function loadPlan() {
  try {
    st.plan = await call('/api/devices/plan');
  } catch (e) {
    err('device-error', plain(e));
    return;
  }
  renderPlan();
}

function renderPlan() {
  const p = st.plan;
  if (!p) return;
  $('plan-summary').textContent = a('plan_summary', p);
  const num = (n, bad = false) => el('td', { class: bad && n > 0 ? 'tick bad' : 'tick' }, String(n));
  $('plan-levels').tBodies[0].replaceChildren(...p.levels.map((lv) => el('tr', { dataset: { level: lv.level } },
    el('td', {}, a(`lv_${lv.level}`)), num(lv.organisations), num(lv.planned_each), num(lv.planned), num(lv.actual),
    num(lv.missing, true))));
  $('plan-orgs').tBodies[0].replaceChildren(...p.organisations.map((o) => el('tr', { dataset: { code: o.code } },
    el('td', {}, o.code), el('td', {}, o.name), el('td', {}, a(`lv_${o.level}`)), num(o.planned), num(o.actual),
    num(o.missing, true))));
}

// ---- 队列 queues and members -----------------------------------------------------------------------
async function loadQueues() {
  try {
    st.queues = await all('/api/queues');
    err('queue-error', '');
  } catch (e) {
    err('queue-error', plain(e));
  }
  renderQueues();
}

const stratKey = (s) => `st_${s.replace(/-/g, '_')}`;

function renderQueues() {
  $('queues').replaceChildren(...st.queues.map((q) => {
    const strategy = st.admin
      ? el('select', { class: 'strategy', 'aria-label': 'strategy', onchange: async (ev) => {
        try {
          await call(`/api/queues/${q.id}`, { method: 'PATCH', body: { strategy: ev.target.value } });
          err('queue-error', '');
        } catch (e) { err('queue-error', plain(e)); }
        await loadQueues();
      } }, ...STRATEGIES.map((s) => opt(s, a(stratKey(s)), s === q.strategy)))
      : a(stratKey(q.strategy));
    return el('tr', { dataset: { queue: q.id, active: q.active ? '1' : '0' } },
      el('td', {}, q.name), el('td', {}, orgName(q.organisation_id)), el('td', {}, strategy),
      el('td', { class: 'tick' }, String(q.ring_timeout_s)), el('td', { class: 'tick' }, String(q.wrapup_s)),
      el('td', {}, el('button', { type: 'button', class: 'small', onclick: () => loadMembers(q) }, a('show'))),
      el('td', {}, q.active ? a('active') : a('inactive')));
  }));
}

async function loadMembers(q) {
  st.members = { queue: q, items: [] };
  try {
    st.members.items = await call(`/api/queues/${q.id}/members`);
    if (!st.users.length) st.users = await all('/api/users');
  } catch (e) {
    err('queue-error', plain(e));
  }
  renderMembers();
}

function renderMembers() {
  const m = st.members;
  show($('members'), !!m);
  if (!m) return;
  $('members-title').textContent = a('members_of', { name: m.queue.name });
  $('member-list').replaceChildren(...m.items.map((x) => el('li', { dataset: { user: x.username } },
    `${x.display_name || x.username} · ${x.extension} · ${a('penalty', { n: x.penalty })} `,
    st.admin && el('button', { type: 'button', class: 'small', onclick: async () => {
      try { await call(`/api/queues/${m.queue.id}/members/${x.user_id}`, { method: 'DELETE' }); } catch (e) {
        err('queue-error', plain(e));
      }
      await loadMembers(m.queue);
    } }, a('remove')))));
  const ids = new Set(m.items.map((x) => x.user_id));
  $('member-user').replaceChildren(...st.users.filter((u) => u.active && !ids.has(u.id))
    .map((u) => opt(String(u.id), `${u.display_name || u.username} (${a(`role_${u.role}`)})`)));
}

async function addMember(ev) {
  ev.preventDefault();
  const m = st.members;
  if (!m || !$('member-user').value) return;
  try {
    await call(`/api/queues/${m.queue.id}/members`, { method: 'POST', body: {
      user_id: Number($('member-user').value), penalty: Number($('member-penalty').value || 0) } });
    err('queue-error', '');
  } catch (e) {
    err('queue-error', plain(e));
  }
  await loadMembers(m.queue);
}

// ---- 会议室 rooms ------------------------------------------------------------------------------------
async function loadRooms() {
  try {
    st.rooms = await all('/api/rooms');
    err('room-error', '');
  } catch (e) {
    err('room-error', plain(e));
  }
  $('rooms').replaceChildren(...st.rooms.map((r) => el('tr', { dataset: { room: r.id, active: r.active ? '1' : '0' } },
    el('td', {}, r.number), el('td', {}, r.name), el('td', {}, i18n.t(`kind_${r.kind}`)),
    el('td', {}, i18n.t(`mode_${r.video_mode}`)), el('td', { class: 'tick' }, String(r.max_participants)),
    el('td', {}, r.active ? a('active') : a('inactive')),
    st.admin && el('td', {},
      el('button', { type: 'button', class: 'small', onclick: () => editRoom(r) }, a('edit'))))));
}

function editRoom(r) {
  $('rf-id').value = String(r.id);
  $('rf-name').value = r.name;
  $('rf-number').value = r.number;
  $('rf-kind').value = r.kind;
  $('rf-mode').value = r.video_mode;
  $('rf-max').value = String(r.max_participants);
  $('room-form-title').textContent = a('edit_room', { number: r.number });
  show($('rf-cancel'));
}

function resetRoomForm() {
  $('room-form').reset();
  $('rf-id').value = '';
  $('room-form-title').textContent = a('new_room');
  show($('rf-cancel'), false);
}

async function submitRoom(ev) {
  ev.preventDefault();
  const id = $('rf-id').value;
  const body = { name: $('rf-name').value.trim(), kind: $('rf-kind').value, video_mode: $('rf-mode').value,
    max_participants: Number($('rf-max').value) };
  if ($('rf-number').value.trim()) body.number = $('rf-number').value.trim();
  try {
    await call(id ? `/api/rooms/${id}` : '/api/rooms', { method: id ? 'PATCH' : 'POST', body });
    resetRoomForm();
    await loadRooms();
  } catch (e) {
    err('room-error', plain(e));
  }
}

// ---- tabs and start ------------------------------------------------------------------------------
const LOADERS = { orgs: loadOrgs, users: loadUsers, devices: () => Promise.all([loadDevices(), loadPlan()]),
  queues: loadQueues, rooms: loadRooms };

async function openTab(tab) {
  st.tab = tab;
  for (const b of document.querySelectorAll('.tabs [data-tab]')) {
    b.setAttribute('aria-selected', String(b.dataset.tab === tab));
  }
  for (const name of Object.keys(LOADERS)) show($(`tab-${name}`), name === tab);
  const url = new URL(location.href);
  url.hash = tab;
  history.replaceState(null, '', url);
  if (tab !== 'orgs') await LOADERS[tab]();
}

function fillStatic() {
  const fill = (id, values, key) => $(id).replaceChildren(...values.map((v) => opt(v, key(v))));
  fill('nu-role', ROLES, (r) => a(`role_${r}`));
  fill('df-kind', KINDS, (k) => a(`kind_${k}`));
  fill('rf-kind', ROOM_KINDS, (k) => i18n.t(`kind_${k}`));
  fill('rf-mode', MODES, (m) => i18n.t(`mode_${m}`));
}

function wire() {
  for (const b of document.querySelectorAll('.tabs [data-tab]')) {
    b.addEventListener('click', () => openTab(b.dataset.tab));
  }
  $('org-form').addEventListener('submit', submitOrg);
  $('org-cancel').addEventListener('click', () => show($('org-form'), false));
  $('org-expand').addEventListener('click', () => { for (const o of st.orgs) st.expanded.add(o.id); renderTree(); });
  $('org-collapse').addEventListener('click', () => { st.expanded.clear(); renderTree(); });
  $('user-form').addEventListener('submit', createUser);
  $('user-org').addEventListener('change', loadUsers);
  let typing = null;
  const later = (fn) => () => { clearTimeout(typing); typing = setTimeout(fn, 250); };
  $('user-q').addEventListener('input', later(loadUsers));
  $('dev-org').addEventListener('change', loadDevices);
  $('dev-online').addEventListener('change', loadDevices);
  $('dev-q').addEventListener('input', later(loadDevices));
  $('device-form').addEventListener('submit', submitDevice);
  $('df-cancel').addEventListener('click', resetDeviceForm);
  $('csv-import').addEventListener('click', importCsv);
  $('member-form').addEventListener('submit', addMember);
  $('room-form').addEventListener('submit', submitRoom);
  $('rf-cancel').addEventListener('click', resetRoomForm);
}

function rerender() {
  applyText();
  fillStatic();
  if (!st.orgs.length) return;
  renderTree();
  renderUsers();
  renderDevices();
  renderPlan();
  renderQueues();
  renderMembers();
}

$('lang').addEventListener('click', () => i18n.toggle());
i18n.onChange(rerender);
i18n.apply();
wire();

function livePill(on) {
  st.live = on;
  $('dev-live').dataset.a = on ? 'live_on' : 'live_off';
  $('dev-live').dataset.on = on ? '1' : '0';
  applyText();
}

signIn(async () => {
  const role = session.me.role;
  if (!['admin', 'supervisor'].includes(role)) {
    err('login-error', a('need_reader'));
    show($('login'));
    return;
  }
  st.admin = role === 'admin';
  document.body.classList.toggle('viewer', !st.admin);
  show($('role-note'), !st.admin);
  show($('console'));
  await loadOrgs();
  events('/api/events', (ev) => {
    if (ev.type === 'DevicePresence') onPresence(ev);
    else if (ev.type === 'DirectoryChanged' && ev.kind === 'device' && st.tab === 'devices') loadDevices();
  }, {
    onOpen: () => livePill(true),
    onClose: () => livePill(false),
  });
  const wanted = location.hash.slice(1);
  await openTab(Object.keys(LOADERS).includes(wanted) ? wanted : 'orgs');
});

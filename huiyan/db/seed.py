"""Demo data: the Jilin province justice administration of the 2018 pilot, its terminals and one user per role.

The 12348 hotline comes with it: the province's three queues (法律咨询, 法律援助, 调解受理), 长春's and
延边's own consultation queues, their voice menus, and skills and queues for the demo agents.

Every demo user's password is `DEMO_PASSWORD` ("huiyan12348"); log in as `admin` to administer. Change
them (or do not seed) on any system reachable from outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.db import hotline, store
from huiyan.db.models import (
    AgentSkill,
    DeviceKind,
    Organisation,
    OrgLevel,
    Queue,
    QueueMember,
    QueueStrategy,
    Role,
    User,
)
from huiyan.db.numbering import DEFAULT_PLAN, ExtensionPlan

DEMO_PASSWORD = "huiyan12348"
DEVICE_MODEL = "xylink-terminal"  # the 小鱼 terminals handed out in the pilot


@dataclass(frozen=True, slots=True)
class Division:
    name: str  # the division's Chinese name, e.g. 南关区
    code: str  # GB/T 2260 code where one exists
    name_en: str  # e.g. "Nanguan District"


PROVINCE = Division("吉林省", "220000", "Jilin Province")

# Prefecture-level divisions and their county-level ones (GB/T 2260 codes, 2020 boundaries).
PREFECTURES: list[tuple[Division, list[Division]]] = [
    (
        Division("长春市", "220100", "Changchun"),
        [
            Division("南关区", "220102", "Nanguan District"),
            Division("宽城区", "220103", "Kuancheng District"),
            Division("朝阳区", "220104", "Chaoyang District"),
            Division("二道区", "220105", "Erdao District"),
            Division("绿园区", "220106", "Lüyuan District"),
            Division("双阳区", "220112", "Shuangyang District"),
            Division("九台区", "220113", "Jiutai District"),
            Division("农安县", "220122", "Nong'an County"),
            Division("榆树市", "220182", "Yushu City"),
            Division("德惠市", "220183", "Dehui City"),
            Division("公主岭市", "220184", "Gongzhuling City"),
        ],
    ),
    (
        Division("吉林市", "220200", "Jilin City"),
        [
            Division("昌邑区", "220202", "Changyi District"),
            Division("龙潭区", "220203", "Longtan District"),
            Division("船营区", "220204", "Chuanying District"),
            Division("丰满区", "220211", "Fengman District"),
            Division("永吉县", "220221", "Yongji County"),
            Division("蛟河市", "220281", "Jiaohe City"),
            Division("桦甸市", "220282", "Huadian City"),
            Division("舒兰市", "220283", "Shulan City"),
            Division("磐石市", "220284", "Panshi City"),
        ],
    ),
    (
        Division("四平市", "220300", "Siping"),
        [
            Division("铁西区", "220302", "Tiexi District"),
            Division("铁东区", "220303", "Tiedong District"),
            Division("梨树县", "220322", "Lishu County"),
            Division("伊通满族自治县", "220323", "Yitong Manchu Autonomous County"),
            Division("双辽市", "220382", "Shuangliao City"),
        ],
    ),
    (
        Division("辽源市", "220400", "Liaoyuan"),
        [
            Division("龙山区", "220402", "Longshan District"),
            Division("西安区", "220403", "Xi'an District"),
            Division("东丰县", "220421", "Dongfeng County"),
            Division("东辽县", "220422", "Dongliao County"),
        ],
    ),
    (
        Division("通化市", "220500", "Tonghua"),
        [
            Division("东昌区", "220502", "Dongchang District"),
            Division("二道江区", "220503", "Erdaojiang District"),
            Division("通化县", "220521", "Tonghua County"),
            Division("辉南县", "220523", "Huinan County"),
            Division("柳河县", "220524", "Liuhe County"),
            Division("梅河口市", "220581", "Meihekou City"),
            Division("集安市", "220582", "Ji'an City"),
        ],
    ),
    (
        Division("白山市", "220600", "Baishan"),
        [
            Division("浑江区", "220602", "Hunjiang District"),
            Division("江源区", "220605", "Jiangyuan District"),
            Division("抚松县", "220621", "Fusong County"),
            Division("靖宇县", "220622", "Jingyu County"),
            Division("长白朝鲜族自治县", "220623", "Changbai Korean Autonomous County"),
            Division("临江市", "220681", "Linjiang City"),
        ],
    ),
    (
        Division("松原市", "220700", "Songyuan"),
        [
            Division("宁江区", "220702", "Ningjiang District"),
            Division("前郭尔罗斯蒙古族自治县", "220721", "Qian Gorlos Mongol Autonomous County"),
            Division("长岭县", "220722", "Changling County"),
            Division("乾安县", "220723", "Qian'an County"),
            Division("扶余市", "220781", "Fuyu City"),
        ],
    ),
    (
        Division("白城市", "220800", "Baicheng"),
        [
            Division("洮北区", "220802", "Taobei District"),
            Division("镇赉县", "220821", "Zhenlai County"),
            Division("通榆县", "220822", "Tongyu County"),
            Division("洮南市", "220881", "Taonan City"),
            Division("大安市", "220882", "Da'an City"),
        ],
    ),
    (
        Division("延边朝鲜族自治州", "222400", "Yanbian Korean Autonomous Prefecture"),
        [
            Division("延吉市", "222401", "Yanji City"),
            Division("图们市", "222402", "Tumen City"),
            Division("敦化市", "222403", "Dunhua City"),
            Division("珲春市", "222404", "Hunchun City"),
            Division("龙井市", "222405", "Longjing City"),
            Division("和龙市", "222406", "Helong City"),
            Division("汪清县", "222424", "Wangqing County"),
            Division("安图县", "222426", "Antu County"),
        ],
    ),
]

# Not an administrative division (the Changbai Mountain reserve's management committee), so no GB/T code.
CHANGBAI = Division("长白山", "220000-CBS", "Changbai Mountain")

# A few judicial offices (司法所), to show the tree goes below the counties: (county code, office).
OFFICES: list[tuple[str, Division]] = [
    ("220102", Division("南岭街道", "220102-001", "Nanling Subdistrict")),
    ("220182", Division("五棵树镇", "220182-001", "Wukeshu Town")),
    ("220322", Division("梨树镇", "220322-001", "Lishu Town")),
    ("220621", Division("松江河镇", "220621-001", "Songjianghe Town")),
    ("222401", Division("河南街道", "222401-001", "Henan Subdistrict")),
]

# Terminals per the pilot's plan (设备发放): (department, label, how many).
PROVINCE_DEVICES: list[tuple[str, str, int]] = [
    ("head", "厅领导", 8),
    ("command", "指挥中心", 6),
    ("office", "办公室", 4),
    ("legal-aid", "省法律援助中心", 10),
    ("hotline", "12348热线中心", 8),
    ("correction", "社区矫正管理局", 4),
    ("political", "政治部", 2),
    ("legislation", "立法处", 2),
    ("law-enforcement", "行政执法协调监督处", 2),
    ("reconsideration", "行政复议与应诉处", 2),
    ("publicity", "普法与依法治理处", 2),
    ("grassroots", "人民参与和促进法治处", 3),
    ("public-legal-service", "公共法律服务管理处", 3),
    ("lawyers", "律师工作处", 2),
    ("notary", "公证工作处", 2),
    ("exam", "法律职业资格管理处", 2),
    ("finance", "计划财务装备处", 2),
    ("it", "科技信息化处", 2),
    ("party", "机关党委", 2),
    ("inspection", "驻厅纪检监察组", 2),
]
CITY_DEVICES: list[tuple[str, str, int]] = [
    ("head", "局领导", 1),
    ("command", "指挥中心", 1),
    ("correction", "社区矫正", 1),
    ("grassroots", "基层工作", 1),
    ("hotline", "12348热线", 1),
]
COUNTY_DEVICES: list[tuple[str, str, int]] = CITY_DEVICES[:4]

# username, display name, role, organisation code (None: belongs to no bureau, e.g. a lawyer)
USERS: list[tuple[str, str, Role, str | None]] = [
    ("admin", "系统管理员", Role.ADMIN, "220000"),
    ("supervisor", "热线班长", Role.SUPERVISOR, "220100"),
    ("agent1", "热线坐席一", Role.AGENT, "220100"),
    ("agent2", "热线坐席二", Role.AGENT, "220100"),
    ("mediator", "天池和调解员", Role.MEDIATOR, CHANGBAI.code),
    ("officer", "社区矫正专干", Role.OFFICER, "220102"),
    ("lawyer", "值班律师", Role.LAWYER, None),
]

# The 12348 hotline. Queues: name, English name, organisation code, strategy, other settings
# ("overflow_to" names a queue listed before). The province answers 12348; 长春 and 延边 have their own.
QUEUES: list[tuple[str, str, str, QueueStrategy, dict[str, Any]]] = [
    ("法律咨询", "Legal consultation", "220000", QueueStrategy.SKILLS, {"relax_steps": [[30, 1], [60, 2]]}),
    ("法律援助", "Legal aid", "220000", QueueStrategy.LONGEST_IDLE, {}),
    ("调解受理", "Mediation intake", "220000", QueueStrategy.ROUND_ROBIN, {}),
    ("长春市法律咨询", "Changchun legal consultation", "220100", QueueStrategy.SKILLS,
     {"max_wait_s": 90, "overflow_to": "法律咨询"}),
    ("延边州法律咨询", "Yanbian legal consultation", "222400", QueueStrategy.SKILLS,
     {"max_wait_s": 120, "overflow_to": "法律咨询", "relax_steps": [[45, 2]]}),
]  # fmt: skip

# Voice menus: service number, digit, queue, required skills, Chinese label, English label.
# A city's own number is 12348 + the city's two GB/T 2260 digits: 1234801 长春, 1234824 延边.
MENUS: list[tuple[str, str, str, dict[str, int], str, str]] = [
    ("12348", "1", "法律咨询", {"consultation": 1}, "法律咨询", "Legal consultation"),
    ("12348", "2", "法律援助", {"legal_aid": 1}, "法律援助", "Legal aid"),
    ("12348", "3", "调解受理", {"mediation": 1}, "调解受理", "Mediation"),
    ("1234801", "1", "长春市法律咨询", {"consultation": 1}, "法律咨询", "Legal consultation"),
    ("1234801", "2", "法律援助", {"legal_aid": 1}, "法律援助", "Legal aid"),
    ("1234801", "3", "调解受理", {"mediation": 1}, "调解受理", "Mediation"),
    ("1234824", "1", "延边州法律咨询", {"consultation": 1}, "法律咨询", "Legal consultation"),
    ("1234824", "2", "延边州法律咨询", {"consultation": 1, "lang_ko": 5}, "朝鲜语法律咨询",
     "Legal consultation in Korean"),
]  # fmt: skip

# Demo agents' skills (levels 1..10); agent2 also speaks Korean (朝鲜语), for 延边.
SKILLS: dict[str, dict[str, int]] = {
    "agent1": {"lang_zh": 10, "consultation": 8, "legal_aid": 6},
    "agent2": {"lang_zh": 10, "lang_ko": 8, "consultation": 6, "mediation": 7},
    "supervisor": {"lang_zh": 10, "consultation": 9, "legal_aid": 9, "mediation": 9},
}

# Queue members: (username, penalty); the supervisor backs the agents up (penalty 1: offered calls last).
MEMBERS: dict[str, list[tuple[str, int]]] = {
    "法律咨询": [("agent1", 0), ("agent2", 0), ("supervisor", 1)],
    "法律援助": [("agent1", 0), ("supervisor", 1)],
    "调解受理": [("agent2", 0), ("supervisor", 1)],
    "长春市法律咨询": [("agent1", 0), ("agent2", 1)],
    "延边州法律咨询": [("agent2", 0)],
}


def _org(
    session: Session,
    created: dict[str, int],
    division: Division,
    level: OrgLevel,
    parent: Organisation | None,
    suffix: tuple[str, str],
) -> Organisation:
    org = session.scalar(select(Organisation).where(Organisation.code == division.code))
    if org is None:
        org = store.create_organisation(
            session,
            name=division.name + suffix[0],
            name_en=f"{division.name_en} {suffix[1]}".strip(),
            code=division.code,
            level=level,
            parent_id=parent.id if parent else None,
        )
        created["organisations"] += 1
    return org


def _devices(
    session: Session,
    created: dict[str, int],
    org: Organisation,
    plan_rows: list[tuple[str, str, int]],
    extension_plan: ExtensionPlan,
) -> None:
    for department, label, count in plan_rows:
        for i in range(1, count + 1):
            serial = f"HY-{org.code}-{department}-{i:02d}"
            if store.find_device(session, serial) is not None:
                continue
            store.create_device(
                session,
                serial=serial,
                organisation_id=org.id,
                kind=DeviceKind.TERMINAL,
                model=DEVICE_MODEL,
                department=department,
                display_name=f"{org.name} {label}" + (f" {i}" if count > 1 else ""),
                plan=extension_plan,
            )
            created["devices"] += 1


def seed_demo(session: Session, *, plan: ExtensionPlan = DEFAULT_PLAN) -> dict[str, int]:
    """Add whatever of the demo directory and hotline is missing, commit, and return how many of each were created.

    Idempotent: organisations are matched by code, devices by serial, users by username, queues by name,
    menu options by number and digit, skills and memberships by user; existing rows are left as they are
    (also if an admin edited them).
    """
    created = {"organisations": 0, "users": 0, "devices": 0, "queues": 0, "menu_options": 0}
    province = _org(session, created, PROVINCE, OrgLevel.PROVINCE, None, ("司法厅", "Department of Justice"))
    _devices(session, created, province, PROVINCE_DEVICES, plan)
    by_code = {province.code: province}
    cities = [(city, counties) for city, counties in PREFECTURES] + [(CHANGBAI, [])]
    for city_div, counties in cities:
        city = _org(session, created, city_div, OrgLevel.CITY, province, ("司法局", "Bureau of Justice"))
        by_code[city.code] = city
        _devices(session, created, city, CITY_DEVICES, plan)
        for county_div in counties:
            county = _org(session, created, county_div, OrgLevel.COUNTY, city, ("司法局", "Bureau of Justice"))
            by_code[county.code] = county
            _devices(session, created, county, COUNTY_DEVICES, plan)
    for county_code, office_div in OFFICES:
        _org(session, created, office_div, OrgLevel.OFFICE, by_code[county_code], ("司法所", "Judicial Office"))
    for username, display_name, role, org_code in USERS:
        if store.find_user(session, username) is not None:
            continue
        store.create_user(
            session,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            display_name=display_name,
            organisation_id=by_code[org_code].id if org_code else None,
            plan=plan,
        )
        created["users"] += 1
    _hotline(session, created, by_code)
    session.commit()
    return created


def _hotline(session: Session, created: dict[str, int], by_code: dict[str, Organisation]) -> None:
    """The 12348 queues and menus, and the demo agents' skills and memberships; only what is missing."""
    queues: dict[str, Queue] = {}
    for name, name_en, org_code, strategy, settings in QUEUES:
        queue = hotline.find_queue(session, name)
        if queue is None:
            settings = dict(settings)
            overflow = settings.pop("overflow_to", None)
            queue = hotline.create_queue(
                session,
                name=name,
                name_en=name_en,
                organisation_id=by_code[org_code].id,
                strategy=strategy,
                overflow_queue_id=queues[overflow].id if overflow else None,
                **settings,
            )
            created["queues"] += 1
        queues[name] = queue
    for service_number, digit, queue_name, skills, label_zh, label_en in MENUS:
        if hotline.menu_for(session, service_number).get(digit) is None:
            hotline.create_menu_option(
                session,
                service_number=service_number,
                digit=digit,
                queue_id=queues[queue_name].id,
                required_skills=skills,
                label_zh=label_zh,
                label_en=label_en,
            )
            created["menu_options"] += 1
    for username, skills in SKILLS.items():
        user = store.find_user(session, username)
        if user is None:
            continue
        for skill, level in skills.items():
            if session.get(AgentSkill, (user.id, skill)) is None:
                hotline.set_agent_skill(session, user.id, skill, level)
    for queue_name, members in MEMBERS.items():
        for username, penalty in members:
            user = store.find_user(session, username)
            # An admin may have deleted the demo user or changed its role since the first seed.
            if user is None or user.role not in hotline.MEMBER_ROLES:
                continue
            if session.get(QueueMember, (queues[queue_name].id, user.id)) is None:
                hotline.add_queue_member(session, queues[queue_name].id, user.id, penalty=penalty)


def ensure_admin(session: Session, username: str, password: str, *, plan: ExtensionPlan = DEFAULT_PLAN) -> User:
    """Make sure `username` is an active admin who logs in with `password` (first-run bootstrap, tests).
    An existing account is promoted and its password reset. Flushes; the caller commits."""
    user = store.find_user(session, username)
    if user is None:
        return store.create_user(
            session, username=username, password=password, role=Role.ADMIN, display_name=username, plan=plan
        )
    return store.update_user(session, user.id, {"password": password, "role": Role.ADMIN, "active": True}, plan=plan)

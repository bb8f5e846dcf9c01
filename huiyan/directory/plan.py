"""The pilot's device allocation plan (设备发放计划) against what the directory holds, per organisation.

The plan is the seed's (huiyan/db/seed.py): terminals per department for the province, for each city
and for each county; judicial offices get none. Devices in a department the plan does not list count as
"other" (they exist, but were not planned).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from huiyan.db.models import Device, Organisation, OrgLevel
from huiyan.db.seed import CITY_DEVICES, COUNTY_DEVICES, PROVINCE_DEVICES

PlanRows = list[tuple[str, str, int]]  # (department, label, how many)
PLAN_BY_LEVEL: dict[OrgLevel, PlanRows] = {
    OrgLevel.PROVINCE: PROVINCE_DEVICES,
    OrgLevel.CITY: CITY_DEVICES,
    OrgLevel.COUNTY: COUNTY_DEVICES,
    OrgLevel.OFFICE: [],
}
OTHER = "other"


@dataclass(frozen=True, slots=True)
class DepartmentLine:
    department: str
    label: str
    planned: int
    actual: int

    @property
    def missing(self) -> int:
        return max(self.planned - self.actual, 0)


@dataclass(frozen=True, slots=True)
class OrgPlan:
    organisation_id: int
    code: str
    name: str
    level: OrgLevel
    departments: list[DepartmentLine]

    @property
    def planned(self) -> int:
        return sum(d.planned for d in self.departments)

    @property
    def actual(self) -> int:
        return sum(d.actual for d in self.departments)

    @property
    def missing(self) -> int:
        return sum(d.missing for d in self.departments)


@dataclass(frozen=True, slots=True)
class LevelPlan:
    level: OrgLevel
    organisations: int
    planned_each: int
    planned: int
    actual: int
    missing: int


@dataclass
class AllocationPlan:
    levels: list[LevelPlan] = field(default_factory=list)
    organisations: list[OrgPlan] = field(default_factory=list)

    @property
    def planned(self) -> int:
        return sum(o.planned for o in self.organisations)

    @property
    def actual(self) -> int:
        return sum(o.actual for o in self.organisations)

    @property
    def missing(self) -> int:
        return sum(o.missing for o in self.organisations)


def org_plan(org_id: int, code: str, name: str, level: OrgLevel, counts: Mapping[str | None, int]) -> OrgPlan:
    """One organisation: its level's planned lines with the devices it has per department."""
    rows = PLAN_BY_LEVEL[level]
    planned_departments = {d for d, _, _ in rows}
    lines = [DepartmentLine(d, label, n, counts.get(d, 0)) for d, label, n in rows]
    other = sum(n for d, n in counts.items() if d not in planned_departments)
    if other:
        lines.append(DepartmentLine(OTHER, "", 0, other))
    return OrgPlan(org_id, code, name, level, lines)


def allocation_plan(
    orgs: Iterable[tuple[int, str, str, OrgLevel]], counts: Mapping[tuple[int, str | None], int]
) -> AllocationPlan:
    """Pure: `orgs` as (id, code, name, level), `counts` of devices per (organisation id, department)."""
    by_org: dict[int, dict[str | None, int]] = {}
    for (org_id, department), n in counts.items():
        by_org.setdefault(org_id, {})[department] = n
    plans = [org_plan(i, c, nm, lv, by_org.get(i, {})) for i, c, nm, lv in orgs]
    levels = []
    for level in OrgLevel:
        of_level = [p for p in plans if p.level == level]
        if of_level:
            levels.append(LevelPlan(
                level, len(of_level), sum(n for _, _, n in PLAN_BY_LEVEL[level]),
                sum(p.planned for p in of_level), sum(p.actual for p in of_level), sum(p.missing for p in of_level),
            ))
    return AllocationPlan(levels, plans)


def load_plan(session: Session) -> AllocationPlan:
    orgs = session.execute(
        select(Organisation.id, Organisation.code, Organisation.name, Organisation.level).order_by(Organisation.code)
    ).all()
    counts = session.execute(
        select(Device.organisation_id, Device.department, func.count()).group_by(Device.organisation_id,
                                                                                  Device.department)
    ).all()
    return allocation_plan([tuple(o) for o in orgs], {(o, d): n for o, d, n in counts})

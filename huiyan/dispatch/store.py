"""Dispatch groups, dispatches and their legs in the database, kept by their rules; what the runtime loads
and writes (`DbDispatchStore`, called from worker threads).

Rules kept here: a group's name is unique and fits a room name; `counties_of_city` names a city-level
organisation, the other kinds none; only a `custom` group has members (organisations and/or devices, at
least one, kiosks excluded). A group resolves, when a dispatch starts, to the active terminals of its
organisations (optionally of one department, e.g. `command`) plus its listed devices; a dispatch needs
at least one and at most `MAX_LEGS` (what one room holds). A party is called by one leg at a time.
Functions flush but never commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import (
    Device,
    DeviceKind,
    Dispatch,
    DispatchGroup,
    DispatchGroupKind,
    DispatchGroupMember,
    DispatchLeg,
    DispatchStatus,
    LegKind,
    LegStatus,
    Organisation,
    OrgLevel,
    RoomKind,
    RoomRecording,
    User,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DEPARTMENT_RE, DISPLAY_NAME_RE, _check, _flush, _get, _page
from huiyan.dispatch.model import FINAL, DispatchState, Leg, Party, RetryPolicy
from huiyan.rooms.store import INVITE_TARGET_RE, ROOM_NAME_RE, create_room, get_room

MAX_LEGS = 200  # ConfBridge's room limit (bridge profile max_members)
MAX_MEMBERS = 500
GROUP_FIELDS = frozenset({"name", "kind", "city_id", "department", "organisation_ids", "device_ids"})
BUREAU_LEVELS = (OrgLevel.CITY, OrgLevel.COUNTY)


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _epoch(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


# ---- groups ---------------------------------------------------------------------------------------------


def get_group(session: Session, group_id: int) -> DispatchGroup:
    return _get(session, DispatchGroup, group_id, "dispatch group")


def list_groups(session: Session, *, offset: int = 0, limit: int = 50) -> tuple[list[DispatchGroup], int]:
    stmt = select(DispatchGroup).options(selectinload(DispatchGroup.members)).order_by(DispatchGroup.name)
    return _page(session, stmt, offset, limit)


def member_ids(group: DispatchGroup) -> tuple[list[int], list[int]]:
    """(organisation ids, device ids) of a custom group, in the order given."""
    orgs = [m.organisation_id for m in group.members if m.organisation_id is not None]
    devices = [m.device_id for m in group.members if m.device_id is not None]
    return orgs, devices


def _check_group(session: Session, values: dict[str, Any], group: DispatchGroup | None) -> None:
    name = values["name"]
    _check(ROOM_NAME_RE, name, "group name")
    other = session.scalar(select(DispatchGroup.id).where(DispatchGroup.name == name))
    if other is not None and (group is None or other != group.id):
        raise Conflict(f"dispatch group name {name!r} is already used by group {other}")
    kind = DispatchGroupKind(values["kind"])
    if values.get("department") is not None:
        _check(DEPARTMENT_RE, values["department"], "department")
    city_id = values.get("city_id")
    if kind == DispatchGroupKind.COUNTIES_OF_CITY:
        if city_id is None:
            raise Invalid("a counties_of_city group needs city_id (the city whose county bureaus are called)")
        city = session.get(Organisation, city_id)
        if city is None:
            raise Invalid(f"organisation {city_id} does not exist")
        if city.level != OrgLevel.CITY:
            raise Invalid(f"organisation {city.name} is a {city.level.value}, not a city")
    elif city_id is not None:
        raise Invalid(f"city_id is only for counties_of_city groups, not {kind.value}")
    orgs, devices = list(values.get("organisation_ids") or ()), list(values.get("device_ids") or ())
    if kind != DispatchGroupKind.CUSTOM:
        if orgs or devices:
            raise Invalid(f"a {kind.value} group is resolved from the organisation tree: list members only in a "
                          "custom group")
        return
    if not orgs and not devices:
        raise Invalid("a custom group needs at least one organisation or device")
    if len(orgs) + len(devices) > MAX_MEMBERS:
        raise Invalid(f"at most {MAX_MEMBERS} members per group")
    for what, ids in (("organisation", orgs), ("device", devices)):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise Invalid(f"{what}(s) {', '.join(map(str, twice))} listed twice")
    known_orgs = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(orgs)))) if orgs else set()
    missing = [i for i in orgs if i not in known_orgs]
    if missing:
        raise Invalid(f"organisation(s) {', '.join(map(str, missing))} do not exist")
    rows = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(devices)))} if devices else {}
    missing = [i for i in devices if i not in rows]
    if missing:
        raise Invalid(f"device(s) {', '.join(map(str, missing))} do not exist")
    kiosks = [i for i in devices if rows[i].kind == DeviceKind.KIOSK]
    if kiosks:
        raise Invalid(f"device(s) {', '.join(map(str, kiosks))} are citizens' kiosks, not dispatch parties")


def _set_members(group: DispatchGroup, organisation_ids: Iterable[int], device_ids: Iterable[int]) -> None:
    group.members = [DispatchGroupMember(organisation_id=i) for i in organisation_ids] + [
        DispatchGroupMember(device_id=i) for i in device_ids]


def create_group(
    session: Session,
    *,
    name: str,
    kind: DispatchGroupKind | str,
    city_id: int | None = None,
    department: str | None = None,
    organisation_ids: Iterable[int] = (),
    device_ids: Iterable[int] = (),
) -> DispatchGroup:
    values: dict[str, Any] = {"name": name, "kind": DispatchGroupKind(kind), "city_id": city_id,
                              "department": department or None, "organisation_ids": list(organisation_ids),
                              "device_ids": list(device_ids)}
    _check_group(session, values, None)
    group = DispatchGroup(name=name, kind=values["kind"], city_id=city_id, department=values["department"])
    session.add(group)
    _set_members(group, values["organisation_ids"], values["device_ids"])
    _flush(session)
    return group


def update_group(session: Session, group_id: int, changes: Mapping[str, Any]) -> DispatchGroup:
    group = get_group(session, group_id)
    unknown = set(changes) - GROUP_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a dispatch group")
    orgs, devices = member_ids(group)
    values = {"name": group.name, "kind": group.kind, "city_id": group.city_id, "department": group.department,
              "organisation_ids": orgs, "device_ids": devices} | dict(changes)
    if "kind" in changes:
        # A new kind drops what only the old one had (members of a custom group, a counties_of_city's city),
        # unless the same request sends it again (then the rules below judge it).
        kind = DispatchGroupKind(changes["kind"])
        for key in ("organisation_ids", "device_ids"):
            if kind != DispatchGroupKind.CUSTOM and key not in changes:
                values[key] = []
        if kind != DispatchGroupKind.COUNTIES_OF_CITY and "city_id" not in changes:
            values["city_id"] = None
    _check_group(session, values, group)
    group.name, group.kind, group.city_id = values["name"], DispatchGroupKind(values["kind"]), values["city_id"]
    group.department = values["department"] or None
    if (values["organisation_ids"], values["device_ids"]) != (orgs, devices):
        _set_members(group, values["organisation_ids"], values["device_ids"])
    _flush(session)
    return group


def delete_group(session: Session, group_id: int) -> None:
    """Past dispatches of the group keep their record (their group becomes null)."""
    session.delete(get_group(session, group_id))
    _flush(session)


def _organisations(session: Session, group: DispatchGroup) -> list[int]:
    stmt = select(Organisation.id)
    if group.kind == DispatchGroupKind.ALL_CITIES:
        stmt = stmt.where(Organisation.level == OrgLevel.CITY)
    elif group.kind == DispatchGroupKind.COUNTIES_OF_CITY:
        stmt = stmt.where(Organisation.level == OrgLevel.COUNTY, Organisation.parent_id == group.city_id)
    elif group.kind == DispatchGroupKind.ALL:
        stmt = stmt.where(Organisation.level.in_(BUREAU_LEVELS))
    else:
        return member_ids(group)[0]
    return list(session.scalars(stmt))


def _party(device: Device) -> Party:
    return Party(kind=LegKind.DEVICE, target=device.extension, name=device.display_name or device.serial,
                 device_id=device.id, organisation_id=device.organisation_id,
                 auto_answer=device.kind == DeviceKind.TERMINAL)


def resolve_group(session: Session, group: DispatchGroup) -> list[Party]:
    """Who the group calls now: the active terminals of its organisations (of its department, if it names
    one), ordered by organisation code, then a custom group's listed devices (active, any department)."""
    orgs = _organisations(session, group)
    out: list[Party] = []
    seen: set[int] = set()
    if orgs:
        stmt = (select(Device).join(Organisation, Device.organisation_id == Organisation.id)
                .where(Device.organisation_id.in_(orgs), Device.kind == DeviceKind.TERMINAL, Device.active.is_(True))
                .order_by(Organisation.code, Device.id))
        if group.department:
            stmt = stmt.where(Device.department == group.department)
        for device in session.scalars(stmt):
            seen.add(device.id)
            out.append(_party(device))
    listed = member_ids(group)[1] if group.kind == DispatchGroupKind.CUSTOM else []
    if listed:
        rows = {d.id: d for d in session.scalars(select(Device).where(Device.id.in_(listed), Device.active.is_(True)))}
        for device_id in listed:
            device = rows.get(device_id)
            if device is not None and device_id not in seen:
                seen.add(device_id)
                out.append(_party(device))
    return out


# ---- dispatches ----------------------------------------------------------------------------------------


def get_dispatch(session: Session, dispatch_id: int) -> Dispatch:
    return _get(session, Dispatch, dispatch_id, "dispatch")


def list_dispatches(session: Session, *, status: DispatchStatus | None = None, group_id: int | None = None,
                    offset: int = 0, limit: int = 50) -> tuple[list[Dispatch], int]:
    stmt = select(Dispatch).options(selectinload(Dispatch.legs), selectinload(Dispatch.room)).order_by(
        Dispatch.started_at.desc(), Dispatch.id.desc())
    if status is not None:
        stmt = stmt.where(Dispatch.status == status)
    if group_id is not None:
        stmt = stmt.where(Dispatch.group_id == group_id)
    return _page(session, stmt, offset, limit)


def _leg_row(party: Party) -> DispatchLeg:
    return DispatchLeg(kind=party.kind, target=party.target, name=party.name[:100], device_id=party.device_id,
                       user_id=party.user_id, organisation_id=party.organisation_id, auto_answer=party.auto_answer,
                       status=LegStatus.PENDING, reason="", attempts=0, channel_id="")


def create_dispatch(
    session: Session,
    *,
    group_id: int,
    commander_user_id: int | None,
    node: str,
    room_plan: ExtensionPlan,
    policy: RetryPolicy,
    name: str | None = None,
    auto_answer: bool = True,
) -> Dispatch:
    """The dispatch, its emergency room (kind dispatch, recorded, the commander its moderator, a random PIN
    for anyone else who dials its number) and one pending leg per terminal the group resolves to."""
    group = get_group(session, group_id)
    parties = resolve_group(session, group)
    if not parties:
        raise Conflict(f"dispatch group {group.name} has no active terminal to call")
    if len(parties) > MAX_LEGS:
        raise Conflict(f"dispatch group {group.name} resolves to {len(parties)} terminals; one room holds at most "
                       f"{MAX_LEGS} (narrow it, e.g. to the command terminals: department 'command')")
    if commander_user_id is not None and session.get(User, commander_user_id) is None:
        raise NotFound(f"user {commander_user_id} not found")
    title = (name or f"{group.name} 指挥调度").strip()[:100]
    _check(ROOM_NAME_RE, title, "dispatch name")
    room = create_room(
        session, plan=room_plan, name=title, kind=RoomKind.DISPATCH, record=True,
        pin=f"{secrets.randbelow(10**6):06d}", max_participants=min(MAX_LEGS, max(50, len(parties) + 20)),
        moderator_user_ids=[commander_user_id] if commander_user_id is not None else [],
    )
    dispatch = Dispatch(
        name=title, group_id=group.id, room_id=room.id, commander_user_id=commander_user_id, node=node,
        status=DispatchStatus.ACTIVE, retries=policy.retries, retry_interval_s=policy.interval_s,
        retry_on=sorted(s.value for s in policy.on), ring_seconds=policy.ring_seconds, auto_answer=auto_answer,
        legs=[_leg_row(p if auto_answer else replace(p, auto_answer=False)) for p in parties],
    )
    session.add(dispatch)
    _flush(session)
    return dispatch


def party_for(
    session: Session,
    *,
    internal: ExtensionPlan,
    device_id: int | None = None,
    user_id: int | None = None,
    target: str | None = None,
    name: str = "",
    auto_answer: bool | None = None,
) -> Party:
    """Whom to add to a dispatch: a device or a user from the directory, or a target (an internal
    extension, a SIP URI, a phone number). Auto-answer defaults to on for terminals only."""
    if sum(x is not None for x in (device_id, user_id, target)) != 1:
        raise Invalid("give exactly one of device_id, user_id or target")
    _check(DISPLAY_NAME_RE, name, "name")
    if device_id is not None:
        device = session.get(Device, device_id)
        if device is None:
            raise NotFound(f"device {device_id} not found")
        if not device.active:
            raise Conflict(f"device {device.serial} is deactivated")
        party = _party(device)
        return replace(party, name=name or party.name,
                       auto_answer=party.auto_answer if auto_answer is None else auto_answer)
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        if not user.active:
            raise Conflict(f"user {user.username} is disabled")
        return Party(kind=LegKind.USER, target=user.extension, name=name or user.display_name or user.username,
                     user_id=user.id, organisation_id=user.organisation_id, auto_answer=bool(auto_answer))
    assert target is not None
    t = target.strip()
    _check(INVITE_TARGET_RE, t, "target")
    kind = LegKind.EXTENSION if internal.contains(t) else LegKind.SIP if t.startswith("sip") else LegKind.PHONE
    return Party(kind=kind, target=t, name=name, auto_answer=bool(auto_answer))


def _open_leg(session: Session, dispatch_id: int, target: str) -> DispatchLeg | None:
    stmt = select(DispatchLeg).where(
        DispatchLeg.dispatch_id == dispatch_id, DispatchLeg.target == target,
        or_(DispatchLeg.status.not_in(list(FINAL)), DispatchLeg.retry_at.is_not(None)))
    return session.scalars(stmt).first()


def add_leg(session: Session, dispatch_id: int, party: Party) -> DispatchLeg:
    dispatch = get_dispatch(session, dispatch_id)
    if dispatch.status != DispatchStatus.ACTIVE:
        raise Conflict(f"dispatch {dispatch_id} has already ended")
    other = _open_leg(session, dispatch_id, party.target)
    if other is not None:
        raise Conflict(f"{party.target} is already in dispatch {dispatch_id} (leg {other.id}, {other.status.value})")
    if len(dispatch.legs) >= MAX_LEGS * 2:
        raise Conflict(f"dispatch {dispatch_id} already has {len(dispatch.legs)} legs")
    leg = _leg_row(party)
    dispatch.legs.append(leg)
    _flush(session)
    return leg


def recordings(session: Session, room_id: int) -> list[dict[str, Any]]:
    """The dispatch room's recordings (its record), oldest first."""
    stmt = select(RoomRecording).where(RoomRecording.room_id == room_id).order_by(RoomRecording.started_at)
    return [{"id": r.id, "path": r.path, "started_at": _epoch(r.started_at), "ended_at": _epoch(r.ended_at)}
            for r in session.scalars(stmt)]


# ---- rows <-> the runtime's state --------------------------------------------------------------------------


def leg_of(row: DispatchLeg) -> Leg:
    party = Party(kind=row.kind, target=row.target, name=row.name, device_id=row.device_id, user_id=row.user_id,
                  organisation_id=row.organisation_id, auto_answer=row.auto_answer)
    return Leg(id=row.id, dispatch_id=row.dispatch_id, party=party, status=row.status, reason=row.reason,
               attempts=row.attempts, channel_id=row.channel_id, retry_at=_epoch(row.retry_at),
               answered_at=_epoch(row.answered_at), joined_at=_epoch(row.joined_at), ended_at=_epoch(row.ended_at),
               updated_at=_epoch(row.updated_at) or 0.0)


def state_of(row: Dispatch) -> DispatchState:
    policy = RetryPolicy(retries=row.retries, interval_s=row.retry_interval_s,
                         on=frozenset(LegStatus(s) for s in row.retry_on), ring_seconds=row.ring_seconds)
    return DispatchState(
        id=row.id, name=row.name, room_id=row.room_id, room_number=row.room.number, policy=policy,
        group_id=row.group_id, commander_user_id=row.commander_user_id, auto_answer=row.auto_answer,
        status=row.status, started_at=_epoch(row.started_at) or 0.0, ended_at=_epoch(row.ended_at),
        legs={leg.id: leg_of(leg) for leg in row.legs},
    )


def _write_leg(row: DispatchLeg, leg: Leg) -> None:
    row.status, row.reason, row.attempts, row.channel_id = leg.status, leg.reason[:200], leg.attempts, leg.channel_id
    row.retry_at, row.answered_at = _utc(leg.retry_at), _utc(leg.answered_at)
    row.joined_at, row.ended_at = _utc(leg.joined_at), _utc(leg.ended_at)
    row.updated_at = _utc(leg.updated_at) or datetime.now(UTC)


class DbDispatchStore:
    """The runtime's side: create dispatches and legs, write leg changes, load what is still active.
    Called from worker threads."""

    def __init__(self, sessions: sessionmaker[Session], *, room_plan: ExtensionPlan, internal: ExtensionPlan) -> None:
        self.sessions = sessions
        self.room_plan = room_plan
        self.internal = internal

    def create(self, *, group_id: int, commander_user_id: int | None, node: str, policy: RetryPolicy,
               name: str | None = None, auto_answer: bool = True) -> DispatchState:
        with self.sessions() as s:
            row = create_dispatch(s, group_id=group_id, commander_user_id=commander_user_id, node=node,
                                  room_plan=self.room_plan, policy=policy, name=name, auto_answer=auto_answer)
            s.commit()
            return state_of(row)

    def add_leg(self, dispatch_id: int, **party: Any) -> Leg:
        with self.sessions() as s:
            row = add_leg(s, dispatch_id, party_for(s, internal=self.internal, **party))
            s.commit()
            return leg_of(row)

    def save_legs(self, legs: Iterable[Leg]) -> None:
        with self.sessions() as s:
            for leg in legs:
                row = s.get(DispatchLeg, leg.id)
                if row is not None:
                    _write_leg(row, leg)
            s.commit()

    def ended(self, dispatch_id: int, at: float) -> None:
        """The dispatch is over: its room is deactivated (nobody rejoins an emergency room afterwards)."""
        with self.sessions() as s:
            row = get_dispatch(s, dispatch_id)
            row.status, row.ended_at = DispatchStatus.ENDED, _utc(at)
            get_room(s, row.room_id).active = False
            s.commit()

    def load(self, dispatch_id: int) -> DispatchState:
        with self.sessions() as s:
            return state_of(get_dispatch(s, dispatch_id))

    def load_active(self, node: str) -> list[DispatchState]:
        with self.sessions() as s:
            stmt = (select(Dispatch).options(selectinload(Dispatch.legs), selectinload(Dispatch.room))
                    .where(Dispatch.status == DispatchStatus.ACTIVE, Dispatch.node == node).order_by(Dispatch.id))
            return [state_of(row) for row in s.scalars(stmt)]

    def recordings(self, room_id: int) -> list[dict[str, Any]]:
        with self.sessions() as s:
            return recordings(s, room_id)

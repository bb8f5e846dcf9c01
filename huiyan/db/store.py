"""Create, read, update and delete organisations, users and devices, keeping the directory's rules.

Rules kept here (so the API, the seed and any CLI share them): a child organisation sits below its
parent's level; usernames, serials, codes are unique; extensions are unique across users AND devices
(both are SIP endpoints named by extension) and lie in the numbering plan; SIP passwords and display
names are safe to write into pjsip.conf; the last active admin cannot be removed.
Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from huiyan.db.errors import Conflict, Invalid, NotFound
from huiyan.db.models import Base, Device, DeviceKind, Organisation, OrgLevel, Role, User
from huiyan.db.numbering import DEFAULT_PLAN, ExtensionPlan
from huiyan.db.passwords import hash_password, new_sip_password

# Shared with the API schemas, so a bad value is refused with 422 before it gets here.
USERNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$"
SERIAL_RE = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
DEPARTMENT_RE = r"^[a-z][a-z0-9-]{0,31}$"
# Written into pjsip.conf unquoted: no whitespace, no ';' (comment), no quotes or backslash.
SIP_PASSWORD_RE = r"^[A-Za-z0-9!#$%&()*+,\-./:<=>?@\[\]^_{|}~]{12,64}$"
# Written into callerid="<name>" <ext>: no control characters, quotes, angle brackets, ';' or backslash.
DISPLAY_NAME_RE = r'^[^\x00-\x1f\x7f";<>\\]{0,100}$'

T = TypeVar("T", bound=Base)


def _check(pattern: str, value: str, what: str) -> None:
    if re.fullmatch(pattern, value) is None:
        raise Invalid(f"{what} {value!r} is not allowed (must match {pattern})")


def _get(session: Session, model: type[T], id_: int, what: str) -> T:
    obj = session.get(model, id_)
    if obj is None:
        raise NotFound(f"{what} {id_} not found")
    return obj


def _flush(session: Session) -> None:
    # The explicit checks give the clear messages; this catches a concurrent writer that got there first.
    # The session is then unusable until the caller rolls back (the API just closes it).
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"conflicts with existing data: {exc.orig}") from exc


def _page(session: Session, stmt: Select[tuple[T]], offset: int, limit: int) -> tuple[list[T], int]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.offset(offset).limit(limit)))
    return items, total


# ---- extensions -------------------------------------------------------------------------------


def used_extensions(session: Session) -> set[str]:
    rows = session.execute(union_all(select(User.extension), select(Device.extension)))
    return {r[0] for r in rows}


def allocate_extension(session: Session, plan: ExtensionPlan = DEFAULT_PLAN) -> str:
    """The lowest free extension in the plan."""
    used = used_extensions(session)
    for number in plan.numbers():
        if number not in used:
            return number
    raise Conflict(f"no free extension left in {plan.pattern}")


def _claim_extension(
    session: Session, extension: str | None, plan: ExtensionPlan, *, owner: User | Device | None = None
) -> str:
    if extension is None:
        return allocate_extension(session, plan)
    if not plan.contains(extension):
        raise Invalid(f"extension {extension!r} is outside the internal numbering plan {plan.pattern}")
    holder = session.scalar(select(User).where(User.extension == extension)) or session.scalar(
        select(Device).where(Device.extension == extension)
    )
    if holder is not None and holder is not owner:
        kind = "user" if isinstance(holder, User) else "device"
        raise Conflict(f"extension {extension} is already used by {kind} {holder.id}")
    return extension


def _sip_password(value: str | None) -> str:
    if value is None:
        return new_sip_password()
    _check(SIP_PASSWORD_RE, value, "SIP password")
    return value


# ---- organisations ----------------------------------------------------------------------------


def get_organisation(session: Session, org_id: int) -> Organisation:
    return _get(session, Organisation, org_id, "organisation")


def _existing_org(session: Session, org_id: int | None, what: str) -> Organisation | None:
    if org_id is None:
        return None
    org = session.get(Organisation, org_id)
    if org is None:
        raise Invalid(f"{what} {org_id} does not exist")
    return org


def _check_placement(level: OrgLevel, parent: Organisation | None, org: Organisation | None = None) -> None:
    if parent is not None and not level.is_below(parent.level):
        raise Invalid(
            f"a {level.value} cannot be placed under {parent.name} ({parent.level.value}): "
            f"a child's level must be below its parent's (province > city > county > office)"
        )
    if org is not None:
        for child in org.children:
            if not child.level.is_below(level):
                raise Invalid(
                    f"{org.name} cannot become a {level.value}: its child {child.name} is a {child.level.value}"
                )


def create_organisation(
    session: Session,
    *,
    name: str,
    code: str,
    level: OrgLevel | str,
    name_en: str = "",
    parent_id: int | None = None,
) -> Organisation:
    level = OrgLevel(level)
    _check(CODE_RE, code, "organisation code")
    if session.scalar(select(Organisation.id).where(Organisation.code == code)) is not None:
        raise Conflict(f"organisation code {code} already exists")
    parent = _existing_org(session, parent_id, "parent organisation")
    _check_placement(level, parent)
    org = Organisation(name=name, name_en=name_en, code=code, level=level, parent=parent)
    session.add(org)
    _flush(session)
    return org


def update_organisation(session: Session, org_id: int, changes: Mapping[str, Any]) -> Organisation:
    org = get_organisation(session, org_id)
    changes = dict(changes)
    unknown = set(changes) - {"name", "name_en", "code", "level", "parent_id"}
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of an organisation")
    if "code" in changes and changes["code"] != org.code:
        _check(CODE_RE, changes["code"], "organisation code")
        if session.scalar(select(Organisation.id).where(Organisation.code == changes["code"])) is not None:
            raise Conflict(f"organisation code {changes['code']} already exists")
    level = OrgLevel(changes.get("level", org.level))
    parent = (
        _existing_org(session, changes["parent_id"], "parent organisation") if "parent_id" in changes else org.parent
    )
    _check_placement(level, parent, org)
    for key in ("name", "name_en", "code"):
        if key in changes:
            setattr(org, key, changes[key])
    org.level = level
    org.parent = parent
    _flush(session)
    return org


def delete_organisation(session: Session, org_id: int) -> None:
    org = get_organisation(session, org_id)
    uses = {
        "sub-organisations": session.scalar(select(func.count()).where(Organisation.parent_id == org_id)),
        "users": session.scalar(select(func.count()).where(User.organisation_id == org_id)),
        "devices": session.scalar(select(func.count()).where(Device.organisation_id == org_id)),
    }
    in_use = ", ".join(f"{n} {what}" for what, n in uses.items() if n)
    if in_use:
        raise Conflict(f"organisation {org.name} still has {in_use}")
    session.delete(org)
    _flush(session)


def list_organisations(
    session: Session,
    *,
    level: OrgLevel | None = None,
    parent_id: int | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Organisation], int]:
    stmt = select(Organisation).order_by(Organisation.id)
    if level is not None:
        stmt = stmt.where(Organisation.level == level)
    if parent_id is not None:
        stmt = stmt.where(Organisation.parent_id == parent_id)
    if q:
        stmt = stmt.where(
            Organisation.name.icontains(q, autoescape=True)
            | Organisation.name_en.icontains(q, autoescape=True)
            | Organisation.code.icontains(q, autoescape=True)
        )
    return _page(session, stmt, offset, limit)


# ---- users ------------------------------------------------------------------------------------


def get_user(session: Session, user_id: int) -> User:
    return _get(session, User, user_id, "user")


def find_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    display_name: str = "",
    organisation_id: int | None = None,
    extension: str | None = None,
    sip_password: str | None = None,
    active: bool = True,
    plan: ExtensionPlan = DEFAULT_PLAN,
) -> User:
    _check(USERNAME_RE, username, "username")
    _check(DISPLAY_NAME_RE, display_name, "display name")
    if find_user(session, username) is not None:
        raise Conflict(f"username {username} already exists")
    _existing_org(session, organisation_id, "organisation")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=hash_password(password),
        role=Role(role),
        organisation_id=organisation_id,
        extension=_claim_extension(session, extension, plan),
        sip_password=_sip_password(sip_password),
        active=active,
    )
    session.add(user)
    _flush(session)
    return user


def _other_active_admins(session: Session, user: User) -> int:
    stmt = select(func.count()).where(User.role == Role.ADMIN, User.active.is_(True), User.id != user.id)
    return session.scalar(stmt) or 0


def update_user(
    session: Session, user_id: int, changes: Mapping[str, Any], *, plan: ExtensionPlan = DEFAULT_PLAN
) -> User:
    user = get_user(session, user_id)
    changes = dict(changes)
    allowed = {"username", "password", "display_name", "role", "organisation_id", "extension", "sip_password", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a user")
    if "username" in changes and changes["username"] != user.username:
        _check(USERNAME_RE, changes["username"], "username")
        if find_user(session, changes["username"]) is not None:
            raise Conflict(f"username {changes['username']} already exists")
    if "display_name" in changes:
        _check(DISPLAY_NAME_RE, changes["display_name"], "display name")
    if "organisation_id" in changes:
        _existing_org(session, changes["organisation_id"], "organisation")
    if "extension" in changes:
        changes["extension"] = _claim_extension(session, changes["extension"], plan, owner=user)
    if "sip_password" in changes:
        changes["sip_password"] = _sip_password(changes["sip_password"])
    if "role" in changes:
        changes["role"] = Role(changes["role"])
    loses_admin = user.role == Role.ADMIN and user.active and (
        changes.get("role", Role.ADMIN) != Role.ADMIN or changes.get("active", True) is False
    )
    if loses_admin and _other_active_admins(session, user) == 0:
        raise Conflict(f"{user.username} is the last active admin")
    if "password" in changes:
        user.password_hash = hash_password(changes.pop("password"))
    for key, value in changes.items():
        setattr(user, key, value)
    _flush(session)
    return user


def delete_user(session: Session, user_id: int) -> User:
    user = get_user(session, user_id)
    if user.role == Role.ADMIN and user.active and _other_active_admins(session, user) == 0:
        raise Conflict(f"{user.username} is the last active admin")
    session.delete(user)
    _flush(session)
    return user


def list_users(
    session: Session,
    *,
    role: Role | None = None,
    organisation_id: int | None = None,
    active: bool | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[User], int]:
    stmt = select(User).order_by(User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if organisation_id is not None:
        stmt = stmt.where(User.organisation_id == organisation_id)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if q:
        stmt = stmt.where(
            User.username.icontains(q, autoescape=True)
            | User.display_name.icontains(q, autoescape=True)
            | User.extension.icontains(q, autoescape=True)
        )
    return _page(session, stmt, offset, limit)


# ---- devices ----------------------------------------------------------------------------------


def get_device(session: Session, device_id: int) -> Device:
    return _get(session, Device, device_id, "device")


def find_device(session: Session, serial: str) -> Device | None:
    return session.scalar(select(Device).where(Device.serial == serial))


def create_device(
    session: Session,
    *,
    serial: str,
    organisation_id: int,
    kind: DeviceKind | str = DeviceKind.TERMINAL,
    model: str = "",
    department: str | None = None,
    extension: str | None = None,
    sip_password: str | None = None,
    display_name: str = "",
    active: bool = True,
    plan: ExtensionPlan = DEFAULT_PLAN,
) -> Device:
    _check(SERIAL_RE, serial, "serial")
    _check(DISPLAY_NAME_RE, display_name, "display name")
    if department is not None:
        _check(DEPARTMENT_RE, department, "department")
    if find_device(session, serial) is not None:
        raise Conflict(f"a device with serial {serial} already exists")
    org = _existing_org(session, organisation_id, "organisation")
    device = Device(
        serial=serial,
        model=model,
        kind=DeviceKind(kind),
        organisation=org,
        department=department,
        extension=_claim_extension(session, extension, plan),
        sip_password=_sip_password(sip_password),
        display_name=display_name,
        active=active,
    )
    session.add(device)
    _flush(session)
    return device


def update_device(
    session: Session, device_id: int, changes: Mapping[str, Any], *, plan: ExtensionPlan = DEFAULT_PLAN
) -> Device:
    device = get_device(session, device_id)
    changes = dict(changes)
    allowed = {
        "serial", "model", "kind", "organisation_id", "department", "extension", "sip_password",
        "display_name", "active", "last_seen",
    }  # fmt: skip
    unknown = set(changes) - allowed
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a device")
    if "serial" in changes and changes["serial"] != device.serial:
        _check(SERIAL_RE, changes["serial"], "serial")
        if find_device(session, changes["serial"]) is not None:
            raise Conflict(f"a device with serial {changes['serial']} already exists")
    if "display_name" in changes:
        _check(DISPLAY_NAME_RE, changes["display_name"], "display name")
    if changes.get("department") is not None:
        _check(DEPARTMENT_RE, changes["department"], "department")
    if "organisation_id" in changes:
        if changes["organisation_id"] is None:
            raise Invalid("a device must belong to an organisation")
        _existing_org(session, changes["organisation_id"], "organisation")
    if "kind" in changes:
        changes["kind"] = DeviceKind(changes["kind"])
    if "extension" in changes:
        changes["extension"] = _claim_extension(session, changes["extension"], plan, owner=device)
    if "sip_password" in changes:
        changes["sip_password"] = _sip_password(changes["sip_password"])
    for key, value in changes.items():
        setattr(device, key, value)
    _flush(session)
    return device


def delete_device(session: Session, device_id: int) -> Device:
    device = get_device(session, device_id)
    session.delete(device)
    _flush(session)
    return device


def list_devices(
    session: Session,
    *,
    organisation_id: int | None = None,
    kind: DeviceKind | None = None,
    department: str | None = None,
    active: bool | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
    online: bool | None = None,
) -> tuple[list[Device], int]:
    stmt = select(Device).order_by(Device.id)
    if online is not None:
        stmt = stmt.where(Device.online.is_(online))
    if organisation_id is not None:
        stmt = stmt.where(Device.organisation_id == organisation_id)
    if kind is not None:
        stmt = stmt.where(Device.kind == kind)
    if department is not None:
        stmt = stmt.where(Device.department == department)
    if active is not None:
        stmt = stmt.where(Device.active.is_(active))
    if q:
        stmt = stmt.where(
            Device.serial.icontains(q, autoescape=True)
            | Device.display_name.icontains(q, autoescape=True)
            | Device.extension.icontains(q, autoescape=True)
            | Device.model.icontains(q, autoescape=True)
        )
    return _page(session, stmt, offset, limit)

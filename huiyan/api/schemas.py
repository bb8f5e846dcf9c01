"""Request and response bodies. Secrets never leave except `sip_password`, and only where documented."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from huiyan.db.models import Device, DeviceKind, Organisation, OrgLevel, Role, User
from huiyan.db.store import CODE_RE, DEPARTMENT_RE, DISPLAY_NAME_RE, SERIAL_RE, SIP_PASSWORD_RE, USERNAME_RE

T = TypeVar("T")

EXTENSION_RE = r"^[0-9]{1,16}$"  # the numbering plan itself is checked by the directory (400)
SIP_PASSWORD_DOC = "12-64 printable ASCII characters, no spaces, quotes, backslash or ';'; generated if omitted"
SECRET_DOC = "only in single-item responses to admins (needed to configure the terminal); null otherwise"


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int


class _In(BaseModel):
    # A misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class _Patch(_In):
    """Only the fields sent are changed; `null` only where the field may be empty."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> _Patch:
        bad = sorted(k for k in self.model_fields_set if getattr(self, k) is None and k not in self.nullable)
        if bad:
            raise ValueError(f"{', '.join(bad)} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


# ---- auth -------------------------------------------------------------------------------------


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: Role
    expires_in: int = Field(description="seconds")


# ---- organisations ----------------------------------------------------------------------------


class OrganisationCreate(_In):
    name: str = Field(min_length=1, max_length=100, examples=["长春市司法局"])
    name_en: str = Field("", max_length=200, examples=["Changchun Municipal Bureau of Justice"])
    code: str = Field(pattern=CODE_RE, examples=["220100"])
    level: OrgLevel
    parent_id: int | None = Field(None, ge=1)


class OrganisationPatch(_Patch):
    nullable = frozenset({"parent_id"})

    name: str | None = Field(None, min_length=1, max_length=100)
    name_en: str | None = Field(None, max_length=200)
    code: str | None = Field(None, pattern=CODE_RE)
    level: OrgLevel | None = None
    parent_id: int | None = Field(None, ge=1)


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    name_en: str
    code: str
    level: OrgLevel
    parent_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, org: Organisation) -> OrganisationOut:
        return cls.model_validate(org)


# ---- users ------------------------------------------------------------------------------------


class UserCreate(_In):
    username: str = Field(pattern=USERNAME_RE)
    password: str = Field(min_length=8, max_length=128)
    display_name: str = Field("", max_length=100, pattern=DISPLAY_NAME_RE)
    role: Role
    organisation_id: int | None = Field(None, ge=1)
    extension: str | None = Field(None, pattern=EXTENSION_RE, description="auto-assigned if omitted")
    sip_password: str | None = Field(None, pattern=SIP_PASSWORD_RE, description=SIP_PASSWORD_DOC)
    active: bool = True


class UserPatch(_Patch):
    nullable = frozenset({"organisation_id"})

    username: str | None = Field(None, pattern=USERNAME_RE)
    password: str | None = Field(None, min_length=8, max_length=128)
    display_name: str | None = Field(None, max_length=100, pattern=DISPLAY_NAME_RE)
    role: Role | None = None
    organisation_id: int | None = Field(None, ge=1)
    extension: str | None = Field(None, pattern=EXTENSION_RE)
    sip_password: str | None = Field(None, pattern=SIP_PASSWORD_RE, description=SIP_PASSWORD_DOC)
    active: bool | None = None


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    organisation_id: int | None
    extension: str
    active: bool
    created_at: datetime
    sip_password: str | None = Field(None, description=SECRET_DOC)

    @classmethod
    def of(cls, user: User, *, with_secret: bool = False) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=user.role,
            organisation_id=user.organisation_id,
            extension=user.extension,
            active=user.active,
            created_at=user.created_at,
            sip_password=user.sip_password if with_secret else None,
        )


# ---- devices ----------------------------------------------------------------------------------


class DeviceCreate(_In):
    serial: str = Field(pattern=SERIAL_RE)
    organisation_id: int = Field(ge=1)
    kind: DeviceKind = DeviceKind.TERMINAL
    model: str = Field("", max_length=100)
    department: str | None = Field(
        None, pattern=DEPARTMENT_RE, description="head, command, correction, grassroots, hotline, ..."
    )
    extension: str | None = Field(None, pattern=EXTENSION_RE, description="auto-assigned if omitted")
    sip_password: str | None = Field(None, pattern=SIP_PASSWORD_RE, description=SIP_PASSWORD_DOC)
    display_name: str = Field("", max_length=100, pattern=DISPLAY_NAME_RE)
    active: bool = True


class DevicePatch(_Patch):
    nullable = frozenset({"department"})

    serial: str | None = Field(None, pattern=SERIAL_RE)
    organisation_id: int | None = Field(None, ge=1)
    kind: DeviceKind | None = None
    model: str | None = Field(None, max_length=100)
    department: str | None = Field(None, pattern=DEPARTMENT_RE)
    extension: str | None = Field(None, pattern=EXTENSION_RE)
    sip_password: str | None = Field(None, pattern=SIP_PASSWORD_RE, description=SIP_PASSWORD_DOC)
    display_name: str | None = Field(None, max_length=100, pattern=DISPLAY_NAME_RE)
    active: bool | None = None


class DeviceOut(BaseModel):
    id: int
    serial: str
    model: str
    kind: DeviceKind
    organisation_id: int
    department: str | None
    extension: str
    display_name: str
    active: bool
    online: bool = Field(False, description="its SIP contact is registered now (from AMI ContactStatus)")
    last_seen: datetime | None = Field(None, description="when it last went online or offline")
    created_at: datetime
    sip_password: str | None = Field(None, description=SECRET_DOC)

    @classmethod
    def of(cls, device: Device, *, with_secret: bool = False) -> DeviceOut:
        return cls(
            id=device.id,
            serial=device.serial,
            model=device.model,
            kind=device.kind,
            organisation_id=device.organisation_id,
            department=device.department,
            extension=device.extension,
            display_name=device.display_name,
            active=device.active,
            online=bool(device.online),
            last_seen=device.last_seen,
            created_at=device.created_at,
            sip_password=device.sip_password if with_secret else None,
        )


class ImportRowError(BaseModel):
    row: int = Field(description="1 is the header row, as a spreadsheet numbers it; 0 the file as a whole")
    column: str | None
    reason: str


class DeviceImportOut(BaseModel):
    created: int
    devices: list[DeviceOut] = Field(description="with their SIP passwords, to configure the terminals")


class PlanDepartmentOut(BaseModel):
    department: str
    label: str
    planned: int
    actual: int
    missing: int


class PlanOrgOut(BaseModel):
    organisation_id: int
    code: str
    name: str
    level: OrgLevel
    planned: int
    actual: int
    missing: int
    departments: list[PlanDepartmentOut]


class PlanLevelOut(BaseModel):
    level: OrgLevel
    organisations: int
    planned_each: int
    planned: int
    actual: int
    missing: int


class DevicePlanOut(BaseModel):
    planned: int
    actual: int
    missing: int
    levels: list[PlanLevelOut]
    organisations: list[PlanOrgOut]


# ---- health -----------------------------------------------------------------------------------


class HealthOut(BaseModel):
    ok: bool
    checks: dict[str, dict[str, Any]] = Field(description="one entry per part: asterisk, ami, fastagi, database...")

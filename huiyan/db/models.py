"""The directory's tables: organisations (the bureau tree), users (staff) and devices (terminals)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, DateTime, Dialect, Enum, ForeignKey, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: SQLite batch migrations can only drop what has a name, and names match across DBs.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OrgLevel(StrEnum):
    """Level in the justice administration, top to bottom: 省 province, 市州 city, 县区 county, 司法所 office."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    OFFICE = "office"

    @property
    def rank(self) -> int:
        """0 for the province, growing downwards."""
        return list(OrgLevel).index(self)

    def is_below(self, other: OrgLevel) -> bool:
        return self.rank > other.rank


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"  # 坐席, answers 12348
    SUPERVISOR = "supervisor"
    MEDIATOR = "mediator"  # 调解员
    OFFICER = "officer"  # 社区矫正工作人员
    LAWYER = "lawyer"


# Users with these roles get a browser (WebRTC) SIP endpoint in the "staff" caller class.
STAFF_ROLES: frozenset[Role] = frozenset(Role)


class DeviceKind(StrEnum):
    TERMINAL = "terminal"  # a bureau's video terminal (小鱼)
    SOFTPHONE = "softphone"
    BROWSER = "browser"  # a fixed browser client (WebRTC), e.g. a hotline seat's PC
    KIOSK = "kiosk"  # a citizen-facing terminal in a bureau's hall: may only call the services


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # VARCHAR, not a native PostgreSQL ENUM: adding a value later is then a code change, not a migration.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Organisation(Base):
    """A justice bureau (司法厅/司法局) or judicial office (司法所); they form a tree."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    code: Mapped[str] = mapped_column(String(32), unique=True)  # GB/T 2260 division code where one exists
    level: Mapped[OrgLevel] = mapped_column(_enum(OrgLevel, "org_level"))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    parent: Mapped[Organisation | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Organisation]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.code} {self.name} {self.level}>"


class User(Base):
    """A member of staff who logs in to the web console; also a browser SIP endpoint."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="RESTRICT"), index=True, default=None
    )
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    sip_password: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role} {self.extension}>"


class Device(Base):
    """A video terminal, softphone, fixed browser seat or citizen kiosk, registered by SIP."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[DeviceKind] = mapped_column(_enum(DeviceKind, "device_kind"), default=DeviceKind.TERMINAL)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="RESTRICT"), index=True)
    department: Mapped[str | None] = mapped_column(String(32), default=None)  # head, command, hotline...
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    sip_password: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(100), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Device {self.id} {self.serial} {self.kind} {self.extension}>"

"""Bulk device import (批量导入终端) from a CSV file: every row is checked before anything is created.

Columns (header row first, any order; Chinese headers accepted too): org_code, kind, serial, name, and
optionally department, model, extension. Extensions and SIP passwords are generated when not given, as
for a single device. A file with any bad row creates nothing; the answer lists every problem by row
(the header is row 1, as a spreadsheet numbers it) and column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.db import store
from huiyan.db.errors import DirectoryError
from huiyan.db.models import Device, DeviceKind, Organisation, User
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DEPARTMENT_RE, DISPLAY_NAME_RE, SERIAL_RE

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
REQUIRED = ("org_code", "kind", "serial", "name")
OPTIONAL = ("department", "model", "extension")
# What people type in a spreadsheet's first row, mapped to our column names.
ALIASES: dict[str, str] = {
    "org_code": "org_code", "organisation_code": "org_code", "organization_code": "org_code", "org": "org_code",
    "机构代码": "org_code", "机构编码": "org_code", "组织代码": "org_code", "组织编码": "org_code", "单位代码": "org_code",
    "kind": "kind", "type": "kind", "类型": "kind", "设备类型": "kind",
    "serial": "serial", "serial_number": "serial", "序列号": "serial", "设备序列号": "serial",
    "name": "name", "display_name": "name", "名称": "name", "设备名称": "name",
    "department": "department", "部门": "department",
    "model": "model", "型号": "model",
    "extension": "extension", "分机": "extension", "分机号": "extension",
}  # fmt: skip
KIND_WORDS: dict[str, DeviceKind] = {
    **{k.value: k for k in DeviceKind},
    "终端": DeviceKind.TERMINAL, "视频终端": DeviceKind.TERMINAL, "软电话": DeviceKind.SOFTPHONE,
    "浏览器": DeviceKind.BROWSER, "自助终端": DeviceKind.KIOSK, "一体机": DeviceKind.KIOSK,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1 = the header row
    column: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceRow:
    row: int
    organisation_id: int
    kind: DeviceKind
    serial: str
    display_name: str
    department: str | None = None
    model: str = ""
    extension: str | None = None


@dataclass
class Checked:
    rows: list[DeviceRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def error_dicts(self) -> list[dict[str, object]]:
        return [asdict(e) for e in self.errors]


class ImportRejected(Exception):
    """The file as a whole cannot be read (encoding, header, size): one or more RowErrors."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(e.reason for e in errors))
        self.errors = errors


def decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GB18030/GBK (what Excel saves on a Chinese Windows)."""
    if len(data) > MAX_BYTES:
        raise ImportRejected([RowError(0, None, f"the file is larger than {MAX_BYTES // 1024 // 1024} MB")])
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected([RowError(0, None, "the file is UTF-16: save it as CSV UTF-8 (or GBK) and try again")])
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    reason = "the file is neither UTF-8 nor GBK text: save it as CSV UTF-8 and try again"
    raise ImportRejected([RowError(0, None, reason)])


def parse(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header's column names and each non-empty data row as {column: value} with its row number."""
    lines = list(csv.reader(io.StringIO(text)))
    while lines and not any(c.strip() for c in lines[0]):
        lines.pop(0)
    if not lines:
        raise ImportRejected([RowError(1, None, "the file is empty: the first row must name the columns")])
    header = [h.strip() for h in lines[0]]
    columns: list[str] = []
    errors = []
    for h in header:
        name = ALIASES.get(h.lower().replace(" ", "_"), ALIASES.get(h))
        if name is None:
            errors.append(RowError(1, h or None, f"unknown column {h!r}; expected {', '.join(REQUIRED + OPTIONAL)}"))
        elif name in columns:
            errors.append(RowError(1, name, f"column {name} appears twice"))
        columns.append(name or h)
    for name in REQUIRED:
        if name not in columns:
            errors.append(RowError(1, name, f"missing column {name}"))
    if errors:
        raise ImportRejected(errors)
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            raise ImportRejected([RowError(number, None, f"{len(cells)} cells but only {len(columns)} columns")])
        rows.append((number, {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(columns)}))
    if not rows:
        raise ImportRejected([RowError(2, None, "no device rows below the header")])
    if len(rows) > MAX_ROWS:
        raise ImportRejected([RowError(0, None, f"{len(rows)} rows: at most {MAX_ROWS} per file")])
    return columns, rows


def check(
    rows: list[tuple[int, dict[str, str]]],
    *,
    org_ids: Mapping[str, int],
    serials_taken: set[str],
    extensions_taken: set[str],
    plan: ExtensionPlan,
) -> Checked:
    """Pure: every problem of every row, against the organisations, serials and extensions that exist."""
    out = Checked()
    seen_serial: dict[str, int] = {}
    seen_ext: dict[str, int] = {}
    for number, cells in rows:
        bad = len(out.errors)

        def err(column: str, reason: str, number: int = number) -> None:
            out.errors.append(RowError(number, column, reason))

        org_code = cells.get("org_code", "")
        org_id = org_ids.get(org_code)
        if not org_code:
            err("org_code", "empty: give the organisation's code (e.g. 220100)")
        elif org_id is None:
            err("org_code", f"no organisation has the code {org_code!r}")
        kind = KIND_WORDS.get(cells.get("kind", "").lower() or cells.get("kind", ""))
        if kind is None:
            err("kind", f"{cells.get('kind', '')!r} is not a device kind; use {', '.join(k.value for k in DeviceKind)}")
        serial = cells.get("serial", "")
        if not serial:
            err("serial", "empty")
        elif not re.fullmatch(SERIAL_RE, serial):
            err("serial", "only letters, digits and . _ : - (at most 64, starting with a letter or digit)")
        elif serial in seen_serial:
            err("serial", f"{serial} is also on row {seen_serial[serial]}")
        elif serial in serials_taken:
            err("serial", f"a device with serial {serial} already exists")
        if serial:
            seen_serial.setdefault(serial, number)
        name = cells.get("name", "")
        if not re.fullmatch(DISPLAY_NAME_RE, name):
            err("name", "at most 100 characters, without quotes, ';', '<', '>', '\\' or control characters")
        department = cells.get("department") or None
        if department is not None and not re.fullmatch(DEPARTMENT_RE, department):
            err("department", "lower-case letters, digits and '-', starting with a letter (e.g. hotline)")
        model = cells.get("model", "")
        if len(model) > 100:
            err("model", "at most 100 characters")
        extension = cells.get("extension") or None
        if extension is not None:
            if not plan.contains(extension):
                err("extension", f"{extension!r} is outside the internal numbering plan {plan.pattern}")
            elif extension in seen_ext:
                err("extension", f"{extension} is also on row {seen_ext[extension]}")
            elif extension in extensions_taken:
                err("extension", f"extension {extension} is already in use")
            seen_ext.setdefault(extension, number)
        if len(out.errors) == bad and org_id is not None and kind is not None:
            out.rows.append(DeviceRow(number, org_id, kind, serial, name, department, model, extension))
    return out


def check_file(session: Session, data: bytes, plan: ExtensionPlan) -> Checked:
    """Decode, parse and check a file against the database (reads only)."""
    _, rows = parse(decode(data))
    codes = {r.get("org_code", "") for _, r in rows}
    serials = {r.get("serial", "") for _, r in rows}
    extensions = {r.get("extension", "") for _, r in rows} - {""}
    return check(
        rows,
        org_ids={code: id_ for code, id_ in session.execute(
            select(Organisation.code, Organisation.id).where(Organisation.code.in_(codes)))},
        serials_taken=set(session.scalars(select(Device.serial).where(Device.serial.in_(serials)))),
        extensions_taken=set(session.scalars(select(Device.extension).where(Device.extension.in_(extensions))))
        | set(session.scalars(select(User.extension).where(User.extension.in_(extensions)))),
        plan=plan,
    )


def create_all(session: Session, rows: list[DeviceRow], plan: ExtensionPlan) -> list[Device]:
    """Create the checked rows in the caller's transaction (flushed, not committed). A rule the check could
    not see (a concurrent insert) raises ImportRejected naming the row; the caller then rolls back."""
    devices = []
    for r in rows:
        try:
            devices.append(store.create_device(
                session, serial=r.serial, organisation_id=r.organisation_id, kind=r.kind, model=r.model,
                department=r.department, extension=r.extension, display_name=r.display_name, plan=plan,
            ))
        except DirectoryError as e:
            raise ImportRejected([RowError(r.row, None, str(e))]) from e
    return devices

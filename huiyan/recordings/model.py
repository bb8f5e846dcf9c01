"""Recordings as evidence, the pure parts: the hash chain, what `verify` concludes, HTTP Range arithmetic,
signed share links, retention, and who may see which recording. No I/O here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from huiyan.recordings.settings import RETENTION_RE

GENESIS = "0" * 64

# The fields a row's digest covers, in this order; with `prev_digest` last. `status`/`status_at` (purged,
# superseded) are deliberately outside: they change after insertion, and every such change is audited.
CHAIN_FIELDS: tuple[str, ...] = (
    "seq", "job_id", "session_type", "session_id", "call_id", "room_id", "case_id", "organisation_id",
    "participants", "started_at", "ended_at", "duration_ms", "size_bytes", "container", "codecs", "sha256",
    "path", "supersedes_id", "created_at",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a chain row")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        raise ValueError("floats have no canonical text: store integers (milliseconds, bytes)")
    if hasattr(value, "value"):  # an enum
        return value.value
    return value


def chain_payload(fields: Mapping[str, Any], prev_digest: str) -> bytes:
    """The exact bytes a row's digest is the SHA-256 of: canonical JSON (sorted keys, UTF-8, no spaces)."""
    body = {name: _canonical(fields.get(name)) for name in CHAIN_FIELDS}
    body["prev_digest"] = prev_digest
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def row_digest(fields: Mapping[str, Any], prev_digest: str) -> str:
    return hashlib.sha256(chain_payload(fields, prev_digest)).hexdigest()


def row_fields(row: Any) -> dict[str, Any]:
    """The chained fields of an ORM row (or any object with those attributes)."""
    return {name: getattr(row, name) for name in CHAIN_FIELDS}


def truncate_ms(t: datetime) -> datetime:
    """Datetimes go into the chain at millisecond precision (every database keeps that exactly)."""
    return t.astimezone(UTC).replace(microsecond=t.microsecond // 1000 * 1000)


# ---- verify -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainRow:
    """What verify needs of a row: its chained fields, stored digests, status and file."""

    id: int
    fields: Mapping[str, Any]
    prev_digest: str
    digest: str
    status: str  # complete, purged, superseded
    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class FileState:
    """A file as found on disk now: size and SHA-256 (None when it is not there)."""

    size: int
    sha256: str


@dataclass
class VerifyReport:
    rows: int = 0
    files_checked: int = 0
    chain_broken: list[str] = field(default_factory=list)  # one line per break: which row, what is wrong
    changed: list[str] = field(default_factory=list)  # path: file differs from its row (hash or size)
    missing: list[str] = field(default_factory=list)  # path: a complete row's file is not there
    extra: list[str] = field(default_factory=list)  # path: a file no row or job knows
    unlogged_deletions: list[str] = field(default_factory=list)  # a purged/superseded row with no audit entry

    @property
    def ok(self) -> bool:
        return not (self.chain_broken or self.changed or self.missing or self.extra or self.unlogged_deletions)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "files_checked": self.files_checked,
                "chain_broken": self.chain_broken, "changed": self.changed, "missing": self.missing,
                "extra": self.extra, "unlogged_deletions": self.unlogged_deletions}


def check_chain(rows: Sequence[ChainRow]) -> list[str]:
    """Rows in `seq` order, from the first: every digest must be recomputable and link to the one before.
    Catches an edited row (its digest no longer matches), a removed row (a gap in seq, or the next row's
    prev_digest points at nothing) and an inserted row (it would need every later digest rewritten)."""
    problems: list[str] = []
    prev = GENESIS
    expected_seq = 1
    for r in rows:
        seq = r.fields.get("seq")
        if seq != expected_seq:
            problems.append(f"row {r.id}: seq {seq}, expected {expected_seq} (a row was removed or inserted)")
        if r.prev_digest != prev:
            problems.append(f"row {r.id} (seq {seq}): prev_digest does not match the digest of the row before")
        if row_digest(r.fields, r.prev_digest) != r.digest:
            problems.append(f"row {r.id} (seq {seq}): digest does not match its fields (the row was changed)")
        prev = r.digest
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    return problems


def verify(rows: Sequence[ChainRow], files: Mapping[str, FileState | None], present: Iterable[str],
           known_elsewhere: Iterable[str], deletions_logged: Iterable[int]) -> VerifyReport:
    """The verdict. `files`: each complete row's path -> what is on disk (None: missing); `present`: every
    file under the recordings directory (relative paths); `known_elsewhere`: files jobs account for (raw
    captures waiting or kept, temporary files of running jobs); `deletions_logged`: ids of rows whose
    purge/supersede is in the audit."""
    rep = VerifyReport(rows=len(rows))
    rep.chain_broken = check_chain(rows)
    logged = set(deletions_logged)
    known = set(known_elsewhere)
    for r in rows:
        known.add(r.path)
        if r.status != "complete":
            if r.id not in logged:
                rep.unlogged_deletions.append(f"{r.path} (row {r.id} {r.status} without an audit entry)")
            continue
        state = files.get(r.path)
        if state is None:
            rep.missing.append(r.path)
            continue
        rep.files_checked += 1
        if state.sha256 != r.sha256 or state.size != r.size_bytes:
            rep.changed.append(r.path)
    rep.extra = sorted(p for p in present if p not in known)
    return rep


# ---- HTTP Range ---------------------------------------------------------------------------------------


class RangeNotSatisfiable(ValueError):
    """416: the Range header asks for bytes the file does not have, or is malformed."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to send, or None for the whole file (no header, another unit, several ranges —
    which RFC 9110 lets a server answer with the whole file). Raises RangeNotSatisfiable for a malformed
    bytes range, one starting past the end, or any range of an empty file."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    parts = spec.split(",")
    if len(parts) > 1:
        return None
    m = _RANGE_SPEC.match(parts[0])
    if m is None or (not m.group(1) and not m.group(2)):
        raise RangeNotSatisfiable(f"malformed range {header!r}")
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(f"empty suffix range {header!r} (file of {size} bytes)")
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        raise RangeNotSatisfiable(f"range {header!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts past the end ({size} bytes)")
    return ByteRange(start, min(end, size - 1))


# ---- share links ---------------------------------------------------------------------------------------


class ShareError(Exception):
    status = 403


class BadSignature(ShareError):
    status = 403


class LinkExpired(ShareError):
    status = 410


@dataclass(frozen=True, slots=True)
class ShareGrant:
    recording_id: int
    expires_at: int  # epoch seconds
    created_by: int  # user id
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_share(key: str, recording_id: int, created_by: int, expires_at: int, nonce: str | None = None) -> str:
    """`<payload>.<mac>`: the payload names the recording, expiry and issuer; the mac is HMAC-SHA256."""
    body = json.dumps({"r": recording_id, "e": expires_at, "u": created_by, "n": nonce or secrets.token_hex(6)},
                      separators=(",", ":"), sort_keys=True).encode()
    payload = _b64(body)
    mac = hmac.new(key.encode(), b"huiyan-share:" + payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def check_share(key: str, token: str, now: float) -> ShareGrant:
    """The grant, if the signature is ours (else BadSignature, 403) and it has not expired (else
    LinkExpired, 410). The signature is checked first: an expired forgery is a forgery."""
    payload, _, mac = token.partition(".")
    if not payload or not mac:
        raise BadSignature("malformed share link")
    want = hmac.new(key.encode(), b"huiyan-share:" + payload.encode(), hashlib.sha256).digest()
    try:
        got = _unb64(mac)
        body = json.loads(_unb64(payload))
    except (ValueError, TypeError) as exc:
        raise BadSignature("malformed share link") from exc
    if not hmac.compare_digest(want, got):
        raise BadSignature("bad share link signature")
    try:
        grant = ShareGrant(int(body["r"]), int(body["e"]), int(body["u"]), str(body["n"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise BadSignature("malformed share link") from exc
    if now >= grant.expires_at:
        raise LinkExpired(f"share link expired at {datetime.fromtimestamp(grant.expires_at, UTC):%Y-%m-%d %H:%M:%S} UTC")
    return grant


# ---- retention ----------------------------------------------------------------------------------------


def retain_until(ended_at: datetime, spec: str) -> datetime | None:
    """When a recording of this retention spec ('3y', '18m', '90d', 'forever') may be purged; None: never.
    Years and months are calendar ones (29 February → 28 February in a year without it)."""
    m = RETENTION_RE.match(spec.strip().lower())
    if m is None:
        raise ValueError(f"bad retention {spec!r}")
    if not m.group(1):
        return None
    n, unit = int(m.group(1)), m.group(2)
    if unit == "d":
        return ended_at + timedelta(days=n)
    months = n * 12 if unit == "y" else n
    y, mo = divmod(ended_at.month - 1 + months, 12)
    year, month = ended_at.year + y, mo + 1
    day = ended_at.day
    while True:
        try:
            return ended_at.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


@dataclass(frozen=True, slots=True)
class RetentionCandidate:
    id: int
    session_type: str
    ended_at: datetime
    status: str
    case_open: bool = False  # a mediation case still open keeps its recordings whatever their age


def due_for_purge(rows: Iterable[RetentionCandidate], retention: Mapping[str, str], now: datetime
                  ) -> list[RetentionCandidate]:
    """Complete rows past their session type's retention. A type without a rule is kept (never purged by
    accident); purged and superseded rows have no file left to purge."""
    out = []
    for r in rows:
        if r.status != "complete" or r.case_open:
            continue
        spec = retention.get(r.session_type)
        if spec is None:
            continue
        until = retain_until(r.ended_at, spec)
        if until is not None and until <= now:
            out.append(r)
    return out


# ---- who may see a recording ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordingScope:
    """Admins see everything; a supervisor the recordings of their organisation and those below (all when
    attached to none); everyone the recordings they took part in and those of mediation cases they
    mediate."""

    user_id: int
    role: str
    everything: bool = False
    organisations: frozenset[int] = frozenset()
    cases: frozenset[int] = frozenset()  # mediation cases this user mediates

    def sees(self, organisation_id: int | None, participant_user_ids: Iterable[int | None],
             case_id: int | None) -> bool:
        if self.everything:
            return True
        if organisation_id is not None and organisation_id in self.organisations:
            return True
        if case_id is not None and case_id in self.cases:
            return True
        return self.user_id in set(participant_user_ids)




# ---- disk ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiskState:
    free_bytes: int
    total_bytes: int
    threshold: int

    @property
    def low(self) -> bool:
        return self.free_bytes < self.threshold

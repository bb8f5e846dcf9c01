"""Recordings as evidence, the pure parts and the store without ffmpeg: the hash chain and `verify` (a flipped
byte, a deleted file, an inserted file, an edited or removed row are each detected), Range arithmetic,
share-link signing and expiry, retention selection and purge, who sees which recording."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from huiyan.db.models import MediationCase, Recording, RecordingAudit, RecordingStatus, Role
from huiyan.recordings import model, ops, store
from huiyan.recordings.model import (
    BadSignature,
    ByteRange,
    LinkExpired,
    RangeNotSatisfiable,
    RetentionCandidate,
    check_share,
    due_for_purge,
    parse_range,
    retain_until,
    sign_share,
)
from huiyan.recordings.settings import DEFAULT_RETENTION, RecordingSettings

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def add_recording(sessions: sessionmaker[Session], root: Path, name: str, content: bytes, *,
                  session_type: str = "hotline", organisation_id: int | None = None,
                  participants: list[dict[str, Any]] | None = None, case_id: int | None = None,
                  ended_at: datetime = T0, job_id: int | None = None) -> int:
    """A finalised recording as the pipeline leaves it: the file in the store, its row at the chain's end."""
    path = root / session_type / f"{name}.m4a"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with sessions() as s:
        seq, _ = store.last_link(s)
        fields = {
            "job_id": job_id if job_id is not None else 1000 + seq, "session_type": session_type,
            "session_id": name, "call_id": name if session_type == "hotline" else None, "room_id": None,
            "case_id": case_id, "organisation_id": organisation_id, "participants": participants or [],
            "started_at": ended_at - timedelta(minutes=5), "ended_at": ended_at, "duration_ms": 300_000,
            "size_bytes": len(content), "container": "m4a", "codecs": ["aac"],
            "sha256": hashlib.sha256(content).hexdigest(), "path": str(path.relative_to(root)),
            "supersedes_id": None, "created_at": ended_at + timedelta(seconds=10),
        }
        rec = store.append(s, fields, participants or [])
        s.commit()
        return rec.id


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "recordings"
    r.mkdir()
    return r


@pytest.fixture
def three(db_sessions: sessionmaker[Session], root: Path) -> list[int]:
    return [add_recording(db_sessions, root, f"call{i}", f"audio of call {i}".encode() * 100) for i in range(3)]


# ---- the chain and verify ----------------------------------------------------------------------------


def test_rows_link_into_a_chain(db_sessions: sessionmaker[Session], three: list[int]) -> None:
    with db_sessions() as s:
        rows = store.chain_rows(s)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_digest == model.GENESIS
    assert rows[1].prev_digest == rows[0].digest and rows[2].prev_digest == rows[1].digest
    assert rows[2].digest == model.row_digest(model.row_fields(rows[2]), rows[1].digest)
    assert model.check_chain([_chain_row(r) for r in rows]) == []


def _chain_row(r: Recording) -> model.ChainRow:
    return model.ChainRow(r.id, model.row_fields(r), r.prev_digest, r.digest, r.status.value, r.path, r.sha256,
                          r.size_bytes)


def test_verify_of_an_intact_store_is_ok(db_sessions: sessionmaker[Session], root: Path, three: list[int]) -> None:
    rep = ops.verify_store(db_sessions, root)
    assert rep.ok and rep.rows == 3 and rep.files_checked == 3, rep.as_dict()


def test_verify_detects_a_flipped_byte(db_sessions: sessionmaker[Session], root: Path, three: list[int]) -> None:
    f = root / "hotline" / "call1.m4a"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and rep.changed == ["hotline/call1.m4a"]
    assert rep.missing == [] and rep.extra == [] and rep.chain_broken == []


def test_verify_detects_a_deleted_file(db_sessions: sessionmaker[Session], root: Path, three: list[int]) -> None:
    (root / "hotline" / "call2.m4a").unlink()
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and rep.missing == ["hotline/call2.m4a"] and rep.changed == [] and rep.extra == []


def test_verify_detects_an_inserted_file(db_sessions: sessionmaker[Session], root: Path, three: list[int]) -> None:
    (root / "hotline" / "forged.m4a").write_bytes(b"not ours")
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and rep.extra == ["hotline/forged.m4a"] and rep.missing == [] and rep.changed == []


def test_verify_detects_an_edited_row(db_sessions: sessionmaker[Session], root: Path, three: list[int]) -> None:
    with db_sessions() as s:  # someone rewrites who took part, straight in the database
        s.execute(update(Recording).where(Recording.seq == 2).values(participants=[{"role": "agent", "user_id": 9}]))
        s.commit()
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and len(rep.chain_broken) == 1 and "seq 2" in rep.chain_broken[0]
    assert "changed" in rep.chain_broken[0]


def test_verify_detects_a_removed_row_even_with_its_file_gone(db_sessions: sessionmaker[Session], root: Path,
                                                               three: list[int]) -> None:
    with db_sessions() as s:
        s.execute(delete(Recording).where(Recording.seq == 2))
        s.commit()
    (root / "hotline" / "call1.m4a").unlink()  # seq 2 is call1
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and rep.missing == [] and rep.extra == []
    assert any("removed or inserted" in p for p in rep.chain_broken), rep.chain_broken


def test_verify_detects_a_row_re_hashed_to_match_a_swapped_file(db_sessions: sessionmaker[Session], root: Path,
                                                                 three: list[int]) -> None:
    # A forger replaces a file and updates the row's hash and size to match: the file check passes, the
    # chain does not (the row's digest covers its hash).
    f = root / "hotline" / "call0.m4a"
    f.write_bytes(b"forged audio")
    with db_sessions() as s:
        s.execute(update(Recording).where(Recording.seq == 1).values(
            sha256=hashlib.sha256(b"forged audio").hexdigest(), size_bytes=len(b"forged audio")))
        s.commit()
    rep = ops.verify_store(db_sessions, root)
    assert rep.changed == [] and not rep.ok and any("seq 1" in p for p in rep.chain_broken)


def test_files_of_unfinished_jobs_are_not_extra(db_sessions: sessionmaker[Session], root: Path,
                                                three: list[int]) -> None:
    raw = root / "hotline" / "live.wav"
    raw.write_bytes(b"RIFF....")
    with db_sessions() as s:
        store.enqueue(s, key="room:" + str(raw), session_type="room", source="room_recording", source_ref=str(raw))
    assert ops.verify_store(db_sessions, root).ok


def test_chain_payload_is_canonical_and_refuses_naive_times() -> None:
    fields = {"seq": 1, "started_at": T0, "participants": [{"b": 1, "a": "张三"}]}
    assert model.chain_payload(fields, model.GENESIS) == model.chain_payload(dict(reversed(fields.items())),
                                                                             model.GENESIS)
    assert "张三".encode() in model.chain_payload(fields, model.GENESIS)
    with pytest.raises(ValueError):
        model.chain_payload({"started_at": datetime(2026, 1, 1)}, model.GENESIS)
    with pytest.raises(ValueError):
        model.chain_payload({"duration_ms": 1.5}, model.GENESIS)


# ---- HTTP Range -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "size", "want"), [
    (None, 1000, None),
    ("bytes=0-99", 1000, ByteRange(0, 99)),
    ("bytes=100-", 1000, ByteRange(100, 999)),
    ("bytes=-100", 1000, ByteRange(900, 999)),
    ("bytes=-5000", 1000, ByteRange(0, 999)),  # a suffix longer than the file: all of it
    ("bytes=990-5000", 1000, ByteRange(990, 999)),  # an end past the file is clipped
    ("bytes=999-999", 1000, ByteRange(999, 999)),
    (" bytes = 5 - 9 ", 1000, ByteRange(5, 9)),
    ("items=0-5", 1000, None),  # another unit: ignored, the whole file
    ("bytes=0-1,5-9", 1000, None),  # several ranges: the whole file (allowed by RFC 9110)
])
def test_range_arithmetic(header: str | None, size: int, want: ByteRange | None) -> None:
    assert parse_range(header, size) == want


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=1000-", 1000), ("bytes=1000-1001", 1000), ("bytes=5-2", 1000), ("bytes=-0", 1000),
    ("bytes=-", 1000), ("bytes=abc", 1000), ("bytes=0-", 0), ("bytes=-1", 0),
])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_content_range_and_length() -> None:
    r = ByteRange(100, 199)
    assert r.length == 100 and r.content_range(1000) == "bytes 100-199/1000"


# ---- share links -----------------------------------------------------------------------------------------


def test_share_link_round_trip_and_expiry() -> None:
    token = sign_share("key", 42, 7, expires_at=1_000_000)
    grant = check_share("key", token, now=999_999)
    assert (grant.recording_id, grant.created_by, grant.expires_at) == (42, 7, 1_000_000)
    with pytest.raises(LinkExpired) as e:
        check_share("key", token, now=1_000_000)
    assert e.value.status == 410


def test_share_link_tampering_is_a_bad_signature() -> None:
    token = sign_share("key", 42, 7, expires_at=2_000_000_000)
    with pytest.raises(BadSignature):
        check_share("other key", token, now=0)
    payload, _, mac = token.partition(".")
    other = sign_share("key", 43, 7, expires_at=2_000_000_000).partition(".")[0]
    with pytest.raises(BadSignature):  # someone else's recording with this link's signature
        check_share("key", f"{other}.{mac}", now=0)
    for bad in ("", "x", "x.", ".y", f"{payload}.!!!", f"{payload}.{mac[:-2]}"):
        with pytest.raises(BadSignature) as e:
            check_share("key", bad, now=0)
        assert e.value.status == 403
    # an expired forgery is a forgery (403), not "expired" (410)
    with pytest.raises(BadSignature):
        check_share("other key", sign_share("key", 1, 1, expires_at=10), now=100)


# ---- retention -------------------------------------------------------------------------------------------


def test_retain_until_is_calendar_arithmetic() -> None:
    assert retain_until(datetime(2024, 2, 29, tzinfo=UTC), "1y") == datetime(2025, 2, 28, tzinfo=UTC)
    assert retain_until(datetime(2026, 1, 31, tzinfo=UTC), "1m") == datetime(2026, 2, 28, tzinfo=UTC)
    assert retain_until(datetime(2026, 11, 15, tzinfo=UTC), "3y") == datetime(2029, 11, 15, tzinfo=UTC)
    assert retain_until(datetime(2026, 11, 15, tzinfo=UTC), "18m") == datetime(2028, 5, 15, tzinfo=UTC)
    assert retain_until(T0, "90d") == T0 + timedelta(days=90)
    assert retain_until(T0, "forever") is None
    with pytest.raises(ValueError):
        retain_until(T0, "3 years")


def test_retention_selection_per_session_type() -> None:
    now = datetime(2027, 6, 1, tzinfo=UTC)
    rows = [
        RetentionCandidate(1, "hotline", datetime(2026, 5, 31, tzinfo=UTC), "complete"),  # 1y passed
        RetentionCandidate(2, "hotline", datetime(2026, 6, 2, tzinfo=UTC), "complete"),  # not yet
        RetentionCandidate(3, "mediation", datetime(2024, 5, 1, tzinfo=UTC), "complete"),  # 3y passed
        RetentionCandidate(4, "mediation", datetime(2024, 7, 1, tzinfo=UTC), "complete"),  # 3y not yet
        RetentionCandidate(5, "mediation", datetime(2020, 1, 1, tzinfo=UTC), "complete", case_open=True),
        RetentionCandidate(6, "hotline", datetime(2020, 1, 1, tzinfo=UTC), "purged"),  # already gone
        RetentionCandidate(7, "unknown-type", datetime(2000, 1, 1, tzinfo=UTC), "complete"),  # no rule: kept
        RetentionCandidate(8, "checkin", datetime(2024, 5, 1, tzinfo=UTC), "complete"),
        RetentionCandidate(9, "meeting", datetime(2026, 5, 1, tzinfo=UTC), "complete"),
    ]
    assert [r.id for r in due_for_purge(rows, DEFAULT_RETENTION, now)] == [1, 3, 8, 9]
    assert [r.id for r in due_for_purge(rows, {**DEFAULT_RETENTION, "meeting": "forever"}, now)] == [1, 3, 8]


def test_retention_settings_are_validated() -> None:
    assert RecordingSettings(retention={"meeting": "2Y"}).retention["meeting"] == "2y"
    assert RecordingSettings().retention == DEFAULT_RETENTION
    with pytest.raises(ValueError):
        RecordingSettings(retention={"meeting": "two years"})


def test_purge_deletes_files_keeps_rows_in_the_chain_and_audits(db_sessions: sessionmaker[Session], root: Path) -> None:
    old = add_recording(db_sessions, root, "old", b"old call" * 50, ended_at=datetime(2024, 1, 1, tzinfo=UTC))
    new = add_recording(db_sessions, root, "new", b"new call" * 50, ended_at=datetime(2026, 10, 1, tzinfo=UTC))
    med = add_recording(db_sessions, root, "med", b"mediation" * 50, session_type="mediation",
                        ended_at=datetime(2024, 1, 1, tzinfo=UTC))
    now = datetime(2026, 11, 29, tzinfo=UTC)
    planned = ops.purge(db_sessions, root, DEFAULT_RETENTION, now=now, dry_run=True)
    assert [p.id for p in planned] == [old] and (root / "hotline" / "old.m4a").exists()
    with db_sessions() as s:
        assert s.scalar(select(RecordingAudit).where(RecordingAudit.action == "purge")) is None

    done = ops.purge(db_sessions, root, DEFAULT_RETENTION, now=now, actor="cli")
    assert [p.id for p in done] == [old]
    assert not (root / "hotline" / "old.m4a").exists()
    assert (root / "hotline" / "new.m4a").exists() and (root / "mediation" / "med.m4a").exists()
    with db_sessions() as s:
        rec = s.get(Recording, old)
        assert rec is not None and rec.status == RecordingStatus.PURGED and rec.status_at is not None
        audit = s.scalars(select(RecordingAudit).where(RecordingAudit.action == "purge")).all()
        assert [(a.recording_id, a.username, a.allowed) for a in audit] == [(old, "cli", True)]
        assert audit[0].detail["path"] == "hotline/old.m4a" and audit[0].detail["sha256"] == rec.sha256
    # the chain still verifies, and the purged file is not "missing"
    rep = ops.verify_store(db_sessions, root)
    assert rep.ok, rep.as_dict()
    assert ops.purge(db_sessions, root, DEFAULT_RETENTION, now=now) == []  # nothing left to do
    assert new and med


def test_a_purge_without_its_audit_line_is_reported(db_sessions: sessionmaker[Session], root: Path,
                                                    three: list[int]) -> None:
    with db_sessions() as s:  # a row marked purged and its file deleted behind the purge job's back
        s.execute(update(Recording).where(Recording.seq == 3).values(status=RecordingStatus.PURGED))
        s.commit()
    (root / "hotline" / "call2.m4a").unlink()
    rep = ops.verify_store(db_sessions, root)
    assert not rep.ok and rep.missing == [] and len(rep.unlogged_deletions) == 1


# ---- who sees what ---------------------------------------------------------------------------------------


def test_scope_rules() -> None:
    admin = model.RecordingScope(1, "admin", everything=True)
    sup = model.RecordingScope(2, "supervisor", organisations=frozenset({10, 11}))
    mediator = model.RecordingScope(3, "mediator", cases=frozenset({5}))
    agent = model.RecordingScope(4, "agent")
    assert admin.sees(None, [], None)
    assert sup.sees(11, [], None) and not sup.sees(12, [], None) and not sup.sees(None, [], None)
    assert mediator.sees(99, [], 5) and not mediator.sees(99, [], 6)
    assert agent.sees(99, [None, 4], None) and not agent.sees(99, [None, 5], None)


def test_scope_of_from_the_database(db_sessions: sessionmaker[Session], root: Path) -> None:
    from huiyan.db import store as directory

    with db_sessions() as s:
        prov = directory.create_organisation(s, name="省厅", code="220000", level="province")
        city = directory.create_organisation(s, name="长春", code="220100", level="city", parent_id=prov.id)
        other = directory.create_organisation(s, name="吉林", code="220200", level="city", parent_id=prov.id)
        county = directory.create_organisation(s, name="县", code="220102", level="county", parent_id=city.id)
        sup = directory.create_user(s, username="sup", password="supervisor-pass-1", role="supervisor",
                                    organisation_id=city.id)
        med = directory.create_user(s, username="med", password="mediator-pass-1", role="mediator")
        s.commit()
        ids = (prov.id, city.id, other.id, county.id, sup.id, med.id)
    prov_id, city_id, other_id, county_id, sup_id, med_id = ids
    with db_sessions() as s:
        case = MediationCase(number="2026-00001", title="t", type="neighbour", mediator_id=med_id, pin="123456")
        s.add(case)
        s.commit()
        case_id = case.id
    in_county = add_recording(db_sessions, root, "a", b"a", organisation_id=county_id)
    in_other = add_recording(db_sessions, root, "b", b"b", organisation_id=other_id)
    of_case = add_recording(db_sessions, root, "c", b"c", session_type="mediation", organisation_id=other_id,
                            case_id=case_id)
    with db_sessions() as s:
        sup_scope = store.scope_of(s, sup_id, Role.SUPERVISOR)
        med_scope = store.scope_of(s, med_id, Role.MEDIATOR)
        assert sup_scope.organisations == {city_id, county_id}
        assert [r.id for r in store.search(s, sup_scope)[0]] == [in_county]
        assert [r.id for r in store.search(s, med_scope)[0]] == [of_case]
        everything = store.scope_of(s, med_id, Role.ADMIN)
        assert {r.id for r in store.search(s, everything, organisation_id=prov_id)[0]} == {in_county, in_other, of_case}
        assert [r.id for r in store.search(s, everything, case_id=case_id)[0]] == [of_case]


def test_purge_also_deletes_a_raw_capture_kept_beside_the_recording(db_sessions: sessionmaker[Session],
                                                                    root: Path) -> None:
    rid = add_recording(db_sessions, root, "kept", b"final" * 20, ended_at=datetime(2024, 1, 1, tzinfo=UTC))
    raw = root / "hotline" / "kept.wav"
    raw.write_bytes(b"RIFF raw capture")
    with db_sessions() as s:
        job = store.enqueue(s, key="hotline:kept", session_type="hotline", source="hotline_call", source_ref="kept",
                            meta={"inputs": [{"path": str(raw), "kind": "audio"}], "raw_kept": True})
        job.state, job.recording_id = "done", rid
        s.commit()
    assert ops.verify_store(db_sessions, root).ok  # a kept raw capture is accounted for
    ops.purge(db_sessions, root, DEFAULT_RETENTION, now=datetime(2026, 11, 29, tzinfo=UTC))
    assert not raw.exists() and not (root / "hotline" / "kept.m4a").exists()
    with db_sessions() as s:
        (audit,) = s.scalars(select(RecordingAudit).where(RecordingAudit.action == "purge")).all()
    assert audit.detail["raw_deleted"] == ["hotline/kept.wav"]
    assert ops.verify_store(db_sessions, root).ok

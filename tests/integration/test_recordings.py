"""Recordings as evidence with real ffmpeg on real WAVs: finalisation to M4A (AAC, duration right, hash in
the chain), a `huiyan recordings finalise` killed with SIGKILL while ffmpeg runs and run again, `verify`
from the command line; and through the real Asterisk: a recorded hotline call ends and its M4A appears,
verified and linked to the call, served by the API with Range and access rules; low disk on /healthz."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from huiyan.config.settings import Settings
from huiyan.db import make_engine, session_factory, upgrade
from huiyan.db.models import HotlineCall, Recording, RecordingAudit, RecordingJob, RecordingJobState, User
from huiyan.recordings import media
from huiyan.recordings.model import sign_share
from huiyan.recordings.pipeline import Finaliser
from tests.integration.conftest import REPO, Running
from tests.integration.test_hotline import Hotline, _ok, hotline  # noqa: F401 - the fixture is used by name

pytestmark = pytest.mark.integration


# ---- real media -------------------------------------------------------------------------------------------


def tone_wav(path: Path, seconds: float, freq: float = 440.0, rate: int = 8000) -> Path:
    """A mono 16-bit WAV as MixMonitor writes them: a tone, built one second at a time (fast for an hour)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    second = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(rate))
    whole, frac = divmod(seconds, 1.0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        for _ in range(int(whole)):
            w.writeframes(second)
        w.writeframes(second[: int(frac * rate) * 2])
    return path


def decode_pcm(path: Path, rate: int = 8000) -> list[int]:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
                         capture_output=True, check=True).stdout
    return list(struct.unpack(f"<{len(out) // 2}h", out))


def tone_power(samples: list[int], freq: float, rate: int = 8000) -> float:
    """Goertzel: the power of one frequency in the samples, normalised by their count."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / max(1, len(samples)) ** 2


class Store:
    """An isolated recordings store (its own data dir and SQLite database) with a hotline call whose raw
    capture is a real WAV."""

    def __init__(self, tmp: Path) -> None:
        self.settings = Settings(data_dir=tmp / "data")
        self.root = self.settings.data_dir / "recordings"
        upgrade(self.settings.db_url)
        self.engine = make_engine(self.settings.db_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)

    def call(self, call_id: str, seconds: float, *, ended_ago: float = 5.0) -> Path:
        raw = tone_wav(self.root / "hotline" / "2026" / "11" / "29" / f"hotline-{call_id}.wav", seconds)
        past = time.time() - ended_ago
        os.utime(raw, (past, past))  # written to for the last time when the call ended
        end = datetime.now(UTC) - timedelta(seconds=ended_ago)
        with self.sessions() as s:
            s.add(HotlineCall(id=call_id, node="pbx1", caller_number="13904310001", caller_name="张三",
                              answered_at=end - timedelta(seconds=seconds), ended_at=end, recording_path=str(raw),
                              outcome="completed"))
            s.commit()
        return raw

    def cli(self, *args: str, **kw: Any) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "HUIYAN_CONFIG": str(self.settings.data_dir / "none.toml")}
        return subprocess.Popen([sys.executable, "-m", "huiyan", "--data-dir", str(self.settings.data_dir), *args],
                                cwd=self.settings.data_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kw)

    def rows(self) -> list[Recording]:
        with self.sessions() as s:
            return list(s.scalars(select(Recording).order_by(Recording.seq)))

    def jobs(self) -> list[RecordingJob]:
        with self.sessions() as s:
            return list(s.scalars(select(RecordingJob).order_by(RecordingJob.id)))

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def isolated(tmp_path: Path) -> Any:
    st = Store(tmp_path)
    yield st
    st.close()


def _sweep(st: Store) -> None:
    from huiyan.recordings import store

    with st.sessions() as s:
        store.sweep(s, 0.0)


def test_finalise_wav_to_m4a_with_aac_duration_hash_and_chain(isolated: Store) -> None:
    raw = isolated.call("1732870000.1", 20.0)
    _sweep(isolated)
    fin = Finaliser(isolated.sessions, isolated.root, isolated.settings.recordings)
    outcomes = fin.run_due()
    assert [o.state for o in outcomes] == [RecordingJobState.DONE], outcomes
    final = raw.with_suffix(".m4a")
    assert final.is_file() and not raw.exists()  # the raw capture goes only once the M4A is verified
    p = media.probe(final)
    assert p.codecs() == ["aac"] and abs((p.duration_s or 0) - 20.0) <= 1.0
    assert "mp4" in p.format_name or "mov" in p.format_name
    body = final.read_bytes()  # +faststart: the index (moov) comes before the media data (mdat)
    assert 0 <= body.find(b"moov") < body.find(b"mdat")
    (row,) = isolated.rows()
    assert row.sha256 == hashlib.sha256(final.read_bytes()).hexdigest() and row.size_bytes == final.stat().st_size
    assert row.status.value == "complete" and row.call_id == "1732870000.1" and row.session_type == "hotline"
    assert row.codecs == ["aac"] and row.container == "m4a" and abs(row.duration_ms - 20_000) <= 1000
    assert row.path == str(final.relative_to(isolated.root)) and row.seq == 1
    assert [p["number"] for p in row.participants] == ["13904310001"]
    (job,) = isolated.jobs()
    assert job.state == RecordingJobState.DONE and job.recording_id == row.id
    # the sound survived: the 440 Hz tone is there, an unrelated frequency is not
    pcm = decode_pcm(final)
    assert tone_power(pcm[:40000], 440) > 1000 * tone_power(pcm[:40000], 1250)
    # running again does nothing more: one job, one row
    assert fin.run_due() == [] and len(isolated.rows()) == 1
    # verify from the command line: intact, exit 0
    cli = isolated.cli("recordings", "verify", "--json", "--no-progress")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert json.loads(out)["ok"] is True and json.loads(out)["files_checked"] == 1


def test_keep_raw_and_reencode_supersedes(isolated: Store) -> None:
    isolated.settings.recordings.keep_raw = True
    raw = isolated.call("1732870000.2", 6.0)
    _sweep(isolated)
    fin = Finaliser(isolated.sessions, isolated.root, isolated.settings.recordings)
    assert [o.state for o in fin.run_due()] == [RecordingJobState.DONE]
    assert raw.exists() and raw.with_suffix(".m4a").exists()
    cli = isolated.cli("recordings", "reencode", "--id", "1", "--no-progress")
    _, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    old, new = isolated.rows()
    assert old.status.value == "superseded" and new.supersedes_id == old.id and new.seq == 2
    assert not (isolated.root / old.path).exists() and (isolated.root / new.path).is_file()
    assert abs(new.duration_ms - 6000) <= 1000 and raw.exists()
    with isolated.sessions() as s:
        audit = s.scalars(select(RecordingAudit).where(RecordingAudit.action == "supersede")).all()
    assert [a.recording_id for a in audit] == [old.id]
    cli = isolated.cli("recordings", "verify", "--no-progress")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, out + err


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wait(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s")


def test_finalise_killed_with_sigkill_while_ffmpeg_runs_resumes_and_completes(isolated: Store) -> None:
    raw = isolated.call("1732870000.3", 3600.0)  # an hour of audio: ffmpeg runs for seconds
    raw_sha = hashlib.sha256(raw.read_bytes()).hexdigest()
    final = raw.with_suffix(".m4a")
    first = isolated.cli("recordings", "finalise", "--no-progress")
    try:
        ff = _wait(lambda: [c for c in _children(first.pid) if _name(c) == "ffmpeg"], 60, "ffmpeg never started")[0]
        tmp = final.with_name(f".{final.stem}.{first.pid}.part.m4a")
        _wait(lambda: tmp.exists() and tmp.stat().st_size > 0, 60, "ffmpeg wrote nothing")
        assert first.poll() is None, "the finaliser ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    # ffmpeg dies with its parent: nothing keeps writing behind the next run's back
    _wait(lambda: not Path(f"/proc/{ff}").exists() or _name(ff) != "ffmpeg", 10, "orphaned ffmpeg still running")
    # mid-way: raw kept intact, no final file, nothing in the chain, the job says where it stopped
    assert raw.exists() and hashlib.sha256(raw.read_bytes()).hexdigest() == raw_sha
    assert not final.exists() and isolated.rows() == []
    (job,) = isolated.jobs()
    assert job.state == RecordingJobState.ENCODING and job.owner and job.owner.endswith(f":{first.pid}")

    second = isolated.cli("recordings", "finalise", "--no-progress")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, out + err
    assert f"job {job.id}: done" in err
    (row,) = isolated.rows()  # nothing duplicated
    (job,) = isolated.jobs()
    assert job.state == RecordingJobState.DONE and job.recording_id == row.id and job.attempts == 0
    assert final.is_file() and not raw.exists()
    assert list(final.parent.glob(".*.part.m4a")) == []  # the dead run's temporary file is gone
    p = media.probe(final)
    assert p.codecs() == ["aac"] and abs((p.duration_s or 0) - 3600.0) <= 1.0
    assert row.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    verify = isolated.cli("recordings", "verify", "--no-progress")
    out, err = verify.communicate(timeout=300)
    assert verify.returncode == 0, out + err


def test_verify_cli_reports_a_flipped_byte_a_deleted_and_an_inserted_file(isolated: Store) -> None:
    for i in range(3):
        isolated.call(f"1732870001.{i}", 3.0)
    _sweep(isolated)
    assert len([o for o in Finaliser(isolated.sessions, isolated.root, isolated.settings.recordings).run_due()
                if o.state == RecordingJobState.DONE]) == 3
    a, b, c = (isolated.root / r.path for r in isolated.rows())
    data = bytearray(a.read_bytes())
    data[-100] ^= 0xFF
    a.write_bytes(bytes(data))
    b.unlink()
    (c.parent / "planted.m4a").write_bytes(c.read_bytes())
    cli = isolated.cli("recordings", "verify", "--json")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 1
    rep = json.loads(out)
    root = isolated.root
    assert rep["changed"] == [str(a.relative_to(root))] and rep["missing"] == [str(b.relative_to(root))]
    assert rep["extra"] == [str((c.parent / "planted.m4a").relative_to(root))] and rep["chain_broken"] == []
    assert "verify" in err  # the progress bar


def test_a_wrong_final_file_never_reaches_the_chain(isolated: Store) -> None:
    raw = isolated.call("1732870002.1", 8.0)
    _sweep(isolated)
    isolated.settings.recordings.duration_tolerance_s = 1.0
    fin = Finaliser(isolated.sessions, isolated.root, isolated.settings.recordings)
    # a final file from elsewhere sits where the M4A goes (as if an interrupted run had left a bad one)
    tone_wav(raw.with_name("other.wav"), 2.0)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(raw.with_name("other.wav")), "-c:a", "aac",
                    str(raw.with_suffix(".m4a"))], check=True)
    raw.with_name("other.wav").unlink()
    out = fin.run_due()
    assert out[0].state == RecordingJobState.QUEUED and "failed verification" in out[0].reason
    assert isolated.rows() == [] and raw.exists() and not raw.with_suffix(".m4a").exists()
    with isolated.sessions() as s:  # retried with backoff; here: now
        s.execute(RecordingJob.__table__.update().values(not_before=datetime.now(UTC)))
        s.commit()
    assert [o.state for o in fin.run_due()] == [RecordingJobState.DONE]
    (row,) = isolated.rows()
    assert abs(row.duration_ms - 8000) <= 1000


# ---- through the real Asterisk -------------------------------------------------------------------------------


def _ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + 0x84
    exponent, mask = 7, 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    return ~(sign | (exponent << 4) | ((sample >> (exponent + 3)) & 0x0F)) & 0xFF


def tone_pcap(path: Path, freq: float, seconds: float, ssrc: int = 0x5245_4301) -> Path:
    """PCMU RTP (payload type 0, 20 ms packets) of a tone, as a capture SIPp's play_pcap_audio replays."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        n = 0
        for k in range(int(seconds * 50)):
            payload = bytes(_ulaw(int(12000 * math.sin(2 * math.pi * freq * (n + i) / 8000))) for i in range(160))
            n += 160
            rtp = struct.pack("!BBHII", 0x80, 0x80 if k == 0 else 0, (5000 + k) & 0xFFFF, n, ssrc) + payload
            udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            at = k * 0.02
            f.write(struct.pack("<IIII", int(at), int(round((at % 1) * 1e6)), len(frame), len(frame)) + frame)
    return path


def _login(h: Running, username: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{h.api}/api/auth/login", json={"username": username, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_recorded_hotline_call_ends_and_its_m4a_appears_verified_and_linked(hotline, huiyan: Running,  # noqa: F811
                                                                             tmp_path: Path) -> None:
    from huiyan.db import store as directory
    from huiyan.recordings.service import RecordingEvent
    from tests.integration import callflows
    from tests.integration.sipp import Sipp

    hl: Hotline = hotline()
    agent = hl.add_agent()
    hl.start()
    hl.phone(agent, answer_after_ms=300)
    # the caller presses 1, then speaks: a 1 kHz tone for as long as the call lasts
    path = callflows.caller(tmp_path / "caller-tone.xml", digits="1", hangup_after_ms=9000, number="13904319999")
    pcap = tone_pcap(tmp_path / "tone.pcap", 1000.0, 12.0)
    xml = path.read_text().replace('\n  <recv request="BYE"',
                                   f'\n  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'
                                   '\n  <recv request="BYE"', 1)
    path.write_text(xml)
    caller = Sipp(str(path), huiyan.sip_target, service=hl.number, workdir=tmp_path, timeout=60).start()
    hl.sipps.append(caller)
    _ok(caller.wait())
    call = hl.ended("13904319999")[0]
    assert call.answered_at is not None and call.recording_path
    raw = Path(call.recording_path)

    def finalised() -> Recording | None:
        with huiyan.ctl.session_factory() as s:
            return s.scalar(select(Recording).where(Recording.call_id == call.id))

    row = hl.wait_for(finalised, timeout=60)
    ev = huiyan.wait_event(lambda e: isinstance(e, RecordingEvent) and e.kind == "finalised"
                           and e.recording_id == row.id, timeout=20)  # done: raw deleted after the chain row
    assert ev.job_id is not None
    root = huiyan.settings.data_dir / "recordings"
    final = root / row.path
    assert final.suffix == ".m4a" and final.is_file() and not raw.exists()
    assert final.with_suffix("").name == raw.with_suffix("").name  # next to where the capture was
    assert row.session_type == "hotline" and row.session_id == call.id
    agents = [p for p in row.participants if p["role"] == "agent"]
    assert [p["user_id"] for p in agents] == [agent.user_id]
    assert [p["number"] for p in row.participants if p["role"] == "caller"] == ["13904319999"]
    assert row.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    p = media.probe(final)
    assert p.codecs() == ["aac"] and p.duration_s is not None
    assert call.talk_s is not None and abs(p.duration_s - call.talk_s) < 1.5, (p.duration_s, call.talk_s)
    pcm = decode_pcm(final)
    assert tone_power(pcm, 1000) > 100 * tone_power(pcm, 1700)  # the caller's voice is in it

    # ---- served by the API, to those allowed -------------------------------------------------------------
    with huiyan.ctl.session_factory() as s:
        lawyer = directory.create_user(s, username=f"lawyer{time.monotonic_ns()}", password="lawyer-password-1",
                                       role="lawyer")
        s.commit()
        lawyer_id, lawyer_name = lawyer.id, lawyer.username
        agent_name = s.get(User, agent.user_id).username
    as_agent = _login(huiyan, agent_name, "agent-password-1")
    as_lawyer = _login(huiyan, lawyer_name, "lawyer-password-1")
    found = httpx.get(f"{huiyan.api}/api/recordings", params={"call_id": call.id}, headers=as_agent).json()
    assert [x["id"] for x in found["items"]] == [row.id]
    body = final.read_bytes()
    r = httpx.get(f"{huiyan.api}/api/recordings/{row.id}/media", headers={**as_agent, "Range": "bytes=100-1099"})
    assert r.status_code == 206 and r.content == body[100:1100]
    assert r.headers["content-range"] == f"bytes 100-1099/{len(body)}"
    r = httpx.get(f"{huiyan.api}/api/recordings/{row.id}/download", headers=as_agent)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == row.sha256
    assert httpx.get(f"{huiyan.api}/api/recordings/{row.id}/media", headers=as_lawyer).status_code == 403
    assert httpx.get(f"{huiyan.api}/api/recordings/987654321", headers=as_agent).status_code == 404
    key = huiyan.settings.secret("recordings_share")
    expired = sign_share(key, row.id, agent.user_id, int(time.time()) - 5)
    assert httpx.get(f"{huiyan.api}/api/recordings/shared/{expired}").status_code == 410
    share = httpx.post(f"{huiyan.api}/api/recordings/{row.id}/share", json={"ttl_s": 120}, headers=as_agent)
    assert share.status_code == 201
    r = httpx.get(share.json()["url"], headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == body[-50:]
    with huiyan.ctl.session_factory() as s:
        denied = s.scalars(select(RecordingAudit).where(RecordingAudit.recording_id == row.id,
                                                        RecordingAudit.allowed.is_(False))).all()
        assert [(a.user_id, a.status_code, a.action) for a in denied] == [(lawyer_id, 403, "stream"),
                                                                          (None, 410, "shared")]
        n = s.scalar(select(func.count()).select_from(RecordingAudit).where(RecordingAudit.recording_id == 987654321))
        assert n == 1


def test_low_disk_raises_an_alarm_and_degrades_healthz(huiyan: Running) -> None:
    from huiyan.recordings.service import RecordingsAlarm

    cfg = huiyan.ctl.settings.recordings
    before = cfg.min_free_bytes
    assert httpx.get(f"{huiyan.api}/healthz").json()["checks"]["recordings"]["ok"] is True
    try:
        cfg.min_free_bytes = 10**18  # more than any disk: recordings could not go on
        huiyan.call(huiyan.ctl.recordings.check_disk())
        alarm = huiyan.wait_event(lambda e: isinstance(e, RecordingsAlarm) and e.kind == "low_disk", timeout=10)
        assert alarm.data["threshold"] == 10**18 and alarm.data["free_bytes"] > 0
        r = httpx.get(f"{huiyan.api}/healthz")
        assert r.status_code == 503
        part = r.json()["checks"]["recordings"]
        assert part["ok"] is False and "low disk" in part["error"]
    finally:
        cfg.min_free_bytes = before
        huiyan.call(huiyan.ctl.recordings.check_disk())
    huiyan.wait_event(lambda e: isinstance(e, RecordingsAlarm) and e.kind == "disk_ok", timeout=10)
    assert httpx.get(f"{huiyan.api}/healthz").json()["checks"]["recordings"]["ok"] is True


def test_three_party_room_recording_has_every_partys_audio(huiyan: Running, tmp_path: Path) -> None:
    """Each SIPp terminal speaks its own tone; the finalised recording's spectrum holds all three."""
    from tests.integration.sipp import Sipp
    from tests.integration.test_rooms import Rooms, participant_xml

    if "room" not in huiyan.ctl.agi.routes:  # see tests/integration/test_rooms.py's fixture
        from huiyan.rooms.flow import room_route

        huiyan.ctl.agi.routes["room"] = room_route(huiyan.ctl.rooms)
    rooms = Rooms(huiyan, tmp_path)
    freqs = (500.0, 900.0, 1300.0)
    room: dict[str, Any] = {}
    try:
        room = rooms.room()
        terminals = rooms.terminals(3)
        for i, (t, f) in enumerate(zip(terminals, freqs, strict=True)):
            path = participant_xml(tmp_path / f"talker-{i}.xml", user=t.extension, steps=(("pause", 14000),),
                                   hold_ms=1000)
            pcap = tone_pcap(tmp_path / f"tone-{i}.pcap", f, 13.0, ssrc=0x5245_4310 + i)
            xml = path.read_text().replace('  <pause milliseconds="14000"/>',
                                           f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
                                           '  <pause milliseconds="14000"/>', 1)
            path.write_text(xml)
            sipp = Sipp(str(path), huiyan.sip_target, service=room["number"], workdir=tmp_path, timeout=45,
                        user=t.extension, password=t.password, extra=("-aa",))
            rooms.running.append(sipp.start())
        for t in terminals:
            rooms.joined(room, f"PJSIP/{t.extension}-")
        r = rooms.api("post", f"/api/rooms/{room['id']}/recording")
        assert r.status_code == 201, r.text
        raw = Path(r.json()["path"])
        time.sleep(5)
        assert rooms.api("delete", f"/api/rooms/{room['id']}/recording").status_code == 200

        def finalised() -> Recording | None:
            with huiyan.ctl.session_factory() as s:
                return s.scalar(select(Recording).where(Recording.room_id == room["id"]))

        row = rooms.wait_for(finalised, timeout=60)
        assert row.session_type == "meeting" and row.codecs == ["aac"]
        assert {p["number"] for p in row.participants} == {t.extension for t in terminals}
        final = huiyan.settings.data_dir / "recordings" / row.path
        pcm = decode_pcm(final)
        control = tone_power(pcm, 1700.0)
        powers = {f: tone_power(pcm, f) for f in freqs}
        assert all(p > 50 * control for p in powers.values()), (powers, control)
        assert abs(row.duration_ms / 1000 - 5) < 2.5 and raw.with_suffix(".m4a") == final
    finally:
        if room:
            rooms.api("post", f"/api/rooms/{room['id']}/end")
        rooms.close()

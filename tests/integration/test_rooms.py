"""Rooms end to end against a real Asterisk: SIPp terminals join meetings, meeting control through the API
takes effect in Asterisk, SFU re-INVITEs, dial-out invitations, PIN refusal, and the legacy SIP trunk in
both directions (a SIPp "legacy room" on 127.0.0.2, so it is identified as the trunk by its address
while every other test SIPp stays on 127.0.0.1)."""

from __future__ import annotations

import itertools
import re
import struct
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import Sipp, SippResult, free_port

pytestmark = pytest.mark.integration
_seq = itertools.count(1)

DTMF_EVENTS = {**{str(i): i for i in range(10)}, "*": 10, "#": 11}
LEGACY_IP = "127.0.0.2"  # the legacy conference system's SIPp: any loopback address but 127.0.0.1

_OFFER = """      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
      m=video [media_port+2] RTP/AVP 99
      a=rtpmap:99 H264/90000
      a=fmtp:99 packetization-mode=1
"""

_OK = """      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
"""


def _answer_sdp(version: int, videos: list[bool]) -> str:
    """Audio plus one m=video per entry: True an active stream, False a stream declined (port 0)."""
    lines = ["      v=0", f"      o=user1 53655765 {version} IN IP[local_ip_type] [local_ip]", "      s=-",
             "      c=IN IP[media_ip_type] [media_ip]", "      t=0 0", "      m=audio [media_port] RTP/AVP 0 101",
             "      a=rtpmap:0 PCMU/8000", "      a=rtpmap:101 telephone-event/8000", "      a=fmtp:101 0-16"]
    for i, active in enumerate(videos):
        lines.append(f"      m=video [media_port+{2 + 2 * i}] RTP/AVP 99" if active else "      m=video 0 RTP/AVP 99")
        lines.append("      a=rtpmap:99 H264/90000")
    return "\n".join(lines) + "\n"


def dtmf_pcap(path: Path, digits: str, seq: int, ts: int, ssrc: int = 0x48590001) -> tuple[int, int]:
    """RFC 4733 key presses (payload type 101, 350 ms apart) as a capture for SIPp's play_pcap_audio.

    Written per call rather than taken from sip-tester's per-digit captures: those restart their
    sequence numbers at fixed values, and Asterisk drops an event whose sequence number is older than
    the last one, so a second PIN attempt in the same call would never arrive. Returns the next
    (seq, ts)."""
    frames: list[tuple[float, bytes]] = []
    at = 0.0
    for d in digits:
        ev = DTMF_EVENTS[d]
        for k in range(1, 7):  # three updates, then the end packet sent three times (RFC 4733 2.5.1.4)
            end = k > 3
            payload = struct.pack("!BBH", ev, (0x80 if end else 0) | 10, 160 * min(k, 4))
            header = struct.pack("!BBHII", 0x80, (0x80 if k == 1 else 0) | 101, seq & 0xFFFF, ts, ssrc)
            frames.append((at, header + payload))
            seq += 1
            at += 0.02 if k < 4 else 0.005
        at += 0.35
        ts += 2800 + 640
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet captures
        for at, rtp in frames:
            udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            f.write(struct.pack("<IIII", int(at), int((at % 1) * 1e6), len(frame), len(frame)) + frame)
    return seq, ts


def participant_xml(path: Path, *, user: str, steps: tuple[tuple[Any, ...], ...] = (), hold_ms: int = 30000,
                    name: str = "Terminal") -> Path:
    """A SIP terminal that dials [service] (answering a digest challenge if there is one, i.e. an
    authenticated endpoint; the trunk is not challenged), then runs `steps`:
      ("pause", ms) · ("dtmf", "1234#") RFC 4733, 350 ms apart · ("reinvite", [True, True, False]) accept
      a re-INVITE, answering with audio + these video streams · ("bye",) hang up now;
    and finally waits up to `hold_ms` for our BYE (kick, end of meeting) before hanging up itself."""
    frm = f'"{name}" <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]'
    cseq_action = ('<action><ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" '
                   'assign_to="junk,cs"/></action>')

    def invite(cseq: int, auth: str) -> str:
        return f"""  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70{auth}
      Content-Type: application/sdp
      Content-Length: [len]

{_OFFER}
    ]]>
  </send>
"""

    body: list[str] = []
    version = 2353687638
    seq, ts = 1000, 160000
    for step in steps:
        if step[0] == "pause":
            body.append(f'  <pause milliseconds="{step[1]}"/>')
        elif step[0] == "dtmf":
            pcap = path.with_name(f"{path.stem}-dtmf{seq}.pcap")
            seq, ts = dtmf_pcap(pcap, step[1], seq, ts)
            body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            body.append(f'  <pause milliseconds="{len(step[1]) * 450}"/>')
        elif step[0] == "reinvite":
            version += 1
            body.append(f"""  <recv request="INVITE"/>
  <send retrans="500">
    <![CDATA[
{_OK.replace("Content-Length: 0", "Content-Type: application/sdp").format(user=user)}      Content-Length: [len]

{_answer_sdp(version, list(step[1]))}
    ]]>
  </send>
  <recv request="ACK"/>""")
        elif step[0] == "bye":
            body.append('  <nop next="hangup"/>')
    xml = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="room participant">
{invite(1, "")}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="401" auth="true" optional="true" next="auth"/>
  <recv response="200" rtd="true" next="answered">{cseq_action}</recv>
  <label id="auth"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: {frm}
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{invite(2, chr(10) + "      [authentication]")}  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true">{cseq_action}</recv>
  <label id="answered"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: [$cs] ACK
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{chr(10).join(body)}
  <recv request="BYE" timeout="{hold_ms}" ontimeout="hangup" next="farbye"/>
  <label id="hangup"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 10 BYE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="end"/>
  <label id="farbye"/>
  <send>
    <![CDATA[
{_OK.format(user=user)}
    ]]>
  </send>
  <label id="end"/>
</scenario>
"""
    path.write_text(xml)
    return path


def uas_xml(path: Path) -> Path:
    """A phone (or the legacy room system) that answers one call with audio + H.264 and waits for BYE:
    the same phone the hotline tests use. Run with -aa (Asterisk's OPTIONS qualify pings)."""
    return callflows.agent(path, answer_after_ms=200)


@dataclass
class Terminal:
    extension: str
    password: str
    sipp: Sipp | None = None

    def messages(self) -> str:
        assert self.sipp is not None
        f = self.sipp.workdir / f"msgs-{self.sipp.port}.log"
        return f.read_text(errors="replace") if f.exists() else ""


def _ok(res: SippResult) -> None:
    assert res.ok, res.stderr[-2000:] + res.errors[-3000:]


class Rooms:
    def __init__(self, h: Running, tmp: Path) -> None:
        from huiyan.db import store
        from huiyan.db.seed import ensure_admin

        self.h = h
        self.tmp = tmp
        self.running: list[Sipp] = []
        with h.ctl.session_factory() as s:
            ensure_admin(s, "roomadmin", "room-admin-password")
            org = store.create_organisation(s, name=f"会议测试局{time.monotonic_ns()}", code=f"RT{time.monotonic_ns()}",
                                            level="city")
            s.commit()
            self.org_id = org.id
        r = httpx.post(f"{h.api}/api/auth/login", json={"username": "roomadmin", "password": "room-admin-password"})
        r.raise_for_status()
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    # ---- configuration --------------------------------------------------------------------------
    def terminals(self, n: int, kind: str = "terminal") -> list[Terminal]:
        from huiyan.db import store

        out = []
        with self.h.ctl.session_factory() as s:
            for _ in range(n):
                d = store.create_device(s, serial=f"RT-{time.monotonic_ns()}", organisation_id=self.org_id, kind=kind,
                                        display_name=f"会议{kind}")
                out.append(Terminal(d.extension, d.sip_password))
            s.commit()
        self.h.call(self.h.ctl.apply_directory())
        return out

    def room(self, **body: Any) -> dict[str, Any]:
        body.setdefault("name", f"测试会议{next(_seq)}")
        r = self.api("post", "/api/rooms", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method.upper(), f"{self.h.api}{path}", headers=self.auth, timeout=20, **kw)

    def live(self, room: dict[str, Any]) -> dict[str, Any]:
        r = self.api("get", f"/api/rooms/{room['id']}/live")
        assert r.status_code == 200, r.text
        return r.json()

    # ---- calls ----------------------------------------------------------------------------------
    def dial(self, t: Terminal | None, number: str, *, steps: tuple[tuple[Any, ...], ...] = (), hold_ms: int = 30000,
             ip: str = "127.0.0.1", user: str = "legacy") -> Sipp:
        """A call to `number` from terminal `t` (authenticated), or from an unauthenticated peer at `ip`."""
        user = t.extension if t else user
        path = participant_xml(self.tmp / f"participant-{next(_seq)}.xml", user=user, steps=steps, hold_ms=hold_ms)
        sipp = Sipp(str(path), self.h.sip_target, service=number, workdir=self.tmp, timeout=hold_ms / 1000 + 30,
                    user=t.extension if t else None, password=t.password if t else None,
                    extra=("-aa", "-trace_msg"))
        sipp.args += ["-message_file", str(self.tmp / f"msgs-{sipp.port}.log")]
        _bind(sipp, ip)
        if t is not None:
            t.sipp = sipp
        self.running.append(sipp.start())
        return sipp

    def answerer(self, *, port: int | None = None, ip: str = "127.0.0.1", t: Terminal | None = None) -> Sipp:
        """A party that answers one call (registered first when it is terminal `t`)."""
        port = port or free_port()
        if t is not None:
            _ok(Sipp("register.xml", self.h.sip_target, service=t.extension, workdir=self.tmp, user=t.extension,
                     password=t.password, port=port, timeout=10).run())
        path = uas_xml(self.tmp / f"uas-{next(_seq)}.xml")
        sipp = Sipp(str(path), self.h.sip_target, service=t.extension if t else "party", workdir=self.tmp, port=port,
                    timeout=60, max_calls=None, timeout_error=False,
                    extra=("-aa", "-trace_msg", "-message_file", str(self.tmp / f"msgs-{port}.log")))
        _bind(sipp, ip)
        if t is not None:
            t.sipp = sipp
        self.running.append(sipp.start())
        time.sleep(0.2)
        return sipp

    # ---- waiting --------------------------------------------------------------------------------
    def ami(self, name: str, pred: Any = lambda e: True, timeout: float = 15) -> Any:
        from huiyan.pbx.events import AmiEvent

        return self.h.wait_event(lambda e: isinstance(e, AmiEvent) and e.name == name and pred(e), timeout)

    def room_event(self, room: dict[str, Any], kind: str, pred: Any = lambda e: True, timeout: float = 15) -> Any:
        from huiyan.rooms.service import RoomEvent

        return self.h.wait_event(lambda e: isinstance(e, RoomEvent) and e.number == room["number"] and e.kind == kind
                                 and pred(e), timeout)

    def joined(self, room: dict[str, Any], channel_prefix: str, timeout: float = 15) -> Any:
        return self.ami("ConfbridgeJoin", lambda e: e.get("Conference") == room["number"]
                        and e.get("Channel").startswith(channel_prefix), timeout)

    def wait_for(self, pred: Any, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout}s")

    def close(self) -> None:
        for s in self.running:
            s.kill()


def recorded_seconds(path: Path, timeout: float = 15) -> float:
    """Seconds of audio in a room recording: the raw WAV Asterisk wrote, or, once the recordings service
    has finalised it (and removed the WAV), the M4A beside it. Waits for either to appear."""
    import json
    import subprocess

    deadline = time.monotonic() + timeout
    while True:
        try:
            with wave.open(str(path)) as w:
                if w.getnframes():
                    return w.getnframes() / w.getframerate()
        except (FileNotFoundError, EOFError, wave.Error):
            pass
        final = path.with_suffix(".m4a")
        if final.exists():
            out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json",
                                  str(final)], capture_output=True, text=True, check=True).stdout
            return float(json.loads(out)["format"]["duration"])
        if time.monotonic() > deadline:
            raise AssertionError(f"neither {path} nor {final} has audio after {timeout}s")
        time.sleep(0.1)


def _bind(sipp: Sipp, ip: str) -> None:
    i = sipp.args.index("-i")
    sipp.args[i + 1] = ip


@pytest.fixture
def rooms(huiyan: Running, tmp_path: Path) -> Iterator[Rooms]:
    if "room" not in huiyan.ctl.agi.routes:
        # test_foundation's FastAGI-outage test swaps the controller's FastAGI server for one with only the
        # default routes; put the rooms' route back (as the hotline tests do for theirs).
        from huiyan.rooms.flow import room_route

        huiyan.ctl.agi.routes["room"] = room_route(huiyan.ctl.rooms)
    r = Rooms(huiyan, tmp_path)
    try:
        yield r
    finally:
        r.close()


def _prefix(t: Terminal) -> str:
    return f"PJSIP/{t.extension}-"


# ---- meeting control ------------------------------------------------------------------------------


def test_participants_join_and_mute_lock_kick_end_take_effect_in_asterisk(rooms: Rooms, huiyan: Running) -> None:
    room = rooms.room()
    a, b, c = rooms.terminals(3)
    rooms.dial(a, room["number"])
    rooms.dial(b, room["number"])
    join_a = rooms.joined(room, _prefix(a))
    join_b = rooms.joined(room, _prefix(b))
    pa, pb = join_a.get("Uniqueid"), join_b.get("Uniqueid")
    live = rooms.wait_for(lambda: (v := rooms.live(room)) and len(v["participants"]) == 2 and v)
    assert live["live"] and not live["locked"] and live["video_mode"] == "follow_talker"
    by_id = {p["id"]: p for p in live["participants"]}
    assert by_id[pa]["video"] == {"sends": True, "receives": "talker", "presenter": False}
    assert by_id[pa]["role"] == "participant" and by_id[pa]["channel"].startswith(_prefix(a))

    # mute one: Asterisk reports it, and ConfbridgeList agrees
    r = rooms.api("post", f"/api/rooms/{room['id']}/participants/{pa}/mute")
    assert r.status_code == 200 and r.json()["muted"] is True, r.text
    rooms.ami("ConfbridgeMute", lambda e: e.get("Uniqueid") == pa)
    listed = huiyan.call(huiyan.ctl.ami.action_list("ConfbridgeList", Conference=room["number"]))
    assert {i["Uniqueid"]: i["Muted"] for i in listed} == {pa: "Yes", pb: "No"}
    assert rooms.api("post", f"/api/rooms/{room['id']}/participants/{pa}/unmute").json()["muted"] is False
    # mute everyone, then unmute everyone
    assert rooms.api("post", f"/api/rooms/{room['id']}/mute").json() == {"muted": 2}
    rooms.ami("ConfbridgeMute", lambda e: e.get("Uniqueid") == pb)
    assert all(p["muted"] for p in rooms.live(room)["participants"])
    assert rooms.api("post", f"/api/rooms/{room['id']}/unmute").json() == {"unmuted": 2}

    # lock: Asterisk's room is locked, a new joiner hears "locked" and is hung up, never joins
    assert rooms.api("post", f"/api/rooms/{room['id']}/lock").json() == {"locked": True}
    listed = huiyan.call(huiyan.ctl.ami.action_list("ConfbridgeListRooms"))
    assert next(x for x in listed if x["Conference"] == room["number"])["Locked"] == "Yes"
    refused = rooms.dial(c, room["number"], hold_ms=15000)
    rooms.room_event(room, "refused", lambda e: e.data["reason"] == "locked")
    res = refused.wait()
    _ok(res)
    assert any(m.startswith("BYE ") for m in _received(c.messages())), "the locked room did not hang up"
    assert not huiyan.find_events(lambda e: getattr(e, "name", "") == "ConfbridgeJoin"
                                  and e.get("Channel").startswith(_prefix(c)))
    assert rooms.api("post", f"/api/rooms/{room['id']}/unlock").json() == {"locked": False}

    # kick b: it leaves Asterisk's room and its call ends; acting on it afterwards is a clear 409
    r = rooms.api("delete", f"/api/rooms/{room['id']}/participants/{pb}")
    assert r.status_code == 204, r.text
    rooms.ami("ConfbridgeLeave", lambda e: e.get("Uniqueid") == pb)
    assert b.sipp is not None
    _ok(b.sipp.wait())
    r = rooms.api("post", f"/api/rooms/{room['id']}/participants/{pb}/mute")
    assert r.status_code == 409 and "already left" in r.json()["detail"], r.text
    # unknown participants and rooms: 404
    r = rooms.api("post", f"/api/rooms/{room['id']}/participants/no-such-channel/mute")
    assert r.status_code == 404 and "no participant" in r.json()["detail"], r.text
    for method, path in [("get", "/live"), ("post", "/mute"), ("post", "/lock"), ("post", "/end"),
                         ("post", "/participants/x/mute"), ("delete", "/participants/x"), ("put", "/presenter")]:
        kw = {"json": {"participant": "x"}} if method == "put" else {}
        r = rooms.api(method, f"/api/rooms/999999{path}", **kw)
        assert r.status_code == 404, (path, r.text)

    # end the meeting: everyone is hung up, the session is closed in the database
    r = rooms.api("post", f"/api/rooms/{room['id']}/end")
    assert r.status_code == 200 and r.json()["participants"] == 1, r.text
    assert a.sipp is not None
    _ok(a.sipp.wait())
    rooms.room_event(room, "ended")
    r = rooms.api("post", f"/api/rooms/{room['id']}/participants/{pa}/mute")
    assert r.status_code == 409, r.text  # no meeting in progress any more
    sessions = rooms.wait_for(lambda: (s := rooms.api("get", f"/api/rooms/{room['id']}/sessions").json())
                              and s[0]["ended_at"] and s)
    assert sessions[0]["peak_participants"] == 2


def test_presenter_and_recording(rooms: Rooms, huiyan: Running) -> None:
    room = rooms.room()
    a, b = rooms.terminals(2)
    rooms.dial(a, room["number"])
    rooms.dial(b, room["number"], hold_ms=12000)
    pa = rooms.joined(room, _prefix(a)).get("Uniqueid")
    pb = rooms.joined(room, _prefix(b)).get("Uniqueid")
    rooms.wait_for(lambda: len(rooms.live(room)["participants"]) == 2)

    # b shares its content: Asterisk makes it the single video source and says so
    r = rooms.api("put", f"/api/rooms/{room['id']}/presenter", json={"participant": pb})
    assert r.status_code == 200 and r.json() == {"presenter": pb}, r.text
    ev = rooms.ami("BridgeVideoSourceUpdate", lambda e: e.get("BridgeName") == room["number"]
                   and e.get("BridgeVideoSource") == pb)
    assert ev.get("BridgeVideoSourceMode") == "single"
    rooms.room_event(room, "presenter", lambda e: e.data["id"] == pb)
    live = rooms.live(room)
    assert live["presenter"] == pb and live["video_source"] == pb
    assert [p["video"]["presenter"] for p in live["participants"] if p["id"] == pb] == [True]
    # a takes over, then the presenter is released (back to following the talker)
    assert rooms.api("put", f"/api/rooms/{room['id']}/presenter", json={"participant": pa}).status_code == 200
    rooms.ami("BridgeVideoSourceUpdate", lambda e: e.get("BridgeVideoSource") == pa
              and e.get("BridgePreviousVideoSource") == pb)
    r = rooms.api("delete", f"/api/rooms/{room['id']}/presenter")
    assert r.status_code == 200 and r.json() == {"presenter": None}, r.text
    rooms.room_event(room, "presenter", lambda e: e.data["id"] is None)
    assert rooms.api("delete", f"/api/rooms/{room['id']}/presenter").status_code == 409  # none to release

    # record the meeting's audio: Asterisk records into the recordings directory, listed on the room
    r = rooms.api("post", f"/api/rooms/{room['id']}/recording")
    assert r.status_code == 201, r.text
    path = Path(r.json()["path"])
    rooms.ami("ConfbridgeRecord", lambda e: e.get("Conference") == room["number"])
    assert rooms.api("post", f"/api/rooms/{room['id']}/recording").status_code == 409  # already recording
    time.sleep(1.5)
    r = rooms.api("delete", f"/api/rooms/{room['id']}/recording")
    assert r.status_code == 200 and r.json()["path"] == str(path), r.text
    rooms.ami("ConfbridgeStopRecord", lambda e: e.get("Conference") == room["number"])
    assert recorded_seconds(path) > 0.5
    recs = rooms.wait_for(lambda: [x for x in rooms.api("get", f"/api/rooms/{room['id']}/recordings").json()
                                   if x["ended_at"]])
    assert recs[0]["path"] == str(path) and recs[0]["session_id"]
    # after the release, Asterisk follows the talker again: its bridge snapshot (republished when b
    # leaves) says "talker", not "single"
    assert b.sipp is not None
    _ok(b.sipp.wait())
    rooms.ami("ConfbridgeLeave", lambda e: e.get("Uniqueid") == pb)
    bridge = huiyan.ctl.rooms.state(room["number"]).bridge_id
    shown = rooms.wait_for(lambda: "talker" in (out := huiyan.ctl.pbx.rx(f"bridge show {bridge}")) and out)
    assert re.search(r"Video-Mode:\s+talker", shown), shown
    rooms.api("post", f"/api/rooms/{room['id']}/end")


def test_sfu_room_reinvites_each_video_participant_with_the_others_stream(rooms: Rooms, huiyan: Running) -> None:
    room = rooms.room(video_mode="sfu")
    a, b = rooms.terminals(2, kind="softphone")  # SIP clients taking several video streams
    # a: re-INVITEd when b joins (audio, own video, b's video), then when b leaves (b's stream declined)
    first = rooms.dial(a, room["number"], steps=(("reinvite", [True, True]), ("reinvite", [True, False])),
                       hold_ms=4000)
    rooms.joined(room, _prefix(a))
    # b: re-INVITEd on joining with a's stream, stays 2 s, hangs up
    second = rooms.dial(b, room["number"], steps=(("reinvite", [True, True]), ("pause", 2000), ("bye",)))
    pb = rooms.joined(room, _prefix(b)).get("Uniqueid")
    live = rooms.wait_for(lambda: (v := rooms.live(room)) and len(v["participants"]) == 2 and v)
    assert {p["video"]["receives"] for p in live["participants"]} == {"all"}
    # a presenter makes no sense where everyone's video already goes to everyone
    r = rooms.api("put", f"/api/rooms/{room['id']}/presenter", json={"participant": pb})
    assert r.status_code == 409 and "SFU" in r.json()["detail"], r.text
    _ok(second.wait())
    _ok(first.wait())
    for t in (a, b):
        reinvites = [m for m in _received(t.messages()) if m.startswith("INVITE sip:")]
        assert reinvites, f"{t.extension} received no re-INVITE"
        # its own stream (sendrecv) plus the other participant's (sendonly)
        assert reinvites[0].count("m=video") == 2 and "a=sendonly" in reinvites[0], reinvites[0]


def test_a_single_stream_terminal_in_an_sfu_room_sends_video_but_gets_no_second_stream(rooms: Rooms) -> None:
    room = rooms.room(video_mode="sfu")
    (client,) = rooms.terminals(1, kind="softphone")
    (terminal,) = rooms.terminals(1)  # max_video_streams=1, like a 小鱼 terminal or a legacy room
    first = rooms.dial(client, room["number"], steps=(("reinvite", [True, True]), ("reinvite", [True, False])),
                       hold_ms=3000)
    rooms.joined(room, _prefix(client))
    second = rooms.dial(terminal, room["number"], steps=(("pause", 5000), ("bye",)))
    rooms.joined(room, _prefix(terminal))
    views = rooms.wait_for(lambda: (v := rooms.live(room)) and len(v["participants"]) == 2 and v)["participants"]
    assert {p["channel"][:12]: p["video"]["receives"] for p in views} == {
        _prefix(client)[:12]: "all", _prefix(terminal)[:12]: "none"}
    _ok(second.wait())
    _ok(first.wait())
    # the multi-stream client got the terminal's video as a stream of its own ...
    added = [m for m in _received(client.messages()) if m.startswith("INVITE sip:")]
    assert added and added[0].count("m=video") == 2
    # ... the terminal was never offered a second video stream
    offers = [m for m in _received(terminal.messages()) if m.startswith("INVITE sip:")]
    assert all(re.findall(r"^m=video [1-9]", m, re.M).__len__() <= 1 for m in offers), offers


def _received(log: str) -> list[str]:
    """The SIP messages a SIPp instance received, from its -trace_msg log."""
    out = []
    for block in log.split("-----------------------------------------------"):
        head, _, msg = block.partition("\n\n")
        if "message received" in head:
            out.append(msg.strip())
    return out


def test_dial_out_invitation_brings_a_phone_into_the_room(rooms: Rooms, huiyan: Running) -> None:
    room = rooms.room(pin="2468")  # invited parties are not asked for the PIN
    (phone,) = rooms.terminals(1)
    rooms.answerer(t=phone)
    r = rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": phone.extension})
    assert r.status_code == 202, r.text
    inv = r.json()
    assert inv["status"] == "dialling" and inv["dial"] == f"PJSIP/{phone.extension}"
    join = rooms.joined(room, _prefix(phone))
    assert join.get("Uniqueid") == inv["id"]
    rooms.room_event(room, "invitation", lambda e: e.data["id"] == inv["id"] and e.data["status"] == "joined")
    live = rooms.live(room)
    assert [(p["invited"], p["channel"].startswith(_prefix(phone))) for p in live["participants"]] == [(True, True)]
    assert [i["status"] for i in live["invitations"]] == ["joined"]
    # a target that is neither an extension, a SIP URI nor a number: 422 from the schema
    assert rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": "h323:10.0.0.1"}).status_code == 422
    rooms.api("post", f"/api/rooms/{room['id']}/end")
    rooms.room_event(room, "ended")


# ---- joining: PIN, presenter rooms ----------------------------------------------------------------


def _prompt_seconds(h: Running, name: str) -> float:
    from huiyan.prompts import prompt_path

    with wave.open(prompt_path(h.settings.data_dir / "sounds", name, "zh") + ".wav") as w:
        return w.getnframes() / w.getframerate()


def _played(h: Running, channel_prefix: str) -> list[str]:
    """The huiyan prompts Asterisk played to a channel, in order (from its full log)."""
    log = (h.settings.pbx_dir / "log" / "full.log").read_text(errors="replace")
    return re.findall(rf"<{re.escape(channel_prefix)}[0-9a-f]+> ?Playing '[^']*/huiyan/([a-z_0-9]+)\.", log)


def test_wrong_pin_three_times_hears_invalid_then_goodbye_and_is_hung_up(rooms: Rooms, huiyan: Running) -> None:
    room = rooms.room(pin="1357", moderator_pin="8642", video_mode="presenter")
    bad, chair = rooms.terminals(2)
    invalid = _prompt_seconds(huiyan, "invalid")
    # each try: the digits (cutting the PIN prompt short), then "invalid" plays before the next prompt.
    # No digit twice in a row: a replayed RFC 4733 capture repeats its timestamp, and Asterisk drops
    # the repeat as a retransmission.
    steps: list[tuple[Any, ...]] = [("pause", 800)]
    for wrong in ("1212#", "3434#", "5656#"):
        steps += [("dtmf", wrong), ("pause", int(invalid * 1000) + 900)]
    t0 = time.monotonic()
    res = rooms.dial(bad, room["number"], steps=tuple(steps[:-1]), hold_ms=int(invalid * 1000) + 8000).wait()
    _ok(res)
    ev = rooms.room_event(room, "refused", lambda e: e.data["reason"] == "pin")
    assert ev.data["id"]
    assert any(m.startswith("BYE ") for m in _received(bad.messages())), "we did not hang up on the caller"
    assert time.monotonic() - t0 > 3 * invalid, "the caller was hung up before hearing the prompts"
    assert _played(huiyan, _prefix(bad)) == ["room_pin", "invalid"] * 3 + ["goodbye"]
    assert not huiyan.find_events(lambda e: getattr(e, "name", "") == "ConfbridgeJoin"
                                  and e.get("Channel").startswith(_prefix(bad)))
    # the moderator PIN lets the chair in as moderator; in a presenter room the chair is the video source
    rooms.dial(chair, room["number"], steps=(("pause", 800), ("dtmf", "8642#")), hold_ms=8000)
    join = rooms.joined(room, _prefix(chair))
    assert join.get("Admin") == "Yes"
    rooms.ami("BridgeVideoSourceUpdate", lambda e: e.get("BridgeName") == room["number"]
              and e.get("BridgeVideoSource") == join.get("Uniqueid"))
    live = rooms.wait_for(lambda: (v := rooms.live(room))["participants"] and v)
    assert live["participants"][0]["role"] == "moderator" and live["presenter"] == join.get("Uniqueid")
    rooms.api("post", f"/api/rooms/{room['id']}/end")


# ---- legacy SIP interop -----------------------------------------------------------------------------


@pytest.fixture
def legacy_trunk(huiyan: Running) -> Iterator[int]:
    """The trunk pointed at a SIPp 'legacy conference system' on 127.0.0.2; restored afterwards."""
    from huiyan.config.settings import TrunkSettings

    old = huiyan.settings.trunk
    port = free_port()
    huiyan.settings.trunk = TrunkSettings(host=LEGACY_IP, port=port, codecs=["ulaw", "alaw", "h264"])
    huiyan.call(huiyan.ctl.apply_directory())
    try:
        yield port
    finally:
        huiyan.settings.trunk = old
        huiyan.call(huiyan.ctl.apply_directory())


def test_legacy_room_calls_in_through_the_trunk_and_is_invited_by_sip_uri(
        rooms: Rooms, huiyan: Running, legacy_trunk: int) -> None:
    room = rooms.room(pin="4321")
    # the legacy room dials the room number; it comes from the trunk's address, so it is the trunk
    # (class trunk: rooms are reachable) and, as for any caller, enters the PIN
    rooms.dial(None, room["number"], steps=(("pause", 800), ("dtmf", "4321#")), hold_ms=20000, ip=LEGACY_IP)
    rooms.joined(room, "PJSIP/legacy-")
    # an invitation to a SIP URI at the legacy system's host goes out through the trunk to a SIPp UAS
    uas = rooms.answerer(port=legacy_trunk, ip=LEGACY_IP)
    target = f"sip:{room['number']}@{LEGACY_IP}:{legacy_trunk}"
    r = rooms.api("post", f"/api/rooms/{room['id']}/invitations", json={"target": target, "name": "老会议室"})
    assert r.status_code == 202, r.text
    assert r.json()["dial"] == f"PJSIP/legacy/{target}"
    join = rooms.ami("ConfbridgeJoin", lambda e: e.get("Uniqueid") == r.json()["id"])
    assert join.get("Channel").startswith("PJSIP/legacy-")
    msgs = (rooms.tmp / f"msgs-{legacy_trunk}.log").read_text(errors="replace")
    assert re.search(rf"INVITE sip:{room['number']}@{re.escape(LEGACY_IP)}:{legacy_trunk}", msgs), msgs[:2000]
    assert len(rooms.live(room)["participants"]) == 2
    rooms.api("post", f"/api/rooms/{room['id']}/end")
    rooms.room_event(room, "ended")
    uas.stop()

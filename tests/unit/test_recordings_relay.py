"""A browser (SRTP) party's video in a two-party recording, without Asterisk: when the tap relays (manifest),
what tcpdump is told to capture, how the relayed packets are told apart and given to the SRTP leg, how a leg
is found to be SRTP, and the depacketizer keeping frames across the holes a browser's padding leaves."""

from __future__ import annotations

import json
import stat
import sys
import time
from pathlib import Path

import pytest

from huiyan.recordings import h264, pcap, tap, video
from huiyan.recordings.h264 import RtpPacket, depacketize
from tests.unit.test_recordings_video import (FAKE_TCPDUMP, PPS, SPS, _Ami, _Ch, _ev, _Tracker, _until, gop,
                                              stream)


def leg(uid: str, port: int = 0, *, secure: bool = False, remote: str = "", left: float | None = None,
        joined: float = 10.0) -> tap.TapLeg:
    note = "SRTP" if secure else ("" if port else "no video stream")
    return tap.TapLeg(uid, f"PJSIP/{uid}-1", number=uid, port=port, remote=remote, joined=joined, left=left,
                      note=note, secure=secure)


# ---- when to relay (the manifest) ---------------------------------------------------------------------------

def test_only_a_two_party_session_of_one_srtp_and_one_plain_leg_is_relayed() -> None:
    plain, browser = leg("plain", 40002, remote="10.0.0.9:7002"), leg("web", 40010, secure=True)
    m = tap.TapManifest("hotline:1", "a.wav", 0.0, legs=[plain, browser])
    assert m.relay_wanted() == (browser, plain)
    for legs in ([plain, leg("web2", 40020, secure=True), browser],  # a room: a third leg
                 [leg("w1", 40010, secure=True), leg("w2", 40020, secure=True)],  # browser to browser
                 [plain, leg("phone", 40030, remote="10.0.0.8:7002")],  # both plain: each captured as sent
                 [plain, leg("web", 0, secure=True)],  # the browser sends no video
                 [leg("plain", 40002), browser],  # where Asterisk sends is unknown
                 [plain, leg("web", 40010, secure=True, left=12.0)]):  # alone
        assert tap.TapManifest("s", "a.wav", 0.0, legs=legs).relay_wanted() is None, legs


def test_the_relay_follows_the_legs_and_round_trips() -> None:
    plain, browser = leg("plain", 40002, remote="10.0.0.9:7002"), leg("web", 40010, secure=True)
    m = tap.TapManifest("hotline:1", "a.wav", 0.0, legs=[plain, browser])
    assert m.set_relays(11.0) and not m.set_relays(11.5)  # started once
    (r,) = m.relays_now()
    assert (r.leg, r.via, r.channel, r.sport, r.dst, r.spec) == (
        "web", "plain", "PJSIP/plain-1", 40002, "10.0.0.9:7002", "40002>10.0.0.9:7002")
    assert m.ports() == [40002] and m.not_captured() == []  # the browser's video is in the capture, relayed
    third = leg("lawyer", 40020, remote="10.0.0.7:7002", joined=13.0)
    m.legs.append(third)
    assert m.set_relays(13.0) and m.relays_now() == [] and r.stopped == 13.0  # three parties: no longer
    third.left = 20.0
    assert m.set_relays(20.0) and [x.started for x in m.relays_now()] == [20.0]  # two again: a new relay
    assert [x.leg for x in m.relayed("web")] == ["web", "web"] and m.relayed("plain") == []
    assert tap.TapManifest.from_json(m.to_json()) == m
    # a manifest written before relays existed still loads
    old = json.loads(m.to_json())
    del old["relays"]
    for g in old["legs"]:
        del g["secure"]
    for s in old["segments"]:
        del s["relays"]
    assert tap.TapManifest.from_json(json.dumps(old)).relays == []
    # an SRTP leg never relayed is "not captured", with its reason
    alone = tap.TapManifest("s", "a.wav", 0.0, legs=[leg("w1", 40010, secure=True), leg("w2", 40020, secure=True)])
    assert not alone.set_relays(1.0) and [g.id for g in alone.not_captured()] == ["w1", "w2"]


def test_the_capture_filter_takes_what_asterisk_sends_to_the_plain_leg() -> None:
    assert tap.capture_filter([40002]) == "inbound and udp and (dst port 40002)"  # unchanged without relays
    assert tap.capture_filter([40002], ["40002>10.0.0.9:7002"]) == (
        "(inbound and udp and (dst port 40002)) or (udp and src port 40002 and dst host 10.0.0.9 and dst port 7002)")
    assert tap.capture_filter([], ["40002>[2001:db8::9]:7002"]) == (
        "(udp and src port 40002 and dst host 2001:db8::9 and dst port 7002)")
    for bad in ("40002", "x>10.0.0.9:7002", "40002>10.0.0.9"):
        with pytest.raises(ValueError):
            tap.capture_filter([40002], [bad])


# ---- the relayed packets in the capture ---------------------------------------------------------------------

def test_extraction_gives_the_relayed_stream_to_the_srtp_leg_in_its_own_place(tmp_path: Path) -> None:
    """Segment 1: the plain leg's own video arriving at Asterisk's port 40002. Segment 2: what Asterisk sends
    from 40002 to the plain endpoint 10.0.0.9:7002 - the browser's picture - while the relay was on, then
    after it stopped (a third party joined: a mix, not the browser), and to another endpoint (someone else's)."""
    audio = tmp_path / "call.wav"
    t0 = 1000.0
    own = [(t0 + 1.0 + at, p.build()) for at, p in stream(gop(0, 25), ssrc=0xA)]
    relayed = [(t0 + 1.5 + at, p.build()) for at, p in stream(gop(100, 25), ssrc=0xB)]
    after = [(t0 + 8.0 + at, p.build()) for at, p in stream(gop(200, 10), ssrc=0xB, seq=500)]
    s1, s2, s3 = (tap.segment_path(audio, k) for k in (1, 2, 3))
    pcap.write(s1, own, src=("10.0.0.9", 7002), dst=("127.0.0.1", 40002))
    pcap.write(s2, sorted(relayed + after), src=("127.0.0.1", 40002), dst=("10.0.0.9", 7002))
    pcap.write(s3, relayed, src=("127.0.0.1", 40002), dst=("10.0.0.8", 7002))
    plain = leg("plain", 40002, remote="10.0.0.9:7002", joined=t0 + 0.9)
    browser = leg("web", 40010, secure=True, joined=t0 + 0.9)
    m = tap.TapManifest("hotline:x", audio.name, t0, closed=True, legs=[plain, browser],
                        relays=[tap.TapRelay("web", "plain", "PJSIP/plain-1", 40002, "10.0.0.9:7002", t0 + 1.0,
                                             t0 + 7.0)],
                        segments=[tap.TapSegment(s.name, [40002], t0, t0 + 20) for s in (s1, s2, s3)])
    m.save(tap.manifest_path(audio))
    legs = video.extract(tap.manifest_path(audio))
    assert [(g.leg, g.frames, g.source) for g in legs] == [
        ("plain", 25, "sent"), ("web", 25, "relayed by Asterisk to PJSIP/plain-1")]
    assert abs(legs[1].offset_s - 1.5) < 0.01
    assert legs[1].describe()["source"] == "relayed by Asterisk to PJSIP/plain-1"
    first = h264.read_ivf(legs[1].path)[0][1]
    assert first == b"".join(b"\x00\x00\x00\x01" + n for n in gop(100, 1)[0])  # the browser's, not the phone's


# ---- is the leg SRTP? (the tap service, a stand-in for tcpdump) --------------------------------------------

async def test_the_tap_relays_a_browser_agent_s_video_and_stops_when_a_third_party_joins(tmp_path: Path) -> None:
    from huiyan.hotline.service import HotlineEvent

    fake = tmp_path / "tcpdump"
    fake.write_text(FAKE_TCPDUMP.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    tracker, ami = _Tracker(), _Ami()
    wav = tmp_path / "hotline-c1.wav"
    svc = tap.TapService("pbx1", ami, tracker, binary=str(fake), interface="any")
    await svc.start()
    caller, agent, third = ("c1", "PJSIP/anonymous-1"), ("a1", "PJSIP/80001-2"), ("t1", "PJSIP/8003-3")
    ami.vars.update({
        (caller[1], "MIXMONITOR_FILENAME"): str(wav),
        (caller[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40002",
        (caller[1], "CHANNEL(rtp,dest,video)"): "10.0.0.9:7002",
        (caller[1], "CHANNEL(rtp,secure,video)"): "0", (caller[1], "CHANNEL(rtp,secure,audio)"): "0",
        (caller[1], "CHANNEL(endpoint)"): "anonymous",
        # a browser: its video is bundled on the audio transport, and only the audio says SRTP
        (agent[1], "CHANNEL(rtp,src,video)"): "192.0.2.2:40010", (agent[1], "CHANNEL(rtp,secure,video)"): "0",
        (agent[1], "CHANNEL(rtp,secure,audio)"): "1",
        # a third party whose DTLS is not up yet: its endpoint says it will be SRTP
        (third[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40020", (third[1], "CHANNEL(endpoint)"): "8003",
        (third[1], "PJSIP_ENDPOINT(8003,media_encryption)"): "dtls",
    })
    ami.vars[(caller[1], "PJSIP_ENDPOINT(anonymous,media_encryption)")] = "no"
    tracker.channels[caller[0]] = _Ch(*caller, "13900000000")
    svc.on_event(HotlineEvent("pbx1", "CallAnswered", {"call_id": "c1"}, time.time()))
    for uid, name in (caller, agent):
        tracker.channels[uid] = _Ch(uid, name, name[6:11], bridge_id="B1")
        svc.on_event(_ev("BridgeEnter", Uniqueid=uid, Channel=name, BridgeUniqueid="B1"))
    mf = tap.manifest_path(wav)
    m = await _until(lambda: mf.exists() and len((x := tap.TapManifest.load(mf)).legs) == 2 and x.relays
                     and x.segments and x.segments[-1].relays and x)
    assert [(g.id, g.secure, g.captured) for g in m.legs] == [("c1", False, True), ("a1", True, False)]
    assert m.ports() == [40002] and m.segments[-1].relays == ["40002>10.0.0.9:7002"]
    args = Path(str(mf.with_name(m.segments[-1].file)) + ".args").read_text()
    assert args.endswith("(inbound and udp and (dst port 40002)) or "
                         "(udp and src port 40002 and dst host 10.0.0.9 and dst port 7002)")
    # a third party: Asterisk's stream to the caller is no longer the agent's alone - the relay stops
    tracker.channels[third[0]] = _Ch(*third, "8003", bridge_id="B1")
    svc.on_event(_ev("BridgeEnter", Uniqueid=third[0], Channel=third[1], BridgeUniqueid="B1"))
    m = await _until(lambda: len((x := tap.TapManifest.load(mf)).legs) == 3 and not x.segments[-1].relays
                     and len(x.segments) >= 2 and x)
    assert m.legs[2].secure and m.relays_now() == [] and m.relays[0].stopped is not None
    assert m.segments[-1].ports == [40002] and m.segments[-2].stopped is not None
    # the caller hangs up: closed, the relay's end recorded
    del tracker.channels[caller[0]]
    svc.on_event(_ev("Hangup", Uniqueid="c1", Channel=caller[1]))
    m = await _until(lambda: (x := tap.TapManifest.load(mf)).closed and x)
    assert all(r.stopped is not None for r in m.relays) and [g.id for g in m.not_captured()] == ["t1"]
    await svc.stop()


# ---- holes between frames (a browser's padding, dropped by Asterisk) ----------------------------------------

def _slice(fn: int, *, idr: bool = False, ref: bool = True, size: int = 300) -> bytes:
    """A slice whose header carries frame_num `fn` (first_mb 0, slice type 0, PPS 0: three 1 bits, then fn
    in log2_max_frame_num = 4 bits, as SPS says)."""
    head = (0x65 if idr else 0x41) if ref else 0x01
    return bytes([head, 0xE0 | (fn & 0xF) << 1 | 1]) + bytes((fn * 5 + i) % 250 + 1 for i in range(size - 2))


def _frames(count: int, *, ref_every: int = 1) -> list[list[bytes]]:
    out, fn = [[SPS, PPS, _slice(0, idr=True)]], 0
    for k in range(1, count):
        ref = k % ref_every == 0
        out.append([_slice((fn + 1) % 16, ref=ref)])
        fn = (fn + 1) % 16 if ref else fn
    return out


def _renumber(packets: list[tuple[float, RtpPacket]], after: int, hole: int) -> list[tuple[float, RtpPacket]]:
    """Sequence numbers jump by `hole` after packet `after` (packets sent but never relayed)."""
    return [(at, RtpPacket((p.seq + (hole if i > after else 0)) & 0xFFFF, p.timestamp, p.ssrc, p.payload_type,
                           p.marker, p.payload)) for i, (at, p) in enumerate(packets)]


def test_sps_and_slice_frame_num_are_read() -> None:
    assert h264.parse_sps(SPS) == h264.SpsInfo(4)
    x264_high = bytes.fromhex("6764001eacd940a02ff97011000003000100000300320f162d96")  # x264, High, 640x360
    assert h264.parse_sps(x264_high) == h264.SpsInfo(4)
    assert [h264.slice_frame_num(_slice(n), h264.SpsInfo(4)) for n in (0, 1, 15)] == [0, 1, 15]
    assert h264.slice_frame_num(_slice(3), None) is None and h264.parse_sps(b"\x67") is None


def test_a_hole_between_frames_that_lost_no_reference_frame_keeps_the_picture() -> None:
    aus = _frames(40)  # frame_num wraps at 16 on the way
    packets = stream(aus)
    frames, stats = depacketize(_renumber(packets, after=len(packets) - 15, hole=7))  # padding, never relayed
    assert [list(f.nals) for f in frames] == aus and stats.lost == 7 and stats.gaps_kept == 1 and stats.skipped == 0
    # a lost non-reference frame harms nothing either
    aus = _frames(12, ref_every=3)
    packets = stream(aus)
    lost = [k for k, (_, p) in enumerate(packets) if p.payload[0] == 0x01][0]
    frames, stats = depacketize(packets[:lost] + packets[lost + 1:])
    assert len(frames) == 11 and stats.lost == 1 and stats.gaps_kept == 1
    # a lost reference frame: frame_num jumps, so the frames after it wait for a keyframe
    aus = _frames(10) + _frames(5)
    packets = stream(aus)
    lost = [k for k, (_, p) in enumerate(packets) if p.payload == aus[4][0]][0]
    frames, stats = depacketize(packets[:lost] + packets[lost + 1:])
    assert [list(f.nals) for f in frames] == aus[:4] + aus[10:] and stats.skipped == 5 and stats.gaps_kept == 0

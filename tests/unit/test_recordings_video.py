"""Video recording without Asterisk: the RFC 6184 depacketizer (single NAL, STAP-A, FU-A, loss, reordering,
wraps), the capture reader, the tap's manifest and its following of a session's bridge (with a stand-in for
tcpdump), the per-leg extraction (ports reused, timing), and the finaliser's layout plan."""

from __future__ import annotations

import asyncio
import os
import random
import stat
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huiyan.recordings import h264, media, pcap, tap, video
from huiyan.recordings.h264 import RtpPacket, depacketize

SPS = bytes([0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x00, 0xA0, 0x47, 0xFE, 0xC8])
PPS = bytes([0x68, 0xCE, 0x3C, 0x80])


def idr(n: int, size: int = 3000) -> bytes:
    return bytes([0x65]) + bytes((n + i) % 251 + 1 for i in range(size - 1))


def p_slice(n: int, size: int = 400) -> bytes:
    return bytes([0x41]) + bytes((n * 7 + i) % 251 + 1 for i in range(size - 1))


def gop(first: int, count: int) -> list[list[bytes]]:
    """A keyframe (with its parameter sets) and count-1 P frames."""
    return [[SPS, PPS, idr(first)]] + [[p_slice(first + k)] for k in range(1, count)]


def stream(aus: list[list[bytes]], **kw: Any) -> list[tuple[float, RtpPacket]]:
    return list(h264.rtp_stream(aus, **kw))


def nals(frames: list[h264.Frame]) -> list[list[bytes]]:
    return [list(f.nals) for f in frames]


# ---- RTP -----------------------------------------------------------------------------------------------------

def test_rtp_header_with_csrcs_extension_and_padding_is_stripped() -> None:
    payload = b"\x65hello"
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 99, 7, 90000, 0xABCDEF)
    csrcs = struct.pack("!II", 1, 2)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\x01\x00\x00"
    pkt = RtpPacket.parse(header + csrcs + ext + payload + b"\x00\x00\x03")
    assert pkt == RtpPacket(7, 90000, 0xABCDEF, 99, True, payload)
    assert RtpPacket.parse(pkt.build()) == pkt


def test_what_is_not_rtp_is_refused() -> None:
    rtcp_rr = struct.pack("!BBHI", 0x81, 201, 7, 0x1234) + b"\x00" * 24  # RTCP on an rtcp-mux port
    stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12
    assert RtpPacket.parse(rtcp_rr) is None and RtpPacket.parse(stun) is None and RtpPacket.parse(b"\x80") is None


# ---- depacketizing -------------------------------------------------------------------------------------------

def test_single_nal_stap_a_and_fu_a_come_back_as_the_frames_sent() -> None:
    aus = gop(0, 5) + gop(5, 5)
    packets = stream(aus)
    kinds = {p.payload[0] & 0x1F for _, p in packets}
    assert {h264.STAP_A, h264.FU_A, 1}.issubset(kinds)  # parameter sets aggregated, keyframes fragmented, P single
    frames, stats = depacketize(packets)
    assert nals(frames) == aus
    assert [f.keyframe for f in frames] == [True] + [False] * 4 + [True] + [False] * 4
    assert [f.timestamp for f in frames] == [k * 3600 for k in range(10)]
    assert frames[0].annexb() == b"".join(b"\x00\x00\x00\x01" + n for n in aus[0])
    assert (stats.lost, stats.damaged, stats.frames) == (0, 0, 10)


def test_stap_a_unpacks_each_unit_and_a_malformed_one_damages_its_frame() -> None:
    stap = bytes([0x78]) + struct.pack("!H", len(SPS)) + SPS + struct.pack("!H", len(PPS)) + PPS
    ok = [(0.0, RtpPacket(1, 0, 5, 99, False, stap)), (0.0, RtpPacket(2, 0, 5, 99, True, idr(1, 50)))]
    frames, _ = depacketize(ok)
    assert nals(frames) == [[SPS, PPS, idr(1, 50)]]
    bad = bytes([0x78]) + struct.pack("!H", 200) + SPS  # says 200 bytes, has 10
    frames, stats = depacketize([(0.0, RtpPacket(1, 0, 5, 99, False, bad)),
                                 (0.0, RtpPacket(2, 0, 5, 99, True, idr(1, 50)))])
    assert frames == [] and stats.damaged == 1


def test_fu_a_start_middle_end_reassemble_the_nal_with_its_header() -> None:
    nal = bytes([0x65]) + bytes(range(1, 251)) * 10  # 2501 bytes: 3 fragments of at most 1198
    payloads = h264.packetize([nal], mtu=1200)
    assert len(payloads) == 3 and all(p[0] & 0x1F == h264.FU_A for p in payloads)
    assert [p[1] & 0xC0 for p in payloads] == [0x80, 0x00, 0x40]  # start, middle, end
    assert all(p[0] & 0x60 == 0x60 for p in payloads)  # NRI kept from the NAL header
    packets = [(0.0, RtpPacket(10, 0, 1, 99, False, SPS)), (0.0, RtpPacket(11, 0, 1, 99, False, PPS))]
    packets += [(0.0, RtpPacket(12 + i, 0, 1, 99, i == 2, p)) for i, p in enumerate(payloads)]
    frames, _ = depacketize(packets)
    assert nals(frames) == [[SPS, PPS, nal]]


def _drop(packets: list[tuple[float, RtpPacket]], pred: Any) -> list[tuple[float, RtpPacket]]:
    return [(at, p) for at, p in packets if not pred(p)]


def test_a_lost_fragment_drops_its_frame_and_what_follows_until_the_next_keyframe() -> None:
    aus = gop(0, 4) + gop(4, 3)
    packets = stream(aus)
    # the middle fragment of the first keyframe (frame 0) is lost
    frame0 = [p for _, p in packets if p.timestamp == 0 and p.payload[0] & 0x1F == h264.FU_A]
    middle = frame0[1]
    assert not middle.payload[1] & 0xC0
    lossy = _drop(packets, lambda p: p is middle)
    frames, stats = depacketize(lossy)
    assert stats.lost == 1 and stats.damaged == 1 and stats.skipped == 3
    assert nals(frames) == aus[4:]  # frames 1-3 referenced the broken keyframe: frozen until frame 4
    # without resync the damaged frame still goes, but its successors are handed on
    frames, stats = depacketize(lossy, resync=False)
    assert nals(frames) == aus[1:] and stats.damaged == 1


def test_a_lost_start_or_end_fragment_damages_the_frame() -> None:
    aus = gop(0, 2) + gop(2, 2)
    packets = stream(aus)
    fus = [p for _, p in packets if p.timestamp == 2 * 3600 and p.payload[0] & 0x1F == h264.FU_A]
    for lost in (fus[0], fus[-1]):  # the start; the end (which carries the marker)
        frames, stats = depacketize(_drop(packets, lambda p, lost=lost: p is lost))
        assert nals(frames) == aus[:2] and stats.damaged == 1 and stats.lost == 1


def test_a_lost_whole_frame_resyncs_at_the_next_keyframe() -> None:
    aus = gop(0, 4) + gop(4, 2)
    packets = stream(aus)
    frames, stats = depacketize(_drop(packets, lambda p: p.timestamp == 2 * 3600))
    assert nals(frames) == aus[:2] + aus[4:] and stats.skipped == 1


def test_timestamps_and_sequence_numbers_unwrap() -> None:
    aus = gop(0, 6)
    packets = stream(aus, timestamp=0xFFFFFFFF - 7000, seq=0xFFFE)
    assert {p.seq for _, p in packets} >= {0xFFFF, 0, 1}
    assert any(p.timestamp < 10000 for _, p in packets) and any(p.timestamp > 0xFFFF0000 for _, p in packets)
    frames, stats = depacketize(packets)
    assert nals(frames) == aus and stats.lost == 0
    ts = [f.timestamp for f in frames]
    assert ts == [0xFFFFFFFF - 7000 + k * 3600 for k in range(6)]  # past 2^32, still increasing
    assert h264.unwrap(5, 0xFFFFFFF0, 32) == 0x100000005 and h264.unwrap(0xFFF0, 0x10005, 16) == 0xFFF0


def test_reordered_and_duplicated_packets_are_put_right() -> None:
    aus = gop(0, 5)
    packets = stream(aus)
    rng = random.Random(7)
    shaken = list(packets)
    for i in range(0, len(shaken) - 3, 3):  # swap neighbours within small windows
        j = i + rng.randrange(1, 3)
        shaken[i], shaken[j] = shaken[j], shaken[i]
    shaken += [packets[3], packets[5]]  # copies (two overlapping capture segments)
    frames, stats = depacketize(shaken)
    assert nals(frames) == aus and stats.duplicates == 2 and stats.lost == 0


def test_a_new_ssrc_is_a_new_stream_that_starts_at_its_keyframe() -> None:
    first = stream(gop(0, 3), ssrc=1)
    second = stream([[p_slice(9)]] + gop(10, 2), ssrc=2, seq=500, timestamp=123456)
    frames, stats = depacketize(first + [(at + 1.0, p) for at, p in second])
    assert [f.ssrc for f in frames] == [1, 1, 1, 2, 2] and stats.streams == 2 and stats.skipped == 1


def test_stap_b_mtap_and_fu_b_are_refused() -> None:
    packets = [(0.0, RtpPacket(1, 0, 1, 99, False, SPS)), (0.0, RtpPacket(2, 0, 1, 99, False, PPS)),
               (0.0, RtpPacket(3, 0, 1, 99, True, bytes([0x7A, 0, 0]) + idr(0, 20)))]  # MTAP16
    frames, stats = depacketize(packets)
    assert frames == [] and stats.unsupported == 1 and stats.damaged == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 4000), min_size=1, max_size=4), min_size=1, max_size=12),
       st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF), st.integers(200, 1400))
def test_packetize_then_depacketize_is_the_identity(sizes: list[list[int]], seq: int, ts: int, mtu: int) -> None:
    aus = [[SPS, PPS, idr(0)]] + [[bytes([0x41]) + bytes((k + i) % 255 + 1 for i in range(n - 1)) if n > 1
                                   else b"\x41" for i, n in enumerate(sz)] for k, sz in enumerate(sizes)]
    frames, stats = depacketize(stream(aus, seq=seq, timestamp=ts, mtu=mtu))
    assert nals(frames) == aus and stats.lost == 0


# ---- IVF ---------------------------------------------------------------------------------------------------

def test_ivf_frames_get_their_times_and_the_header_its_duration(tmp_path: Path) -> None:
    w = h264.IvfWriter(tmp_path / "a.ivf")
    for k in range(3):
        w.write(bytes([k]) * (k + 5))
    w.set_times([0, 40, 120])
    w.close(160)
    data = (tmp_path / "a.ivf").read_bytes()
    assert data[:4] == b"DKIF" and data[8:12] == b"H264" and struct.unpack_from("<III", data, 16) == (1000, 1, 160)
    assert h264.read_ivf(tmp_path / "a.ivf") == [(0, bytes([0]) * 5), (40, bytes([1]) * 6), (120, bytes([2]) * 7)]


# ---- capture files -------------------------------------------------------------------------------------------

def _sll2(path: Path, datagrams: list[tuple[float, str, int, int, bytes]]) -> None:
    """What `tcpdump -i any` writes (Linux cooked v2), built by hand."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, pcap.LINKTYPE_LINUX_SLL2))
        for at, ip, sport, dport, payload in datagrams:
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, bytes(map(int, ip.split("."))),
                              bytes([127, 0, 0, 1]))
            sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, 0x0304, 0, 6, b"\x00" * 8)
            frame = sll2 + hdr + udp
            f.write(struct.pack("<IIII", int(at), int(round((at % 1) * 1e6)), len(frame), len(frame)) + frame)


def test_pcap_reader_takes_cooked_v2_and_ethernet_and_stops_at_a_cut(tmp_path: Path) -> None:
    _sll2(tmp_path / "any.pcap", [(100.25, "10.0.0.5", 7002, 40002, b"abc"), (101.5, "10.0.0.6", 7004, 40004, b"de")])
    got = list(pcap.read(tmp_path / "any.pcap"))
    assert [(d.at, d.src, d.sport, d.dst, d.dport, d.payload) for d in got] == [
        (100.25, "10.0.0.5", 7002, "127.0.0.1", 40002, b"abc"), (101.5, "10.0.0.6", 7004, "127.0.0.1", 40004, b"de")]
    pcap.write(tmp_path / "eth.pcap", [(5.0, b"x" * 10), (6.0, b"y" * 3, 40010)])
    data = (tmp_path / "eth.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[:-2])  # tcpdump killed mid-packet
    assert [(d.dport, d.payload) for d in pcap.read(tmp_path / "eth.pcap")] == [(40002, b"x" * 10), (40010, b"yyy")]
    assert [d.payload for d in pcap.read(tmp_path / "cut.pcap")] == [b"x" * 10]
    (tmp_path / "empty.pcap").write_bytes(b"")
    assert list(pcap.read(tmp_path / "empty.pcap")) == []
    (tmp_path / "junk.pcap").write_bytes(b"\x00" * 40)
    with pytest.raises(pcap.PcapError):
        list(pcap.read(tmp_path / "junk.pcap"))


# ---- the manifest and the extraction -------------------------------------------------------------------------

def test_manifest_round_trip_filter_and_addresses(tmp_path: Path) -> None:
    audio = tmp_path / "hotline-1.wav"
    m = tap.TapManifest(session="hotline:1", audio=audio.name, anchor=10.0, owner=tap.this_owner(),
                        legs=[tap.TapLeg("a", "PJSIP/a-1", port=40002, joined=10.0),
                              tap.TapLeg("b", "PJSIP/b-2", port=40010, joined=11.0, note="SRTP"),
                              tap.TapLeg("c", "PJSIP/c-3", port=40004, joined=11.0, left=15.0),
                              tap.TapLeg("d", "PJSIP/d-4", joined=12.0, note="no video stream")])
    assert m.ports() == [40002]  # present and capturable only
    m.save(tap.manifest_path(audio))
    assert tap.TapManifest.load(tmp_path / "hotline-1.tap.json") == m
    assert tap.capture_filter([40002, 40004]) == "inbound and udp and (dst port 40002 or dst port 40004)"
    assert tap.parse_addr("127.0.0.1:56950") == ("127.0.0.1", 56950)
    assert tap.parse_addr("[2001:db8::1]:4000") == ("2001:db8::1", 4000)
    assert tap.parse_addr("") is None and tap.parse_addr("(null)") is None and tap.parse_addr("0.0.0.0:0") is None
    tap.segment_path(audio, 1).write_bytes(b"")
    (tmp_path / "hotline-1.leg0.ivf").write_bytes(b"")
    (tmp_path / "hotline-10.tap.json").write_bytes(b"")  # another capture's
    assert [p.name for p in tap.companions(audio)] == ["hotline-1.leg0.ivf", "hotline-1.tap.json", "hotline-1.tap1.pcap"]
    assert tap.owner_alive(tap.this_owner()) and not tap.owner_alive(f"{tap.socket.gethostname()}:999999999")


def test_extraction_keeps_each_leg_to_its_port_and_time_and_places_it_against_the_audio(tmp_path: Path) -> None:
    """Port 40002 carries leg A, then (after A left, Asterisk reused the port) leg B; a packet to that port
    long after B left is another call's and belongs to nobody. Arrival jitter does not move frames."""
    audio = tmp_path / "room.wav"
    t0 = 1000.0
    rng = random.Random(3)
    a = [(t0 + 1.0 + at + rng.uniform(0, 0.03), p, 40002) for at, p in stream(gop(0, 25), ssrc=0xA)]
    b = [(t0 + 8.0 + at + rng.uniform(0, 0.03), p, 40002) for at, p in stream(gop(50, 25), ssrc=0xB)]
    stranger = [(t0 + 30.0 + at, p, 40002) for at, p in stream(gop(90, 5), ssrc=0xC)]
    seg = tap.segment_path(audio, 1)
    pcap.write(seg, [(at, p.build(), port) for at, p, port in sorted(a + b + stranger, key=lambda x: x[0])])
    m = tap.TapManifest(session="room:x", audio=audio.name, anchor=t0, closed=True,
                        legs=[tap.TapLeg("A", "PJSIP/a-1", number="8001", port=40002, joined=t0 + 0.9, left=t0 + 2.5),
                              tap.TapLeg("B", "PJSIP/b-2", number="8002", port=40002, joined=t0 + 7.9, left=t0 + 9.5)],
                        segments=[tap.TapSegment(seg.name, [40002], t0, t0 + 40)])
    m.save(tap.manifest_path(audio))
    legs = video.extract(tap.manifest_path(audio))
    assert [(g.leg, g.frames) for g in legs] == [("A", 25), ("B", 25)]
    for g, start in zip(legs, (1.0, 8.0), strict=True):
        assert abs(g.offset_s - start) < 0.035  # the least-delayed packet ties the clock
        times = [t for t, _ in h264.read_ivf(g.path)]
        assert times == [k * 40 for k in range(25)]  # jitter gone: the RTP clock's own spacing
        assert g.duration_s == pytest.approx(1.0)
    assert [n for _, n in h264.read_ivf(legs[1].path)][0] == b"".join(b"\x00\x00\x00\x01" + n for n in gop(50, 1)[0])


def test_extraction_ignores_other_payload_types_and_overlapping_ssrcs(tmp_path: Path) -> None:
    audio = tmp_path / "call.wav"
    t0 = 50.0
    main = [(t0 + at, p) for at, p in stream(gop(0, 20), ssrc=1)]
    rtx = [(t0 + at + 0.001, RtpPacket(p.seq, p.timestamp, 2, 98, p.marker, b"\x00\x01" + p.payload))
           for at, p in stream(gop(0, 5), ssrc=2)]  # retransmissions (another payload type)
    seg = tap.segment_path(audio, 1)
    pcap.write(seg, [(at, p.build()) for at, p in sorted(main + rtx, key=lambda x: x[0])])
    tap.TapManifest(session="hotline:y", audio=audio.name, anchor=t0, closed=True,
                    legs=[tap.TapLeg("A", "PJSIP/a-1", port=40002, joined=t0)],
                    segments=[tap.TapSegment(seg.name, [40002], t0)]).save(tap.manifest_path(audio))
    (leg,) = video.extract(tap.manifest_path(audio))
    assert leg.frames == 20 and leg.stats["damaged"] == 0


def test_no_captured_leg_or_no_decodable_video_means_no_video(tmp_path: Path) -> None:
    audio = tmp_path / "c.wav"
    t0 = 5.0
    seg = tap.segment_path(audio, 1)
    pcap.write(seg, [(t0 + 0.1 * k, RtpPacket(k, k * 3600, 9, 99, True, p_slice(k, 30)).build()) for k in range(20)])
    tap.TapManifest(session="s", audio=audio.name, anchor=t0, closed=True,
                    legs=[tap.TapLeg("A", "PJSIP/a-1", port=40002, joined=t0),
                          tap.TapLeg("B", "PJSIP/b-1", port=40004, joined=t0, note="SRTP")],
                    segments=[tap.TapSegment(seg.name, [40002], t0)]).save(tap.manifest_path(audio))
    assert video.extract(tap.manifest_path(audio)) == []  # never a keyframe: nothing decodable
    assert not list(tmp_path.glob("*.ivf"))


# ---- the layout --------------------------------------------------------------------------------------------

def test_grid_plan_one_track_for_many_parties_copy_for_one() -> None:
    wav, h = media.Probe(10.0, (media.StreamInfo("audio", "pcm_s16le"),), "wav"), media.Probe(
        9.0, (media.StreamInfo("video", "h264"),), "ivf")
    ins = [media.MediaInput(Path("a.wav")), media.MediaInput(Path("l0.ivf"), "video", 1.0),
           media.MediaInput(Path("l1.ivf"), "video", 2.0)]
    assert media.plan(ins, [wav, h, h], layout="grid", duration_s=11.0) == media.Plan("mp4", "aac", ("grid",), 11.0)
    assert media.plan(ins[:2], [wav, h], layout="grid").video == ("copy",)
    assert media.plan(ins, [wav, h, h], layout="tracks").video == ("copy", "copy")
    assert [media.grid_geometry(n) for n in (1, 2, 3, 4, 5, 9, 10)] == [
        (1, 1, 1280, 720), (2, 1, 640, 360), (2, 2, 640, 360), (2, 2, 640, 360), (3, 2, 426, 238),
        (3, 3, 426, 238), (4, 3, 320, 180)]
    cmd = " ".join(media.command(ins, media.plan(ins, [wav, h, h], layout="grid", duration_s=11.0), Path("o.mp4")))
    assert "color=c=black:s=1280x360:r=25:d=11.000" in cmd and cmd.count("overlay=eof_action=pass") == 2
    assert "-itsoffset 1.000 -i l0.ivf" in cmd and "-c:v libx264" in cmd and "-c:a aac" in cmd


def test_tracks_is_the_default_layout_every_party_copied_the_first_shown() -> None:
    from huiyan.recordings.settings import RecordingSettings

    wav, h = media.Probe(10.0, (media.StreamInfo("audio", "pcm_s16le"),), "wav"), media.Probe(
        9.0, (media.StreamInfo("video", "h264"),), "ivf")
    ins = [media.MediaInput(Path("a.wav")), media.MediaInput(Path("l0.ivf"), "video", 1.0),
           media.MediaInput(Path("l1.ivf"), "video", 2.0)]
    layout = RecordingSettings().video_layout
    assert layout == "tracks"  # the default: no re-encode, so an hour finalises well within issue 5's 20x
    the_plan = media.plan(ins, [wav, h, h], layout=layout)
    assert the_plan == media.Plan("mp4", "aac", ("copy", "copy"))
    cmd = media.command(ins, the_plan, Path("o.mp4"))
    assert "libx264" not in cmd and cmd.count("copy") == 2
    # the second party's track is not "default": a player that picks by the flag shows the first party
    assert cmd[cmd.index("-disposition:v:1") + 1] == "0" and "-disposition:v:0" not in cmd


# ---- the tap following a session (a stand-in for tcpdump) ---------------------------------------------------

FAKE_TCPDUMP = """#!{python}
import signal, sys, time
args = sys.argv[1:]
out = args[args.index("-w") + 1]
open(out, "wb").write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000014010000"))
open(out + ".args", "w").write(" ".join(args))
def stop(*_):
    sys.stderr.write("3 packets captured\\n3 packets received by filter\\n1 packet dropped by kernel\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
sys.stderr.write("tcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes\\n")
sys.stderr.flush()
while True:
    time.sleep(0.05)
"""


@dataclass(frozen=True)
class _Ch:
    uniqueid: str
    name: str
    caller_id_num: str
    caller_id_name: str = ""
    bridge_id: str | None = None


class _Tracker:
    def __init__(self) -> None:
        self.channels: dict[str, _Ch] = {}

    def channels_in_bridge(self, bridge: str) -> list[_Ch]:
        return [c for c in self.channels.values() if c.bridge_id == bridge]


class _Ami:
    def __init__(self) -> None:
        self.vars: dict[tuple[str, str], str] = {}

    async def action(self, name: str, timeout: float | None = None, **f: Any) -> Any:
        from huiyan.pbx.ami import AmiResponse

        return AmiResponse("pbx1", name, {"Response": "Success", "Value": self.vars.get((f["Channel"], f["Variable"]),
                                                                                       "")})


def _ev(name: str, **fields: str) -> Any:
    from huiyan.pbx.events import parse_event

    return parse_event("pbx1", {"Event": name, **fields})


async def _until(pred: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")


async def test_the_tap_follows_a_hotline_call_s_bridge_and_rotates_its_capture(tmp_path: Path) -> None:
    from huiyan.hotline.service import HotlineEvent

    fake = tmp_path / "tcpdump"
    fake.write_text(FAKE_TCPDUMP.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    tracker, ami = _Tracker(), _Ami()
    wav = tmp_path / "hotline-c1.wav"
    alarms: list[tuple[str, str]] = []
    svc = tap.TapService("pbx1", ami, tracker, binary=str(fake), interface="any",
                         alarm=lambda kind, msg, data: alarms.append((kind, msg)))
    await svc.start()
    caller, agent, third, browser = ("c1", "PJSIP/anonymous-1"), ("a1", "PJSIP/8001-2"), ("t1", "PJSIP/8003-3"), (
        "w1", "PJSIP/9001-4")
    ami.vars.update({
        (caller[1], "MIXMONITOR_FILENAME"): str(wav),
        (caller[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40002", (caller[1], "CHANNEL(rtp,dest,video)"): "10.0.0.9:7002",
        (agent[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40010", (agent[1], "CHANNEL(rtp,secure,video)"): "0",
        (third[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40020",
        (browser[1], "CHANNEL(rtp,src,video)"): "127.0.0.1:40030", (browser[1], "CHANNEL(rtp,secure,video)"): "1",
    })
    tracker.channels[caller[0]] = _Ch(*caller, "13900000000")
    svc.on_event(HotlineEvent("pbx1", "CallAnswered", {"call_id": "c1"}, time.time()))  # before the bridge
    assert svc.sessions == {}
    for uid, name in (caller, agent):
        tracker.channels[uid] = _Ch(uid, name, name[6:10], bridge_id="B1")
        svc.on_event(_ev("BridgeEnter", Uniqueid=uid, Channel=name, BridgeUniqueid="B1"))
    mf = tap.manifest_path(wav)
    m = await _until(lambda: mf.exists() and len((x := tap.TapManifest.load(mf)).legs) == 2 and x.segments and x)
    assert [g.id for g in m.legs] == ["c1", "a1"] and m.ports() == [40002, 40010] and m.legs[0].remote == "10.0.0.9:7002"
    assert m.anchor <= m.legs[1].joined and not m.closed
    first = mf.with_name(m.segments[0].file)
    args = Path(str(first) + ".args").read_text()
    assert "-i any" in args and args.endswith("inbound and udp and (dst port 40002 or dst port 40010)")
    # a third party (invited) and a browser (SRTP) join: a new segment with three ports, the old one stopped
    for uid, name in (third, browser):
        tracker.channels[uid] = _Ch(uid, name, name[6:10], bridge_id="B1")
        svc.on_event(_ev("BridgeEnter", Uniqueid=uid, Channel=name, BridgeUniqueid="B1"))
    m = await _until(lambda: len((x := tap.TapManifest.load(mf)).legs) == 4 and len(x.segments) == 2 and x)
    assert m.ports() == [40002, 40010, 40020] and m.segments[1].ports == [40002, 40010, 40020]
    assert m.segments[0].stopped is not None and m.segments[0].dropped == 1 and m.segments[1].stopped is None
    assert [g.note[:4] for g in m.legs] == ["", "", "", "SRTP"]
    # the third party leaves: the capture narrows again
    tracker.channels[third[0]] = _Ch(*third, "8003", bridge_id=None)
    svc.on_event(_ev("BridgeLeave", Uniqueid=third[0], Channel=third[1], BridgeUniqueid="B1"))
    m = await _until(lambda: len((x := tap.TapManifest.load(mf)).segments) == 3 and x)
    assert m.segments[2].ports == [40002, 40010] and [g.left is not None for g in m.legs] == [False, False, True, False]
    # the caller hangs up: the tap closes, every capture is stopped
    del tracker.channels[caller[0]]
    svc.on_event(_ev("Hangup", Uniqueid="c1", Channel=caller[1]))
    m = await _until(lambda: (x := tap.TapManifest.load(mf)).closed and x)
    assert all(s.stopped is not None for s in m.segments) and all(g.left is not None for g in m.legs)
    assert svc.sessions == {} and alarms == [] and svc.health()["started"] == 1
    await svc.stop()


async def test_without_tcpdump_the_tap_says_so_and_audio_goes_on(tmp_path: Path) -> None:
    alarms: list[str] = []
    svc = tap.TapService("pbx1", _Ami(), _Tracker(), binary=str(tmp_path / "no-such-tcpdump"),
                         alarm=lambda kind, msg, data: alarms.append(kind))
    await svc.start()
    assert alarms == ["video_capture_failed"] and "not found" in svc.health()["error"]


async def test_a_capture_that_cannot_start_is_recorded_in_the_manifest_and_alarmed(tmp_path: Path) -> None:
    broken = tmp_path / "tcpdump"
    broken.write_text("#!/bin/sh\necho 'tcpdump: any: You do not have permission to capture on that device' >&2\nexit 1\n")
    broken.chmod(0o755)
    tracker, ami = _Tracker(), _Ami()
    alarms: list[str] = []
    svc = tap.TapService("pbx1", ami, tracker, binary=str(broken), alarm=lambda kind, msg, data: alarms.append(msg))
    await svc.start()
    wav = tmp_path / "meeting-6001.wav"
    tracker.channels["p1"] = _Ch("p1", "PJSIP/8001-1", "8001", bridge_id="CB")

    class _Rooms:
        live = {"6001": type("S", (), {"bridge_id": "CB"})()}

    svc.rooms = _Rooms()
    ami.vars[("PJSIP/8001-1", "CHANNEL(rtp,src,video)")] = "127.0.0.1:40002"
    from huiyan.rooms.service import RoomEvent

    svc.on_event(RoomEvent("pbx1", 1, "6001", "recording_started", {"path": str(wav)}, time.time()))
    mf = tap.manifest_path(wav)
    m = await _until(lambda: mf.exists() and (x := tap.TapManifest.load(mf)).errors and x)
    assert m.segments == [] and "permission" in m.errors[0] and len(alarms) == 1 and "meeting-6001" in alarms[0]
    svc.on_event(RoomEvent("pbx1", 1, "6001", "recording_stopped", {"path": str(wav)}, time.time()))
    await _until(lambda: tap.TapManifest.load(mf).closed)
    await svc.stop()
    assert os.path.exists(mf)


def test_two_calls_of_the_same_second_get_their_own_files(tmp_path: Path) -> None:
    """Asterisk's uniqueids share their first part within a second (pbx1-1795937149.0, …149.2): the
    capture's name keeps the whole id, so the audio (and the tap's files beside it) never collide."""
    from datetime import datetime, timezone

    from huiyan.recordings import target

    when = datetime(2026, 11, 29, 7, 25, 50, tzinfo=timezone.utc)
    a, b = (target(tmp_path, "hotline", f"pbx1-1795937149.{n}", when) for n in (0, 2))
    assert a.wav != b.wav and a.wav.name == "hotline-20261129T072550-pbx1-1795937149.0.wav"
    assert tap.manifest_path(a.wav) != tap.manifest_path(b.wav)
    assert tap.manifest_path(a.wav).name == "hotline-20261129T072550-pbx1-1795937149.0.tap.json"

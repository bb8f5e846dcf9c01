"""From a closed media tap (tap.py) to video the finaliser can mux: one H.264 stream per leg, in an IVF file
with each frame's time, and where it starts against the audio.

Blocking (reads the whole capture twice): runs in the finaliser's worker thread.

1. Which packets are whose: a packet belongs to the leg whose Asterisk-side port it was sent to, while that
   leg was in the session (`LEG_WINDOW_S` of slack each side). Ports are reused by Asterisk for later calls;
   the windows keep another call's video out of this recording. A packet that Asterisk sent from a relay's
   port to its endpoint while the relay was on (tap.TapRelay) is the relay's SRTP party's.
2. Which stream: per leg, the payload type carrying most packets is the video; its SSRCs are taken one after
   the other in time (a phone that restarts its camera starts a new SSRC); one that overlaps the previous
   (retransmissions, a second simulcast layer) is left out.
3. When: RTP timestamps give each frame's time within its SSRC; the SSRC's clock is tied to the wall clock by
   its least-delayed packet (min over frames of arrival - timestamp/90 kHz), so network jitter does not
   shake the picture. The audio's first sample is `manifest.anchor`; a leg's video starts `offset_s` after it.
"""

from __future__ import annotations

import heapq
import logging
import statistics
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huiyan.recordings import h264, pcap
from huiyan.recordings.tap import LEG_WINDOW_S, TapLeg, TapManifest, TapRelay, parse_addr

log = logging.getLogger(__name__)

DEFAULT_FRAME_MS = 40  # the last frame's duration when the stream gives no better idea (25 fps)


@dataclass(frozen=True, slots=True)
class LegVideo:
    leg: str  # the channel's uniqueid
    channel: str
    number: str
    name: str
    path: Path  # IVF
    offset_s: float  # first frame, seconds after the audio's first sample
    duration_s: float
    frames: int
    stats: dict[str, int]
    source: str = "sent"  # "sent": the leg's own packets; or "relayed by Asterisk to <channel>" (an SRTP leg)

    def describe(self) -> dict[str, Any]:
        return {"leg": self.leg, "channel": self.channel, "number": self.number, "name": self.name,
                "path": self.path.name, "offset_s": round(self.offset_s, 3), "duration_s": round(self.duration_s, 3),
                "frames": self.frames, "source": self.source, **self.stats}


def leg_video_path(audio: Path, k: int) -> Path:
    return audio.with_name(f"{audio.stem}.leg{k}.ivf")


def segment_files(manifest_file: Path, m: TapManifest) -> list[Path]:
    return [manifest_file.parent / s.file for s in m.segments]


class _Router:
    """Which leg a datagram belongs to: by destination port and the leg's time in the session; or, sent by
    Asterisk from a relay's port to its endpoint while the relay was on, the relay's SRTP leg."""

    def __init__(self, legs: list[TapLeg], relays: Sequence[TapRelay] = ()) -> None:
        self.by_port: dict[int, list[tuple[int, TapLeg]]] = defaultdict(list)
        self.by_relay: dict[tuple[int, str, int], list[tuple[int, TapRelay]]] = defaultdict(list)
        index = {g.id: k for k, g in enumerate(legs)}
        for k, g in enumerate(legs):
            if g.captured:
                self.by_port[g.port].append((k, g))
        for lst in self.by_port.values():
            lst.sort(key=lambda kg: kg[1].joined)
        for r in relays:
            dst = parse_addr(r.dst)
            if dst is not None and r.leg in index:
                self.by_relay[(r.sport, dst[0], dst[1])].append((index[r.leg], r))

    def __call__(self, d: pcap.Datagram) -> int | None:
        for k, r in self.by_relay.get((d.sport, d.dst, d.dport), ()):
            if r.started <= d.at <= (r.stopped if r.stopped is not None else float("inf")):
                return k
        best = None
        for k, g in self.by_port.get(d.dport, ()):
            left = g.left if g.left is not None else float("inf")
            if g.joined - LEG_WINDOW_S <= d.at <= left + LEG_WINDOW_S:
                best = k  # the latest-joined leg whose window holds the packet
        return best


def _datagrams(files: list[Path]) -> Iterator[pcap.Datagram]:
    """Every segment's datagrams, merged in capture order (segments overlap while one replaces another)."""
    present = [f for f in files if f.exists()]
    return heapq.merge(*(pcap.read(f) for f in present), key=lambda d: d.at)


def _streams(files: list[Path], route: _Router, n_legs: int) -> list[set[int]]:
    """Per leg, the SSRCs to depacketize (see the module's docstring, step 2)."""
    seen: list[dict[tuple[int, int], list[float]]] = [dict() for _ in range(n_legs)]
    for d in _datagrams(files):
        k = route(d)
        if k is None:
            continue
        pkt = h264.RtpPacket.parse(d.payload)
        if pkt is None:
            continue
        entry = seen[k].get((pkt.ssrc, pkt.payload_type))
        if entry is None:
            seen[k][(pkt.ssrc, pkt.payload_type)] = [1, d.at, d.at]
        else:
            entry[0] += 1
            entry[2] = d.at
    out: list[set[int]] = []
    for streams in seen:
        per_pt: dict[int, float] = defaultdict(float)
        for (_, pt), (n, _, _) in streams.items():
            per_pt[pt] += n
        if not per_pt:
            out.append(set())
            continue
        pt = max(per_pt, key=lambda p: per_pt[p])
        chosen: set[int] = set()
        last_end = float("-inf")
        for (ssrc, p), (_, first, last) in sorted(streams.items(), key=lambda kv: kv[1][1]):
            if p != pt:
                continue
            if first >= last_end - 0.5:
                chosen.add(ssrc)
                last_end = last
        out.append(chosen)
    return out


def extract(manifest_file: Path, *, resync: bool = True) -> list[LegVideo]:
    """One IVF per leg that sent decodable H.264 (legs without a frame get none). Overwrites earlier output,
    so a finalisation that is run again makes the same files."""
    m = TapManifest.load(manifest_file)
    audio = manifest_file.parent / m.audio
    legs = [g for g in m.legs if g.captured or m.relayed(g.id)]  # in the order they joined: the layout's order
    files = segment_files(manifest_file, m)
    if not legs or not any(f.exists() for f in files):
        return []
    route = _Router(legs, m.relays)
    wanted = _streams(files, route, len(legs))
    deps = [h264.Depacketizer(resync=resync) for _ in legs]
    writers: list[h264.IvfWriter | None] = [None] * len(legs)
    times: list[list[tuple[int, int, float]]] = [[] for _ in legs]  # (ssrc, timestamp, arrival) per frame
    try:
        for d in _datagrams(files):
            k = route(d)
            if k is None:
                continue
            pkt = h264.RtpPacket.parse(d.payload)
            if pkt is None or pkt.ssrc not in wanted[k]:
                continue
            for frame in deps[k].push(d.at, pkt):
                writers[k] = _write(writers[k], leg_video_path(audio, k), frame, times[k])
        for k, dep in enumerate(deps):
            for frame in dep.flush():
                writers[k] = _write(writers[k], leg_video_path(audio, k), frame, times[k])
        out: list[LegVideo] = []
        for k, (g, w) in enumerate(zip(legs, writers, strict=True)):
            if w is None:
                leg_video_path(audio, k).unlink(missing_ok=True)
                log.info("media tap %s: leg %s (%s) sent no decodable video %s", m.session, g.id, g.channel,
                         deps[k].stats.as_dict())
                continue
            first_wall, rel_ms, duration_ms = _timeline(times[k])
            w.set_times(rel_ms)
            w.close(duration_ms)
            writers[k] = None
            out.append(LegVideo(g.id, g.channel, g.number, g.name, w.path, max(0.0, first_wall - m.anchor),
                                duration_ms / 1000, len(rel_ms), deps[k].stats.as_dict(), _source(m, g)))
        return out
    finally:
        for w in writers:
            if w is not None:
                w.f.close()


def _source(m: TapManifest, g: TapLeg) -> str:
    if g.captured:
        return "sent"
    return "relayed by Asterisk to " + ", ".join(sorted({r.channel for r in m.relayed(g.id)}))


def _write(w: h264.IvfWriter | None, path: Path, frame: h264.Frame, times: list[tuple[int, int, float]]
           ) -> h264.IvfWriter:
    if w is None:
        w = h264.IvfWriter(path)
    w.write(frame.annexb())
    times.append((frame.ssrc, frame.timestamp, frame.arrival))
    return w


def _timeline(frames: list[tuple[int, int, float]]) -> tuple[float, list[int], int]:
    """(wall time of the first frame, each frame's ms after it (strictly increasing), duration in ms)."""
    offset: dict[int, float] = {}
    for ssrc, ts, at in frames:
        o = at - ts / h264.CLOCK_RATE
        offset[ssrc] = min(o, offset.get(ssrc, o))
    walls = [ts / h264.CLOCK_RATE + offset[ssrc] for ssrc, ts, _ in frames]
    first = walls[0]
    rel: list[int] = []
    for w in walls:
        t = int(round((w - first) * 1000))
        if rel and t <= rel[-1]:
            t = rel[-1] + 1  # never backwards (a new SSRC whose clock lands early): keep the order
        rel.append(t)
    steps = [b - a for a, b in zip(rel, rel[1:])]
    last = int(statistics.median(steps)) if steps else DEFAULT_FRAME_MS
    return first, rel, rel[-1] + max(1, min(last, 1000))

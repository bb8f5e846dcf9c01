"""Recordings (issue 5): finalisation speed for an hour of two-party audio + video, and the CPU a recorded call
costs against the same call unrecorded.

    .venv/bin/python bench/recordings_bench.py [--quick] [--write] [--part finalise|cpu|both]

1. **Finalisation.** One hour (`--seconds`) of two-party capture in the exact raw form the finaliser gets from a
   call: a WAV as MixMonitor writes it (8 kHz, 16-bit mono) and the media tap's pcap (each party's H.264,
   640x360 at 25 fps from ffmpeg's moving test pattern with noise, ~500 kbit/s, packetized as RTP the way
   terminals send it, addressed to the leg's Asterisk-side port) + its manifest. The real finaliser
   (`huiyan.recordings.pipeline.Finaliser.run`, what the controller's worker and `huiyan recordings finalise`
   call) then makes the evidence file for each layout, in the same invocation, from hard links of the same
   capture. Peer: a plain `ffmpeg -c:v copy` remux of the same two H.264 streams + the WAV to AAC (the least
   any finaliser must do: it gets the per-leg streams ready-made). Also one hour of audio only (M4A), against
   a plain `ffmpeg` WAV -> AAC.
2. **CPU per concurrent recorded call.** N two-party video calls (SIPp terminals, PCMU + H.264 each way)
   through the real Asterisk and controller, in N rooms that record (ConfBridge recorder + media tap +
   finalisation into evidence) against N rooms that do not, rounds interleaved (off, on, on, off, ...).
   Asterisk (/proc) and controller (this process's CPU minus the driver and measurement threads) CPU-seconds
   per call; the recording's child processes (tcpdump, ffmpeg, ffprobe) separately.

`--write` puts the section "Recordings: finalisation speed and CPU per recorded call" into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for _p in (str(REPO), str(BENCH)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import hotline_load as hl  # noqa: E402  (ports, /proc CPU, SIPp, the controller on its own thread)
import rooms_load as rl  # noqa: E402  (rooms through the API, the measurement's AMI session, SIPp terminals)
from _benchmarks_md import write_section  # noqa: E402
from _rooms_media import injection_file  # noqa: E402

SECTION = "## Recordings: finalisation speed and CPU per recorded call"
TARGET_X = 20.0  # issue 5: an hour of audio + video finalised at least 20x faster than real time
LAYOUTS = ("tracks", "grid")  # the default first
FPS = 25
SIZE = "640x360"
BITRATE = "500k"


# ---- 1. finalisation ------------------------------------------------------------------------------

def _clip(workdir: Path, k: int, seconds: int = 8) -> list[list[bytes]]:
    """A terminal's camera: baseline H.264 from ffmpeg's moving test pattern with noise (so the encoder needs a
    camera's bit rate), a keyframe every second with the parameter sets repeated; party k's picture has its
    own hue. Encoded once and repeated by the caller."""
    from huiyan.recordings import h264

    es = workdir / f"party{k}.h264"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={SIZE}:rate={FPS},hue=h={k * 120},noise=alls=12:allf=t", "-t", str(seconds),
                    "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-b:v", BITRATE,
                    "-g", str(FPS), "-bf", "0", "-x264-params", f"keyint={FPS}:repeat-headers=1:slices=1",
                    "-f", "h264", str(es)], check=True, timeout=300)
    aus = h264.access_units(h264.nal_units(es.read_bytes()))
    if not aus:
        raise RuntimeError(f"ffmpeg made no H.264 frames in {es}")
    return aus


def _leg_packets(aus: list[list[bytes]], seconds: float, t0: float, port: int, ssrc: int
                 ) -> Iterator[tuple[float, bytes, int]]:
    from huiyan.recordings import h264

    frames = (aus[i % len(aus)] for i in range(int(seconds * FPS)))
    for at, pkt in h264.rtp_stream(frames, fps=FPS, ssrc=ssrc):
        yield t0 + at, pkt.build(), port


@dataclass
class Capture:
    """One synthesised two-party capture, kept in `master/` and hard-linked into each job's place."""

    wav: Path
    pcap: Path | None
    manifest: Any  # tap.TapManifest (audio/segment names rewritten per job)
    seconds: float
    video_kbps: float = 0.0
    made_s: float = 0.0


def synthesise(master: Path, seconds: float, *, video: bool) -> Capture:
    """The raw capture of a call of `seconds`: the WAV (tone_wav, the helper the recordings tests use) and, with
    video, the tap's single segment holding both parties' RTP (party k to port 40002 + 2k from 0.5 s after
    the audio starts, as the tests' `tapped` does) and its closed manifest."""
    from huiyan.recordings import pcap, tap
    from tests.integration.test_recordings import tone_wav

    t_start = time.monotonic()
    master.mkdir(parents=True, exist_ok=True)
    wav = tone_wav(master / "call.wav", seconds)
    if not video:
        return Capture(wav, None, None, seconds, made_s=time.monotonic() - t_start)
    t0 = time.time() - seconds - 60
    legs, streams, payload = [], [], [0]
    for k in range(2):
        port = 40002 + 2 * k
        legs.append(tap.TapLeg(id=f"leg{k}", channel=f"PJSIP/party{k}-0000000{k}", number=f"8000{k}", port=port,
                               joined=t0, left=t0 + seconds))
        streams.append(_leg_packets(_clip(master, k), seconds - 1.0, t0 + 0.5, port, 0x100 + k))

    def counted() -> Iterator[tuple[float, bytes, int]]:
        for d in heapq.merge(*streams, key=lambda d: d[0]):
            payload[0] += len(d[1])
            yield d

    seg = pcap.write(master / "call.tap1.pcap", counted())  # type: ignore[arg-type]
    m = tap.TapManifest(session="hotline:bench", audio=wav.name, anchor=t0, owner=tap.this_owner(), legs=legs,
                        segments=[tap.TapSegment(seg.name, sorted(g.port for g in legs), t0, t0 + seconds)],
                        closed=True, closed_at=t0 + seconds)
    kbps = payload[0] * 8 / 1000 / 2 / max(seconds - 1.0, 1e-9)
    return Capture(wav, seg, m, seconds, kbps, time.monotonic() - t_start)


@dataclass
class Timed:
    name: str
    seconds: float  # wall time
    media_s: float  # how much audio/video it made
    plan: dict[str, Any] = field(default_factory=dict)
    extract_s: float = 0.0  # pcap -> per-leg H.264 (video.extract), part of `seconds`
    size: int = 0

    @property
    def x(self) -> float:
        return self.media_s / self.seconds if self.seconds else math.nan


def _job_of(st: Any, call_id: str) -> Any:
    from sqlalchemy import select

    from huiyan.db.models import RecordingJob

    with st.sessions() as s:
        return s.scalar(select(RecordingJob).where(RecordingJob.source_ref == call_id))


def finalise_once(st: Any, cap: Capture, layout: str, n: int) -> Timed:
    """The capture hard-linked in as a fresh call's, a job queued by the sweep (as after a controller restart),
    then `Finaliser.run(job)` timed: tap -> per-leg H.264 -> ffmpeg -> ffprobe -> SHA-256 -> chain row ->
    raw deleted (the links; the master stays)."""
    from huiyan.recordings import store as rstore
    from huiyan.recordings import tap
    from huiyan.recordings.pipeline import Finaliser

    call_id = f"bench-{layout}-{n}"
    raw = st.call(call_id, 0.0)  # the row and a placeholder WAV, replaced by a link to the master
    raw.unlink()
    os.link(cap.wav, raw)
    past = time.time() - 30
    os.utime(raw, (past, past))
    if cap.pcap is not None:
        seg = tap.segment_path(raw, 1)
        os.link(cap.pcap, seg)
        m = cap.manifest
        m.audio, m.segments[0].file = raw.name, seg.name
        m.save(tap.manifest_path(raw))
    _fix_call_length(st, call_id, cap.seconds)
    with st.sessions() as s:
        rstore.sweep(s, 0.0)
    job = _job_of(st, call_id)
    st.settings.recordings.video_layout = layout
    fin = Finaliser(st.sessions, st.root, st.settings.recordings)
    t = time.monotonic()
    out = fin.run(job.id)
    took = time.monotonic() - t
    if out.state is None or out.state.value != "done":
        raise RuntimeError(f"{layout}: job ended {out.state} ({out.reason})")
    job = _job_of(st, call_id)
    (final,) = [p for p in raw.parent.iterdir() if p.name.startswith(raw.stem + ".") and p.suffix in (".mp4", ".m4a")]
    res = Timed(layout if cap.pcap is not None else "audio only", took, cap.seconds, job.meta.get("plan", {}),
                size=final.stat().st_size)
    final.unlink()  # disk: an hour of video per layout adds up
    return res


def _fix_call_length(st: Any, call_id: str, seconds: float) -> None:
    from datetime import timedelta

    from huiyan.db.models import HotlineCall

    with st.sessions() as s:
        call = s.get(HotlineCall, call_id)
        call.answered_at = call.ended_at - timedelta(seconds=seconds)
        s.commit()


def time_extract(cap: Capture, work: Path) -> float:
    """video.extract alone on the same capture (the Python step before ffmpeg), for the breakdown."""
    from huiyan.recordings import tap, video

    d = work / "extract"
    d.mkdir(exist_ok=True)
    raw = d / "call.wav"
    os.link(cap.wav, raw)
    seg = tap.segment_path(raw, 1)
    os.link(cap.pcap, seg)
    m = cap.manifest
    m.audio, m.segments[0].file = raw.name, seg.name
    m.save(tap.manifest_path(raw))
    t = time.monotonic()
    legs = video.extract(tap.manifest_path(raw))
    took = time.monotonic() - t
    cap.extract_legs = [(g.path, g.offset_s) for g in legs]  # type: ignore[attr-defined]
    return took


def peer_remux(cap: Capture, work: Path, *, audio_bitrate: str = "64k") -> Timed:
    """The peer: plain ffmpeg, the two parties' H.264 (the per-leg streams, handed over ready-made) copied as
    two tracks + the WAV to AAC, +faststart; nothing else (no extraction, probe, hash, chain)."""
    out = work / ("peer.mp4" if cap.pcap is not None else "peer.m4a")
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(cap.wav)]
    maps = ["-map", "0:a"]
    if cap.pcap is not None:
        for k, (path, offset) in enumerate(cap.extract_legs):  # type: ignore[attr-defined]
            args += ["-itsoffset", f"{offset:.3f}", "-i", str(path)]
            maps += ["-map", f"{k + 1}:v"]
    args += [*maps, "-c:a", "aac", "-b:a", audio_bitrate, "-c:v", "copy", "-movflags", "+faststart", str(out)]
    t = time.monotonic()
    subprocess.run(args, check=True, timeout=7200)
    took = time.monotonic() - t
    res = Timed("peer: ffmpeg remux" if cap.pcap is not None else "peer: ffmpeg WAV → AAC", took, cap.seconds,
                size=out.stat().st_size)
    out.unlink()
    return res


@dataclass
class FinaliseResult:
    seconds: float
    video: list[Timed]
    peer: Timed
    audio: Timed
    audio_peer: Timed
    extract_s: float
    synth_s: float
    video_kbps: float
    rounds: int


def run_finalise(args: argparse.Namespace, work: Path) -> FinaliseResult:
    from tests.integration.test_recordings import Store

    secs = args.seconds
    print(f"finalisation: synthesising {secs:.0f} s of two-party capture ...", flush=True)
    cap = synthesise(work / "master-av", secs, video=True)
    print(f"  made in {cap.made_s:.0f} s: pcap {cap.pcap.stat().st_size / 1e6:.0f} MB, "  # type: ignore[union-attr]
          f"{cap.video_kbps:.0f} kbit/s per party", flush=True)
    audio_cap = synthesise(work / "master-a", secs, video=False)
    st = Store(work / "store")
    extract_s = time_extract(cap, work)
    print(f"  pcap -> per-leg H.264 alone: {extract_s:.1f} s ({secs / extract_s:.0f}x real time)", flush=True)
    n = itertools.count()
    timings: dict[str, list[Timed]] = {}
    try:
        for r in range(args.rounds):  # interleaved: A B P a p, then reversed
            names = [*args.layouts, "peer", "audio", "audio-peer"]
            for name in names if r % 2 == 0 else names[::-1]:
                if name == "peer":
                    t = peer_remux(cap, work)
                elif name == "audio":
                    t = finalise_once(st, audio_cap, "tracks", next(n))
                elif name == "audio-peer":
                    t = peer_remux(audio_cap, work)
                else:
                    t = finalise_once(st, cap, name, next(n))
                timings.setdefault(name, []).append(t)
                print(f"  round {r + 1} {t.name:22}: {t.seconds:7.1f} s = {t.x:6.1f}x real time "
                      f"{t.plan or ''}", flush=True)
    finally:
        st.close()

    def best(name: str) -> Timed:  # the median run (with 1 or 2 rounds: the faster)
        ts = sorted(timings[name], key=lambda t: t.seconds)
        return ts[(len(ts) - 1) // 2]

    return FinaliseResult(secs, [best(x) for x in args.layouts], best("peer"), best("audio"), best("audio-peer"),
                          extract_s, cap.made_s, cap.video_kbps, args.rounds)



# ---- 2. CPU per concurrent recorded call ----------------------------------------------------------------------

MODES = ("off", "on")
LABEL = {"off": "unrecorded (room `record` off)", "on": "recorded (ConfBridge recorder + media tap + evidence)"}
BASE = {"off": rl.HUIYAN_BASE, "on": 6300}


def _children_of_us(comm: str) -> list[int]:
    """Live child processes of this process named `comm` (the controller's tcpdumps)."""
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        if name == comm and int(stat.rsplit(")", 1)[1].split()[1]) == me:
            out.append(int(d.name))
    return out


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += hl.proc_cpu(pid)
        except (OSError, IndexError):
            pass
    return total


def _reap(p: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait for a SIPp process to end and return its CPU seconds, read while it is a zombie (so that the
    children's CPU this process is charged can be split into SIPp and the recording's own processes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.05)
    cpu = _cpu_of([p.pid])
    hl.finish(p, 5)
    return cpu


@dataclass
class Round:
    mode: str
    calls: int
    joined: int = 0
    window: float = 0.0
    ast_w: float = 0.0  # steady window: Asterisk, controller, tcpdump CPU seconds
    ctl_w: float = 0.0
    tap_w: float = 0.0
    ast_all: float = 0.0  # the whole round: dial-in, talk, hang-up, drain and (on) finalisation to `done`
    ctl_all: float = 0.0
    kids_all: float = 0.0  # this process's reaped children minus SIPp: tcpdump + ffmpeg + ffprobe
    sipp_all: float = 0.0
    seconds: float = 0.0
    finalise_s: float = 0.0  # on: last hang-up -> every recording `done`
    recordings: int = 0
    sipp_failed: int = 0
    talk_s: float = 0.0


def cpu_setup(args: argparse.Namespace, data: Path, started: dict[str, Any]) -> Any:
    """rooms_load's setup (controller, Asterisk, 2N SIPp video terminals, N unrecorded rooms), plus N rooms
    that record every session, made through the same API."""
    import httpx

    ns = argparse.Namespace(ladder=([2], 2, [args.calls]), rate=args.rate, join_timeout=15.0, settle=args.settle,
                            window=args.window)
    import huiyan.web.build as web_build

    real_build = web_build.build
    web_build.build = lambda *a, **kw: False  # no browser here: skip building the web clients (CPU, time)
    try:
        b = rl.setup(ns, data, started)
    finally:
        web_build.build = real_build
    s = b.run.settings
    api = f"http://{s.api_host}:{s.api_port}"
    r = httpx.post(f"{api}/api/auth/login", json={"username": rl.ADMIN[0], "password": rl.ADMIN[1]}, timeout=20)
    r.raise_for_status()
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    recorded, ids = [], []
    for i in range(args.calls):
        number = str(BASE["on"] + i)
        r = httpx.post(f"{api}/api/rooms", headers=auth, timeout=20, json={
            "name": f"录制压测{number}", "number": number, "video_mode": "follow_talker", "max_participants": 200,
            "record": True})
        if r.status_code != 201:
            raise RuntimeError(f"creating room {number}: {r.status_code} {r.text}")
        recorded.append(number)
        ids.append(r.json()["id"])

    async def loaded() -> bool:
        return all(b.run.ctl.rooms.room_by_number(n) is not None for n in recorded)

    hl.wait_for(lambda: b.run.call(loaded()), 20, "the controller loaded the recorded rooms")
    b.numbers = {"off": b.numbers["huiyan"], "on": recorded}
    b.recorded_ids = ids
    return b


def _done_recordings(b: Any) -> int:
    from sqlalchemy import func, select

    from huiyan.db.models import Recording

    with b.run.ctl.session_factory() as s:
        return int(s.scalar(select(func.count()).select_from(Recording).where(
            Recording.room_id.in_(b.recorded_ids))) or 0)


def run_round(b: Any, args: argparse.Namespace, mode: str, tag: str) -> Round:
    """N two-party video calls at once: in each of N rooms a talker and a listener (both send PCMU + H.264),
    `talk` seconds together, then everyone hung up by AMI; with recording on, until every recording is done."""
    n = args.calls
    numbers = b.numbers[mode][:n]
    terms = b.terminals[:2 * n]
    talkers = [(e, pw, numbers[i]) for i, (e, pw) in enumerate(terms[:n])]
    listeners = [(e, pw, numbers[i]) for i, (e, pw) in enumerate(terms[n:])]
    res = Round(mode, n)
    clock = rl.Clock(b)
    target = f"127.0.0.1:{b.run.settings.sip_port}"
    with b.meas.lock:
        j0 = len(b.meas.joins)
    done0 = _done_recordings(b)
    k0 = hl.children_cpu()
    a0, c0, _, _, t0 = clock.read()
    procs: list[subprocess.Popen[bytes]] = []
    for role, rows in (("talker", talkers), ("listener", listeners)):
        if procs:
            time.sleep(len(talkers) / args.rate + 0.2)
        name = f"{tag}-{role}"
        inf = injection_file(b.workdir / f"{name}.csv", rows)
        procs.append(hl.sipp([target, "-sf", str(b.scenarios["video"][role]), "-inf", str(inf), "-m", str(len(rows)),
                              "-l", str(len(rows)), "-r", str(args.rate), "-rp", "1000", "-i", "127.0.0.1",
                              "-p", str(hl.free_port()), "-mp", str(hl.free_media_port()),
                              "-timeout", f"{b.hold_s + 60}s", "-aa"], b.workdir, name))
        b.procs.append(procs[-1])

    def joined() -> int:
        with b.meas.lock:
            return len({c for _, _, c in b.meas.joins[j0:]})

    deadline = time.monotonic() + 2 * n / args.rate + b.prompt_seconds + 20
    while time.monotonic() < deadline and joined() < 2 * n:
        time.sleep(0.1)
    res.joined = joined()
    time.sleep(args.settle)
    a1, c1, _, _, t1 = clock.read()
    tap1 = _cpu_of(taps := _children_of_us("tcpdump"))
    time.sleep(args.window)
    a2, c2, _, _, t2 = clock.read()
    res.tap_w = _cpu_of(taps) - tap1
    res.window, res.ast_w, res.ctl_w = t2 - t1, a2 - a1, c2 - c1
    res.talk_s = t2 - t0
    try:
        b.meas.call(b.meas.client.action("Hangup", Channel="/^PJSIP\\//"), timeout=15)
    except Exception as e:  # noqa: BLE001 - "no such channel" when every call already ended
        if "No such channel" not in str(e):
            print(f"warning: Hangup: {e}", file=sys.stderr)
    th = time.monotonic()
    res.sipp_all = sum(_reap(p, 60) for p in procs)
    res.sipp_failed = sum(1 for p in procs if p.returncode != 0)
    try:
        hl.wait_for(lambda: not b.meas.live, 60, "every channel hung up")
    except RuntimeError as e:
        print(f"warning: {e}", file=sys.stderr)
    if mode == "on":
        try:
            hl.wait_for(lambda: _done_recordings(b) - done0 >= n, 120 + 2 * n * args.window, "every recording done",
                        step=0.2)
        except RuntimeError as e:
            print(f"warning: {e}", file=sys.stderr)
        res.finalise_s = time.monotonic() - th
        res.recordings = _done_recordings(b) - done0
    time.sleep(0.5)
    a3, c3, _, _, t3 = clock.read()
    res.ast_all, res.ctl_all, res.seconds = a3 - a0, c3 - c0, t3 - t0
    res.kids_all = max(0.0, hl.children_cpu() - k0 - res.sipp_all)
    w = max(res.window, 1e-9)
    print(f"  {tag} {mode:3}: joined {res.joined}/{2 * n}; window {w:.0f} s: Asterisk {res.ast_w / w * 100:.0f}% "
          f"of a core, controller {res.ctl_w / w * 100:.1f}%, tcpdump {res.tap_w / w * 100:.1f}%; whole round "
          f"{res.seconds:.0f} s: Asterisk {res.ast_all:.2f} s, controller {res.ctl_all:.2f} s, recording's "
          f"processes {res.kids_all:.2f} s" + (f"; {res.recordings} recording(s) done {res.finalise_s:.1f} s "
                                              f"after the hang-up" if mode == "on" else ""), flush=True)
    return res


@dataclass
class CpuResult:
    rounds: list[Round]
    calls: int
    video_kbps: float
    prompt_s: float
    asterisk: str

    def of(self, mode: str) -> list[Round]:
        return [r for r in self.rounds if r.mode == mode]

    def sum(self, mode: str, attr: str) -> float:
        return sum(getattr(r, attr) for r in self.of(mode))

    def per_call(self, mode: str, attr: str) -> float:
        """CPU-seconds per call (whole round)."""
        return self.sum(mode, attr) / max(1, sum(r.calls for r in self.of(mode)))

    def per_call_rate(self, mode: str, attr: str) -> float:
        """Steady window: CPU ms per second per call (10 = 1 % of a core)."""
        secs = sum(r.window * r.calls for r in self.of(mode))
        return self.sum(mode, attr) / max(secs, 1e-9) * 1000


def run_cpu(args: argparse.Namespace, work: Path) -> CpuResult:
    started: dict[str, Any] = {}
    b = None
    try:
        b = cpu_setup(args, work / "pbx", started)
        asterisk = b.run.ctl.install.version if b.run.ctl.install else "?"
        print(f"CPU: {args.calls} two-party video calls at once, {args.window:.0f} s measured each, "
              f"video {b.video_kbps:.0f} kbit/s per party", flush=True)
        run_round(b, args, "off", "warm-off")  # first-use costs, unmeasured
        run_round(b, args, "on", "warm-on")
        order = [MODES[(i // 2 + i) % 2] for i in range(2 * args.cpu_rounds)]  # off on on off off on ...
        rounds = [run_round(b, args, mode, f"r{i + 1}") for i, mode in enumerate(order)]
        return CpuResult(rounds, args.calls, b.video_kbps, b.prompt_seconds, asterisk)
    finally:
        if b is not None:
            for p in b.procs:
                if p.poll() is None:
                    p.kill()
                    hl.finish(p, 5)
        if "meas" in started:
            try:
                started["meas"].close()
            except Exception:  # noqa: BLE001 - stopping anyway
                pass
        if "run" in started:
            started["run"].stop()



# ---- the report -----------------------------------------------------------------------------------------------

METHOD = """**Method.**
- *Finalisation*: the capture is synthesised once per run in the exact form the finaliser gets from a call: a
  WAV as MixMonitor writes it (8 kHz 16-bit mono; `tone_wav` of the recordings tests) and the media tap's
  pcap segment (Ethernet/IPv4/UDP as `pcap.write` makes it; each party's H.264 from ffmpeg `testsrc2` + noise,
  {size} at {fps} fps, baseline, a keyframe a second with parameter sets repeated, {kbps:.0f} kbit/s per
  party, packetized by `h264.rtp_stream` (single NAL / STAP-A / FU-A, MTU 1200) and addressed to each leg's
  port from 0.5 s after the audio starts) with its closed manifest. Each measured run hard-links that capture
  in as a fresh hotline call's (a database row as the hotline writes it), lets the sweep queue its job and
  times `Finaliser.run(job)`, the function the controller's worker calls: tap → per-leg H.264 (Python) →
  ffmpeg → fsync + rename → ffprobe verification → SHA-256 → chain row → raw capture deleted. *× real time* =
  media seconds / wall seconds. The peer, in the same invocation: plain `ffmpeg` given the two per-leg H.264
  streams ready-made (the output of the tap → H.264 step, which it cannot do itself), `-c:v copy` as two
  tracks + the WAV to AAC 64 kb/s, `+faststart`; for audio only, plain `ffmpeg` WAV → AAC.
- *CPU per call*: huiyan's own `Controller` in this process starts Asterisk ({asterisk}; throw-away data
  dir, free ports) as `huiyan up` does (rooms_load.py's setup). {calls} two-party video calls at once, each
  in its own follow_talker room: SIPp terminals (authenticated devices), both parties sending PCMU + H.264
  ({vkbps:.0f} kbit/s), into {calls} rooms with `record` off or {calls} with `record` on (the room flow then
  plays the recording notice, the controller starts ConfBridge's recorder and the media tap — one tcpdump per
  session — and finalises each session into evidence when it ends). Rounds alternate off/on (off, on, on,
  off, …) after one unmeasured round of each, so a change in the machine's background load weighs on both.
  A round: dial in, {settle:.0f} s to settle, a {window:.0f}-s steady window, hang-up of every channel by
  AMI, drain, and (on) until every recording of the round is `done` in the chain. CPU: Asterisk
  (utime+stime from /proc/<pid>/stat), the controller (this process minus the driver thread and the
  measurement's own AMI thread; it includes the finaliser's Python steps: tap → H.264, hashing, database),
  the recording's child processes (tcpdump, ffmpeg, ffprobe: this process's reaped children minus SIPp,
  whose CPU is read from /proc before it is reaped). SIPp's own CPU is not counted. *Steady* = the window,
  per call and per second of talk; *whole call* = the round, per call."""


def machine() -> str:
    return hl.machine()


def report(fr: FinaliseResult | None, cr: CpuResult | None, args: argparse.Namespace, command: str,
           started_at: float) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [SECTION, "", f"Run {when}, `{command}`, on {machine()}; {time.monotonic() - started_at:.0f} s in all.",
             ""]
    if fr is not None:
        hours = fr.seconds / 3600
        length = f"{hours:g} h" if fr.seconds >= 3600 else f"{fr.seconds:.0f} s"
        lines += [f"### Finalising {length} of a two-party call", "",
                  "| what | plan | wall time (s) | × real time | vs the peer (time ÷ peer's) | file (MB) |",
                  "|---|---|---:|---:|---:|---:|"]

        def row(t: Timed, peer: Timed, label: str) -> str:
            pl = t.plan
            vids = " + ".join(pl.get("video") or []) or "—"
            plan = f"{pl.get('container')}: audio {pl.get('audio')}, video {vids}" if pl else "—"
            return (f"| {label} | {plan} | {t.seconds:.1f} | {t.x:.1f} | {t.seconds / peer.seconds:.2f} "
                    f"| {t.size / 1e6:.1f} |")

        for t in fr.video:
            label = {"tracks": "huiyan, `tracks` (the default): both parties copied, two tracks",
                     "grid": "huiyan, `grid`: side by side, re-encoded (libx264 veryfast)"}.get(t.name, t.name)
            lines.append(row(t, fr.peer, label))
        lines.append(row(fr.peer, fr.peer, "peer: plain ffmpeg remux (copy) + WAV → AAC"))
        lines.append(row(fr.audio, fr.audio_peer, "huiyan, audio only (M4A)"))
        lines.append(row(fr.audio_peer, fr.audio_peer, "peer: plain ffmpeg WAV → AAC"))
        default = fr.video[0]
        lines += ["",
                  f"- **Default (`{default.name}`): {default.x:.0f}× real time** for {length} of audio + video "
                  f"(target ≥ {TARGET_X:.0f}×: {'met' if default.x >= TARGET_X else 'MISSED'}); "
                  f"time ÷ the plain ffmpeg remux's: **{default.seconds / fr.peer.seconds:.2f}**.",
                  f"- Audio only: **{fr.audio.x:.0f}×** real time; ÷ plain ffmpeg: "
                  f"**{fr.audio.seconds / fr.audio_peer.seconds:.2f}**."]
        for t in fr.video[1:]:
            lines.append(f"- `{t.name}`: {t.x:.1f}× real time (target {'met' if t.x >= TARGET_X else 'MISSED'}); "
                         f"÷ the peer: {t.seconds / fr.peer.seconds:.1f}.")
        lines.append(f"- Of the default's time, the tap → per-leg H.264 step (Python, timed alone on the same "
                     f"capture) took {fr.extract_s:.1f} s ({fr.seconds / fr.extract_s:.0f}× real time). "
                     f"Synthesising the capture took {fr.synth_s:.0f} s (not counted).")
        lines.append("")
    if cr is not None:
        on, off = "on", "off"
        rows = [("Asterisk", "ast"), ("controller", "ctl")]
        lines += [f"### CPU per concurrent recorded call ({cr.calls} two-party video calls at once)", "",
                  "| | unrecorded | recorded | recorded ÷ unrecorded |", "|---|---:|---:|---:|"]
        tot = {m: 0.0 for m in MODES}
        for label, key in rows:
            v = {m: cr.per_call_rate(m, f"{key}_w") for m in MODES}
            tot = {m: tot[m] + v[m] for m in MODES}
            lines.append(f"| steady, {label} (CPU ms per s per call) | {v[off]:.1f} | {v[on]:.1f} "
                         f"| {v[on] / v[off]:.2f} |")
        tap = cr.per_call_rate(on, "tap_w")
        lines.append(f"| steady, tcpdump (CPU ms per s per call) | — | {tap:.2f} | |")
        lines.append(f"| **steady, all (CPU ms per s per call)** | {tot[off]:.1f} | {tot[on] + tap:.1f} "
                     f"| **{(tot[on] + tap) / tot[off]:.2f}** |")
        whole = {m: 0.0 for m in MODES}
        for label, key in rows:
            v = {m: cr.per_call(m, f"{key}_all") for m in MODES}
            whole = {m: whole[m] + v[m] for m in MODES}
            lines.append(f"| whole call, {label} (CPU-s per call) | {v[off]:.2f} | {v[on]:.2f} "
                         f"| {v[on] / v[off]:.2f} |")
        kids = {m: cr.per_call(m, "kids_all") for m in MODES}
        lines.append(f"| whole call, recording's processes: tcpdump + ffmpeg + ffprobe (CPU-s per call) "
                     f"| {kids[off]:.2f} | {kids[on]:.2f} | |")
        a, b = whole[off] + kids[off], whole[on] + kids[on]
        lines.append(f"| **whole call, all (CPU-s per call)** | {a:.2f} | {b:.2f} | **{b / a:.2f}** |")
        talk = sum(r.talk_s for r in cr.rounds) / len(cr.rounds)
        fin = [r.finalise_s for r in cr.of(on)]
        recs = sum(r.recordings for r in cr.of(on))
        calls_on = sum(r.calls for r in cr.of(on))
        joined = {m: (sum(r.joined for r in cr.of(m)), sum(2 * r.calls for r in cr.of(m))) for m in MODES}
        lines += ["",
                  f"- A recorded call costs **{(tot[on] + tap) / tot[off]:.2f}×** the CPU of the same call "
                  f"unrecorded while it lasts, **{b / a:.2f}×** over the whole call (including finalising its "
                  f"recording into evidence).",
                  f"- {len(cr.of(off))} + {len(cr.of(on))} measured rounds; each call about {talk:.0f} s from "
                  f"dial-in to hang-up; parties joined: off {joined[off][0]}/{joined[off][1]}, on "
                  f"{joined[on][0]}/{joined[on][1]}; recordings done: {recs}/{calls_on} (MP4), the last of a "
                  f"round {min(fin, default=math.nan):.1f}–{max(fin, default=math.nan):.1f} s after the hang-up "
                  f"(settle time 3 s included).", ""]
    lines.append(METHOD.format(
        size=SIZE, fps=FPS, kbps=fr.video_kbps if fr else math.nan, asterisk=cr.asterisk if cr else "?",
        calls=cr.calls if cr else args.calls, vkbps=cr.video_kbps if cr else math.nan, settle=args.settle,
        window=args.window))
    return "\n".join(lines) + "\n"


# ---- main ---------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 minutes of media, 2 calls, short rounds (a smoke run)")
    ap.add_argument("--part", choices=("finalise", "cpu", "both"), default="both")
    ap.add_argument("--seconds", type=float, default=None, help="length of the synthesised capture (3600)")
    ap.add_argument("--layouts", default=",".join(LAYOUTS), help="layouts to finalise with, the default first")
    ap.add_argument("--rounds", type=int, default=1, help="finalisation runs per layout (the median is kept)")
    ap.add_argument("--calls", type=int, default=None, help="concurrent two-party calls (6)")
    ap.add_argument("--cpu-rounds", type=int, default=None, help="measured rounds per mode (4)")
    ap.add_argument("--window", type=float, default=None, help="seconds of steady state measured per round (45)")
    ap.add_argument("--settle", type=float, default=None, help="seconds after the last join before the window")
    ap.add_argument("--rate", type=float, default=10.0, help="calls per second when a round dials in")
    ap.add_argument("--write", action="store_true", help="put the results into BENCHMARKS.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args(argv)
    args.layouts = [x for x in args.layouts.split(",") if x]
    args.seconds = args.seconds or (120.0 if args.quick else 3600.0)
    args.calls = args.calls or (2 if args.quick else 6)
    args.cpu_rounds = args.cpu_rounds or (1 if args.quick else 4)
    args.window = args.window or (8.0 if args.quick else 45.0)
    args.settle = args.settle if args.settle is not None else (1.0 if args.quick else 2.0)
    shown = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python bench/recordings_bench.py", *shown]).strip()
    work = Path(tempfile.mkdtemp(prefix="huiyan-rec-bench-"))
    t_start = time.monotonic()
    try:
        fr = run_finalise(args, work) if args.part in ("finalise", "both") else None
        if fr is not None:  # an hour of capture: free the disk before the calls
            for d in ("master-av", "master-a", "extract", "store"):
                shutil.rmtree(work / d, ignore_errors=True)
        cr = run_cpu(args, work) if args.part in ("cpu", "both") else None
        section = report(fr, cr, args, command, t_start)
        print()
        print(section)
        if args.write:
            write_section(REPO / "BENCHMARKS.md", SECTION, section)
            print("written to BENCHMARKS.md")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

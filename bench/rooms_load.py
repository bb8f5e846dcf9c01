"""Rooms under SIPp load: huiyan-controlled ConfBridge rooms against bare ConfBridge on the same Asterisk.

    .venv/bin/python bench/rooms_load.py [--quick] [--write]

One Asterisk, started by huiyan's own Controller in this process (free ports, a temporary data dir, the
Asterisk root that `huiyan setup` built in var/asterisk-root). The same SIPp terminals (authenticated
devices from the database) dial rooms along two paths, taking turns at every step:

  huiyan  rooms created through the API; the room number -> the `room` FastAGI flow -> ConfBridge, the
          controller tracking every ConfbridgeJoin/Leave/Talking into its live room state
  bare    a plain dialplan extension appended to the rendered extensions.conf: Answer, the same
          "joining the meeting" prompt, ConfBridge with the same rendered profiles; no FastAGI

Two ladders per media mode (audio PCMU; video: PCMU + H.264 passthrough in follow_talker rooms): one room
with more and more participants, then more and more rooms of a fixed size, until a step has failed joins
(a call that did not reach ConfbridgeJoin in time) or saturates Asterisk's CPU (from /proc). Results: the largest step each path passed, join latency (the SIPp INVITE -> Asterisk's
ConfbridgeJoin), Asterisk and controller CPU per participant, and the ratios huiyan / bare (target >= 0.95).
`--write` puts the section "Rooms under SIPp load" into BENCHMARKS.md (see METHOD).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
for p in (str(REPO), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

import hotline_load as hl  # noqa: E402  (the hotline benchmark's helpers: ports, /proc CPU, SIPp, Running)
from _rooms_media import audio_pcap, injection_file, participant_scenario, video_pcap  # noqa: E402
from _benchmarks_md import write_section  # noqa: E402

from huiyan.config.settings import Settings  # noqa: E402

T = TypeVar("T")
PATHS = ("huiyan", "bare")
MEDIA = ("audio", "video")
MEDIA_LABEL = {"audio": "audio only (PCMU)", "video": "video passthrough (PCMU + H.264)"}
HUIYAN_BASE, BARE_BASE = 6100, 7100  # room i is 6100+i (a huiyan room) or 7100+i (a bare conference)
SECTION = "## Rooms under SIPp load"
AST_SATURATED = 0.90  # of all cores: Asterisk's own CPU (the limit)
MACHINE_BUSY = 0.95  # of all cores: everything on the machine (flagged, not a limit)
MEAS_EVENTS = ("ConfbridgeJoin", "Newchannel", "Hangup", "UserEvent")
NCPU = os.cpu_count() or 1

LADDERS = {
    # (participants-per-room sizes, room size for the rooms ladder, room counts)
    "quick": ([4, 8, 16], 4, [2, 4]),
    # 200: the most a room takes (huiyan's max_participants, the bridge profile's max_members)
    # (finer steps from 25 rooms up: that is where 2 cores saturate with video)
    "full": ([4, 8, 16, 32, 64, 100, 150, 200], 8, [4, 8, 16, 25, 30, 35, 40]),
}


# ---- the measurement's own AMI session, on its own thread (its CPU is not the controller's) -----

class Meas:
    """An AMI session with only the events the measurement needs, on an event loop of its own so that its
    CPU can be told apart from the controller's (the controller's loop runs on another thread)."""

    def __init__(self, node: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bench-meas", daemon=True)
        self.thread.start()
        self.lock = threading.Lock()
        self.joins: list[tuple[float, str, str]] = []  # (AMI Timestamp, Conference, Channel)
        self.live: set[str] = set()  # channels up (Newchannel .. Hangup)
        self.user_events = 0
        self.no_timestamp = 0
        self.client = self.call(self._make(node))

    async def _make(self, node: Any) -> Any:
        from huiyan.pbx.ami import AmiClient

        client = AmiClient(node, None, events=MEAS_EVENTS)
        client.on_event(self._on_event)
        await client.connect(timeout=10)
        return client

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cpu(self) -> float:
        return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))  # type: ignore[arg-type]

    def _on_event(self, event: Any) -> None:
        name = getattr(event, "name", None)
        if name is None:
            return
        f = event.fields
        with self.lock:
            if name == "Newchannel":
                self.live.add(f.get("Uniqueid", ""))
            elif name == "Hangup":
                self.live.discard(f.get("Uniqueid", ""))
            elif name == "ConfbridgeJoin":
                raw = f.get("Timestamp")
                if raw is None:
                    self.no_timestamp += 1
                    return
                self.joins.append((float(raw), f.get("Conference", ""), f.get("Channel", "")))
            elif name == "UserEvent":
                self.user_events += 1

    def close(self) -> None:
        try:
            self.call(self.client.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


# ---- setup --------------------------------------------------------------------------------------

@dataclass
class Bench:
    run: hl.Running
    meas: Meas
    workdir: Path
    terminals: list[tuple[str, str]]  # (extension, SIP password)
    numbers: dict[str, list[str]]  # path -> room numbers
    room_ids: list[int]
    scenarios: dict[str, dict[str, Path]]  # media -> {"talker": xml, "listener": xml}
    prompt_seconds: float
    video_kbps: float
    hold_s: int
    controller_ami_events: list[int] = field(default_factory=lambda: [0])
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


def make_settings(data: Path) -> Settings:
    root = Path(os.environ.get("HUIYAN_ASTERISK_ROOT", REPO / "var" / "asterisk-root"))
    # RTP in 20000-29999 (see hotline_load.make_settings): clear of other tests' Asterisks and of SIPp's media
    rtp = 20000 + (os.getpid() % 3000) * 2
    return Settings(data_dir=data, asterisk_root=root, sip_port=hl.free_port(), http_port=hl.free_port(),
                    ami_port=hl.free_port(), agi_port=hl.free_port(), api_port=hl.free_port(), rtp_start=rtp,
                    rtp_end=rtp + 4000, database_url=None)


ADMIN = ("benchadmin", "bench-admin-password-1")


def seed_db(settings: Settings, n_terminals: int) -> list[tuple[str, str]]:
    """An organisation with `n_terminals` video terminals (SIP devices of class terminal), and an admin."""
    from huiyan.db import make_engine, session_factory, store, upgrade
    from huiyan.db.seed import ensure_admin

    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            ensure_admin(s, *ADMIN)
            org = store.create_organisation(s, name="压测司法局", code="BENCHROOMS", level="city")
            out = []
            for i in range(n_terminals):
                d = store.create_device(s, serial=f"BENCH-{i:04d}", organisation_id=org.id, kind="terminal",
                                        display_name=f"压测终端{i}")
                out.append((d.extension, d.sip_password))
            s.commit()
            return out
    finally:
        engine.dispose()


def bare_dialplan(prompt: str, bridge: str, user: str, menu: str) -> str:
    return "\n".join([
        "",
        "; ==== appended by bench/rooms_load.py to a throw-away data dir: never part of a deployment ====",
        "[huiyan-rooms]",
        "exten => _71XX,1,NoOp(bench: bare ConfBridge, no FastAGI)",
        "same => n,Answer()",
        f"same => n,Playback({prompt})",
        f"same => n,ConfBridge(${{EXTEN}},{bridge},{user},{menu})",
        "same => n,Hangup()",
        "",
    ])


def setup(args: argparse.Namespace, data: Path, started: dict[str, Any]) -> Bench:
    import httpx

    from huiyan.pbx.events import AmiEvent
    from huiyan.prompts import prompt_path
    from huiyan.rooms.model import Role, VideoMode, profiles
    from huiyan.setup import run_setup

    if shutil.which("sipp") is None or shutil.which("ffmpeg") is None:
        raise SystemExit("sipp and ffmpeg are needed (Debian sip-tester, ffmpeg); run `huiyan setup`")
    sizes, size0, counts = args.ladder
    n_terms = max(max(sizes), size0 * max(counts))
    settings = make_settings(data)
    run_setup(settings, None, host_packages=False)
    terminals = seed_db(settings, n_terms)

    run = started["run"] = hl.Running(settings)
    counter = [0]

    def count(event: Any) -> None:
        if isinstance(event, AmiEvent):
            counter[0] += 1

    run.ctl.bus.on(count)
    run.call(run.ctl.start(), timeout=180)
    meas = started["meas"] = Meas(run.ctl.node)

    # huiyan's rooms, through the API as an admin would make them: follow_talker (the mode for terminals),
    # no PIN, the largest participant limit.
    api = f"http://{settings.api_host}:{settings.api_port}"
    r = httpx.post(f"{api}/api/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=20)
    r.raise_for_status()
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    n_rooms = max(counts)
    huiyan_numbers = [str(HUIYAN_BASE + i) for i in range(n_rooms)]
    room_ids = []
    for number in huiyan_numbers:
        r = httpx.post(f"{api}/api/rooms", headers=auth, timeout=20, json={
            "name": f"压测会议室{number}", "number": number, "video_mode": "follow_talker",
            "max_participants": 200})
        if r.status_code != 201:
            raise RuntimeError(f"creating room {number}: {r.status_code} {r.text}")
        room_ids.append(r.json()["id"])

    async def loaded() -> bool:
        return all(run.ctl.rooms.room_by_number(n) is not None for n in huiyan_numbers)

    hl.wait_for(lambda: run.call(loaded()), 20, "the controller loaded the new rooms")

    # The bare path, and AMI event timestamps, appended to the *rendered* files of this throw-away data dir.
    etc = settings.pbx_dir / "etc"
    joining = prompt_path(settings.data_dir / "sounds", "room_joining", "zh")
    prof = profiles(VideoMode.FOLLOW_TALKER, Role.PARTICIPANT)
    conf = (etc / "confbridge.conf").read_text()
    for name in (prof.bridge, prof.user, prof.menu):
        assert f"[{name}]" in conf, f"confbridge.conf has no [{name}] profile"
    with open(etc / "extensions.conf", "a") as f:
        f.write(bare_dialplan(joining, prof.bridge, prof.user, prof.menu))
    manager = (etc / "manager.conf").read_text()
    (etc / "manager.conf").write_text(manager.replace("[general]\n", "[general]\ntimestampevents=yes\n", 1))
    run.cli("manager reload")
    run.cli("dialplan reload")
    bare_numbers = [str(BARE_BASE + i) for i in range(n_rooms)]
    shown = run.cli(f"dialplan show {bare_numbers[0]}@huiyan-rooms")
    assert "ConfBridge" in shown, shown
    meas.call(meas.client.action("UserEvent", UserEvent="bench-probe"))
    hl.wait_for(lambda: meas.user_events, 5, "the measurement's AMI session")

    import wave

    with wave.open(joining + ".wav") as w:
        prompt_seconds = w.getnframes() / w.getframerate()
    sizes_total = [max(sizes), size0 * max(counts)]
    ramp = max(sizes_total) / args.rate + 2
    hold = int(ramp + prompt_seconds + args.join_timeout + args.settle + args.window + 30)
    workdir = data / "sipp"
    workdir.mkdir()
    media = workdir / "media"
    media.mkdir()
    talk = audio_pcap(media / "talker.pcap", hold + 5, talking=True)
    quiet = audio_pcap(media / "listener.pcap", hold + 5, talking=False)
    video, kbps = video_pcap(media / "video.pcap", hold + 5, media)
    scenarios = {m: {role: participant_scenario(workdir / f"{m}-{role}.xml", audio=talk if role == "talker" else quiet,
                                                video=video if m == "video" else None, hold_s=hold)
                     for role in ("talker", "listener")} for m in MEDIA}
    return Bench(run, meas, workdir, terminals, {"huiyan": huiyan_numbers, "bare": bare_numbers}, room_ids,
                 scenarios, prompt_seconds, kbps, hold, counter)


# ---- one step of one path -----------------------------------------------------------------------

@dataclass
class Run:
    path: str
    media: str
    rooms: int
    size: int
    expected: int
    joined: int = 0
    wrong_room: int = 0
    sipp_failed: int = 0
    lat: list[float] = field(default_factory=list)  # INVITE (SIPp's clock) -> ConfbridgeJoin (Asterisk's)
    window: float = 0.0
    ast_w: float = 0.0  # CPU seconds in the steady window
    ctl_w: float = 0.0
    sipp_w: float = 0.0
    busy_w: float = 0.0  # the whole machine
    ast_all: float = 0.0  # CPU seconds, the whole step (ramp, window, hang-up, drain)
    ctl_all: float = 0.0
    ctl_join: float = 0.0  # controller CPU from the first INVITE to the last join
    seconds: float = 0.0
    join_s: float = 0.0  # first INVITE -> last join (or the deadline)
    drain_s: float = 0.0  # the Hangup -> every channel gone (and, huiyan, the controller saw them leave)
    ami_events: int = 0
    state_mismatch: str = ""  # huiyan: the controller's live rooms disagree with Asterisk's joins
    sent: dict[str, int] = field(default_factory=dict)  # media -> fewest RTP packets a sampled listener got
    not_forwarded: str = ""  # media Asterisk sent none of to a sampled listener
    retried: bool = False

    @property
    def failed(self) -> int:
        return self.expected - self.joined

    @property
    def status(self) -> str:
        if self.failed:
            return f"{self.failed} failed join(s)"
        if self.ast_w >= AST_SATURATED * NCPU * self.window:
            return "Asterisk CPU saturated"
        if self.state_mismatch:
            return "controller state wrong"
        if self.not_forwarded:
            return f"no {self.not_forwarded} sent to listeners"
        return "ok"

    @property
    def machine_busy(self) -> bool:
        """Context, not a limit: on a shared machine other work can fill the cores whatever we do."""
        return self.busy_w >= MACHINE_BUSY * NCPU * self.window

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def per_participant(self, cpu: float) -> float:
        """CPU in the steady window per participant, ms per second (10 = 1% of a core)."""
        return cpu / max(self.window, 1e-9) / max(self.joined, 1) * 1000


class Clock:
    """CPU counters read together: Asterisk (/proc), the controller (this process minus the driver and the
    measurement threads), the machine (/proc/stat)."""

    def __init__(self, b: Bench) -> None:
        self.b = b
        self.pid = b.run.ctl.pbx.pid()

    def read(self, procs: list[subprocess.Popen[bytes]] = ()) -> tuple[float, float, float, float, float]:
        sipp = 0.0
        for p in procs:
            try:
                sipp += hl.proc_cpu(p.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
        ctl = time.process_time() - time.thread_time() - self.b.meas.cpu()
        return hl.proc_cpu(self.pid), ctl, sipp, hl.busy_cpu(), time.monotonic()


INVITE_LOG = re.compile(r"INVITE (\S+) (\S+) ([0-9.]+) ([0-9.]+)")


def run_step(b: Bench, args: argparse.Namespace, path: str, media: str, rooms: int, size: int, tag: str) -> Run:
    numbers = b.numbers[path][:rooms]
    terms = b.terminals[:rooms * size]
    talkers = [(e, pw, numbers[i]) for i, (e, pw) in enumerate(terms[:rooms])]
    listeners = [(e, pw, numbers[j % rooms]) for j, (e, pw) in enumerate(terms[rooms:])]
    want = {e: n for e, _, n in talkers + listeners}
    res = Run(path, media, rooms, size, len(want))
    clock = Clock(b)
    target = f"127.0.0.1:{b.run.settings.sip_port}"
    with b.meas.lock:
        j0 = len(b.meas.joins)
    e0 = b.controller_ami_events[0]
    a0, c0, _, _, t0 = clock.read()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    for role, rows in (("talker", talkers), ("listener", listeners)):
        if not rows:
            continue
        if procs:  # the talkers first, so that they are in their rooms before the listeners come
            time.sleep(len(talkers) / args.rate + 0.2)
        name = f"{tag}-{role}"
        inf = injection_file(b.workdir / f"{name}.csv", rows)
        log = b.workdir / f"{name}.log"
        logs.append(log)
        p = hl.sipp([target, "-sf", str(b.scenarios[media][role]), "-inf", str(inf), "-m", str(len(rows)),
                     "-l", str(len(rows)), "-r", str(args.rate), "-rp", "1000", "-i", "127.0.0.1",
                     "-p", str(hl.free_port()), "-mp", str(hl.free_media_port()), "-timeout", f"{b.hold_s + 60}s",
                     "-aa", "-trace_logs", "-log_file", str(log)], b.workdir, name)
        procs.append(p)
        b.procs.append(p)

    def joined() -> dict[str, tuple[float, str, str]]:
        out: dict[str, tuple[float, str, str]] = {}
        with b.meas.lock:
            rows = b.meas.joins[j0:]
        for ts, conf, chan in rows:
            ext = chan.split("/", 1)[-1].rsplit("-", 1)[0]
            if ext in want and ext not in out:
                out[ext] = (ts, conf, chan)
        return out

    ramp = len(talkers) / args.rate + len(listeners) / args.rate + 0.5
    deadline = t0 + ramp + b.prompt_seconds + args.join_timeout
    while time.monotonic() < deadline and len(joined()) < len(want):
        if all(p.poll() is not None for p in procs):
            break  # every SIPp call has ended: nobody else is coming
        time.sleep(0.1)
    _, cj, _, _, tj = clock.read()
    res.ctl_join, res.join_s = cj - c0, tj - t0
    time.sleep(args.settle)
    a1, c1, s1, m1, t1 = clock.read(procs)
    time.sleep(args.window)
    a2, c2, s2, m2, t2 = clock.read(procs)
    res.window = t2 - t1
    res.ast_w, res.ctl_w, res.sipp_w, res.busy_w = a2 - a1, c2 - c1, s2 - s1, m2 - m1
    got = joined()
    if path == "huiyan":
        async def live_counts() -> dict[str, int]:
            return {n: len(b.run.ctl.rooms.state(n).participants) for n in numbers}

        counts = b.run.call(live_counts())
        in_asterisk = {n: sum(1 for _, c, _ in got.values() if c == n) for n in numbers}
        if counts != in_asterisk:
            res.state_mismatch = f"controller {counts} vs ConfbridgeJoin {in_asterisk}"

    # What Asterisk sent to one listener per room in the step (RTCP counters of its channel): the mix, and
    # in video mode the talker's video passed through. A room that forwards nothing is not a room.
    heard = {e for e, _, _ in listeners}
    sample = {}
    for ext, (_, conf, chan) in got.items():
        if ext in heard and conf not in sample:
            sample[conf] = chan
    for chan in sample.values():
        for kind in ("audio", "video") if media == "video" else ("audio",):
            try:
                resp = b.meas.call(b.meas.client.action("Getvar", Channel=chan,
                                                        Variable=f"CHANNEL(rtcp,txcount,{kind})"), timeout=10)
                n = int(resp.get("Value") or 0)
            except Exception:  # noqa: BLE001 - the channel went away: counted as nothing sent
                n = 0
            res.sent[kind] = min(res.sent.get(kind, n), n)
    if sample and any(v == 0 for v in res.sent.values()):
        res.not_forwarded = ", ".join(k for k, v in res.sent.items() if v == 0)

    # End of the step: hang everyone up (the same AMI action on both paths), let everything drain.
    th = time.monotonic()
    try:
        b.meas.call(b.meas.client.action("Hangup", Channel="/^PJSIP\\//"), timeout=15)
    except Exception as e:  # noqa: BLE001 - "no such channel" when every call already ended
        if "No such channel" not in str(e):
            print(f"warning: Hangup: {e}", file=sys.stderr)
    res.sipp_failed = sum(1 for p in procs if hl.finish(p, 60) != 0)
    try:
        hl.wait_for(lambda: not b.meas.live, 60, "every channel hung up")
    except RuntimeError as e:
        print(f"warning: {e}; {len(b.meas.live)} left", file=sys.stderr)
    if path == "huiyan":
        async def empty() -> bool:
            return all(not b.run.ctl.rooms.state(n).participants for n in numbers)

        try:
            hl.wait_for(lambda: b.run.call(empty()), 30, "the controller saw everyone leave")
        except RuntimeError as e:
            print(f"warning: {e}", file=sys.stderr)
    res.drain_s = time.monotonic() - th
    time.sleep(0.3)
    a3, c3, _, _, t3 = clock.read()
    res.ast_all, res.ctl_all, res.seconds = a3 - a0, c3 - c0, t3 - t0
    res.ami_events = b.controller_ami_events[0] - e0

    invites: dict[str, float] = {}
    for log in logs:
        if log.exists():
            for m in INVITE_LOG.finditer(log.read_text(errors="replace")):
                invites.setdefault(m[1], float(m[3]) + float(m[4]) / 1e6)
    for ext, (ts, conf, _) in got.items():
        if conf != want[ext]:
            res.wrong_room += 1
            continue
        start = invites.get(ext)
        lat = ts - start if start is not None else None
        if lat is not None and lat > b.prompt_seconds + args.join_timeout + ramp:
            continue  # too late: a failed join
        res.joined += 1
        if lat is not None:
            res.lat.append(lat)
    return res


# ---- the ladders --------------------------------------------------------------------------------

@dataclass
class Ladder:
    media: str
    dim: str
    steps: list[tuple[int, int]]  # (rooms, size)
    runs: dict[str, list[Run]] = field(default_factory=lambda: {p: [] for p in PATHS})
    stopped: dict[str, str] = field(default_factory=dict)  # path -> why it stopped climbing

    def best(self, path: str) -> Run | None:
        ok = [r for r in self.runs[path] if r.ok]
        return max(ok, key=lambda r: r.rooms * r.size) if ok else None


def ladders(args: argparse.Namespace) -> list[Ladder]:
    sizes, size0, counts = args.ladder
    out = [Ladder(m, "room", [(1, s) for s in sizes]) for m in args.media]
    return out + [Ladder(m, "rooms", [(n, size0) for n in counts]) for m in args.media]


def climb(b: Bench, args: argparse.Namespace, lad: Ladder, deadline: float, seq: list[int]) -> None:
    """Step up; at each step both paths (alternating which goes first); a failed step is run once more
    (after the other path) before a path stops climbing."""
    for k, (rooms, size) in enumerate(lad.steps):
        order = [p for p in (PATHS if seq[0] % 2 == 0 else PATHS[::-1]) if p not in lad.stopped]
        seq[0] += 1
        if not order:
            return
        if time.monotonic() > deadline:
            for p in order:
                lad.stopped[p] = "time budget"
            return
        again = []
        for p in order:
            r = run_step(b, args, p, lad.media, rooms, size, f"{lad.media}-{lad.dim}-{k}-{p}")
            report_run(r)
            lad.runs[p].append(r)  # a failed run is listed too; only passed runs count
            if not r.ok:
                again.append((p, r))
        for p, first in again:
            r = run_step(b, args, p, lad.media, rooms, size, f"{lad.media}-{lad.dim}-{k}-{p}-again")
            r.retried = True
            report_run(r)
            lad.runs[p].append(r)
            if not r.ok:
                lad.stopped[p] = f"{rooms}×{size}: {r.status} (twice; first: {first.status})"
    for p in PATHS:
        lad.stopped.setdefault(p, "top of the ladder")


def result(r: Run) -> str:
    notes = [n for n, on in (("retry", r.retried), ("machine busy", r.machine_busy),
                             (f"{r.sipp_failed} SIPp process(es) reported a failed call", r.sipp_failed),
                             (f"{r.wrong_room} in a wrong room", r.wrong_room)) if on]
    return r.status + (f" ({', '.join(notes)})" if notes else "")


def report_run(r: Run) -> None:
    w = max(r.window, 1e-9)
    print(f"  {r.media:5} {r.rooms:2}×{r.size:<3} {r.path:6}: joined {r.joined}/{r.expected}, "
          f"p50 {hl.ms(hl.pct(r.lat, 50))} ms, p95 {hl.ms(hl.pct(r.lat, 95))} ms, Asterisk "
          f"{r.ast_w / w * 100:.0f}% of a core, controller {r.ctl_w / w * 100:.1f}%, "
          f"SIPp {r.sipp_w / w * 100:.0f}%, machine {r.busy_w / w / NCPU * 100:.0f}% of {NCPU} cores, "
          f"{r.seconds:.0f} s: {result(r)}"
          + (f" [{r.state_mismatch}]" if r.state_mismatch else ""), flush=True)


# ---- report -------------------------------------------------------------------------------------

def _common_ok(lad: Ladder) -> list[tuple[Run, Run]]:
    """Steps both paths passed (first passing run of each): the like-for-like basis for CPU and latency."""
    by = {p: {(r.rooms, r.size): r for r in reversed(lad.runs[p]) if r.ok} for p in PATHS}
    return [(by["huiyan"][k], by["bare"][k]) for k in by["huiyan"] if k in by["bare"]]


def _cpu_pp(runs: list[Run], which: str) -> float:
    """Steady-state CPU per participant, ms/s, pooled over runs (CPU / participant-seconds)."""
    cpu = sum(r.ast_w if which == "ast" else r.ctl_w if which == "ctl" else r.ast_w + r.ctl_w for r in runs)
    ps = sum(r.window * r.joined for r in runs)
    return cpu / ps * 1000 if ps else math.nan


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def _f(v: float, fmt: str = ".2f") -> str:
    return "—" if v != v else format(v, fmt)


def _cap(lad: Ladder, path: str) -> str:
    best = lad.best(path)
    stop = lad.stopped.get(path, "")
    if best is None:
        return f"none ({stop})"
    n = best.rooms * best.size
    # not stopped by a failure: the path's limit lies higher
    return f"≥ {n}" if stop in ("top of the ladder", "time budget") else str(n)


def summary(lads: list[Ladder]) -> tuple[list[str], list[tuple[str, float, float | None]]]:
    out = ["| mode | measure | huiyan | bare | huiyan / bare |", "|---|---|---:|---:|---:|"]
    ratios: list[tuple[str, float, float | None]] = []
    for m in MEDIA:
        mine = [lad for lad in lads if lad.media == m]
        if not mine:
            continue
        for lad in mine:
            what = "max participants in one room" if lad.dim == "room" else \
                f"max participants across rooms (rooms of {lad.steps[0][1]})"
            h, bb = lad.best("huiyan"), lad.best("bare")
            hn, bn = (h.rooms * h.size if h else 0), (bb.rooms * bb.size if bb else 0)
            v = _ratio(hn, bn)
            caps = (_cap(lad, "huiyan"), _cap(lad, "bare"))
            out.append(f"| {m} | {what} | {caps[0]} | {caps[1]} | **{_f(v)}** |")
            both = " (both paths still passing where the climb ended: lower bounds)" \
                if all(c.startswith("≥") for c in caps) else ""
            ratios.append((f"{m}: {what}{both}", v, 0.95))
        pairs = [pr for lad in mine for pr in _common_ok(lad)]
        hs, bs = [h for h, _ in pairs], [b for _, b in pairs]
        hl_, bl = [x for r in hs for x in r.lat], [x for r in bs for x in r.lat]
        for q in (50, 95):
            v = _ratio(hl.pct(hl_, q), hl.pct(bl, q))
            diff = (hl.pct(hl_, q) - hl.pct(bl, q)) * 1000
            out.append(f"| {m} | join latency p{q}, INVITE → ConfbridgeJoin (ms) | {hl.ms(hl.pct(hl_, q))} "
                       f"| {hl.ms(hl.pct(bl, q))} | {_f(v)} ({diff:+.1f} ms) |")
            ratios.append((f"{m}: join latency p{q}", v, None))
        for which, label in (("ast", "Asterisk"), ("ctl", "controller"), ("all", "Asterisk + controller")):
            hv, bv = _cpu_pp(hs, which), _cpu_pp(bs, which)
            out.append(f"| {m} | {label} CPU per participant, steady (ms/s) | {_f(hv)} | {_f(bv)} "
                       f"| {_f(_ratio(hv, bv))} |")
        hv, bv = _cpu_pp(hs, "all"), _cpu_pp(bs, "all")
        v = _ratio(bv, hv)
        out.append(f"| {m} | capacity implied by that CPU (bare CPU / huiyan CPU) | | | **{_f(v)}** |")
        ratios.append((f"{m}: capacity implied by steady CPU per participant", v, 0.95))
        hj = sum(r.ctl_join for r in hs) / max(sum(r.joined for r in hs), 1) * 1000
        bj = sum(r.ctl_join for r in bs) / max(sum(r.joined for r in bs), 1) * 1000
        out.append(f"| {m} | controller CPU per join, INVITEs → last join (ms) | {_f(hj, '.1f')} | {_f(bj, '.1f')} "
                   f"| {_f(_ratio(hj, bj))} |")
        ha = sum(r.ast_all + r.ctl_all for r in hs) / max(sum(r.joined for r in hs), 1) * 1000
        ba = sum(r.ast_all + r.ctl_all for r in bs) / max(sum(r.joined for r in bs), 1) * 1000
        out.append(f"| {m} | Asterisk + controller CPU per participant, whole step (ms) | {_f(ha, '.0f')} "
                   f"| {_f(ba, '.0f')} | {_f(_ratio(ha, ba))} |")
        he = sum(r.ami_events for r in hs) / max(sum(r.joined for r in hs), 1)
        be = sum(r.ami_events for r in bs) / max(sum(r.joined for r in bs), 1)
        out.append(f"| {m} | AMI events the controller received per participant | {he:.0f} | {be:.0f} | |")
    return out, ratios


def steps_table(lad: Ladder) -> list[str]:
    out = [f"{MEDIA_LABEL[lad.media]}, {'one room' if lad.dim == 'room' else f'rooms of {lad.steps[0][1]}'}:", "",
           "| rooms × size | path | joined | join p50 / p95 (ms) | Asterisk (% of a core) "
           "| Asterisk ms/s per participant | controller (% of a core) | SIPp (% of a core) "
           "| machine (% of all cores) | all joined / drained in (s) | result |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    runs = sorted([r for p in PATHS for r in lad.runs[p]], key=lambda r: (r.rooms * r.size, PATHS.index(r.path)))
    for r in runs:
        w = max(r.window, 1e-9)
        out.append(f"| {r.rooms} × {r.size} | {r.path} | {r.joined}/{r.expected} | {hl.ms(hl.pct(r.lat, 50))} / "
                   f"{hl.ms(hl.pct(r.lat, 95))} | {r.ast_w / w * 100:.0f} | {r.per_participant(r.ast_w):.1f} "
                   f"| {r.ctl_w / w * 100:.1f} | {r.sipp_w / w * 100:.0f} | {r.busy_w / w / NCPU * 100:.0f} "
                   f"| {r.join_s:.1f} / {r.drain_s:.1f} | {result(r)} |")
    out.append("")
    out.append("Stopped: " + "; ".join(f"{p} — {lad.stopped.get(p, '?')}" for p in PATHS) + ".")
    return out


METHOD = """\
**Method.** One Asterisk ({asterisk}) started by huiyan's own `Controller` inside the benchmark process (free
ports, a throw-away data dir, the root in `var/asterisk-root`); the controller runs on its own event-loop thread
as under `huiyan up`. {terminals} video terminals (SIP devices of class `terminal`) are created in the database;
each SIPp participant is one of them, authenticating its INVITE with its own credentials (SIPp injection file),
so both paths pay the same digest round trip. Two paths, on the same Asterisk, the same terminals, the same
profiles:
- **huiyan**: rooms `6100…` created through `POST /api/rooms` (`follow_talker`, no PIN, `max_participants`
  200). A participant dials the room number → `huiyan-run` → the `room` FastAGI flow (room lookup, role, video
  and stream probes, admission, "正在进入会议" ({prompt:.1f} s), `ConfBridge(room, huiyan_follow_talker,
  huiyan_user, huiyan_menu)`); the controller tracks every ConfbridgeJoin/Leave/Talking into its live room
  state (checked at every step: its participant count per room must equal Asterisk's joins, else the step fails).
- **bare**: `_71XX` appended to `[huiyan-rooms]` of the *rendered* `extensions.conf` in the throw-away data dir
  (then `dialplan reload`): `Answer`, `Playback` of the same prompt, `ConfBridge(${{EXTEN}}, …)` with the same
  three profiles from the rendered `confbridge.conf`. No FastAGI. **The controller stays attached to AMI** during
  the bare runs: both paths must take turns on one Asterisk (stopping the controller between turns would also
  restart or re-adopt Asterisk and change what is measured), so the bare path carries the controller's standing
  cost too (it receives the bare conferences' events and its room service drops them after a dictionary lookup);
  the controller's CPU is reported separately, so the ratio of Asterisk's own CPU is the pure ConfBridge comparison.

**Load.** Each participant is a SIPp call (one SIPp process for the talkers, one for the listeners of a step,
{rate} calls/s): one **talker** per room sends a voice-like PCMU signal (so it is the talker, and in video mode
the video source), every other participant sends PCMU digital silence (which `dsp_drop_silence` keeps out of the
mix, as for a quiet listener). In **video** mode every participant also offers H.264 and sends it (640×360, 25
fps, baseline, keyframe every second, {kbps:.0f} kbit/s, made by ffmpeg and packetized into RTP by the
benchmark); Asterisk passes the talker's video to everyone else (no transcoding). Two ladders per mode: one
room with {sizes} participants (200 is the most a room takes: huiyan's `max_participants` limit and the bridge
profile's `max_members`); then {counts} rooms of {size0}. At every step both paths run, one after the
other, the order alternating from step to step (huiyan then bare, then bare then huiyan, …) so that a change in
the machine's background load weighs on both alike. A step **fails** when a participant has not reached
ConfbridgeJoin {join_timeout} s after its calls were all placed (and the prompt), when, in the steady window,
Asterisk's own CPU reaches {ast_sat:.0f}% of all {ncpu} cores, or (huiyan) when the controller's live rooms do not
match Asterisk's joins. A failed step is run once more (after the other path) before that path stops climbing;
its maximum is the largest step it passed (≥ when it never failed: the ladder's top or the time budget came
first). The whole machine's CPU (Asterisk, SIPp, the controller and whatever else runs) is shown per step and
flagged "machine busy" at {machine_busy:.0f}%, but it is not a limit: on a shared machine other work fills the cores
whatever this benchmark does, and SIPp itself needs a share. The steps are coarse (each 1.3–2× the last),
so the capacity ratio is 1.00 or far from it; the **capacity implied by the steady CPU** per participant
(bare / huiyan, over the steps both passed) is the finer reading of the same question.

**Measures.** *Join latency*: the wall clock when SIPp sends the participant's first INVITE (SIPp's
`gettimeofday`, logged per call) to Asterisk's `Timestamp` on the ConfbridgeJoin event (`timestampevents=yes`,
appended to the rendered `manager.conf`), over the steps both paths passed; it includes the digest challenge and
the {prompt:.1f} s prompt on both paths. *CPU*: Asterisk's utime+stime from /proc; the controller's = this
process's CPU minus the driver thread and the measurement's own AMI thread (a separate AMI session filtered
to ConfbridgeJoin/Newchannel/Hangup, on its own event loop); SIPp's from /proc; the machine's from /proc/stat.
*Steady*: over a {window} s window starting {settle} s after the last join, per participant (ms of CPU per second;
10 ms/s = 1% of a core). *Whole step*: from the first INVITE until every channel has gone, per participant.
*Media check*: at the end of the window, the RTCP packet counters of one listener per room
(`CHANNEL(rtcp,txcount,audio)`, and `…,video` in video mode) must show that Asterisk sent it the mix (and the
talker's video), else the step fails. Each step ends with one AMI `Hangup` of every PJSIP channel (both paths
alike). SIPp's CPU is not part of any per-participant figure."""


def report(lads: list[Ladder], b: Bench | None, args: argparse.Namespace, command: str, asterisk: str,
           idle: tuple[float, float], started_at: float) -> str:
    when = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [SECTION, "", f"Run {when}, `{command}`, on {hl.machine()}; Asterisk {asterisk}; "
             f"{time.monotonic() - started_at:.0f} s in all.", ""]
    table, ratios = summary(lads)
    lines += table
    lines.append("")
    for name, v, tgt in ratios:
        if tgt is not None:
            lines.append(f"- {name}, huiyan / bare: **{_f(v)}** (target ≥ {tgt}: "
                         f"{'—' if v != v else 'met' if v >= tgt else 'MISSED'})")
    lines += ["", "Every step:", ""]
    for lad in lads:
        lines += steps_table(lad)
        lines.append("")
    lines.append(f"Idle before the runs: Asterisk {idle[0] * 1000:.1f} ms/s, controller {idle[1] * 1000:.1f} ms/s "
                 f"(included in the figures above, not subtracted).")
    lines.append("")
    sizes, size0, counts = args.ladder
    lines.append(METHOD.format(
        asterisk=asterisk, terminals=len(b.terminals) if b else "?", prompt=b.prompt_seconds if b else math.nan,
        rate=args.rate, kbps=b.video_kbps if b else math.nan, sizes=", ".join(map(str, sizes)),
        counts=", ".join(map(str, counts)), size0=size0, join_timeout=args.join_timeout,
        ast_sat=AST_SATURATED * 100, machine_busy=MACHINE_BUSY * 100, ncpu=NCPU, window=args.window,
        settle=args.settle))
    return "\n".join(lines) + "\n"


def write_benchmarks(section: str, path: Path) -> None:
    write_section(path, SECTION, section)


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small steps, about 2 minutes (a smoke run)")
    ap.add_argument("--media", default=",".join(MEDIA), help="audio, video or both")
    ap.add_argument("--rate", type=float, default=None, help="calls per second when a step's participants dial in")
    ap.add_argument("--join-timeout", type=float, default=15.0,
                    help="seconds after its step's calls were placed (and the prompt) for a participant to join")
    ap.add_argument("--window", type=float, default=None, help="seconds of steady state measured per step")
    ap.add_argument("--settle", type=float, default=None, help="seconds after the last join before the window")
    ap.add_argument("--budget", type=float, default=None, help="stop climbing after this many seconds")
    ap.add_argument("--write", action="store_true", help="put the results into BENCHMARKS.md")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir (SIPp logs, Asterisk logs)")
    args = ap.parse_args(argv)
    args.media = [m for m in args.media.split(",") if m]
    if any(m not in MEDIA for m in args.media):
        ap.error(f"--media: any of {', '.join(MEDIA)}")
    mode = "quick" if args.quick else "full"
    args.ladder = LADDERS[mode]
    args.rate = args.rate or (20.0 if args.quick else 25.0)
    args.window = args.window or (2.0 if args.quick else 4.0)
    args.settle = args.settle if args.settle is not None else (0.5 if args.quick else 1.0)
    args.budget = args.budget or (150.0 if args.quick else 1020.0)
    argv_shown = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python bench/rooms_load.py", *argv_shown]).strip()

    data = Path(tempfile.mkdtemp(prefix="huiyan-rooms-bench-"))
    started: dict[str, Any] = {}
    t_start = time.monotonic()
    b: Bench | None = None
    try:
        b = setup(args, data, started)
        asterisk = b.run.ctl.install.version if b.run.ctl.install else "?"
        print(f"setup: {time.monotonic() - t_start:.1f} s; {len(b.terminals)} terminals, {len(b.room_ids)} huiyan "
              f"rooms; prompt {b.prompt_seconds:.2f} s; video {b.video_kbps:.0f} kbit/s", flush=True)
        clock = Clock(b)
        a0, c0, _, _, t0 = clock.read()
        time.sleep(2)
        a1, c1, _, _, t1 = clock.read()
        idle = ((a1 - a0) / (t1 - t0), (c1 - c0) / (t1 - t0))
        # one unmeasured call per path first: first-use costs (file cache, code paths)
        for p in PATHS:
            run_step(b, args, p, "audio", 1, 2, f"warm-{p}")
        lads = ladders(args)
        end = time.monotonic() + args.budget
        seq = [0]
        for i, lad in enumerate(lads):
            print(f"{MEDIA_LABEL[lad.media]}, {'one room' if lad.dim == 'room' else 'rooms'}:", flush=True)
            # each ladder gets an equal share of what is left of the budget
            climb(b, args, lad, time.monotonic() + (end - time.monotonic()) / (len(lads) - i), seq)
        if b.meas.no_timestamp:
            print(f"warning: {b.meas.no_timestamp} ConfbridgeJoin events without Timestamp were ignored",
                  file=sys.stderr)
        section = report(lads, b, args, command, asterisk, idle, t_start)
        print()
        print(section)
        if args.write:
            write_benchmarks(section, REPO / "BENCHMARKS.md")
            print("written to BENCHMARKS.md")
        print(f"total {time.monotonic() - t_start:.0f} s")
        return 0
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
        if args.keep:
            print(f"kept {data}", file=sys.stderr)
        else:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""The hotline's call distributor under SIPp load, against app_queue and a plain Dial on the same Asterisk.

    .venv/bin/python bench/hotline_load.py [--agents 20 --calls 200 --burst 10 --interval 2.5]

One Asterisk, started by huiyan's own Controller in this process (free ports, a temporary data dir, the
Asterisk root that `huiyan setup` built in var/asterisk-root). The same agents (SIPp, registered with
their own credentials) and the same callers (SIPp, bursts of calls) go through three paths in turn:

  ours       the 12348 flow: FastAGI coroutine + Python distributor, one-option menu (so no menu)
  app_queue  Queue() configured as close to ours as app_queue allows
  plain      a dialplan Dial to a free agent picked round-robin: the limit

and the script measures, per call, the time from queue entry to the agent's INVITE (Asterisk's own
microsecond log of the agent leg being called; AMI event timestamps as a second opinion), and the CPU that
Asterisk and the huiyan controller spent per call. Results are printed and written to BENCHMARKS.md
("Hotline distributor under SIPp load"), with the method (see METHOD).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from huiyan.config.settings import Settings  # noqa: E402
from _benchmarks_md import write_section  # noqa: E402

T = TypeVar("T")
MODES = ("ours", "app_queue", "plain")
NUMBERS = {"ours": "1234870", "app_queue": "1234871", "plain": "1234872"}
LABEL = {"ours": "huiyan (FastAGI + Python ACD)", "app_queue": "app_queue (Queue)",
         "plain": "plain Dial, round-robin (the limit)"}
SECTION = "## Hotline distributor under SIPp load"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# What every caller hears before the queue, in all three paths. Our flow plays "please wait" only when no
# agent was offered at once (flow.py), which under this load (free agents) does not happen; it is counted.
PROMPTS = ("welcome", "recorded")


# ---- small helpers ------------------------------------------------------------------------------

def free_port() -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s2:
                s2.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


_media_next = [30000 + (os.getpid() % 170) * 16]


def free_media_port() -> int:
    """A base port for SIPp's media (audio X, X+1, video X+2, X+3), all four free, in 30000-32767: below
    the kernel's ephemeral range (where free_port() and other tests' Asterisks take theirs) and above the
    RTP range this benchmark gives Asterisk, so no one takes a SIPp media port from under it."""
    for _ in range(700):
        base = _media_next[0]
        _media_next[0] = base + 4 if base + 8 < 32768 else 30000
        socks = []
        try:
            for p in range(base, base + 4):
                sk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sk)
                sk.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for sk in socks:
                sk.close()
    raise RuntimeError("no free media ports in 30000-32767")


def busy_cpu() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / CLK_TCK  # everything but idle and iowait


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def proc_cpu(pid: int) -> float:
    """utime + stime of a whole process (all threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def controller_cpu() -> float:
    """CPU of everything in this process except the calling (driver) thread: the controller's event loop
    thread and its worker threads (database writes). Must be called from the driver's main thread."""
    return time.process_time() - time.thread_time()


def wav_seconds(path: str) -> float:
    with wave.open(path + ".wav") as w:
        return w.getnframes() / w.getframerate()


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def ms(v: float) -> str:
    return "—" if v != v else (f"{v * 1000:.1f}" if v < 10 else f"{v * 1000:.0f}")


# ---- the controller, on its own event-loop thread (like tests/integration/conftest.py) ----------

class Running:
    def __init__(self, settings: Settings) -> None:
        from huiyan.runtime import Controller

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="huiyan-controller", daemon=True)
        self.thread.start()
        self.ctl = Controller(settings)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def cli(self, command: str) -> str:
        """An Asterisk CLI command through the remote console (AMI refuses `module load`)."""
        return self.ctl.pbx.rx(command, timeout=15)

    def stop(self) -> None:
        try:
            self.call(self.ctl.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


# ---- what the benchmark listens to --------------------------------------------------------------

@dataclass
class Row:
    kind: str
    ts: float  # Asterisk's own AMI Timestamp (timestampevents=yes); our bus events: their time, wall clock
    f: dict[str, str]


@dataclass
class Recorder:
    """A bus listener (it runs on the controller's thread): keeps the few events the measurement needs."""

    wall_offset: float = 0.0  # the hotline service's monotonic clock + this = epoch seconds (at its start)
    rows: list[Row] = field(default_factory=list)
    live: set[str] = field(default_factory=set)  # channels up right now (Newchannel .. Hangup)
    no_timestamp: int = 0
    ami_events: int = 0  # every AMI event the controller received and published

    def __post_init__(self) -> None:
        from huiyan.hotline.service import HotlineEvent
        from huiyan.pbx.events import AmiEvent

        self._types = (HotlineEvent, AmiEvent)

    def controller(self, event: Any) -> None:
        """Listener on the controller's own bus: distributor decisions, and a count of the AMI events the
        controller itself received (it asks Asterisk only for the events it uses)."""
        HotlineEvent, AmiEvent = self._types  # noqa: N806
        if isinstance(event, AmiEvent):
            self.ami_events += 1
            return
        self(event)

    def __call__(self, event: Any) -> None:
        HotlineEvent, AmiEvent = self._types  # noqa: N806
        if isinstance(event, HotlineEvent):
            if event.kind in ("CallQueued", "CallOffered"):
                # event.at is the distributor's own time of the decision (monotonic + the offset taken at
                # start); re-anchor it on the wall clock now, so a slewed wall clock cannot skew it.
                drift = time.time() - time.monotonic() - self.wall_offset
                self.rows.append(Row(event.kind, event.at + drift, {"Uniqueid": str(event.data.get("call_id"))}))
            return
        if not isinstance(event, AmiEvent):
            return
        name, f = event.name, event.fields
        if name == "Newchannel":
            self.live.add(f.get("Uniqueid", ""))
            return
        if name == "Hangup":
            self.live.discard(f.get("Uniqueid", ""))
        elif name == "VarSet":
            if f.get("Variable") != "HUIYAN_HL_QUEUED_AT":
                return
        elif name == "Newexten":
            if f.get("AppData") != "bench-entry":
                return
        elif name not in ("QueueCallerJoin", "DialBegin", "DialEnd", "UserEvent"):
            return
        raw = f.get("Timestamp")
        if raw is None:
            self.no_timestamp += 1
            return
        self.rows.append(Row(name, float(raw), dict(f)))

    def take(self) -> list[Row]:
        rows, self.rows = self.rows, []
        return rows


# ---- Asterisk's verbose log (full.log), timestamped in the calling thread, to the microsecond -----

LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\] VERBOSE\[\d+\]\[(C-[0-9a-f]+)\] [\w.]+: (.*)$")
EXECUTING = re.compile(r'^Executing \[([^@\]]*)@([^:\]]*):\d+\] (\w+)\("([^"]*)", "(.*)"\) in new stack$')


@dataclass
class LogCall:
    """One caller's channel as the verbose log tells it (keyed by Asterisk's call id, C-xxxxxxxx)."""

    channel: str = ""
    exten: str = ""
    entry: float | None = None  # plain: NoOp(bench-entry); app_queue: Queue() starts
    dial: float | None = None  # the Dial application starts (plain: dialplan; ours: AGI EXEC)
    called: float | None = None  # "Called PJSIP/agent": the agent leg was created and ast_call()ed
    please_wait: bool = False
    moh_on: float | None = None  # ours: the AGI commands between the offer and Dial, as Asterisk ran them
    moh_off: float | None = None
    mixmonitor: float | None = None


def read_log(path: Path, offset: int) -> dict[str, LogCall]:
    calls: dict[str, LogCall] = {}
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        when = datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        c = calls.setdefault(m[2], LogCall())
        msg = m[3]
        e = EXECUTING.match(msg)
        if e:
            exten, context, app, chan, data = e.groups()
            if not c.channel:
                c.channel, c.exten = chan, exten
            if (app == "NoOp" and data == "bench-entry" and exten == "plain") or app == "Queue":
                c.entry = c.entry or when
            if app == "Dial" and c.dial is None:
                c.dial = when
        elif msg.startswith("AGI Script Executing Application: (Dial)") and c.dial is None:
            c.dial = when
        elif msg.startswith("AGI Script Executing Application: (MixMonitor)") and c.mixmonitor is None:
            c.mixmonitor = when
        elif msg.startswith("Started music on hold") and c.moh_on is None:
            c.moh_on = when
        elif msg.startswith("Stopped music on hold") and c.moh_off is None:
            c.moh_off = when
        elif msg.startswith("Called ") and c.called is None:
            c.called = when
        elif "please_wait" in msg and msg.startswith("<"):
            c.please_wait = True
    return calls


# ---- SIPp ---------------------------------------------------------------------------------------

def sipp(args: list[str], workdir: Path, tag: str) -> subprocess.Popen[bytes]:
    log = open(workdir / f"{tag}.out", "wb")  # noqa: SIM115 - closed with the process
    p = subprocess.Popen(["sipp", *args, "-nostdin", "-trace_err", "-error_file", str(workdir / f"{tag}.err")],
                         cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    p._bench_log = log  # type: ignore[attr-defined]
    return p


def finish(p: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    p._bench_log.close()  # type: ignore[attr-defined]
    return rc


# ---- setup: database rows, then the controller, then the benchmark-only dialplan and queue -------

@dataclass
class Bench:
    run: Running
    rec: Recorder
    workdir: Path
    agents: list[tuple[str, str, str]]  # (agent id, extension, SIP password)
    queue_id: str
    agent_port: int
    prompt_seconds: float
    please_wait_seconds: float
    agent_proc: subprocess.Popen[bytes] | None = None


def make_settings(data: Path) -> Settings:
    root = Path(os.environ.get("HUIYAN_ASTERISK_ROOT", REPO / "var" / "asterisk-root"))
    # RTP in 20000-29999: clear of huiyan's default 10000-20000, of the ephemeral ports other tests' Asterisks
    # use, and of the SIPp media ports (free_media_port)
    rtp = 20000 + (os.getpid() % 4000) * 2
    s = Settings(data_dir=data, asterisk_root=root, sip_port=free_port(), http_port=free_port(),
                 ami_port=free_port(), agi_port=free_port(), api_port=free_port(), rtp_start=rtp,
                 rtp_end=rtp + 2000, database_url=None)
    s.services[NUMBERS["ours"]] = "hotline"
    return s


def seed_db(settings: Settings, n_agents: int, ring: int) -> tuple[str, list[tuple[str, str, str]]]:
    """Our queue (longest-idle, no wrap-up, no auto-pause, no announcements), a one-option menu on our
    service number, and `n_agents` agent users who are its members."""
    from huiyan.db import hotline as db
    from huiyan.db import make_engine, session_factory, store, upgrade

    upgrade(settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        with session_factory(engine)() as s:
            q = db.create_queue(s, name="压测队列", strategy="longest-idle", ring_timeout_s=ring, wrapup_s=0,
                                autopause_after=0, announce_every_s=0)
            db.create_menu_option(s, service_number=NUMBERS["ours"], digit="1", queue_id=q.id, label_zh="法律咨询")
            agents = []
            for i in range(n_agents):
                u = store.create_user(s, username=f"bench{i:03d}", password="bench-password-1", role="agent",
                                      display_name=f"坐席{i}")
                db.add_queue_member(s, q.id, u.id)
                agents.append((str(u.id), u.extension, u.sip_password))
            s.commit()
            return str(q.id), agents
    finally:
        engine.dispose()


def bench_dialplan(exts: list[str], prompts: str, rec_dir: Path, ring: int) -> str:
    n = len(exts)
    entry = "same => n,NoOp(bench-entry)"
    common = [
        "same => n,Answer()",
        # the prompts our flow plays before it enqueues (see PROMPTS), so the callers' calls are alike
        f"same => n,Playback({prompts})",
        # our flow records every answered call (MixMonitor ...,b); so do these
        f"same => n,MixMonitor({rec_dir}/${{UNIQUEID}}.wav,b)",
    ]
    return "\n".join([
        "",
        "; ==== appended by bench/hotline_load.py to a throw-away data dir: never part of a deployment ====",
        "[huiyan-public]",
        f"exten => {NUMBERS['app_queue']},1,Goto(bench-hotline,queue,1)",
        f"exten => {NUMBERS['plain']},1,Goto(bench-hotline,plain,1)",
        "",
        "[bench-hotline]",
        "exten => queue,1,NoOp(app_queue path)",
        *common,
        "same => n,Queue(bench-aq)",
        "same => n,Hangup()",
        "",
        "exten => plain,1,NoOp(plain Dial path: a free agent, round-robin)",
        *common,
        entry,
        # BENCH_AGENTS (the extensions, "-"-separated) and BENCH_RR are globals, set after the reload.
        # No LOCK(): func_lock costs ~10 ms here; two callers racing for one agent are counted instead.
        "same => n,Set(BENCH_I=0)",
        f"same => n(next),Set(GLOBAL(BENCH_RR)=$[(${{BENCH_RR}} + 1) % {n}])",
        "same => n,Set(BENCH_AG=${CUT(BENCH_AGENTS,-,$[${BENCH_RR} + 1])})",
        f"same => n,GotoIf($[${{GROUP_COUNT(${{BENCH_AG}}@benchbusy)}} > 0 & ${{INC(BENCH_I)}} < {n}]?next)",
        "same => n,Set(GROUP(benchbusy)=${BENCH_AG})",
        f"same => n,Dial(PJSIP/${{BENCH_AG}},{ring},i)",
        "same => n,Hangup()",
        "",
    ])


def bench_queue(exts: list[str], ring: int) -> str:
    """app_queue as near to ours as it goes: least recent (= our longest-idle), no ring-in-use, our ring
    timeout, no wrap-up, parallel service of waiting callers (autofill), no announcements."""
    lines = [
        "",
        "; ==== appended by bench/hotline_load.py to a throw-away data dir ====",
        "[bench-aq]",
        "strategy=leastrecent",
        f"timeout={ring}",
        "retry=1",
        "wrapuptime=0",
        "ringinuse=no",
        "autofill=yes",
        "autopause=no",
        "joinempty=yes",
        "leavewhenempty=no",
        "memberdelay=0",
        "announce-frequency=0",
        "periodic-announce-frequency=0",
        "announce-position=no",
        "announce-holdtime=no",
        "reportholdtime=no",
        "timeoutrestart=no",
        "musicclass=default",
        "setinterfacevar=no",
    ]
    lines += [f"member => PJSIP/{e}" for e in exts]
    return "\n".join(lines) + "\n"


def wait_for(pred: Any, timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


def setup(args: argparse.Namespace, data: Path, started: dict[str, Any]) -> Bench:
    """Everything before the first call. What it starts goes into `started` at once, so that the caller
    can stop it even when a later step fails."""
    from huiyan.prompts import prompt_path
    from huiyan.setup import run_setup

    if shutil.which("sipp") is None:
        raise SystemExit("sipp is missing (Debian package sip-tester); run `huiyan setup` or ./quickstart.sh")
    settings = make_settings(data)
    run_setup(settings, None, host_packages=False)
    queue_id, agents = seed_db(settings, args.agents, args.ring)

    run = started["run"] = Running(settings)
    rec = Recorder()
    run.ctl.bus.on(rec.controller)
    run.call(run.ctl.start(), timeout=120)
    rec.wall_offset = run.ctl.hotline._wall_offset
    # The measurement has an AMI session of its own, with every event: the controller's session carries
    # only what the controller uses, as in production. Both paths are measured the same way.
    from huiyan.bus import EventBus
    from huiyan.pbx.ami import AmiClient

    meas = started["meas"] = AmiClient(run.ctl.node, EventBus())
    meas.on_event(rec)
    run.call(meas.connect(timeout=10))

    # The rendered files are outputs; for the benchmark only, append app_queue's queue, the two peer paths
    # and AMI event timestamps to them in this throw-away data dir and reload. Nothing re-renders afterwards.
    etc = settings.pbx_dir / "etc"
    exts = [e for _, e, _ in agents]
    sounds = settings.data_dir / "sounds"
    prompt_files = [prompt_path(sounds, p, "zh") for p in PROMPTS]
    rec_dir = settings.data_dir / "recordings" / "bench"
    rec_dir.mkdir(parents=True, exist_ok=True)
    with open(etc / "extensions.conf", "a") as f:
        f.write(bench_dialplan(exts, "&".join(prompt_files), rec_dir, args.ring))
    with open(etc / "queues.conf", "a") as f:
        f.write(bench_queue(exts, args.ring))
    manager = (etc / "manager.conf").read_text()
    (etc / "manager.conf").write_text(manager.replace("[general]\n", "[general]\ntimestampevents=yes\n", 1))
    logger = (etc / "logger.conf").read_text()
    assert "%3q" in logger, "logger.conf: expected a millisecond dateformat to refine"
    (etc / "logger.conf").write_text(logger.replace("%3q", "%6q"))
    run.cli("manager reload")
    run.cli("logger reload")
    run.cli("dialplan reload")
    run.cli("queue reload all")
    run.cli("dialplan set global BENCH_RR 0")
    run.cli(f"dialplan set global BENCH_AGENTS {'-'.join(exts)}")
    assert "bench-aq" in run.cli("queue show bench-aq"), "app_queue did not load the benchmark queue"
    assert NUMBERS["plain"] in run.cli(f"dialplan show {NUMBERS['plain']}@huiyan-public")
    # every event must now carry Asterisk's own timestamp
    run.call(meas.action("UserEvent", UserEvent="bench-probe"))
    wait_for(lambda: any(r.kind == "UserEvent" for r in rec.rows), 5, "AMI events with Timestamp")
    rec.take()

    workdir = data / "sipp"
    workdir.mkdir()
    # All agents register this one SIPp port as their contact; one SIPp process then answers for all.
    agent_port = free_port()
    target = f"127.0.0.1:{settings.sip_port}"
    for _, ext, pw in agents:
        reg = sipp([target, "-sf", str(BENCH / "hotline_register.xml"), "-s", ext, "-au", ext, "-ap", pw,
                    "-m", "1", "-i", "127.0.0.1", "-p", str(agent_port), "-timeout", "10s", "-timeout_error",
                    "-aa"], workdir, f"register-{ext}")
        if finish(reg, 20) != 0:
            raise RuntimeError(f"agent {ext} could not register: see {workdir}/register-{ext}.*")
    bench = Bench(run, rec, workdir, agents, queue_id, agent_port, sum(wav_seconds(p) for p in prompt_files),
                  wav_seconds(prompt_path(sounds, "please_wait", "zh")))
    bench.agent_proc = started["agents"] = sipp(
        [target, "-sf", str(BENCH / "hotline_agent.xml"), "-i", "127.0.0.1", "-p", str(agent_port),
         "-mp", str(free_media_port()), "-d", str(args.answer_ms), "-aa"], workdir, "agents")
    time.sleep(0.3)
    for e in exts:  # a qualify that hit the gap between the two SIPp processes must not leave it Unavailable
        run.cli(f"pjsip qualify {e}")

    def all_reachable() -> bool:
        out = run.cli("pjsip show contacts")
        return sum(1 for line in out.splitlines() if "Contact:" in line and "Avail" in line) >= len(exts)

    wait_for(all_reachable, 20, "every agent's contact Avail", step=0.5)

    async def login() -> None:
        for agent_id, _, _ in agents:
            run.ctl.hotline.login(agent_id, [queue_id])

    run.call(login())
    return bench


# ---- one path under load ------------------------------------------------------------------------

@dataclass
class Result:
    mode: str
    calls: int
    lat: list[float]  # entry -> "Called PJSIP/agent", Asterisk's log clock (ours: entry = our enqueue)
    lat_ami: list[float]  # entry -> DialBegin, both AMI Timestamps
    answered: int
    sipp_failed: int
    ast_cpu: float
    ctl_cpu: float
    seconds: float
    double_rung: int
    please_wait: int
    ami_events: int = 0
    others_cpu: float = 0.0  # CPU the rest of the machine (not Asterisk, controller, our SIPp) used meanwhile
    segments: int = 1
    breakdown: dict[str, list[float]] = field(default_factory=dict)


def place_calls(b: Bench, args: argparse.Namespace, mode: str, calls: int, burst: int, tag: str) -> int:
    """Bursts of `burst` calls every `interval` s (one SIPp process per burst); returns failed processes."""
    target = f"127.0.0.1:{b.run.settings.sip_port}"
    hold_ms = int((b.prompt_seconds + args.answer_ms / 1000 + args.talk) * 1000) + 300
    procs = []
    t0 = time.monotonic()
    sent = 0
    i = 0
    while sent < calls:
        n = min(burst, calls - sent)
        delay = t0 + i * args.interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        procs.append(sipp([target, "-sf", str(BENCH / "hotline_caller.xml"), "-s", NUMBERS[mode],
                           "-m", str(n), "-l", str(n), "-r", "1000", "-rp", "1000", "-i", "127.0.0.1",
                           "-p", str(free_port()), "-mp", str(free_media_port()), "-d", str(hold_ms),
                           "-timeout", f"{int(hold_ms / 1000 + 60)}s", "-timeout_error"],
                          b.workdir, f"{tag}-{mode}-{i:03d}"))
        sent += n
        i += 1
    return sum(1 for p in procs if finish(p, hold_ms / 1000 + 90) != 0)


def drain(b: Bench) -> None:
    """Wait until every call of the run is gone from Asterisk and from our distributor, and it has written."""
    wait_for(lambda: not b.rec.live and not b.run.ctl.hotline.waiters, 60, "all channels hung up")
    time.sleep(0.3)


def run_mode(b: Bench, args: argparse.Namespace, mode: str, calls: int, tag: str) -> Result:
    b.rec.take()
    log = b.run.settings.pbx_dir / "log" / "full.log"
    offset = log.stat().st_size
    pid = b.run.ctl.pbx.pid()
    e0 = b.rec.ami_events
    m0, k0, d0 = busy_cpu(), children_cpu(), time.thread_time()
    a0, c0, t0 = proc_cpu(pid), controller_cpu(), time.monotonic()
    failed = place_calls(b, args, mode, calls, args.burst, tag)
    drain(b)
    a1, c1, t1 = proc_cpu(pid), controller_cpu(), time.monotonic()
    m1, k1, d1 = busy_cpu(), children_cpu(), time.thread_time()
    rows = b.rec.take()
    res = analyse(mode, rows, read_log(log, offset), calls, failed, a1 - a0, c1 - c0, t1 - t0)
    res.ami_events = b.rec.ami_events - e0
    res.others_cpu = max(0.0, (m1 - m0) - (a1 - a0) - (c1 - c0) - (k1 - k0) - (d1 - d0))
    return res


def merge(a: Result, r: Result) -> Result:
    """Pool two runs of one path (rounds)."""
    bd = {k: a.breakdown.get(k, []) + r.breakdown.get(k, []) for k in {**a.breakdown, **r.breakdown}}
    return Result(a.mode, a.calls + r.calls, a.lat + r.lat, a.lat_ami + r.lat_ami, a.answered + r.answered,
                  a.sipp_failed + r.sipp_failed, a.ast_cpu + r.ast_cpu, a.ctl_cpu + r.ctl_cpu,
                  a.seconds + r.seconds, a.double_rung + r.double_rung, a.please_wait + r.please_wait,
                  a.ami_events + r.ami_events, a.others_cpu + r.others_cpu, a.segments + r.segments, bd)


def plan(modes: list[str], calls: int, burst: int, rounds: int) -> list[tuple[str, int]]:
    """(path, calls) segments: rounds alternate direction (A B C C B A ...) so that a drift in the machine's
    background load weighs on every path alike; each path's calls are split over the rounds in bursts."""
    bursts = math.ceil(calls / burst)
    out = []
    for r in range(rounds):
        order = modes if r % 2 == 0 else list(reversed(modes))
        share = bursts // rounds + (1 if r < bursts % rounds else 0)
        for m in order:
            n = min(share * burst, calls - sum(c for mm, c in out if mm == m))
            if n > 0:
                out.append((m, n))
    return out


def analyse(mode: str, rows: list[Row], logged: dict[str, LogCall], calls: int, failed: int, ast: float,
            ctl: float, secs: float) -> Result:
    # -- AMI clock: entry event -> DialBegin, both stamped by Asterisk's manager (timestampevents)
    entry_kind = {"ours": "VarSet", "app_queue": "QueueCallerJoin", "plain": "Newexten"}[mode]
    entry: dict[str, float] = {}
    dial: dict[str, float] = {}
    chan_uid: dict[str, str] = {}
    answered = 0
    py: dict[str, dict[str, float]] = {"CallQueued": {}, "CallOffered": {}}
    legs: dict[str, tuple[str, float]] = {}  # agent channel uniqueid -> (agent endpoint, DialBegin)
    gone: dict[str, float] = {}  # channel uniqueid -> Hangup
    for r in rows:
        uid = r.f.get("Uniqueid", "")
        if r.f.get("Channel"):
            chan_uid.setdefault(r.f["Channel"], uid)
        if r.kind == entry_kind:
            entry.setdefault(uid, r.ts)
        elif r.kind == "DialBegin":
            dial.setdefault(uid, r.ts)
            dest = r.f.get("DestChannel", "")
            legs[r.f.get("DestUniqueid", "")] = (dest.split("/", 1)[-1].rsplit("-", 1)[0], r.ts)
        elif r.kind == "DialEnd":
            if r.f.get("DialStatus") == "ANSWER":
                answered += 1
        elif r.kind == "Hangup":
            gone[uid] = r.ts
        elif r.kind in py:
            py[r.kind].setdefault(uid, r.ts)
    lat_ami = [dial[u] - t for u, t in entry.items() if u in dial]
    # an agent rung while a call of theirs was still ringing or talking: the distributor chose a busy agent
    double = 0
    busy: dict[str, list[tuple[float, float]]] = {}
    for leg, (ep, t) in legs.items():
        busy.setdefault(ep, []).append((t, gone.get(leg, math.inf)))
    for spans in busy.values():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                double += 1

    # -- log clock: entry -> "Called PJSIP/agent" (Asterisk's verbose log, stamped in the calling thread);
    #    for ours the entry is the distributor's own enqueue time (same wall clock).
    mine = [c for c in logged.values() if c.exten == NUMBERS[mode] and c.called is not None]
    lat: list[float] = []
    breakdown: dict[str, list[float]] = {}
    if mode == "ours":
        q, o = py["CallQueued"], py["CallOffered"]
        steps: dict[str, list[float]] = {}

        def step(name: str, a: float | None, z: float | None) -> None:
            if a is not None and z is not None:
                steps.setdefault(name, []).append(z - a)

        for c in mine:
            uid = chan_uid.get(c.channel, "")
            if uid not in q:
                continue
            lat.append(c.called - q[uid])
            offered = o.get(uid)
            step("distributor: enqueue → offer", q[uid], offered)
            if None not in (c.moh_on, c.moh_off, c.mixmonitor) and offered is not None \
                    and c.moh_on < c.moh_off < c.mixmonitor < (c.dial or 0):
                step("AGI round trip: SET MUSIC ON (offer → music on)", offered, c.moh_on)
                step("AGI round trip: SET MUSIC OFF", c.moh_on, c.moh_off)
                step("AGI round trip: EXEC MixMonitor", c.moh_off, c.mixmonitor)
                step("AGI round trip: EXEC Dial", c.mixmonitor, c.dial)
            else:
                step("flow: offer → Dial starts", offered, c.dial)
            step("Asterisk: Dial starts → agent called", c.dial, c.called)
        breakdown = steps
    else:
        lat = [c.called - c.entry for c in mine if c.entry is not None]
        if mode == "plain":
            breakdown = {"dialplan: round-robin pick → Dial starts": [c.dial - c.entry for c in mine
                                                                      if c.entry is not None and c.dial is not None],
                         "Asterisk: Dial starts → agent called": [c.called - c.dial for c in mine
                                                                   if c.dial is not None]}
    res = Result(mode, calls, lat, lat_ami, answered, failed, ast, ctl, secs, double,
                 sum(1 for c in logged.values() if c.exten == NUMBERS[mode] and c.please_wait))
    res.breakdown = breakdown
    return res


def profile_ours(b: Bench, args: argparse.Namespace, top: int = 30) -> None:
    """Where the controller's event-loop thread spends its CPU under this load (diagnostic, not measured)."""
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    on = threading.Event()
    b.run.loop.call_soon_threadsafe(lambda: (prof.enable(), on.set()))  # profiles the loop's thread only
    on.wait(5)
    place_calls(b, args, "ours", args.calls, args.burst, "profile")
    drain(b)
    off = threading.Event()
    b.run.loop.call_soon_threadsafe(lambda: (prof.disable(), off.set()))
    off.wait(5)
    b.rec.take()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats("huiyan/", top)
    print("\ncontroller event-loop thread, ours path, by own time:\n" + out.getvalue(), flush=True)


def warm_up(b: Bench, args: argparse.Namespace) -> None:
    """A few calls through each path at once, not measured: first-use costs (file cache, code paths)."""
    if args.warmup <= 0:
        return
    threads = [threading.Thread(target=place_calls, args=(b, args, m, args.warmup, args.warmup, "warm"))
               for m in MODES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain(b)
    b.rec.take()


# ---- report -------------------------------------------------------------------------------------

def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    return (f"{os.cpu_count()} cores ({cpu}), {mem} GB RAM, Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def table(results: dict[str, Result]) -> list[str]:
    out = ["| path | calls | answered | measured | entry→agent INVITE p50 (ms) | p95 (ms) | max (ms) "
           "| AMI clock p50 / p95 (ms) | Asterisk CPU/call (ms) | controller CPU/call (ms) | total CPU/call (ms) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in MODES:
        r = results.get(m)
        if r is None:
            continue
        n = max(r.calls, 1)
        out.append(f"| {LABEL[m]} | {r.calls} | {r.answered} | {len(r.lat)} | {ms(pct(r.lat, 50))} "
                   f"| {ms(pct(r.lat, 95))} | {ms(max(r.lat, default=math.nan))} "
                   f"| {ms(pct(r.lat_ami, 50))} / {ms(pct(r.lat_ami, 95))} | {r.ast_cpu / n * 1000:.1f} "
                   f"| {r.ctl_cpu / n * 1000:.1f} | {(r.ast_cpu + r.ctl_cpu) / n * 1000:.1f} |")
    return out


def ratios(results: dict[str, Result]) -> list[tuple[str, float, float | None]]:
    out: list[tuple[str, float, float | None]] = []
    ours = results.get("ours")
    if ours is None:
        return out
    for peer, target in (("app_queue", 1.0), ("plain", 1.1)):
        r = results.get(peer)
        if r is None:
            continue
        out.append((f"p95 ours / {peer}", pct(ours.lat, 95) / pct(r.lat, 95), target))
        out.append((f"p50 ours / {peer}", pct(ours.lat, 50) / pct(r.lat, 50), None))
        out.append((f"p95 ours / {peer}, AMI clock", pct(ours.lat_ami, 95) / pct(r.lat_ami, 95), None))
        out.append((f"CPU per call ours / {peer}", (ours.ast_cpu + ours.ctl_cpu) / (r.ast_cpu + r.ctl_cpu), None))
    return out


def verdict(v: float, tgt: float | None) -> str:
    if tgt is None:
        return ""
    return f" (target ≤ {tgt}: {'met' if v <= tgt else 'MISSED'})"


METHOD = """\
**Method.** One Asterisk ({asterisk}) started by huiyan's own `Controller` inside the benchmark process
(free ports, a throw-away data dir, the root in `var/asterisk-root`); the controller runs on its own
event-loop thread as under `huiyan up`. {agents} agent users are created in the database and registered
by SIPp with their own credentials, all with one SIPp port as contact (one SIPp process answers for every
agent: rings, answers after {answer_ms} ms with PCMU + H.264). Callers are SIPp processes, one per burst:
{burst} calls at once every {interval} s, {calls} calls per path, offering PCMU + H.264; each hangs up
{talk} s after the agent answered, so every burst finds free agents (the latency is the distributor's
reaction, not queueing). The three paths take turns on the same Asterisk, each path's calls split over
{rounds} round(s) run in alternating order (ours, app_queue, plain, then plain, app_queue, ours, ...) so
that a change in the machine's background load weighs on all three alike, after {warmup} unmeasured
warm-up call(s) per path. Every caller first hears the same welcome + "this call is recorded"
prompts and every answered call is recorded (`MixMonitor(...,b)`), so the three paths do the same work
apart from the distribution:
- **ours**: the 12348 flow on a service number whose menu has one option (so no menu): FastAGI
  coroutine, prompts, `MixMonitor` and `MSet` (the restart-safety variables), enqueue in the Python
  distributor (longest-idle, ring timeout {ring} s, no wrap-up, no auto-pause, no announcements), then (an
  agent being free, the offer made at enqueue) `Dial` straight away: one AGI round trip after entry.
- **app_queue**: `Answer`, the same prompts (`Playback`), `MixMonitor`, then `Queue()` with
  `strategy=leastrecent` (= longest-idle), `ringinuse=no`, `timeout={ring}`, `wrapuptime=0`,
  `autofill=yes` (waiting callers served in parallel, as ours does), `autopause=no`, no announcements,
  static members = the same agents' PJSIP endpoints.
- **plain**: `Answer`, the same prompts, `MixMonitor`, then a dialplan round-robin over the agents that
  skips one with a call (`GROUP_COUNT`) and `Dial(PJSIP/agent,{ring},i)`: the limit.

The extra dialplan, the `[bench-aq]` queue, `timestampevents=yes` (manager.conf) and a microsecond log
`dateformat` (logger.conf) are appended/changed in the *rendered* files of the throw-away data dir after
start, then `dialplan reload`, `queue reload all`, `manager reload`, `logger reload` (benchmark only;
nothing re-renders during the run).

**Latency** (the ratios) = the agent's INVITE, taken as Asterisk's verbose-log line `Called PJSIP/<agent>`
(written by app_dial and app_queue right after the agent channel is created and called; the log stamps
each line in the calling thread, to the microsecond) minus queue entry: for app_queue the log line that
starts `Queue()`, for plain the line of the `NoOp(bench-entry)` just before the round-robin pick, for
ours the distributor's own enqueue time (our bus event, same wall clock). The *AMI clock* column is the
method first suggested (entry event → `DialBegin`, both by AMI `Timestamp`: ours `VarSet` of
`HUIYAN_HL_QUEUED_AT`, which the `MSet` makes one AGI round trip *before* the enqueue, app_queue
`QueueCallerJoin`, plain `Newexten`): it is reported but not used for
the ratios, because the manager stamps an event when its single stasis thread gets to it, so every event
queued between entry and `DialBegin` (many in the plain path's dialplan, few inside `Queue()`) shifts it
by milliseconds.
**CPU per call** = Asterisk (utime+stime of the process, all threads, from /proc) and the controller
(this process's CPU minus the driver thread's own `thread_time`: the controller's event-loop thread and
its database worker threads), before/after each path's run including its drain, divided by the calls.
The controller is attached in all three runs (in app_queue/plain it only reads AMI events). In ours it
also finalises every call's recording into evidence (a job per call: ffprobe, SHA-256, the hash-chain row;
the AAC encode is an ffmpeg child process, not counted), work the peers' recordings do not get. SIPp's own
CPU is not counted."""


def report(results: dict[str, Result], b: Bench | None, args: argparse.Namespace, command: str,
           asterisk: str, idle: tuple[float, float]) -> str:
    when = datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [SECTION, "",
             f"Run {when}, `{command}`, on {machine()}; Asterisk {asterisk}.", ""]
    lines += table(results)
    lines.append("")
    for name, v, tgt in ratios(results):
        lines.append(f"- {name}: **{v:.2f}**{verdict(v, tgt)}")
    for m in ("ours", "plain"):
        r = results.get(m)
        if r and r.breakdown:
            lines += ["", f"Where {m} spends it (per call, ms):", "", "| step | p50 | p95 |", "|---|---:|---:|"]
            for step, vals in r.breakdown.items():
                lines.append(f"| {step} | {ms(pct(vals, 50))} | {ms(pct(vals, 95))} |")
    ours = results.get("ours")
    missed = any(tgt is not None and not v <= tgt for _, v, tgt in ratios(results))
    agi = {k: v for k, v in (ours.breakdown if ours else {}).items() if k.startswith("AGI round trip")}
    if ours is not None and missed and agi:
        decide = pct(ours.breakdown.get("distributor: enqueue → offer", []), 50)
        lines += ["", f"Likely cause (a reading of the breakdown above): the distributor itself decides in "
                      f"{ms(decide)} ms; ours' time goes to the {len(agi)} FastAGI round trips the call flow makes "
                      f"one after another between the offer and `Dial` (their p50s add up to "
                      f"{ms(sum(pct(v, 50) for v in agi.values()))} ms of ours' {ms(pct(ours.lat, 50))} ms"
                      + ("; music on hold is started and stopped again although the offer is already waiting"
                         if any("MUSIC ON" in k for k in agi) else "") + "). The "
                      f"controller serves them on the one event loop that also parses every AMI event "
                      f"({ours.ami_events / max(ours.calls, 1):.0f} per call here), so during a burst of "
                      f"{args.burst} calls each reply waits behind the others' commands and ~"
                      f"{args.burst * ours.ami_events // max(ours.calls, 1)} events. app_queue and the plain Dial "
                      f"decide inside Asterisk's own channel thread, with no round trip."]
    if ours is not None and b is not None:
        lines += ["", f"Ours played \"please wait\" ({b.please_wait_seconds * 1000:.0f} ms, before ringing) to "
                      f"{ours.please_wait} of {ours.calls} callers (it does so only when no agent was offered at "
                      f"enqueue)."]
    extras = []
    for m, r in results.items():
        if r.sipp_failed or r.answered < r.calls or r.double_rung or len(r.lat) < r.calls:
            extras.append(f"{m}: {r.answered}/{r.calls} answered, {len(r.lat)} measured, "
                          f"{r.sipp_failed} SIPp burst(s) with a failed call, {r.double_rung} agent(s) rung "
                          f"while already on a call")
    if extras:
        lines += ["", "Anomalies: " + "; ".join(extras) + "."]
    lines += ["", "AMI events the controller received per call: "
              + ", ".join(f"{m} {r.ami_events / max(r.calls, 1):.0f}" for m, r in results.items()) + "."]
    lines += ["", f"Idle CPU before the runs: Asterisk {idle[0] * 1000:.1f} ms/s, controller "
                  f"{idle[1] * 1000:.1f} ms/s (included in the per-call figures, not subtracted). Each path ran "
                  f"in {max(r.segments for r in results.values())} segment(s), in all "
                  f"{', '.join(f'{m} {r.seconds:.0f} s' for m, r in results.items())}; meanwhile other processes "
                  f"on the machine (not this benchmark's) used "
                  f"{', '.join(f'{r.others_cpu / r.seconds * 100:.0f}%' for r in results.values())} of a core."
                  , ""]
    lines.append(METHOD.format(asterisk=asterisk, agents=args.agents, answer_ms=args.answer_ms, burst=args.burst,
                               interval=args.interval, calls=args.calls, talk=args.talk, warmup=args.warmup,
                               ring=args.ring, rounds=args.rounds))
    return "\n".join(lines) + "\n"


def write_benchmarks(section: str, path: Path) -> None:
    write_section(path, SECTION, section)


# ---- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--calls", type=int, default=200, help="calls per path")
    ap.add_argument("--burst", type=int, default=10, help="calls placed at once")
    ap.add_argument("--interval", type=float, default=2.5, help="seconds between bursts")
    ap.add_argument("--talk", type=float, default=1.0, help="seconds from the agent's answer to the caller's BYE")
    ap.add_argument("--answer-ms", type=int, default=200, help="agent phones answer after this long")
    ap.add_argument("--ring", type=int, default=15, help="ring timeout, seconds (all three paths)")
    ap.add_argument("--warmup", type=int, default=2, help="unmeasured calls per path first")
    ap.add_argument("--rounds", type=int, default=2, help="split each path's calls over rounds run A B C C B A ...")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, one more (unmeasured) run of ours with cProfile on the controller's thread")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir (SIPp logs, Asterisk logs)")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        ap.error(f"--modes: any of {', '.join(MODES)}")
    if args.burst * (math.ceil((args.answer_ms / 1000 + args.talk + 0.3) / args.interval) + 1) > args.agents:
        print("warning: bursts may find every agent busy; latency will then include queueing", file=sys.stderr)
    phase = (args.answer_ms / 1000 + args.talk + 0.3) % args.interval
    if min(phase, args.interval - phase) < 0.3:
        # a burst's hang-ups would land on the next burst's ringing and make the result depend on luck
        print("warning: the hang-ups of one burst coincide with the ringing of the next; change --talk",
              file=sys.stderr)
    argv_shown = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python bench/hotline_load.py", *argv_shown]).strip()

    data = Path(tempfile.mkdtemp(prefix="huiyan-bench-"))
    started: dict[str, Any] = {}
    results: dict[str, Result] = {}
    t_start = time.monotonic()
    try:
        b = setup(args, data, started)
        asterisk = b.run.ctl.install.version if b.run.ctl.install else "?"
        print(f"setup: {time.monotonic() - t_start:.1f} s; {len(b.agents)} agents registered; "
              f"prompts before the agent rings: {b.prompt_seconds:.2f} s", flush=True)
        pid = b.run.ctl.pbx.pid()
        a0, c0 = proc_cpu(pid), controller_cpu()
        time.sleep(5)
        idle = ((proc_cpu(pid) - a0) / 5, (controller_cpu() - c0) / 5)
        warm_up(b, args)
        for i, (m, n) in enumerate(plan(modes, args.calls, args.burst, args.rounds)):
            r = run_mode(b, args, m, n, f"run{i}")
            results[m] = merge(results[m], r) if m in results else r
            print(f"{m:>9}: {len(r.lat)}/{r.calls} measured, p50 {ms(pct(r.lat, 50))} ms, p95 {ms(pct(r.lat, 95))} ms, "
                  f"answered {r.answered}, {r.seconds:.0f} s, other processes {r.others_cpu / r.seconds * 100:.0f}% "
                  f"of a core", flush=True)
        if args.profile:
            profile_ours(b, args)
        if b.rec.no_timestamp:
            print(f"warning: {b.rec.no_timestamp} events without Timestamp were ignored", file=sys.stderr)
        section = report(results, b, args, command, asterisk, idle)
        print()
        print(section)
        if not args.no_write:
            write_benchmarks(section, REPO / "BENCHMARKS.md")
            print("written to BENCHMARKS.md")
        print(f"total {time.monotonic() - t_start:.0f} s")
        return 0
    finally:
        if "agents" in started:
            started["agents"].terminate()
            finish(started["agents"], 10)
        if "meas" in started and "run" in started:
            try:
                started["run"].call(started["meas"].close(), timeout=10)
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

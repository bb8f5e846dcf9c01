"""Benchmark: memory per held waiting hotline caller at run time, against a minimal asyncio server.

Issue 3 asks for "memory per held waiting caller with 2,000 held (target <= 50 KB)". `acd_core.py` measures
the distributor's own share; this measures what the *runtime* holds per waiting caller: the FastAGI
connection and `AgiSession`, the hotline flow's coroutine, its `Waiter`, the distributor's call state and
everything else a waiting caller keeps alive in the controller process.

Run:  .venv/bin/python bench/held_callers.py            (about a minute on 2 cores)
      .venv/bin/python bench/held_callers.py --quick    (200 callers, for a smoke test)
      .venv/bin/python bench/held_callers.py --write    (also writes its subsection of BENCHMARKS.md)

Three kinds of process take part:
- the *measured* process (`--serve huiyan`): the real `FastAgiServer` with the real `hotline` route and a
  real `HotlineService` (`DbHotlineStore` on a throw-away SQLite database made by the project's
  migrations): one service number, a one-option menu, one queue whose agents are all busy or absent;
- the *floor* (`--serve floor`): a minimal asyncio server that reads the `agi_*` header and waits; the
  peer, so the result is a ratio (ours / floor), as everywhere in BENCHMARKS.md;
- this script's own process, which plays Asterisk for every caller (2,000 FastAGI connections: the
  header the dialplan sends, then `200 result=0` to every command) so that its memory is not counted.
The measured processes report over their stdin/stdout; each measurement runs in a fresh process: RSS
without tracemalloc, tracemalloc (1 frame) apart, and a smaller run with 12-frame tracebacks that charges
every live block to the line of huiyan code that caused it (`--explain`; the report's "where it goes").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import linecache
import os
import platform
import re
import resource
import shlex
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"
NUMBER = "12348"  # the service number the callers dial
ROUTE = "hotline"
MARK = "@@held "  # prefix of the measured process's protocol lines (anything else on stdout is ignored)
TARGET_BYTES = 50_000  # the target, 50 KB per held caller
SECTION = "## ACD core"
SUBSECTION = "### Memory per held waiting caller (runtime)"
EXPLAIN_FRAMES = 12  # tracemalloc frames per allocation in the run that says who allocates (slow)


def raise_nofile(needed: int) -> None:
    """2,000 sockets per side and then some: lift the soft open-files limit as far as the hard one allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"open-files limit {soft} < {needed} needed (hard limit {hard}); raise it (ulimit -n)")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


# ======================================================================================================
# The measured processes
# ======================================================================================================


class Huiyan:
    """What the controller runs for the hotline (see huiyan/runtime.py), minus Asterisk, AMI and the API."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp

    async def start(self) -> None:
        from huiyan.agi.server import FastAgiServer
        from huiyan.bus import EventBus
        from huiyan.db import hotline as hdb
        from huiyan.db import make_engine, session_factory, store, upgrade
        from huiyan.hotline.flow import hotline_route
        from huiyan.hotline.service import HotlineService
        from huiyan.hotline.store import DbHotlineStore

        url = f"sqlite:///{self.tmp / 'huiyan.db'}"
        await asyncio.to_thread(upgrade, url)
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        with self.sessions() as s:
            # Every caller waits: agents on a call, paused or absent; join-empty accepts callers; no maximum
            # wait; position announcements every hour (the longest interval allowed), i.e. never in a run.
            q = hdb.create_queue(s, name="held-callers bench", strategy="longest-idle", ring_timeout_s=15,
                                 wrapup_s=0, max_wait_s=None, join_empty="join", autopause_after=0,
                                 announce_every_s=3600)
            hdb.create_menu_option(s, service_number=NUMBER, digit="1", queue_id=q.id, label_zh="法律咨询",
                                   label_en="Legal consultation")
            self.agents: list[str] = []
            for i in range(3):
                u = store.create_user(s, username=f"benchagent{i}", password="bench-password-1", role="agent",
                                      display_name=f"坐席{i}")
                hdb.add_queue_member(s, q.id, u.id)
                self.agents.append(str(u.id))
            s.commit()
            self.queue_id = str(q.id)
        wall_offset = time.time() - time.monotonic()
        self.service = HotlineService("pbx1", DbHotlineStore(self.sessions, wall_offset), EventBus(),
                                      wall_offset=wall_offset)
        await self.service.start()
        self.agi = FastAgiServer({ROUTE: hotline_route(self.service, self.tmp / "recordings")}, HOST, 0,
                                 node_name="pbx1", sounds_dir=self.tmp / "sounds")
        await self.agi.start()
        # Agent 0 takes the first warm-up call (see `connect`) and stays on it; agent 1 is paused; agent 2
        # never logs in.
        self.service.login(self.agents[0])
        self.service.login(self.agents[1])
        self.service.pause(self.agents[1], "bench: away")

    @property
    def port(self) -> int:
        return int(self.agi.port)

    def connect(self) -> dict[str, Any]:
        """Agent 0 answers the call it was offered (what AMI DialEnd does); the caller's Dial stays open."""
        for w in list(self.service.waiters.values()):
            if w.offer is not None and not w.answered.is_set():
                self.service.answered(w.call_id, w.offer.agent_ids[0])
        return {"agent0": self.service.acd.agent(self.agents[0]).state.value}

    def _db_waiting(self) -> int:
        from sqlalchemy import func, select

        from huiyan.db.models import HotlineCall

        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(HotlineCall)
                                .where(HotlineCall.outcome == "waiting")) or 0)

    def status(self) -> dict[str, Any]:
        positions = sorted(p for p in (self.service.position(c) for c in self.service.waiters) if p)
        stats = self.service.acd.stats(self.service.clock()).queues[self.queue_id]
        return {
            "held": len(positions),  # waiting in the distributor, with a place in line
            "positions_exact": positions == list(range(1, len(positions) + 1)),
            "waiters": len(self.service.waiters),  # also the caller on a call with agent 0
            "acd_waiting": stats.waiting,
            "sessions": self.agi.active_sessions,
            "agents": [self.service.acd.agent(a).state.value for a in self.agents],
        }

    async def settle(self) -> dict[str, Any]:
        """Wait until the service has written its call rows (batched, in a worker thread), then check them.
        The check runs on this thread, so the benchmark itself starts no worker thread."""
        deadline = time.monotonic() + 30
        db = -1
        while time.monotonic() < deadline:
            await asyncio.sleep(0.3)
            db = self._db_waiting()
            if db == len(self.service.waiters) - 1:  # every waiting caller's row; the one on a call is not
                await asyncio.sleep(0.3)  # the writer's thread returns after its commit
                break
        return {"db_waiting": db}

    async def stop(self) -> None:
        await asyncio.wait_for(self.agi.stop(), 30)
        await self.service.stop()
        self.engine.dispose()


class Floor:
    """The least a FastAGI server can hold per call: a socket, asyncio's stream pair and a task, and the
    header it read (who is calling). It sends nothing and waits until Asterisk hangs up or closes."""

    def __init__(self, tmp: Path) -> None:
        self.held = 0
        self._calls: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, HOST, 0, backlog=1024)

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        task = asyncio.current_task()
        assert task is not None
        self._calls[writer] = task
        try:
            while line := (await reader.readline()).rstrip(b"\r\n"):
                key, _, value = line.decode("utf-8", "replace").partition(":")
                headers[key] = value.strip()
            self.held += 1
            try:
                while await reader.readline():  # a HANGUP line, or EOF
                    break
            finally:
                self.held -= 1
        except (ConnectionError, OSError):
            pass
        finally:
            self._calls.pop(writer, None)
            writer.close()

    def connect(self) -> dict[str, Any]:
        return {}

    def status(self) -> dict[str, Any]:
        return {"held": self.held, "positions_exact": True}

    async def settle(self) -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {}

    async def stop(self) -> None:
        self.server.close()
        calls = list(self._calls.items())
        for writer, _ in calls:  # each call then sees EOF and ends by itself
            writer.close()
        await asyncio.gather(*(t for _, t in calls), return_exceptions=True)


def _out(**msg: Any) -> None:
    sys.stdout.write(MARK + json.dumps(msg) + "\n")
    sys.stdout.flush()


def _where(filename: str) -> str:
    """A short name for a source file: relative to the repo, site-packages or the standard library."""
    for base in (str(REPO) + "/", "site-packages/", f"python{sys.version_info[0]}.{sys.version_info[1]}/"):
        i = filename.find(base)
        if i >= 0 and (base != str(REPO) + "/" or "site-packages" not in filename):
            return filename[i + len(base):]
    return filename


def _allocations(frames: int) -> dict[str, Any]:
    """What tracemalloc saw since it started: the total, the top allocating lines and files, and (with more
    than one frame per trace) the innermost line of huiyan code on each allocation's call chain."""
    out: dict[str, Any] = {"traced": tracemalloc.get_traced_memory()[0]}
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    tracemalloc.stop()
    for key, group in (("top", "lineno"), ("by_file", "filename")):
        out[key] = [{"where": _where(st.traceback[0].filename) + (f":{st.traceback[0].lineno}" if group == "lineno"
                                                                  else ""), "size": st.size, "count": st.count}
                    for st in snap.statistics(group)[:40]]
    if frames > 1:
        owners: dict[tuple[str, int], list[int]] = {}
        for t in snap.traces:
            inner = next((f for f in reversed(t.traceback) if f"{os.sep}huiyan{os.sep}" in f.filename), None)
            acc = owners.setdefault(("", 0) if inner is None else (inner.filename, inner.lineno), [0, 0])
            acc[0] += t.size
            acc[1] += 1
        out["by_owner"] = [
            {"where": f"{_where(f)}:{n}" if f else "", "code": linecache.getline(f, n).strip() if f else "",
             "size": size, "count": count}
            for (f, n), (size, count) in sorted(owners.items(), key=lambda kv: -kv[1][0])[:40]
        ]
    return out


async def serve(kind: str, trace_frames: int) -> None:
    raise_nofile(8192)
    with tempfile.TemporaryDirectory(prefix="held-callers-") as tmp:
        holder: Huiyan | Floor = Huiyan(Path(tmp)) if kind == "huiyan" else Floor(Path(tmp))
        await holder.start()
        loop = asyncio.get_running_loop()
        commands = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
        _out(ready=True, port=holder.port, pid=os.getpid())
        base: dict[str, Any] = {}
        while line := (await commands.readline()).decode().strip():
            if line == "status":
                _out(**holder.status())
            elif line == "connect":
                _out(**holder.connect())
            elif line in ("baseline", "measure"):
                checked = await holder.settle()
                gc.collect()
                now = {"rss_kib": rss_kib(), "objects": len(gc.get_objects()), **holder.status(), **checked}
                if line == "baseline":
                    base = now
                    if trace_frames:
                        tracemalloc.start(trace_frames)  # after imports, service start and the warm-up calls
                    now["traced"] = 0
                else:
                    if trace_frames:
                        now.update(_allocations(trace_frames))
                    else:
                        now["traced"] = 0
                    now["base"] = base
                _out(**now)
            elif line == "quit":
                break
        await holder.stop()
    _out(stopped=True)


# ======================================================================================================
# The client: plays Asterisk for every caller
# ======================================================================================================


def hotline_header(port: int, n: int) -> bytes:
    """What Asterisk sends for the service number's FastAGI route, as rendered in huiyan/dialplan:
    `AGI(${HUIYAN_AGI}/${HUIYAN_ROUTE}?number=${EXTEN}&class=${HUIYAN_CLASS}&tries=${HUIYAN_TRIES})` in the
    `huiyan-run` context, first try, from an anonymous SIP caller (a guest: the `anonymous` endpoint)."""
    from huiyan.agi.testing import default_headers

    script = f"{ROUTE}?number={NUMBER}&class=guest&tries=0"
    h = default_headers(HOST, port, script)
    uniqueid = f"1764400000.{n}"
    h.update({
        "agi_channel": f"PJSIP/anonymous-{n:08x}", "agi_language": "zh", "agi_uniqueid": uniqueid,
        "agi_callerid": f"139{n:08d}", "agi_calleridname": "unknown", "agi_dnid": NUMBER,
        "agi_context": "huiyan-run", "agi_extension": NUMBER, "agi_priority": "3", "agi_linkedid": uniqueid,
        "agi_threadid": str(140000000000000 + n),
    })  # fmt: skip
    return ("".join(f"{k}: {v}\n" for k, v in h.items()) + "\n").encode()


class Caller:
    """One call as Asterisk plays it: the header, `200 result=0` to every command (a digit where the flow
    reads one), no answer to `EXEC Dial` (an agent's call goes on), 511 after the caller hangs up."""

    def __init__(self, port: int, n: int) -> None:
        self.port = port
        self.n = n
        self.commands: list[str] = []
        self.holding = asyncio.Event()  # SET MUSIC ON: the flow now only waits
        self.dialling = asyncio.Event()  # EXEC Dial: offered to an agent
        self.sent = asyncio.Event()  # header sent
        self.closed = asyncio.Event()
        self.hungup = False
        self.writer: asyncio.StreamWriter | None = None
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            reader, self.writer = await asyncio.open_connection(HOST, self.port)
            self.writer.write(hotline_header(self.port, self.n))
            await self.writer.drain()
            self.sent.set()
            while raw := await reader.readline():
                cmd = raw.decode().strip()
                self.commands.append(cmd)
                if self.hungup:
                    answer = "511 Command Not Permitted on a dead channel or intercept routine"
                elif cmd.upper().startswith("EXEC DIAL"):
                    self.dialling.set()
                    continue  # Dial answers when the call ends: not during the run
                elif cmd.upper().startswith("GET DATA"):
                    answer = "200 result=1"  # menu digit 1 (a one-option menu is not asked)
                else:
                    answer = "200 result=0"
                if cmd.upper().startswith("SET MUSIC ON"):
                    self.holding.set()
                self.writer.write(answer.encode() + b"\n")
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()

    def hangup(self) -> None:
        self.hungup = True
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(b"HANGUP\n")

    def close(self) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.close()
        self.task.cancel()


class Measured:
    """A measured process, driven over its stdin/stdout."""

    def __init__(self, kind: str, trace_frames: int) -> None:
        self.kind = kind
        self.trace_frames = trace_frames

    async def start(self) -> None:
        args = [sys.executable, str(Path(__file__).resolve()), "--serve", self.kind, "--frames",
                str(self.trace_frames)]
        self.proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.PIPE,
                                                         stdout=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024)
        ready = await self._read(120)
        self.port = int(ready["port"])
        self.pid = int(ready["pid"])

    async def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            try:
                raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            except asyncio.TimeoutError:
                raise SystemExit(f"the measured process ({self.kind}) did not answer in {timeout:.0f} s") from None
            if not raw:
                raise SystemExit(f"the measured process ({self.kind}) ended (exit {await self.proc.wait()})")
            line = raw.decode()
            if line.startswith(MARK):
                return dict(json.loads(line[len(MARK):]))

    async def ask(self, command: str, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self._read(timeout)

    async def wait_status(self, ok: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            st = await self.ask("status")
            if ok(st):
                return st
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.kind}: {what} not reached in {timeout:.0f} s; last status {st}")
            await asyncio.sleep(0.1)

    async def quit(self) -> None:
        try:
            await self.ask("quit", 60)
        except (SystemExit, ConnectionError):
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except asyncio.TimeoutError:
            self.proc.kill()  # our own child, by its handle
            await self.proc.wait()


def _short(command: str) -> str:
    """`STREAM FILE "/tmp/x/sounds/zh/welcome" "1"` -> `STREAM FILE welcome`, `EXEC MSet "..."` -> `EXEC MSet`."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    head = " ".join(words[:2]).upper()
    if head in ("STREAM FILE", "GET DATA"):
        return f"{head} {Path(words[2]).name if len(words) > 2 else ''}".rstrip()
    if head in ("GET VARIABLE", "SET VARIABLE"):
        return " ".join(words[:3])
    if head == "SET MUSIC":
        return " ".join(words[:3]).upper()
    return " ".join(words[:2])


async def _all(events: list[asyncio.Event], what: str, timeout: float = 60) -> None:
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)
    except asyncio.TimeoutError:
        done = sum(e.is_set() for e in events)
        raise SystemExit(f"only {done} of {len(events)} callers {what} within {timeout:.0f} s") from None


async def run_one(kind: str, *, trace_frames: int, held: int, batch: int, warmup: int,
                  log: Callable[[str], None]) -> dict[str, Any]:
    """Start a measured process, warm it up, measure at 0 held, ramp to `held` waiting callers in batches,
    check that they all wait, measure again."""
    m = Measured(kind, trace_frames)
    await m.start()
    callers: list[Caller] = []
    n = 0

    def new(count: int) -> list[Caller]:
        nonlocal n
        out = [Caller(m.port, n + i) for i in range(count)]
        n += count
        callers.extend(out)
        return out

    def signal(c: Caller) -> asyncio.Event:  # what says "this caller now just waits", client side
        return c.holding if kind == "huiyan" else c.sent

    try:
        busy = 0
        if kind == "huiyan":
            # The first caller is offered to agent 0 and answered: the agent stays on that call.
            (first,) = new(1)
            await _all([first.dialling], "were offered to agent 0")
            got = await m.ask("connect")
            if got.get("agent0") != "on_call":
                raise SystemExit(f"agent 0 is not on a call: {got}")
            busy = 1
        # Warm-up: callers who wait, then hang up (first-call code paths, caches, worker threads, pool).
        warm = new(warmup)
        await _all([signal(c) for c in warm], "reached the wait during the warm-up")
        await m.wait_status(lambda st: st["held"] == warmup, f"{warmup} warm-up callers waiting")
        for c in warm:
            c.hangup() if kind == "huiyan" else c.close()
        await m.wait_status(lambda st: st["held"] == 0 and st.get("sessions", busy) == busy,
                            "the warm-up callers gone")
        base = await m.ask("baseline")
        log(f"{kind}: baseline RSS {base['rss_kib'] / 1024:.1f} MiB, {base['objects']:,} gc objects"
            f"{', tracemalloc on' if trace_frames else ''}")
        t0 = time.monotonic()
        while n - busy - warmup < held:
            got = new(min(batch, held - (n - busy - warmup)))
            await _all([signal(c) for c in got], "reached the wait")
            target = n - busy - warmup
            await m.wait_status(lambda st: st["held"] == target, f"{target} callers waiting")
        ramp = time.monotonic() - t0
        res = await m.ask("measure", 120)
        live = [c for c in callers[busy + warmup:] if not c.closed.is_set()]
        if res["held"] != held or not res["positions_exact"] or len(live) != held:
            raise SystemExit(f"{kind}: expected {held} waiting callers; got {res['held']} in the server"
                             f" (positions 1..n: {res['positions_exact']}), {len(live)} connections open")
        if kind == "huiyan" and not (res["acd_waiting"] == held and res["sessions"] == held + busy
                                     and res["db_waiting"] == held):
            raise SystemExit(f"huiyan: the distributor, the FastAGI server and the database disagree: {res}")
        cmds = sorted({len(c.commands) for c in live})
        res.update(kind=kind, ramp_s=ramp, commands_per_caller=cmds,
                   first_commands=[_short(c) for c in live[0].commands])
        return res
    finally:
        await m.quit()
        for c in callers:
            c.close()
        await asyncio.gather(*(c.task for c in callers), return_exceptions=True)


# ======================================================================================================
# Report
# ======================================================================================================


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {system}"


def per_caller(res: dict[str, Any], held: int) -> dict[str, float]:
    b = res["base"]
    return {
        "traced": (res["traced"] - b["traced"]) / held,
        "rss": (res["rss_kib"] - b["rss_kib"]) * 1024 / held,
        "objects": (res["objects"] - b["objects"]) / held,
    }


def report(r: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    held = args.held
    ours = {"traced": per_caller(r["huiyan-trace"], held)["traced"], **{
        k: v for k, v in per_caller(r["huiyan-rss"], held).items() if k != "traced"}}
    floor = {"traced": per_caller(r["floor-trace"], held)["traced"], **{
        k: v for k, v in per_caller(r["floor-rss"], held).items() if k != "traced"}}
    kib = 1024
    worst = max(ours["traced"], ours["rss"])
    met = "met" if worst <= TARGET_BYTES else "MISSED"
    cmds = r["huiyan-rss"]["commands_per_caller"]
    lines = [
        SUBSECTION,
        "",
        f"`bench/held_callers.py`, {datetime.date.today().isoformat()}; {machine()}.",
        "Reproduce: `.venv/bin/python bench/held_callers.py --write` (about a minute).",
        "",
        f"{held:,} hotline callers held waiting by the real runtime (FastAGI server, hotline flow,"
        " `HotlineService` with its database store) against the floor: a minimal asyncio server holding the"
        " same connections. Per held caller:",
        "",
        "| process | tracemalloc (KiB) | RSS (KiB) | gc-tracked objects |",
        "|---|---:|---:|---:|",
        f"| huiyan: FastAGI session + hotline flow + `HotlineService` | {ours['traced'] / kib:.1f}"
        f" | {ours['rss'] / kib:.1f} | {ours['objects']:.0f} |",
        f"| floor: asyncio server that reads the header and waits | {floor['traced'] / kib:.1f}"
        f" | {floor['rss'] / kib:.1f} | {floor['objects']:.0f} |",
        f"| ratio huiyan / floor | {ours['traced'] / floor['traced']:.1f}x | {ours['rss'] / floor['rss']:.1f}x"
        f" | {ours['objects'] / floor['objects']:.1f}x |",
        "",
        f"Target ≤ 50 KB (48.8 KiB) per held caller: **{met}** ({worst / kib:.1f} KiB, the larger of the two"
        " measures). Kernel socket memory is in neither process's figures (the same for both).",
        "",
    ]
    ex = r.get("huiyan-explain")
    if ex is not None:
        n = ex["held_n"]
        lines += [
            f"Where it goes: a separate run of {n:,} callers with {EXPLAIN_FRAMES}-frame tracebacks"
            f" ({per_caller(ex, n)['traced'] / kib:.1f} KiB per caller there), each live block charged to the"
            " innermost line of huiyan code on the call chain that allocated it, largest first (line numbers of"
            " the code as run):",
            "",
            "| huiyan line | code | bytes/caller | blocks/caller |",
            "|---|---|---:|---:|",
        ]
        for t in ex["by_owner"][: args.top]:
            code = t["code"] if len(t["code"]) <= 64 else t["code"][:63] + "…"
            code = "`" + code.replace("|", "\\|") + "`" if t["where"] else (
                "none: asyncio accepting and reading the connection (socket, transport, stream pair)")
            lines.append(f"| `{t['where'] or '-'}` | {code} | {t['size'] / n:,.0f} | {t['count'] / n:.1f} |")
        lines.append("")
    lines += [
        "By file that allocated (the main run): " + ", ".join(
            f"`{s['where']}` {s['size'] / held / kib:.1f} KiB" for s in r["huiyan-trace"]["by_file"][:10]) + ".",
        "",
        "**Method.** Each figure comes from its own fresh measured process, started by the script, which"
        " itself plays Asterisk for every caller (so its own memory is not counted): it opens one FastAGI"
        " connection per caller and sends the `agi_*` header the rendered dialplan produces"
        f" (`agi_network_script: hotline?number={NUMBER}&class=guest&tries=0`, context `huiyan-run`, an"
        " `anonymous` PJSIP channel, language zh), answers every command `200 result=0` and then stays"
        f" connected. Each caller got {'/'.join(map(str, cmds))} commands"
        f" ({', '.join(r['huiyan-rss']['first_commands'])}: a one-option menu is not asked) and then only"
        " waits."
        " The huiyan process runs the real `FastAgiServer` with the real `hotline` route and a real"
        " `HotlineService` + `DbHotlineStore` on a throw-away SQLite database made by the project's"
        " migrations: one service number, a one-option menu, one longest-idle queue, join-empty = join,"
        " no maximum wait, position announcements every 3,600 s (none during a run); of its three agents one"
        " is on a call (the first caller, answered; its Dial stays open), one paused, one never logged in, so"
        f" every caller waits. Before measuring, {args.warmup} warm-up callers wait and hang up (first-call"
        " code paths, caches, worker threads). Then the baseline (0 held, after `gc.collect()`), then"
        f" {held:,} callers in batches of {args.batch}, each batch waited for (client side: every caller"
        " heard `SET MUSIC ON`; server side: the count of callers waiting), and before the second"
        " measurement the process checks that all are waiting: every one with a place in line (positions"
        " exactly 1..n from the distributor), the distributor's waiting count, the FastAGI server's active"
        " sessions and the `waiting` call rows in the database all agree. *tracemalloc* = bytes of Python"
        " allocations made after the baseline and still alive at the end (tracing started at the baseline,"
        " after imports, service start and warm-up), divided by the callers; *RSS* = the change of VmRSS"
        " (/proc/self/status) in a separate run without tracemalloc (its own bookkeeping would inflate RSS),"
        " divided by the callers: it adds what tracemalloc does not see (C allocations such as SQLite's page"
        " cache for the new rows, allocator slack). The floor runs the same way: `asyncio.start_server`,"
        " reads the header into a dict, then awaits the next line (a socket, the stream pair and one task"
        " per call). Logging stays at WARNING (nothing is logged per caller).",
    ]
    return "\n".join(lines) + "\n"


def write_section(subsection: str, path: Path) -> None:
    """Replace only our subsection of the ACD core section (up to the next ### or ## heading) or add it at
    the end of that section; the section is created if missing."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M).search(text)
    if section is None:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n" + subsection
    else:
        body = section.group(0)
        sub = re.compile(rf"^{re.escape(SUBSECTION)}\n.*?(?=^### |\Z)", re.S | re.M)
        if sub.search(body):
            body = sub.sub(lambda _: subsection.rstrip("\n") + "\n\n", body, count=1)
        else:
            body = body.rstrip("\n") + "\n\n" + subsection.rstrip("\n") + "\n\n"
        text = text[: section.start()] + body + text[section.end():]
    path.write_text(text.rstrip("\n") + "\n")


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    def log(msg: str) -> None:
        print(msg, flush=True)

    runs = [("floor-rss", "floor", 0, args.held), ("huiyan-rss", "huiyan", 0, args.held),
            ("floor-trace", "floor", args.frames, args.held), ("huiyan-trace", "huiyan", args.frames, args.held)]
    if args.explain:
        runs.append(("huiyan-explain", "huiyan", EXPLAIN_FRAMES, args.explain))
    results: dict[str, dict[str, Any]] = {}
    for key, kind, frames, held in runs:
        batch = min(args.batch, held)
        res = await run_one(kind, trace_frames=frames, held=held, batch=batch, warmup=args.warmup, log=log)
        res["held_n"] = held
        results[key] = res
        pc = per_caller(res, held)
        shown = f"tracemalloc {pc['traced'] / 1024:.2f} KiB" if frames else f"RSS {pc['rss'] / 1024:.2f} KiB"
        log(f"{key:14s} {held:,} held in {res['ramp_s']:.1f} s: {shown} per caller,"
            f" {pc['objects']:.0f} gc objects per caller")
        if key == "huiyan-rss":
            log(f"  each caller's commands: {', '.join(res['first_commands'])}")
        if res.get("by_owner"):
            log("  by the innermost line of huiyan code on the allocating call chain (per caller):")
        for t in res.get("by_owner", [])[:25]:
            log(f"  {t['size'] / held:8,.0f} B {t['count'] / held:5.1f} blocks  {t['where'] or '(none)':34s}"
                f" {t['code'][:70]}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--held", type=int, default=2000, help="waiting callers to hold")
    ap.add_argument("--batch", type=int, default=200, help="callers connected at once while ramping up")
    ap.add_argument("--warmup", type=int, default=100, help="callers that wait and hang up before the baseline")
    ap.add_argument("--frames", type=int, default=1,
                    help="tracemalloc frames per allocation; above 1 also prints who allocates (slow: use a"
                         " smaller --held, e.g. --held 400 --frames 12)")
    ap.add_argument("--top", type=int, default=12, help="allocation sites listed in the report")
    ap.add_argument("--explain", type=int, default=200,
                    help="callers in an extra run that charges each allocation to a line of huiyan code (0: skip)")
    ap.add_argument("--quick", action="store_true", help="200 callers, for a smoke test")
    ap.add_argument("--write", action="store_true", help="also write the subsection to BENCHMARKS.md")
    ap.add_argument("--serve", choices=("huiyan", "floor"), help=argparse.SUPPRESS)  # a measured process
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.frames))
        return
    if args.frames < 1:
        raise SystemExit("--frames must be at least 1")
    if args.quick:
        args.held, args.batch, args.warmup, args.explain = 200, 50, 20, 50
    raise_nofile(args.held + args.warmup + 1024)
    print(f"# held waiting callers, {datetime.date.today().isoformat()}, {machine()}")
    t0 = time.monotonic()
    results = asyncio.run(main_async(args))
    text = report(results, args)
    print()
    print(text)
    print(f"# {time.monotonic() - t0:.0f} s in all")
    if args.write:
        if args.quick:
            raise SystemExit("not writing --quick results")
        write_section(text, REPO / "BENCHMARKS.md")
        print("written to BENCHMARKS.md")


if __name__ == "__main__":
    main()

"""The media tap (视频旁路采集): video of recorded calls and rooms, captured off the wire on the PBX host.

Asterisk records no video anywhere, but it relays every party's RTP (`direct_media=no`), so what each endpoint
*sends* arrives at one of Asterisk's own RTP ports. For each recorded session huiyan runs `tcpdump` with a
filter on the video ports of the session's legs, and writes a manifest beside the audio capture:

    <stem>.wav          the audio (MixMonitor / ConfBridge), as before
    <stem>.tap.json     the manifest: the legs (channel, Asterisk-side video port, joined/left), the capture
                        segments, the audio's start time (to line the video up with it), errors
    <stem>.tap<N>.pcap  capture segments: a new one (with a new filter) each time the set of legs changes

At finalisation `video.py` turns the segments into one H.264 stream per leg and the pipeline muxes them with
the audio into the MP4. Which legs: the PJSIP channels in the session's bridge, followed as it changes
(`BridgeEnter`/`BridgeLeave`): for a hotline call the caller's bridge (so the agent, a transfer target, a
third party invited), for a room the conference's bridge. A leg's port comes from `CHANNEL(rtp,src,video)`
read with AMI `Getvar` when it joins (Asterisk 22 answers `127.0.0.1:56950`; `CHANNEL(rtp,secure,video)` is 1
for an SRTP leg, which a tap cannot decode on its way in). An SRTP leg's video is still captured in a *two-party*
session whose other leg is plain RTP: Asterisk decrypts it and relays it to that leg in the clear, so what leaves
Asterisk's video port of the plain leg for its endpoint is the SRTP party's picture (a `TapRelay`). In rooms
(more than two legs) and between two SRTP legs it is listed, not captured.

Blocking work is small (a manifest write); tcpdump runs as a child that dies with the controller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from huiyan.pbx.events import AmiEvent

log = logging.getLogger(__name__)

MANIFEST_SUFFIX = ".tap.json"
START_TIMEOUT_S = 10.0  # tcpdump must say "listening on" within this
LEG_WINDOW_S = 2.0  # packets this long before a leg joined / after it left still count as its own


# ---- the manifest (pure) -------------------------------------------------------------------------------------

@dataclass
class TapLeg:
    id: str  # the channel's uniqueid
    channel: str
    number: str = ""
    name: str = ""
    port: int = 0  # Asterisk's local video RTP port for this leg; 0: no video stream, or not captured
    remote: str = ""  # where Asterisk sends this leg's video (the endpoint, as Asterisk sees it)
    joined: float = 0.0
    left: float | None = None
    note: str = ""  # why a leg is not captured (no video, SRTP)
    secure: bool = False  # SRTP (a browser's DTLS-SRTP, or SDES): its own packets cannot be read

    @property
    def captured(self) -> bool:
        return self.port > 0 and not self.note


@dataclass
class TapRelay:
    """An SRTP party's video where Asterisk relays it in the clear: in a two-party session whose other leg is
    plain RTP, the packets Asterisk sends from that leg's video port (`sport`) to its endpoint (`dst`) carry
    the SRTP party's picture. Active from `started` to `stopped` (a third leg joined, one left, the end)."""

    leg: str  # the SRTP party's uniqueid: whose video this is
    via: str  # the plain leg's uniqueid: to whom Asterisk relays it
    channel: str  # the plain leg's channel, for the record ("relayed by Asterisk to <channel>")
    sport: int  # Asterisk's video port of the plain leg: the relayed packets leave from it
    dst: str  # "host:port" of the plain leg's endpoint (CHANNEL(rtp,dest,video)): where they go
    started: float
    stopped: float | None = None

    @property
    def spec(self) -> str:
        """`40010>10.0.0.9:7002`: what a segment's filter takes (and the manifest shows)."""
        return f"{self.sport}>{self.dst}"


@dataclass
class TapSegment:
    file: str  # a name in the manifest's directory
    ports: list[int]
    started: float
    stopped: float | None = None
    dropped: int | None = None  # packets the kernel dropped (tcpdump's own count), when known
    relays: list[str] = field(default_factory=list)  # TapRelay.spec of the relays this segment captures


@dataclass
class TapManifest:
    session: str  # "hotline:<call id>" or "room:<recording path>"
    audio: str  # the audio capture's file name (same directory)
    anchor: float  # wall-clock time of the audio's first sample: video frames are placed against it
    owner: str = ""  # host:pid of the controller that captures
    legs: list[TapLeg] = field(default_factory=list)
    segments: list[TapSegment] = field(default_factory=list)
    relays: list[TapRelay] = field(default_factory=list)
    closed: bool = False
    closed_at: float | None = None
    errors: list[str] = field(default_factory=list)

    def leg(self, uid: str) -> TapLeg | None:
        return next((g for g in self.legs if g.id == uid and g.left is None), None)

    def ports(self) -> list[int]:
        """The video ports to capture now: legs present and captured."""
        return sorted({g.port for g in self.legs if g.captured and g.left is None})

    def relay_wanted(self) -> tuple[TapLeg, TapLeg] | None:
        """(SRTP leg, plain leg) when the session is two parties, one SRTP with video and the other plain RTP
        with video and a known address: only then is everything Asterisk sends to the plain leg the SRTP
        party's picture. A room's third leg (or a follow_talker room's switching source) breaks that."""
        present = [g for g in self.legs if g.left is None]
        if len(present) != 2:
            return None
        secure = [g for g in present if g.secure and g.port > 0]
        plain = [g for g in present if g.captured and not g.secure and parse_addr(g.remote) is not None]
        if len(secure) != 1 or len(plain) != 1:
            return None
        return secure[0], plain[0]

    def relays_now(self) -> list[TapRelay]:
        return [r for r in self.relays if r.stopped is None]

    def relayed(self, uid: str) -> list[TapRelay]:
        """The relays that carried leg `uid`'s video."""
        return [r for r in self.relays if r.leg == uid]

    def set_relays(self, now: float) -> bool:
        """Start or stop the relay capture to match the legs present; returns whether anything changed."""
        want = self.relay_wanted()
        changed = False
        for r in self.relays_now():
            if want is None or (r.leg, r.via) != (want[0].id, want[1].id):
                r.stopped, changed = now, True
        if want is not None and not any((r.leg, r.via) == (want[0].id, want[1].id) for r in self.relays_now()):
            srtp, plain = want
            self.relays.append(TapRelay(leg=srtp.id, via=plain.id, channel=plain.channel, sport=plain.port,
                                        dst=plain.remote, started=now))
            changed = True
        return changed

    def not_captured(self) -> list[TapLeg]:
        """Legs whose video is in no capture: not their own packets, and not relayed either."""
        return [g for g in self.legs if not g.captured and not self.relayed(g.id)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TapManifest:
        d = json.loads(text)
        d["legs"] = [TapLeg(**g) for g in d.get("legs", [])]
        d["segments"] = [TapSegment(**s) for s in d.get("segments", [])]
        d["relays"] = [TapRelay(**r) for r in d.get("relays", [])]
        return cls(**d)

    @classmethod
    def load(cls, path: Path) -> TapManifest:
        return cls.from_json(path.read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)


def manifest_path(audio: Path) -> Path:
    """The manifest of an audio capture (`…/x.wav` -> `…/x.tap.json`)."""
    return audio.with_name(audio.stem + MANIFEST_SUFFIX)


def segment_path(audio: Path, n: int) -> Path:
    return audio.with_name(f"{audio.stem}.tap{n}.pcap")


def companions(audio: Path) -> list[Path]:
    """The tap's files of an audio capture (manifest, segments, per-leg video made at finalisation)."""
    d = audio.parent
    if not d.is_dir():
        return []
    stem = audio.stem

    def ours(name: str) -> bool:
        rest = name[len(stem):] if name.startswith(stem + ".") else ""
        return rest.startswith(".tap") or (rest.startswith(".leg") and rest.endswith(".ivf"))

    return sorted(p for p in d.iterdir() if ours(p.name))


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool:
    """False only when the capturing controller is known dead (same host, pid gone)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def capture_filter(ports: list[int], relays: list[str] | tuple[str, ...] = ()) -> str:
    """BPF: UDP arriving at these (Asterisk's) ports. `inbound` leaves out what Asterisk sends: an endpoint's
    port can carry the same number as one of ours. And each relay (`sport>host:port`, TapRelay.spec): what
    Asterisk sends from its port `sport` to that endpoint, with no direction - on `-i any` a packet to a remote
    host is seen going out, one over loopback once, coming in (libpcap drops the loopback's outgoing copy)."""
    inbound = "inbound and udp and (" + " or ".join(f"dst port {p}" for p in ports) + ")" if ports else ""
    out = []
    for spec in relays:
        sport, _, dst = spec.partition(">")
        host, port = parse_addr(dst) or ("", 0)
        if not sport.isdigit() or not host:
            raise ValueError(f"relay {spec!r} is not like 40010>10.0.0.9:7002")
        out.append(f"udp and src port {int(sport)} and dst host {host} and dst port {port}")
    if not out:
        return inbound
    return " or ".join(f"({f})" for f in ([inbound] if inbound else []) + out)


def parse_addr(value: str) -> tuple[str, int] | None:
    """`127.0.0.1:56950` / `[::1]:56950` (what CHANNEL(rtp,src|dest,…) answers) -> (host, port)."""
    value = (value or "").strip()
    if not value or value == "(null)" or ":" not in value:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) == 0:
        return None
    return host.strip("[]"), int(port)


# ---- one tcpdump ---------------------------------------------------------------------------------------------

class TapError(Exception):
    """tcpdump could not start (missing, no CAP_NET_RAW, bad interface): the message says which."""


class Capture:
    """One tcpdump writing one segment. `-U` writes every packet as it comes, so a file cut by a crash is
    whole up to its last packet; the process gets SIGKILL if the controller dies (PR_SET_PDEATHSIG)."""

    def __init__(self, binary: str, interface: str, path: Path, ports: list[int],
                 relays: list[str] | None = None) -> None:
        self.binary, self.interface, self.path, self.ports = binary, interface, path, ports
        self.relays = relays or []
        self.proc: asyncio.subprocess.Process | None = None
        self.stats: dict[str, int] = {}

    def argv(self) -> list[str]:
        args = [self.binary, "-i", self.interface, "-n", "-U", "-w", str(self.path)]
        if os.geteuid() == 0:
            args += ["-Z", "root"]  # keep the files ours (tcpdump would otherwise switch to its own user)
        return [*args, capture_filter(self.ports, self.relays)]

    async def start(self, timeout: float = START_TIMEOUT_S) -> None:
        from huiyan.recordings.media import _die_with_parent

        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise TapError(f"{self.binary}: {exc}") from exc
        assert self.proc.stderr is not None
        said: list[str] = []
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self.proc.stderr.readline()).decode(errors="replace")
                    if not line:
                        break  # exited
                    said.append(line.strip())
                    if "listening on" in line:  # "tcpdump: listening on any, link-type …"
                        return
        except TimeoutError:
            pass
        if self.proc.returncode is None:
            self.proc.terminate()
        await self._end()
        raise TapError(f"tcpdump did not start capturing: {' / '.join(said)[-400:] or 'no output'}")

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # tcpdump flushes, writes its counts and exits
        await self._end()

    async def _end(self) -> None:
        assert self.proc is not None
        try:
            async with asyncio.timeout(10):
                rest = await self.proc.stderr.read() if self.proc.stderr else b""
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            rest = b""
        for line in rest.decode(errors="replace").splitlines():
            words = line.split()
            if len(words) >= 3 and words[0].isdigit() and "dropped by kernel" in line:
                self.stats["dropped"] = int(words[0])
            elif len(words) >= 3 and words[0].isdigit() and "captured" in line:
                self.stats["captured"] = int(words[0])


# ---- one recorded session ------------------------------------------------------------------------------------

class SessionTap:
    """The capture of one session: its manifest, and the tcpdump of its current legs. `update` takes the
    legs present now; when the set of ports changes a new segment starts (the new tcpdump is capturing
    before the old one stops, so nothing falls between; the overlap's copies are dropped at finalisation)."""

    def __init__(self, key: str, audio: Path, anchor: float, *, binary: str = "tcpdump", interface: str = "any",
                 enabled: bool = True) -> None:
        self.key = key
        self.audio = audio
        self.path = manifest_path(audio)
        self.binary, self.interface, self.enabled = binary, interface, enabled
        self.manifest = TapManifest(session=key, audio=audio.name, anchor=anchor, owner=this_owner())
        self.capture: Capture | None = None
        self.lock = asyncio.Lock()
        self.failed = False
        self._saved = False

    async def save(self) -> None:
        await asyncio.to_thread(self.manifest.save, self.path)
        self._saved = True

    async def update(self, present: dict[str, TapLeg], now: float) -> bool:
        """Legs present now (uniqueid -> leg, already resolved); returns whether the capture changed."""
        m = self.manifest
        dirty = not self._saved
        for g in m.legs:
            if g.left is None and g.id not in present:
                g.left, dirty = now, True
        for uid, leg in present.items():
            if m.leg(uid) is None:
                m.legs.append(leg)
                dirty = True
        if self.enabled and not self.closed and m.set_relays(now):
            dirty = True
        changed = await self._recapture(now)
        if dirty or changed or self.failed:
            await self.save()
        return changed

    async def _recapture(self, now: float) -> bool:
        ports = self.manifest.ports()
        relays = sorted(r.spec for r in self.manifest.relays_now())
        current = (self.capture.ports, self.capture.relays) if self.capture is not None else ([], [])
        if (ports, relays) == current or self.closed or not self.enabled:
            return False
        old, self.capture = self.capture, None
        if ports or relays:
            seg = TapSegment(file=segment_path(self.audio, len(self.manifest.segments) + 1).name, ports=ports,
                             started=now, relays=relays)
            cap = Capture(self.binary, self.interface, self.path.with_name(seg.file), ports, relays)
            try:
                await cap.start()
                seg.started = time.time()
                self.manifest.segments.append(seg)
                self.capture = cap
            except TapError as exc:
                cap.path.unlink(missing_ok=True)  # whatever it wrote is no segment of ours
                self.failed = True
                self.manifest.errors.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {exc}")
                log.error("media tap %s: %s", self.key, exc)
                self.capture = old  # keep capturing what we had
                return False
        if old is not None:
            await self._stop(old)
        return True

    async def _stop(self, cap: Capture) -> None:
        await cap.stop()
        for seg in self.manifest.segments:
            if seg.file == cap.path.name:
                seg.stopped = time.time()
                seg.dropped = cap.stats.get("dropped")

    @property
    def closed(self) -> bool:
        return self.manifest.closed

    async def close(self, reason: str = "") -> None:
        if self.manifest.closed:
            return
        if self.capture is not None:
            await self._stop(self.capture)
            self.capture = None
        now = time.time()
        for g in self.manifest.legs:
            if g.left is None:
                g.left = now
        for r in self.manifest.relays_now():
            r.stopped = now
        if reason:
            self.manifest.errors.append(reason)
        self.manifest.closed, self.manifest.closed_at = True, now
        await self.save()


# ---- following the sessions (the controller's part) --------------------------------------------------------

@dataclass
class _Session:
    tap: SessionTap
    kind: str  # hotline / room
    caller: str = ""  # hotline: the caller's uniqueid (its bridge is followed)
    number: str = ""  # room number
    bridge: str = ""  # room: the conference's bridge


HOTLINE_CLOSE = ("CallCompleted", "CallAbandoned", "CallTimedOut")
BRIDGE_EVENTS = ("BridgeEnter", "BridgeLeave", "BridgeMerge", "BridgeDestroy")


class TapService:
    """Starts, extends and stops the tap of each recorded session, from the bus:

    - hotline: `HotlineEvent` CallAnswered (the call's audio is MixMonitor's file, read from the caller's
      MIXMONITOR_FILENAME); the caller's bridge is followed until the caller hangs up;
    - rooms: `RoomEvent` recording_started .. recording_stopped (or the meeting's end), the conference's bridge.
    `alarm(kind, message, data)` reports a tap that cannot capture (RecordingsAlarm on the bus)."""

    def __init__(self, node: str, ami: Any, tracker: Any, *, rooms: Any = None, enabled: bool = True,
                 binary: str = "tcpdump", interface: str = "any",
                 alarm: Callable[[str, str, dict[str, Any]], None] | None = None) -> None:
        self.node = node
        self.ami = ami
        self.tracker = tracker
        self.rooms = rooms
        self.enabled = enabled
        self.binary = binary
        self.interface = interface
        self.alarm = alarm or (lambda kind, message, data: None)
        self.sessions: dict[str, _Session] = {}
        self._entered: dict[str, float] = {}  # uniqueid -> when it last entered a bridge
        self._pending: dict[str, float] = {}  # hotline callers answered but not yet bridged -> since
        self._tasks: set[asyncio.Task[Any]] = set()
        self.problem = ""  # why no session can be captured (tcpdump missing): /healthz shows it
        self.started = 0
        self.failures = 0

    # ---- lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled:
            return
        if shutil.which(self.binary) is None:
            self.problem = (f"{self.binary} not found: video is not recorded (run `huiyan setup` as root, or "
                            "`apt-get install tcpdump`)")
            log.error("media tap: %s", self.problem)
            self.alarm("video_capture_failed", self.problem, {})

    async def stop(self) -> None:
        for s in list(self.sessions.values()):
            async with s.tap.lock:
                await s.tap.close("capture ended: the controller stopped")
        self.sessions.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"enabled": self.enabled, "active": len(self.sessions), "started": self.started,
                               "failures": self.failures}
        if self.problem:
            out["error"] = self.problem
        return out

    # ---- events (bus listener) ------------------------------------------------------------------------
    def on_event(self, event: Any) -> None:
        if not self.enabled or self.problem:
            return
        kind = type(event).__name__
        if isinstance(event, AmiEvent):
            if event.node == self.node:
                self._on_ami(event)
        elif kind == "HotlineEvent" and event.node == self.node:
            call_id = event.data.get("call_id") or ""
            if not call_id:
                return
            if event.kind == "CallAnswered":
                log.debug("media tap: call %s answered (bridged: %s)", call_id, call_id in self._entered)
                key = f"hotline:{call_id}"
                if key not in self.sessions:
                    self._pending[call_id] = time.time()
                    if call_id in self._entered:
                        self._spawn(self._start_hotline(call_id))
            elif event.kind in HOTLINE_CLOSE:
                self._pending.pop(call_id, None)
                self._spawn(self._close(f"hotline:{call_id}", ""))
        elif kind == "RoomEvent" and event.node == self.node:
            if event.kind == "recording_started" and event.data.get("path"):
                self._spawn(self._start_room(event.number, Path(event.data["path"]), event.at))
            elif event.kind in ("recording_stopped", "ended"):
                for key, s in list(self.sessions.items()):
                    if s.kind == "room" and s.number == event.number:
                        self._spawn(self._close(key, ""))
            elif event.kind in ("joined", "left"):
                for key, s in list(self.sessions.items()):
                    if s.kind == "room" and s.number == event.number:
                        self._spawn(self._refresh(key))

    def _on_ami(self, event: Any) -> None:
        name = event.name
        uid = event.get("Uniqueid")
        if name == "BridgeEnter":
            self._entered[uid] = time.time()
            if uid in self._pending:
                self._spawn(self._start_hotline(uid))
        elif name == "Hangup":
            self._entered.pop(uid, None)
            self._pending.pop(uid, None)
            key = f"hotline:{uid}"
            if key in self.sessions:
                self._spawn(self._close(key, ""))
                return
        if name in BRIDGE_EVENTS or name == "Hangup":
            bridges = {event.get(k) for k in ("BridgeUniqueid", "ToBridgeUniqueid", "FromBridgeUniqueid")} - {""}
            for key, s in list(self.sessions.items()):
                if (not s.bridge or s.bridge in bridges or uid == s.caller
                        or (uid and s.tap.manifest.leg(uid) is not None)):
                    self._spawn(self._refresh(key))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("media tap task failed", exc_info=task.exception())

    # ---- sessions -------------------------------------------------------------------------------------
    def _new_tap(self, key: str, audio: Path, anchor: float) -> SessionTap:
        return SessionTap(key, audio, anchor, binary=self.binary, interface=self.interface, enabled=self.enabled)

    async def _start_hotline(self, call_id: str) -> None:
        key = f"hotline:{call_id}"
        if key in self.sessions or self._pending.pop(call_id, None) is None:
            return
        anchor = self._entered.get(call_id, time.time())
        channel = self.tracker.channels.get(call_id) if self.tracker is not None else None
        if channel is None:
            return
        audio = await self._getvar(channel.name, "MIXMONITOR_FILENAME")
        log.debug("media tap: hotline call %s (%s), audio %s", call_id, channel.name, audio)
        if not audio:
            log.warning("media tap: hotline call %s has no MixMonitor file: not recorded, no video tap", call_id)
            return
        s = _Session(self._new_tap(key, Path(audio), anchor), "hotline", caller=call_id)
        self.sessions[key] = s
        self.started += 1
        await self._refresh(key)

    async def _start_room(self, number: str, audio: Path, at: float) -> None:
        key = f"room:{audio}"
        if key in self.sessions:
            return
        wav = audio if audio.suffix else audio.with_suffix(".wav")
        s = _Session(self._new_tap(key, wav, at), "room", number=number)
        self.sessions[key] = s
        self.started += 1
        await self._refresh(key)

    def _members(self, s: _Session) -> tuple[str, list[Any]]:
        tr = self.tracker
        if tr is None:
            return "", []
        if s.kind == "hotline":
            caller = tr.channels.get(s.caller)
            bridge = caller.bridge_id if caller is not None and caller.bridge_id else ""
        else:
            state = getattr(self.rooms, "live", {}).get(s.number) if self.rooms is not None else None
            bridge = state.bridge_id if state is not None and state.bridge_id else ""
        s.bridge = bridge or s.bridge
        members = tr.channels_in_bridge(bridge) if bridge else []
        return bridge, [c for c in members if c.name.startswith("PJSIP/")]

    async def _refresh(self, key: str) -> None:
        s = self.sessions.get(key)
        if s is None:
            return
        async with s.tap.lock:
            if s.tap.closed:
                return
            _, members = self._members(s)
            # In the order they came (a hotline's caller first): the order of the cells in the picture.
            members.sort(key=lambda c: (c.uniqueid != s.caller, self._entered.get(c.uniqueid, float("inf"))))
            present: dict[str, TapLeg] = {}
            for c in members:
                known = s.tap.manifest.leg(c.uniqueid)
                present[c.uniqueid] = known if known is not None else await self._leg(c)
            failed_before = s.tap.failed
            await s.tap.update(present, time.time())
            if s.tap.failed and not failed_before:
                self.failures += 1
                msg = s.tap.manifest.errors[-1] if s.tap.manifest.errors else "capture failed"
                self.alarm("video_capture_failed", f"video of {key} is not being recorded: {msg}", {"session": key})

    async def _leg(self, c: Any) -> TapLeg:
        leg = TapLeg(id=c.uniqueid, channel=c.name, number=c.caller_id_num or "", name=c.caller_id_name or "",
                     joined=self._entered.get(c.uniqueid, time.time()))
        src = parse_addr(await self._getvar(c.name, "CHANNEL(rtp,src,video)"))
        if src is None:
            leg.note = "no video stream"
            return leg
        leg.port = src[1]
        dest = parse_addr(await self._getvar(c.name, "CHANNEL(rtp,dest,video)"))
        leg.remote = f"{dest[0]}:{dest[1]}" if dest else ""
        if await self._secure(c.name):
            leg.secure = True
            leg.note = ("SRTP (WebRTC DTLS-SRTP or SDES): encrypted on the wire, a tap cannot decode it (captured only "
                        "as relayed by Asterisk to a plain-RTP other party of a two-party call)")
        return leg

    async def _secure(self, channel: str) -> bool:
        """Whether the leg's media is SRTP. Not just `CHANNEL(rtp,secure,video)`: a browser bundles its video
        onto the audio transport, whose SRTP the video stream does not report (checked on Asterisk 22.10.1 with
        Chromium: video 0, audio 1), and DTLS may still be under way when the leg enters the bridge; the
        endpoint's `media_encryption` (dtls for `webrtc=yes`, sdes) settles it."""
        for stream in ("video", "audio"):
            if (await self._getvar(channel, f"CHANNEL(rtp,secure,{stream})")) == "1":
                return True
        endpoint = await self._getvar(channel, "CHANNEL(endpoint)")
        if not endpoint or not all(ch.isalnum() or ch in "-_.@+" for ch in endpoint):
            return False
        return (await self._getvar(channel, f"PJSIP_ENDPOINT({endpoint},media_encryption)")) in ("dtls", "sdes")

    async def _getvar(self, channel: str, variable: str) -> str:
        try:
            r = await self.ami.action("Getvar", Channel=channel, Variable=variable, timeout=5)
        except Exception as exc:  # noqa: BLE001 - a channel that just hung up, an AMI reconnect
            log.debug("Getvar %s on %s: %s", variable, channel, exc)
            return ""
        value = r.get("Value") if r.success else ""
        return "" if value in (None, "(null)") else str(value)

    async def _close(self, key: str, reason: str) -> None:
        s = self.sessions.get(key)
        if s is None:
            return
        async with s.tap.lock:
            await s.tap.close(reason)
        self.sessions.pop(key, None)

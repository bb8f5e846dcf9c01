"""The controller: one process wiring Asterisk, AMI, FastAGI and the API together on one event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from huiyan.bus import EventBus
from huiyan.config.model import EndpointSpec
from huiyan.config.render import RenderInput, render_all, write_files
from huiyan.config.settings import Settings
from huiyan.pbx.install import AsteriskInstall, find_or_install
from huiyan.pbx.node import PbxNode

log = logging.getLogger(__name__)


def read_endpoints(db_url: str) -> tuple[EndpointSpec, ...]:
    from huiyan.db import make_engine, session_factory
    from huiyan.db.directory import endpoints

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return tuple(endpoints(session))
    finally:
        engine.dispose()


def render_from_db(
    settings: Settings, install: AsteriskInstall, endpoints: tuple[EndpointSpec, ...] | None = None
) -> list[str]:
    """Render every Asterisk file from settings + database into the node's etc dir; return what changed."""
    if endpoints is None:
        endpoints = read_endpoints(settings.db_url)
    r = RenderInput(
        settings=settings,
        modules_dir=install.modules_dir,
        asterisk_data_dir=install.data_dir,
        ami_secret=settings.secret("ami"),
        endpoints=endpoints,
    )
    return write_files(render_all(r), settings.pbx_dir / "etc")


# The AMI events the controller consumes (tracker, hotline, rooms, spy, transfers, presence, health).
CONTROLLER_EVENTS: tuple[str, ...] = (
    "FullyBooted", "Shutdown", "Newchannel", "Newstate", "Hangup", "NewCallerid", "NewConnectedLine", "Rename",
    "DialBegin", "DialEnd", "Bridge[A-Za-z]*", "Confbridge[A-Za-z]*", "ChanSpyStart", "ChanSpyStop",
    "AttendedTransfer", "BlindTransfer", "OriginateResponse", "MixMonitorStart", "MixMonitorStop",
    "ContactStatus", "DeviceStateChange", "PeerStatus", "Registry",
)

# What to reload on the running Asterisk when a rendered file changed.
RELOADS: dict[str, str] = {
    "pjsip.conf": "module reload res_pjsip.so",
    "extensions.conf": "dialplan reload",
    "confbridge.conf": "module reload app_confbridge.so",
    "musiconhold.conf": "moh reload",
    "queues.conf": "queue reload all",
    # H.323 peers and codecs; turning H.323 on/off or moving its port needs an Asterisk restart (modules.conf).
    "ooh323.conf": "module reload chan_ooh323.so",
}


class Controller:
    """Starts and stops everything `huiyan up` runs. A PBX node is a value handed to each part."""

    def __init__(self, settings: Settings, *, manage_asterisk: bool = True) -> None:
        self.settings = settings
        self.manage_asterisk = manage_asterisk
        self.bus = EventBus()
        self.node = PbxNode.from_settings(settings)
        self.install: AsteriskInstall | None = None
        self.pbx: Any = None
        self.ami: Any = None
        self.tracker: Any = None
        self.agi: Any = None
        self.hotline: Any = None
        self.rooms: Any = None
        self.room_control: Any = None
        self.dispatch: Any = None
        self.app: Any = None
        self._uvicorn: Any = None
        self._api_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._render_lock = asyncio.Lock()
        self.started_at: float | None = None

    # ---- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        from huiyan.agi.flows import default_routes
        from huiyan.agi.server import FastAgiServer
        from huiyan.api import create_app
        from huiyan.db import make_engine, session_factory, upgrade
        from huiyan.pbx.ami import AmiClient
        from huiyan.pbx.process import AsteriskProcess
        from huiyan.pbx.tracker import ChannelTracker

        s = self.settings
        self.install = await asyncio.to_thread(
            find_or_install, root=s.root_dir, binary=s.asterisk_binary, install=False
        )
        await asyncio.to_thread(upgrade, s.db_url)
        self.engine = make_engine(s.db_url)
        self.session_factory = session_factory(self.engine)
        changed = await asyncio.to_thread(render_from_db, s, self.install)

        # The hotline's distributor, restored from the database (agents stay logged in across restarts).
        from huiyan.hotline.flow import hotline_route
        from huiyan.hotline.service import HotlineService
        from huiyan.hotline.store import DbHotlineStore

        wall_offset = time.time() - time.monotonic()
        self.hotline = HotlineService(self.node.name, DbHotlineStore(self.session_factory, wall_offset), self.bus,
                                      wall_offset=wall_offset)
        await self.hotline.start()
        self.bus.on(self._on_event)

        # Rooms (meetings): configuration from the database, live state from AMI Confbridge events.
        from huiyan.rooms.flow import room_route
        from huiyan.rooms.service import RoomService
        from huiyan.rooms.store import DbRoomStore

        self.rooms = RoomService(self.node.name, DbRoomStore(self.session_factory), self.bus)
        await self.rooms.start()
        self.bus.on(self.rooms.on_event)

        # FastAGI first, so the first call Asterisk sends already finds us listening.
        routes = dict(default_routes(s))
        routes["hotline"] = hotline_route(self.hotline, s.data_dir / "recordings")
        routes["room"] = room_route(self.rooms)
        from huiyan.mediation.flow import mediation_route

        routes["mediation"] = mediation_route(self.rooms)
        # Check-ins (社区矫正点验): the 12340 flow and roll-calls; the scheduler starts with the rest below.
        from huiyan.checkin.flow import checkin_route
        from huiyan.checkin.service import CheckinService

        self.checkin = CheckinService(self.node.name, self.session_factory, s, self.bus)
        routes["checkin"] = checkin_route(self.checkin)
        self.agi = FastAgiServer(routes, s.agi_host, s.agi_port, node_name=self.node.name,
                                 sounds_dir=s.data_dir / "sounds")
        await self.agi.start()

        self.pbx = AsteriskProcess(self.install, s.pbx_dir, self.node)
        if self.manage_asterisk and not await self._adopt_asterisk(changed):
            self.pbx.start()
            await self.pbx.wait_ready()
        self.ami = AmiClient(self.node, self.bus, events=None if s.ami_all_events else CONTROLLER_EVENTS)
        self.tracker = ChannelTracker(self.ami)
        await self.ami.connect()
        # Device presence (online, last seen) from ContactStatus, reconciled from PJSIPShowContacts now and
        # after every AMI reconnect (huiyan/directory/presence.py).
        from huiyan.directory.presence import PresenceService

        self.presence = PresenceService(self.node.name, self.session_factory, self.bus, self.ami)
        self.bus.on(self.presence.on_event)
        await self.presence.start()

        self.app = create_app(
            s,
            session_factory=self.session_factory,
            bus=self.bus,
            health=self.health,
            on_directory_change=self.apply_directory,
        )
        self.app.state.controller = self
        self.app.state.hotline = self.hotline
        from huiyan.config.render import TRUNK_ENDPOINT
        from huiyan.hotline.control import CallControl

        self.call_control = CallControl(self.hotline, self.ami, self.tracker,
                                        trunk_endpoint=TRUNK_ENDPOINT if s.trunk.host else None)
        self.app.state.call_control = self.call_control
        from huiyan.rooms.control import RoomControl

        self.room_control = RoomControl(self.rooms, self.ami, s, recordings_dir=s.data_dir / "recordings")
        await self.room_control.resync()  # meetings that went on while the controller was away
        self.app.state.rooms = self.rooms
        self.app.state.room_control = self.room_control
        # Dispatch (指挥调度): dial-outs into emergency rooms; carries on with active dispatches after a restart.
        from huiyan.db.numbering import ExtensionPlan
        from huiyan.dispatch.service import DispatchService
        from huiyan.dispatch.store import DbDispatchStore

        self.dispatch = DispatchService(
            self.node.name,
            DbDispatchStore(self.session_factory, room_plan=ExtensionPlan.from_pattern(s.room_pattern),
                            internal=ExtensionPlan.from_pattern(s.internal_extension_pattern)),
            self.bus, self.rooms, public_host=s.public_host)
        self.dispatch.attach(self.room_control, self.ami)
        await self.dispatch.start()
        self.bus.on(self.dispatch.on_event)
        self.app.state.dispatch = self.dispatch
        # Recordings as evidence: finalisation jobs queued from the bus (hotline calls, room recordings),
        # run off the event loop; disk alarm, sweep and daily retention purge (huiyan/recordings/).
        from huiyan.recordings.service import RecordingsService

        self.recordings = RecordingsService(
            self.node.name, self.session_factory, s, self.bus, rooms=self.rooms,
            channel_alive=lambda uid: self.tracker is not None and uid in self.tracker.channels,
            ami=self.ami, tracker=self.tracker)  # ami + tracker: the video media tap (recordings/tap.py)
        await self.recordings.start()
        self.bus.on(self.recordings.on_event)
        self.app.state.recordings = self.recordings
        self.checkin.ami = self.ami  # roll-calls dial out through AMI
        await self.checkin.start()
        self.bus.on(self.checkin.on_event)
        self.app.state.checkin = self.checkin
        await self._start_api()
        self.started_at = time.monotonic()

    async def _adopt_asterisk(self, changed: list[str]) -> bool:
        """Reuse *our* Asterisk when it outlived the previous controller (crash, kill -9, upgrade).

        Asterisk runs in its own session, so a controller's death leaves it and its calls up: callers wait
        in the dialplan's hold-and-retry loop (huiyan/dialplan) for a controller to come back. Restarting
        Asterisk here would drop every one of them. One that does not answer is stopped and started anew.
        """
        import subprocess

        from huiyan.pbx.process import PbxError

        pid = self.pbx.pid()  # only ever an Asterisk using our own config (see AsteriskProcess.pid)
        if pid is None:
            return False
        try:
            await self.pbx.wait_ready(timeout=10)
        except PbxError as e:
            log.warning("our Asterisk (pid %s) is running but not ready (%s): restarting it", pid, e)
            await asyncio.to_thread(self.pbx.stop)
            return False
        for name in changed:  # the configuration may have changed while no controller ran
            cmd = RELOADS.get(name)
            if cmd:
                try:
                    await asyncio.to_thread(self.pbx.rx, cmd)
                except (PbxError, OSError, subprocess.TimeoutExpired) as e:  # keep the calls; say so
                    log.warning("adopted Asterisk: %r failed (%s); %s stays as it was", cmd, e, name)
        log.info("adopted the running Asterisk (pid %s): its calls go on", pid)
        return True

    async def _start_api(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, host=self.settings.api_host, port=self.settings.api_port, log_level="warning",
            lifespan="off",
        )
        self._uvicorn = uvicorn.Server(config)
        self._uvicorn.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # we own signals
        self._api_task = asyncio.create_task(self._uvicorn.serve())
        for _ in range(200):
            if self._uvicorn.started:
                return
            if self._api_task.done():
                self._api_task.result()
                raise RuntimeError("the API server stopped during start")
            await asyncio.sleep(0.05)
        raise RuntimeError("the API server did not start in 10 s")

    async def wait_closed(self) -> None:
        import signal

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._closed.set)
            except (NotImplementedError, RuntimeError):
                pass
        await self._closed.wait()

    def request_stop(self) -> None:
        self._closed.set()

    async def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
            if self._api_task is not None:
                try:
                    await asyncio.wait_for(self._api_task, 10)
                except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - stopping anyway
                    self._api_task.cancel()
        if self.dispatch is not None:  # first: no retry may fire into a closing AMI connection
            await self.dispatch.stop()
        if getattr(self, "checkin", None) is not None:  # its scheduler and roll-calls too
            await self.checkin.stop()
        if getattr(self, "presence", None) is not None:
            await self.presence.stop()
        if self.ami is not None:
            await self.ami.close()
        if self.agi is not None:
            await self.agi.stop()
        if self.hotline is not None:
            await self.hotline.stop()
        if self.rooms is not None:
            await self.rooms.stop()
        if getattr(self, "recordings", None) is not None:
            await self.recordings.stop()
        if self.pbx is not None and self.manage_asterisk:
            await asyncio.to_thread(self.pbx.stop)
        if getattr(self, "engine", None) is not None:
            self.engine.dispose()

    def _on_event(self, event: Any) -> None:
        """Bus listener: AMI events the hotline needs, and configuration changes it must reload."""
        if self.hotline is None:
            return
        name = type(event).__name__
        if name == "HotlineConfigChanged" or name == "DirectoryChanged":
            asyncio.get_running_loop().create_task(self.hotline.reload())
        elif getattr(event, "name", None) == "DialEnd":
            self.hotline.on_ami_event(event)
        elif getattr(event, "name", None) == "AttendedTransfer" and getattr(self, "call_control", None):
            self.call_control.attended_transfer_done(event)

    # ---- operations -----------------------------------------------------------------
    async def apply_directory(self) -> list[str]:
        """Re-render from the database and reload only what changed: a new device can register at once."""
        assert self.install is not None
        async with self._render_lock:
            changed = await asyncio.to_thread(render_from_db, self.settings, self.install)
            for name in changed:
                cmd = RELOADS.get(name)
                if cmd and self.ami is not None and self.ami.connected:
                    await self.ami.command(cmd)
            if changed:
                log.info("directory applied: %s", ", ".join(changed))
            return changed

    async def health(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        pid = self.pbx.pid() if self.pbx is not None else None
        ast: dict[str, Any] = {"ok": False, "node": self.node.name, "pid": pid}
        if self.ami is not None and self.ami.connected:
            try:
                await self.ami.action("Ping", timeout=3)
                ast["ok"] = True
            except Exception as e:  # noqa: BLE001 - reported, not raised
                ast["error"] = str(e)
        else:
            ast["error"] = "no AMI connection to ask"
        if self.install is not None:
            ast["version"] = self.install.version
        out["asterisk"] = ast
        out["ami"] = {"ok": bool(self.ami is not None and self.ami.connected), "node": self.node.name}
        out["fastagi"] = {
            "ok": bool(self.agi is not None and self.agi.listening),
            "port": getattr(self.agi, "port", None),
            "active_sessions": getattr(self.agi, "active_sessions", 0),
        }
        if getattr(self, "recordings", None) is not None:
            out["recordings"] = self.recordings.health()  # not ok when the disk is low (see RecordingsAlarm)
        return out

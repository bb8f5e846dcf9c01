"""Device presence (在线状态): which devices are registered now, from AMI ContactStatus, kept in the database.

The decision is pure (`PresenceBook`): a device is online while at least one of its SIP contacts is
registered and not known to be unreachable. `PresenceService` feeds it AMI events, writes the changes to
the database off the event loop (batched, last change per device wins), publishes `DevicePresence` on the
bus, and rebuilds the whole picture from `PJSIPShowContacts` on start and after every AMI (re)connect, so a
controller restart or an Asterisk restart never leaves a stale dot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from huiyan.aio import BackgroundTasks, stop_tasks
from huiyan.bus import EventBus
from huiyan.db.models import Device

log = logging.getLogger(__name__)

# ContactStatus values (Asterisk 22, res_pjsip) and what they say about the device behind the contact.
ONLINE_STATUSES = frozenset({"Created", "Reachable", "NonQualified", "Updated", "Unknown"})
OFFLINE_STATUSES = frozenset({"Removed", "Unreachable"})


@dataclass(frozen=True, slots=True)
class DevicePresence:
    """Published on the bus when a device goes online or offline (the admin page's live dot)."""

    device_id: int
    extension: str
    online: bool
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """What `PresenceBook` decided: the endpoint `extension` is now online / offline."""

    extension: str
    online: bool


def contact_online(status: str) -> bool | None:
    """True/False for a ContactStatus or ContactList status that says something; None for one that does not."""
    if status in ONLINE_STATUSES:
        return True
    if status in OFFLINE_STATUSES:
        return False
    return None


class PresenceBook:
    """Per endpoint, its contacts and whether each is up. Pure: no I/O, no clock."""

    def __init__(self) -> None:
        self._contacts: dict[str, dict[str, bool]] = {}

    def online(self, extension: str) -> bool:
        return any(self._contacts.get(extension, {}).values())

    def online_extensions(self) -> set[str]:
        return {ext for ext in self._contacts if self.online(ext)}

    def apply(self, extension: str, uri: str, status: str) -> PresenceChange | None:
        """One ContactStatus; returns the change of the endpoint's presence, or None if it did not flip."""
        up = contact_online(status)
        if up is None or not extension:
            return None
        before = self.online(extension)
        contacts = self._contacts.setdefault(extension, {})
        if status == "Removed":
            contacts.pop(uri, None)
        else:
            contacts[uri] = up
        if not contacts:
            del self._contacts[extension]
        after = self.online(extension)
        return PresenceChange(extension, after) if after != before else None

    def replace(self, contacts: Iterable[tuple[str, str, str]]) -> None:
        """Forget everything and start from a snapshot of (extension, uri, status)."""
        self._contacts = {}
        for extension, uri, status in contacts:
            up = contact_online(status)
            if up is not None and extension and status != "Removed":
                self._contacts.setdefault(extension, {})[uri] = up


def parse_contact_list(items: Iterable[Mapping[str, str]]) -> list[tuple[str, str, str]]:
    """(extension, uri, status) of each `ContactList` item a PJSIPShowContacts answer holds.

    The AOR is the endpoint's name (= the extension) in our rendered pjsip.conf; Asterisk sends it as `Aor`
    and inside `ObjectName` ("<aor>;@<hash>"), the latter also where `Aor` is missing."""
    out = []
    for item in items:
        if item.get("Event", "ContactList") != "ContactList":
            continue
        aor = item.get("Aor") or item.get("AOR") or item.get("ObjectName", "").split(";@", 1)[0]
        uri = item.get("Uri") or item.get("URI") or item.get("ObjectName", "")
        status = item.get("Status") or item.get("ContactStatus") or "Unknown"
        if aor:
            out.append((aor, uri, status))
    return out


# ---- the database side (called in worker threads) ------------------------------------------------


def device_extensions(session: Session) -> dict[str, int]:
    return {ext: id_ for id_, ext in session.execute(select(Device.id, Device.extension))}


def write_changes(session: Session, changes: Mapping[str, tuple[bool, datetime]]) -> None:
    """Store each device's new presence; last_seen moves only forward, and on every change."""
    for extension, (online, at) in changes.items():
        session.execute(update(Device).where(Device.extension == extension).values(online=online, last_seen=at))
    session.commit()


def write_snapshot(session: Session, online: set[str], at: datetime) -> tuple[list[str], list[str]]:
    """Make the table agree with a fresh snapshot; returns (went online, went offline) extensions."""
    rows = session.execute(select(Device.extension, Device.online)).all()
    went_on = [ext for ext, was in rows if ext in online and not was]
    went_off = [ext for ext, was in rows if ext not in online and was]
    if online:
        session.execute(update(Device).where(Device.extension.in_(online)).values(online=True, last_seen=at))
    if went_off:
        session.execute(update(Device).where(Device.extension.in_(went_off)).values(online=False))
    session.commit()
    return went_on, went_off


class PresenceService:
    """Keeps `devices.online` / `devices.last_seen` from one PBX node's AMI."""

    def __init__(self, node: str, sessions: sessionmaker[Session], bus: EventBus, ami: Any) -> None:
        self.node = node
        self.sessions = sessions
        self.bus = bus
        self.ami = ami
        self.book = PresenceBook()
        self._devices: dict[str, int] = {}
        self._pending: dict[str, tuple[bool, datetime]] = {}
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._tasks = BackgroundTasks(log, "presence")

    async def start(self) -> None:
        self._devices = await asyncio.to_thread(self._load_devices)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        await self.reconcile()

    async def stop(self) -> None:
        self._tasks.cancel_all()
        await stop_tasks(self._writer)
        self._writer = None
        if self._pending:  # what was decided is not lost on a clean stop
            await asyncio.to_thread(self._flush, self._take())

    def _load_devices(self) -> dict[str, int]:
        with self.sessions() as session:
            return device_extensions(session)

    async def reconcile(self) -> None:
        """Rebuild from PJSIPShowContacts: who is registered now, whatever events were missed."""
        if self.ami is None or not self.ami.connected:
            return
        try:
            items = await self.ami.action_list("PJSIPShowContacts", timeout=10)
        except Exception as e:  # noqa: BLE001 - no contacts answer: keep what the database says
            # Asterisk answers an empty list with `Response: Error` ("No Contacts found").
            if "No Contacts found" not in str(e):
                log.warning("presence: PJSIPShowContacts on %s failed: %s", self.node, e)
                return
            items = []
        self.book.replace(parse_contact_list(items))
        online = self.book.online_extensions()
        now = datetime.now(UTC)
        self._pending.clear()
        went_on, went_off = await asyncio.to_thread(self._snapshot, online, now)
        for ext in went_on:
            self._publish(ext, True, now)
        for ext in went_off:
            self._publish(ext, False, now)
        log.info("presence on %s: %d device(s) online", self.node, len(online & set(self._devices)))

    def _snapshot(self, online: set[str], at: datetime) -> tuple[list[str], list[str]]:
        with self.sessions() as session:
            return write_snapshot(session, online, at)

    # ---- events (bus listener, on the loop) -------------------------------------------------------
    def on_event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "ContactStatus":
            if getattr(event, "node", self.node) != self.node:
                return
            change = self.book.apply(event.aor or event.endpoint, event.uri, event.status)
            if change is not None and change.extension in self._devices:
                now = datetime.now(UTC)
                self._pending[change.extension] = (change.online, now)
                self._wake.set()
                self._publish(change.extension, change.online, now)
        elif kind == "AmiConnected" and getattr(event, "node", None) == self.node:
            self._tasks.spawn(self.reconcile())
        elif kind == "DirectoryChanged" and getattr(event, "kind", None) == "device":
            self._tasks.spawn(self._reload_devices())

    async def _reload_devices(self) -> None:
        self._devices = await asyncio.to_thread(self._load_devices)

    def _publish(self, extension: str, online: bool, at: datetime) -> None:
        device_id = self._devices.get(extension)
        if device_id is not None:
            self.bus.publish(DevicePresence(device_id, extension, online, at))

    # ---- the writer ---------------------------------------------------------------------------------
    def _take(self) -> dict[str, tuple[bool, datetime]]:
        batch, self._pending = self._pending, {}
        return batch

    def _flush(self, batch: dict[str, tuple[bool, datetime]]) -> None:
        with self.sessions() as session:
            write_changes(session, batch)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)  # a registration storm (a bureau's switch back on) becomes one write
            batch = self._take()
            if not batch:
                continue
            try:
                await asyncio.to_thread(self._flush, batch)
            except Exception:
                log.exception("presence: writing %d change(s) failed; retrying", len(batch))
                for ext, value in batch.items():
                    self._pending.setdefault(ext, value)
                await asyncio.sleep(1)
                self._wake.set()

"""Live channels and bridges of one node, kept from AMI events and rebuilt from Asterisk after every (re)connect."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any, TypeVar

from huiyan.pbx.ami import AmiActionError, AmiClient, AmiError, AmiTimeout
from huiyan.pbx.events import AmiConnected, AmiDisconnected, AmiEvent, ClientEvent

__all__ = ["Channel", "Bridge", "ChannelTracker"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Channel:
    uniqueid: str
    name: str
    state: str  # ChannelStateDesc: Down, Ring, Ringing, Up, Busy...
    caller_id_num: str
    caller_id_name: str
    context: str
    exten: str
    linkedid: str
    bridge_id: str | None
    created: datetime
    connected_line_num: str = ""
    connected_line_name: str = ""


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    type: str  # basic, holding...
    technology: str  # simple_bridge, native_rtp, softmix...
    channels: frozenset[str]  # uniqueids
    name: str = ""
    creator: str = ""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _duration(text: str) -> timedelta:
    """CoreShowChannel Duration is HH:MM:SS."""
    try:
        h, m, s = (int(p) for p in text.split(":"))
    except ValueError:
        return timedelta(0)
    return timedelta(hours=h, minutes=m, seconds=s)


def _id_part(fields: Mapping[str, str], key: str) -> str:
    # Asterisk writes "<unknown>" for an empty caller/connected-line number or name.
    value = fields.get(key, "")
    return "" if value == "<unknown>" else value


def _channel_from(fields: Mapping[str, str], created: datetime, bridge_id: str | None) -> Channel:
    return Channel(
        uniqueid=fields.get("Uniqueid", ""),
        name=fields.get("Channel", ""),
        state=fields.get("ChannelStateDesc", ""),
        caller_id_num=_id_part(fields, "CallerIDNum"),
        caller_id_name=_id_part(fields, "CallerIDName"),
        context=fields.get("Context", ""),
        exten=fields.get("Exten", ""),
        linkedid=fields.get("Linkedid", ""),
        bridge_id=bridge_id,
        created=created,
        connected_line_num=_id_part(fields, "ConnectedLineNum"),
        connected_line_name=_id_part(fields, "ConnectedLineName"),
    )


def _bridge_from(fields: Mapping[str, str], channels: frozenset[str] = frozenset()) -> Bridge:
    return Bridge(
        id=fields.get("BridgeUniqueid", ""),
        type=fields.get("BridgeType", ""),
        technology=fields.get("BridgeTechnology", ""),
        channels=channels,
        name=fields.get("BridgeName", ""),
        creator=fields.get("BridgeCreator", ""),
    )


class ChannelTracker:
    """Channels (uniqueid -> Channel) and bridges (id -> Bridge) of the client's node.

    Events that arrive while a resync is in flight are held back and replayed on top of the snapshot, so the
    result is the snapshot plus everything that happened after it, in order.
    """

    def __init__(self, client: AmiClient, *, bridge_info_concurrency: int = 8) -> None:
        self.client = client
        self._channels: dict[str, Channel] = {}
        self._bridges: dict[str, Bridge] = {}
        self._held: list[AmiEvent] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[Callable[[ChannelTracker], Any], asyncio.Future[Any]]] = []
        self._concurrency = bridge_info_concurrency
        self.synced = False
        self.last_sync: datetime | None = None
        self._unsubscribe = client.on_event(self._on_event)
        if client.connected:
            self._start_resync()

    # ---- queries ----------------------------------------------------------------------------------

    @property
    def channels(self) -> Mapping[str, Channel]:
        """Read-only view, uniqueid -> Channel."""
        return MappingProxyType(self._channels)

    @property
    def bridges(self) -> Mapping[str, Bridge]:
        """Read-only view, bridge id -> Bridge."""
        return MappingProxyType(self._bridges)

    def channel_by_name(self, name: str) -> Channel | None:
        return next((c for c in self._channels.values() if c.name == name), None)

    def channels_in_bridge(self, bridge_id: str) -> list[Channel]:
        bridge = self._bridges.get(bridge_id)
        if bridge is None:
            return []
        return [self._channels[u] for u in bridge.channels if u in self._channels]

    async def wait_for(self, predicate: Callable[[ChannelTracker], T], timeout: float = 10.0) -> T:
        """Wait until `predicate(tracker)` is truthy (checked now and after every change); return its value.

            ch = await tracker.wait_for(lambda t: t.channel_by_name("PJSIP/agent1-00000001"))
            await tracker.wait_for(lambda t: not t.channels, timeout=5)
        """
        result = predicate(self)
        if result:
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise AmiTimeout(f"tracker of node {self.client.node.name}: condition not met within {timeout}s") from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def close(self) -> None:
        self._unsubscribe()
        if self._resync_task is not None:
            self._resync_task.cancel()

    # ---- resync -----------------------------------------------------------------------------------

    async def resync(self) -> None:
        """Rebuild from CoreShowChannels, BridgeList and BridgeInfo (done by itself after every AmiConnected)."""
        task = self._start_resync()
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling()):
                    raise
                # Superseded by a newer resync (a reconnect happened meanwhile): wait for that one instead.
                assert self._resync_task is not None
                task = self._resync_task

    def _start_resync(self) -> asyncio.Task[None]:
        if self._resync_task is not None and not self._resync_task.done():
            self._resync_task.cancel()
        if self._held is None:
            self._held = []
        self._resync_task = asyncio.get_running_loop().create_task(self._resync(), name="tracker-resync")
        self._resync_task.add_done_callback(self._resync_done)
        return self._resync_task

    def _resync_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("tracker %s: resync failed: %s", self.client.node.name, task.exception())

    async def _resync(self) -> None:
        node = self.client.node.name
        try:
            channel_items = await self.client.action_list("CoreShowChannels")
            bridge_items = await self.client.action_list("BridgeList")
            members = await self._bridge_members([b.get("BridgeUniqueid", "") for b in bridge_items])
        except AmiError:
            if self._resync_task is asyncio.current_task():
                self.synced = False
                self._replay()
            raise
        now = _now()
        bridges: dict[str, Bridge] = {}
        bridge_of: dict[str, str] = {}
        for item in bridge_items:
            bridge_id = item.get("BridgeUniqueid", "")
            if bridge_id not in members:
                continue  # destroyed between BridgeList and BridgeInfo
            bridges[bridge_id] = _bridge_from(item, frozenset(members[bridge_id]))
            for uid in members[bridge_id]:
                bridge_of[uid] = bridge_id
        channels: dict[str, Channel] = {}
        for item in channel_items:
            uid = item.get("Uniqueid", "")
            if not uid:
                continue
            old = self._channels.get(uid)
            # Keep the creation time we saw; Duration only has one-second resolution.
            created = old.created if old is not None else now - _duration(item.get("Duration", ""))
            bridge_id = bridge_of.get(uid) or item.get("BridgeId") or None
            channels[uid] = _channel_from(item, created, bridge_id)
        dropped = self._channels.keys() - channels.keys()
        added = channels.keys() - self._channels.keys()
        self._channels, self._bridges = channels, bridges
        self.synced = True
        self.last_sync = now
        log.info(
            "tracker %s: resynced %d channels (%d gone, %d new), %d bridges",
            node, len(channels), len(dropped), len(added), len(bridges),
        )
        self._replay()

    async def _bridge_members(self, bridge_ids: list[str]) -> dict[str, list[str]]:
        limit = asyncio.Semaphore(self._concurrency)

        async def info(bridge_id: str) -> tuple[str, list[str] | None]:
            async with limit:
                try:
                    items = await self.client.action_list("BridgeInfo", BridgeUniqueid=bridge_id)
                except AmiActionError:
                    return bridge_id, None
            members = [i["Uniqueid"] for i in items if i.get("Event") == "BridgeInfoChannel" and i.get("Uniqueid")]
            return bridge_id, members

        results = await asyncio.gather(*(info(b) for b in bridge_ids if b))
        return {b: m for b, m in results if m is not None}

    def _replay(self) -> None:
        held, self._held = self._held or [], None
        for event in held:
            self._apply(event)
        self._notify()

    # ---- events -----------------------------------------------------------------------------------

    def _on_event(self, event: ClientEvent) -> None:
        if isinstance(event, AmiConnected):
            self._start_resync()
        elif isinstance(event, AmiDisconnected):
            self.synced = False
            self._notify()
        elif self._held is not None:
            self._held.append(event)
        else:
            self._apply(event)
            self._notify()

    def _apply(self, event: AmiEvent) -> None:
        name = event.name
        fields = event.fields
        uid = fields.get("Uniqueid", "")
        if name == "Newchannel":
            self._channels[uid] = _channel_from(fields, _now(), None)
            return
        if name == "Hangup":
            gone = self._channels.pop(uid, None)
            if gone is not None and gone.bridge_id:
                self._remove_member(gone.bridge_id, uid)
            return
        if event.has_channel_snapshot and uid in self._channels:
            old = self._channels[uid]
            new = _channel_from(fields, old.created, old.bridge_id)
            if name == "Rename":
                new = replace(new, name=fields.get("Newname", new.name))
            if new != old:
                self._channels[uid] = new
        bridge_id = fields.get("BridgeUniqueid", "")
        if name == "BridgeCreate":
            old_bridge = self._bridges.get(bridge_id)
            self._bridges[bridge_id] = _bridge_from(fields, old_bridge.channels if old_bridge else frozenset())
        elif name == "BridgeDestroy":
            bridge = self._bridges.pop(bridge_id, None)
            for member in bridge.channels if bridge else ():
                self._set_bridge(member, None, only_if=bridge_id)
        elif name == "BridgeEnter":
            bridge = self._bridges.get(bridge_id) or _bridge_from(fields)
            self._bridges[bridge_id] = replace(
                _bridge_from(fields, bridge.channels), channels=bridge.channels | {uid}
            )
            self._set_bridge(uid, bridge_id)
        elif name == "BridgeLeave":
            self._remove_member(bridge_id, uid)
            self._set_bridge(uid, None, only_if=bridge_id)
        elif name == "BridgeMerge":
            to_id, from_id = fields.get("ToBridgeUniqueid", ""), fields.get("FromBridgeUniqueid", "")
            source = self._bridges.pop(from_id, None)
            target = self._bridges.get(to_id)
            if source is not None and target is not None:
                self._bridges[to_id] = replace(target, channels=target.channels | source.channels)
                for member in source.channels:
                    self._set_bridge(member, to_id)

    def _remove_member(self, bridge_id: str, uid: str) -> None:
        bridge = self._bridges.get(bridge_id)
        if bridge is not None and uid in bridge.channels:
            self._bridges[bridge_id] = replace(bridge, channels=bridge.channels - {uid})

    def _set_bridge(self, uid: str, bridge_id: str | None, only_if: str | None = None) -> None:
        channel = self._channels.get(uid)
        if channel is None or (only_if is not None and channel.bridge_id != only_if):
            return
        self._channels[uid] = replace(channel, bridge_id=bridge_id)

    def _notify(self) -> None:
        for predicate, future in list(self._waiters):
            if future.done():
                continue
            try:
                result = predicate(self)
            except Exception as exc:  # a broken predicate fails its own waiter, not the tracker
                future.set_exception(exc)
                continue
            if result:
                future.set_result(result)

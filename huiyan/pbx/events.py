"""Typed AMI events: every event Asterisk sends becomes an `AmiEvent` (or a subclass for the ones we act on)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "AmiEvent",
    "AmiConnected",
    "AmiDisconnected",
    "ClientEvent",
    "parse_event",
    "event_class",
    "register_event",
    "Newchannel",
    "Newstate",
    "Hangup",
    "DialBegin",
    "DialEnd",
    "BridgeCreate",
    "BridgeDestroy",
    "BridgeEnter",
    "BridgeLeave",
    "BridgeMerge",
    "ContactStatus",
    "DeviceStateChange",
    "ConfbridgeJoin",
    "ConfbridgeLeave",
    "ConfbridgeTalking",
    "ConfbridgeMute",
    "ConfbridgeUnmute",
    "FullyBooted",
    "Shutdown",
    "ChanSpyStart",
    "ChanSpyStop",
    "MixMonitorStart",
    "MixMonitorStop",
    "OriginateResponse",
]


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event from one node. `fields` holds every header as sent (repeated headers joined by newlines)."""

    node: str
    name: str
    # Excluded from hashing so events can live in sets; equality still compares them.
    fields: dict[str, str] = field(default_factory=dict, hash=False)

    def get(self, key: str, default: str = "") -> str:
        """Header value: exact spelling first, then case-insensitively (Asterisk mixes UniqueID and Uniqueid)."""
        value = self.fields.get(key)
        if value is not None:
            return value
        lowered = key.lower()
        for k, v in self.fields.items():
            if k.lower() == lowered:
                return v
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key, None)  # type: ignore[arg-type]
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, None) is not None  # type: ignore[arg-type]

    @property
    def uniqueid(self) -> str:
        return self.get("Uniqueid")

    @property
    def linkedid(self) -> str:
        return self.get("Linkedid")

    @property
    def channel(self) -> str:
        return self.get("Channel")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    @property
    def has_channel_snapshot(self) -> bool:
        """True when the unprefixed headers describe a channel (Asterisk adds ChannelState to every snapshot)."""
        return "ChannelState" in self.fields and "Uniqueid" in self.fields


class _ChannelEvent(AmiEvent):
    """Shared accessors for events that carry an unprefixed channel snapshot."""

    __slots__ = ()

    @property
    def state(self) -> str:
        return self.get("ChannelStateDesc")

    @property
    def state_code(self) -> int | None:
        return _int(self.get("ChannelState"))

    @property
    def caller_id_num(self) -> str:
        return self.get("CallerIDNum")

    @property
    def caller_id_name(self) -> str:
        return self.get("CallerIDName")

    @property
    def context(self) -> str:
        return self.get("Context")

    @property
    def exten(self) -> str:
        return self.get("Exten")


class _BridgeEvent(AmiEvent):
    __slots__ = ()

    @property
    def bridge_id(self) -> str:
        return self.get("BridgeUniqueid")

    @property
    def bridge_type(self) -> str:
        return self.get("BridgeType")

    @property
    def bridge_technology(self) -> str:
        return self.get("BridgeTechnology")

    @property
    def bridge_name(self) -> str:
        return self.get("BridgeName")

    @property
    def bridge_num_channels(self) -> int | None:
        return _int(self.get("BridgeNumChannels"))


class _ConfbridgeEvent(AmiEvent):
    __slots__ = ()

    @property
    def conference(self) -> str:
        return self.get("Conference")

    @property
    def bridge_id(self) -> str:
        return self.get("BridgeUniqueid")

    @property
    def admin(self) -> bool:
        return self.get("Admin").lower() == "yes"


class _SpyEvent(AmiEvent):
    __slots__ = ()

    @property
    def spyer_channel(self) -> str:
        return self.get("SpyerChannel")

    @property
    def spyer_uniqueid(self) -> str:
        return self.get("SpyerUniqueid")

    @property
    def spyee_channel(self) -> str:
        return self.get("SpyeeChannel")

    @property
    def spyee_uniqueid(self) -> str:
        return self.get("SpyeeUniqueid")


_REGISTRY: dict[str, type[AmiEvent]] = {}
E = TypeVar("E", bound=type[AmiEvent])


def register_event(name: str | None = None) -> Callable[[E], E]:
    """Class decorator: parse events called `name` (default: the class name) into this class."""

    def deco(cls: E) -> E:
        _REGISTRY[(name or cls.__name__).lower()] = cls
        return cls

    return deco


def event_class(name: str) -> type[AmiEvent]:
    """The class `parse_event` uses for an event name (AmiEvent when we have no specific one)."""
    return _REGISTRY.get(name.lower(), AmiEvent)


def _flatten(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def parse_event(node: str, message: Mapping[str, Any]) -> AmiEvent:
    """Build the typed event for one AMI message (a panoramisk Message or any header mapping)."""
    fields = {str(k): _flatten(v) for k, v in message.items()}
    name = fields.get("Event")
    if name is None:
        name = next((v for k, v in fields.items() if k.lower() == "event"), "")
    cls = event_class(name)
    return cls(node=node, name=name, fields=fields)


@register_event()
class Newchannel(_ChannelEvent):
    __slots__ = ()


@register_event()
class Newstate(_ChannelEvent):
    __slots__ = ()


@register_event()
class Hangup(_ChannelEvent):
    __slots__ = ()

    @property
    def cause(self) -> int | None:
        return _int(self.get("Cause"))

    @property
    def cause_txt(self) -> str:
        return self.get("Cause-txt")


@register_event()
class DialBegin(_ChannelEvent):
    """The unprefixed channel is the caller (absent for Originate); Dest* is the channel being dialled."""

    __slots__ = ()

    @property
    def dest_channel(self) -> str:
        return self.get("DestChannel")

    @property
    def dest_uniqueid(self) -> str:
        return self.get("DestUniqueid")

    @property
    def dial_string(self) -> str:
        return self.get("DialString")


@register_event()
class DialEnd(DialBegin):
    __slots__ = ()

    @property
    def dialstatus(self) -> str:
        return self.get("DialStatus")


@register_event()
class BridgeCreate(_BridgeEvent):
    __slots__ = ()


@register_event()
class BridgeDestroy(_BridgeEvent):
    __slots__ = ()


@register_event()
class BridgeEnter(_BridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class BridgeLeave(_BridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class BridgeMerge(AmiEvent):
    """Two bridges became one: every channel of From* now lives in To*."""

    __slots__ = ()

    @property
    def to_bridge_id(self) -> str:
        return self.get("ToBridgeUniqueid")

    @property
    def from_bridge_id(self) -> str:
        return self.get("FromBridgeUniqueid")


@register_event()
class ContactStatus(AmiEvent):
    """A PJSIP contact changed reachability (Created, Reachable, Unreachable, Removed, Updated, NonQualified)."""

    __slots__ = ()

    @property
    def aor(self) -> str:
        return self.get("AOR")

    @property
    def uri(self) -> str:
        return self.get("URI")

    @property
    def status(self) -> str:
        return self.get("ContactStatus")

    @property
    def endpoint(self) -> str:
        return self.get("EndpointName")

    @property
    def roundtrip_usec(self) -> int | None:
        return _int(self.get("RoundtripUsec"))


@register_event()
class DeviceStateChange(AmiEvent):
    __slots__ = ()

    @property
    def device(self) -> str:
        return self.get("Device")

    @property
    def state(self) -> str:
        return self.get("State")


@register_event()
class ConfbridgeJoin(_ConfbridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class ConfbridgeLeave(_ConfbridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class ConfbridgeTalking(_ConfbridgeEvent, _ChannelEvent):
    __slots__ = ()

    @property
    def talking(self) -> bool:
        return self.get("TalkingStatus").lower() == "on"


@register_event()
class ConfbridgeMute(_ConfbridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class ConfbridgeUnmute(_ConfbridgeEvent, _ChannelEvent):
    __slots__ = ()


@register_event()
class FullyBooted(AmiEvent):
    __slots__ = ()

    @property
    def status(self) -> str:
        return self.get("Status")

    @property
    def uptime(self) -> int | None:
        return _int(self.get("Uptime"))


@register_event()
class Shutdown(AmiEvent):
    __slots__ = ()

    @property
    def restart(self) -> bool:
        return self.get("Restart").lower() in ("true", "yes")


@register_event()
class ChanSpyStart(_SpyEvent):
    __slots__ = ()


@register_event()
class ChanSpyStop(_SpyEvent):
    __slots__ = ()


@register_event()
class MixMonitorStart(_ChannelEvent):
    __slots__ = ()


@register_event()
class MixMonitorStop(_ChannelEvent):
    __slots__ = ()


@register_event()
class OriginateResponse(_ChannelEvent):
    """Outcome of an `Async: true` Originate; matched to the request by ActionID."""

    __slots__ = ()

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def reason(self) -> int | None:
        return _int(self.get("Reason"))


@dataclass(frozen=True, slots=True)
class AmiConnected:
    """Our own event: logged in to `node` (first time or after a reconnect); live state must be resynced."""

    node: str


@dataclass(frozen=True, slots=True)
class AmiDisconnected:
    """Our own event: the AMI connection to `node` is gone; events may be missed until AmiConnected."""

    node: str
    reason: str


ClientEvent = AmiEvent | AmiConnected | AmiDisconnected

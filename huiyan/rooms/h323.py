"""H.323 addresses of legacy room systems and the OOH323 dial strings they become. Pure: no I/O.

Invitation targets (`POST /api/rooms/{id}/invitations`):

| target                            | dials                | needs                                              |
|-----------------------------------|----------------------|----------------------------------------------------|
| `h323:10.0.0.5`, `…:1720`         | `OOH323/<peer>`      | a configured peer at that address (`h323.peers`)   |
| `h323:6001@10.0.0.5[:port]`       | `OOH323/6001@<peer>` | the same; 6001 is the alias to call there (note 1) |
| `h323:<peer name>`                | `OOH323/<peer>`      | the peer                                           |
| `h323:<alias>`, `h323:<alias>@gk` | `OOH323/<alias>`     | a gatekeeper (`h323.gatekeeper`) resolves it       |

Note 1: an MCU's conference number, an E.164 number or an H.323-ID. Gatekeeper dialling follows
chan_ooh323's documented `OOH323/alias` form but is untested here (no gatekeeper on the test machines).

Why the peers must be configured (chan_ooh323 in Asterisk 22, `ooh323_request`): without a gatekeeper it
dials only peers named in ooh323.conf ("Call to undefined peer" otherwise, whatever `OOH323/ip:port`
its sample config promises) and accepts calls only from users listed there ("Unacceptable ip").

What chan_ooh323 carries (checked against a second Asterisk, see tests/integration/test_h323.py): G.711
audio. No video at all: its H.263 capability has maxBitRate 320*1024, above H.245's limit of 192400, so
offering H.263 makes the capability exchange fail to encode (ASN.1 error -24) and the call has no media;
besides, the driver has no video RTP session and always runs its stack in audio-call mode. And DTMF
goes as H.245 user input (`h245alphanumeric`): with RFC 2833 (the driver's default) the channel sends no
RTP at all, Asterisk logging "Don't know how to send format ulaw packets with RTP" (the driver maps only
telephone-event, payload type 101, on its RTP session, and Asterisk 22's RTP engine then finds no
transmit mapping for G.711's static payload type 0).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

PREFIX = "h323:"
DEFAULT_PORT = 1720
GATEKEEPER_HOST = "gk"  # `h323:alias@gk`: let the gatekeeper find it
_ALIAS = r"[A-Za-z0-9._-]{1,64}"  # E.164 digits or an H.323-ID (no @ / , : so the dial string stays one)
_HOST = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z][A-Za-z0-9_-]{0,39}"
# The syntax alone (the API's schema); what the address names is checked against the node's H.323 plan.
H323_TARGET_RE = rf"^h323:(?:{_ALIAS}@)?(?:{_HOST})(?::[0-9]{{1,5}})?$"
_TARGET = re.compile(rf"^h323:(?:(?P<alias>{_ALIAS})@)?(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?$", re.I)


class H323AddressError(ValueError):
    """A malformed H.323 address, or one this node cannot dial."""


@dataclass(frozen=True, slots=True)
class H323Peer:
    name: str
    host: str
    port: int = DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class H323Plan:
    """What this node can dial over H.323: its configured peers, and whether a gatekeeper resolves aliases."""

    peers: tuple[H323Peer, ...] = ()
    gatekeeper: bool = False

    @classmethod
    def from_settings(cls, h323: Any) -> H323Plan | None:
        """None when H.323 is disabled on this node."""
        if h323 is None or not h323.enabled:
            return None
        return cls(tuple(H323Peer(p.name, p.host, p.port) for p in h323.peers), h323.uses_gatekeeper)

    def peer_at(self, host: str, port: int) -> H323Peer | None:
        return next((p for p in self.peers if p.host == host and p.port == port), None)

    def peer_named(self, name: str) -> H323Peer | None:
        return next((p for p in self.peers if p.name.lower() == name.lower()), None)


@dataclass(frozen=True, slots=True)
class H323Address:
    alias: str | None  # what to call at the host (a conference number, an E.164 number, an H.323-ID)
    host: str  # an IP address (normalised), a peer's name, or an alias when `ip` is False
    port: int | None
    ip: bool


def is_h323(target: str) -> bool:
    return target.strip().lower().startswith(PREFIX)


def parse(target: str) -> H323Address:
    t = target.strip()
    m = _TARGET.match(t)
    if not m or not t.lower().startswith(PREFIX):
        raise H323AddressError(
            f"{target!r} is not an H.323 address: use h323:<ip>[:port], h323:<alias>@<ip>[:port], "
            "h323:<configured room name> or, with a gatekeeper, h323:<alias>")
    host, port = m.group("host"), m.group("port")
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host.startswith("[") or re.fullmatch(r"[0-9.]+", host):
            raise H323AddressError(f"{host!r} in {target!r} is not a valid IP address") from None
        if port is not None:
            raise H323AddressError(f"{target!r}: a port goes with an IP address, not with a name")
        return H323Address(alias=m.group("alias"), host=host, port=None, ip=False)
    number = int(port) if port is not None else DEFAULT_PORT
    if not 1 <= number <= 65535:
        raise H323AddressError(f"port {port} in {target!r} is out of range (1-65535)")
    return H323Address(alias=m.group("alias"), host=str(addr), port=number, ip=True)


def dial_string(target: str, plan: H323Plan | None) -> str:
    """The OOH323 dial string for an H.323 invitation target on a node with this H.323 plan."""
    if plan is None:
        raise H323AddressError(f"cannot invite {target.strip()}: H.323 is not enabled on this node (h323.enabled)")
    a = parse(target)
    at = f"{a.alias}@" if a.alias else ""
    if a.ip:
        peer = plan.peer_at(a.host, a.port or DEFAULT_PORT)
        if peer is None:
            known = ", ".join(f"{p.name} {p.host}:{p.port}" for p in plan.peers) or "none"
            raise H323AddressError(
                f"cannot invite {target.strip()}: {a.host}:{a.port} is not a configured H.323 room system "
                f"(h323.peers: {known}); chan_ooh323 calls only configured peers")
        return f"OOH323/{at}{peer.name}"
    if a.alias and a.host.lower() == GATEKEEPER_HOST:
        if not plan.gatekeeper:
            raise H323AddressError(f"cannot invite {target.strip()}: no H.323 gatekeeper is configured")
        return f"OOH323/{a.alias}"
    peer = plan.peer_named(a.host)
    if peer is not None:
        return f"OOH323/{at}{peer.name}"
    if a.alias is None and plan.gatekeeper:
        return f"OOH323/{a.host}"  # an alias the gatekeeper resolves
    raise H323AddressError(
        f"cannot invite {target.strip()}: no H.323 room system named {a.host!r} is configured"
        + ("" if plan.gatekeeper else " and there is no gatekeeper to resolve it"))


def peer_of_channel(channel: str) -> str | None:
    """The peer name in an `OOH323/<name>-<n>` channel (None for any other technology)."""
    if not channel.startswith("OOH323/"):
        return None
    return channel[len("OOH323/"):].rsplit("-", 1)[0]

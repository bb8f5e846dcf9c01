"""Plain data that the Asterisk configuration is rendered from (filled from the database at run time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Caller classes are a security boundary: each one is its own dialplan context.
CallerClass = Literal["citizen", "guest", "terminal", "staff", "trunk"]
CALLER_CLASSES: tuple[str, ...] = ("citizen", "guest", "terminal", "staff", "trunk")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One SIP account on the PBX: a bureau terminal, a staff member's browser/softphone, a kiosk."""

    name: str  # SIP username == endpoint id == internal extension (e.g. "80001")
    password: str
    caller_class: CallerClass
    webrtc: bool = False  # browser client: ICE, DTLS-SRTP, AVPF, rtcp-mux over WebSocket
    display_name: str = ""
    max_contacts: int = 1
    language: str = "zh"
    # Video streams the client takes at once; > 1 lets an SFU room send it everyone's video (huiyan.rooms).
    max_video_streams: int = 1

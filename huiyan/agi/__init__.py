"""FastAGI: the per-call coroutine side of huiyan (answer, prompts, hand-off), one session per call."""

from huiyan.agi.request import (
    AgiCommandError,
    AgiConnectionClosed,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiRequest,
    AgiResponse,
    AgiTimeout,
    parse_request,
    parse_response,
    read_request,
)
from huiyan.agi.server import AgiSession, FastAgiServer, Handler

__all__ = [
    "AgiCommandError",
    "AgiConnectionClosed",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiRequest",
    "AgiResponse",
    "AgiSession",
    "AgiTimeout",
    "FastAgiServer",
    "Handler",
    "parse_request",
    "parse_response",
    "read_request",
]

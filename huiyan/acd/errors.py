"""Errors of the call distributor; the API maps UnknownX to 404, InvalidTransition to 409, InvalidArgument to 400."""

from __future__ import annotations

__all__ = ["AcdError", "UnknownQueue", "UnknownAgent", "UnknownCall", "InvalidTransition", "InvalidArgument"]


class AcdError(Exception):
    """Base class. The message says what was asked and why it cannot be done; it is fit to show as is."""


class UnknownQueue(AcdError, LookupError):
    """No queue with that id was configured (HTTP 404)."""


class UnknownAgent(AcdError, LookupError):
    """No agent with that id was configured (HTTP 404)."""


class UnknownCall(AcdError, LookupError):
    """No call with that id is in the distributor: never enqueued, or already left (HTTP 404)."""


class InvalidTransition(AcdError):
    """The operation does not fit the current state, e.g. answering an offer that already timed out (HTTP 409)."""


class InvalidArgument(AcdError, ValueError):
    """A value is out of range or malformed: a skill level of 11, a negative ring timeout (HTTP 400)."""

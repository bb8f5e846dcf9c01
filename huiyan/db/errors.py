"""Domain errors of the directory; the API maps each to one HTTP status."""

from __future__ import annotations


class DirectoryError(Exception):
    """Base class: the message is shown to the caller as is, so it says what is wrong and with what."""


class NotFound(DirectoryError):
    """The thing addressed does not exist (HTTP 404)."""


class Conflict(DirectoryError):
    """The change would clash with existing data: a duplicate, or something still in use (HTTP 409)."""


class Invalid(DirectoryError):
    """The change breaks a domain rule: a bad parent level, a number outside the plan (HTTP 400)."""

"""Bus events about the directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class DirectoryChanged:
    """A user or device was created, changed or deleted: the SIP endpoints must be re-rendered."""

    kind: Literal["user", "device"]
    action: Literal["created", "updated", "deleted"]
    id: int
    extension: str

"""The internal numbering plan (`_8XXXX`): which extensions are valid and which one is free next."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExtensionPlan:
    """A fixed-prefix Asterisk pattern: `_8XXXX` is prefix "8" followed by 4 digits."""

    prefix: str
    free_digits: int

    @classmethod
    def from_pattern(cls, pattern: str) -> ExtensionPlan:
        m = re.fullmatch(r"_(\d*)(X+)", pattern)
        if m is None:
            raise ValueError(f"unsupported extension pattern {pattern!r}: expected '_' + digits + 'X's, e.g. _8XXXX")
        return cls(prefix=m.group(1), free_digits=len(m.group(2)))

    @property
    def pattern(self) -> str:
        return "_" + self.prefix + "X" * self.free_digits

    def contains(self, extension: str) -> bool:
        return (
            len(extension) == len(self.prefix) + self.free_digits
            and extension.isascii()
            and extension.isdigit()
            and extension.startswith(self.prefix)
        )

    def numbers(self) -> Iterator[str]:
        """Every extension in the plan, lowest first; the all-zero one (80000) is skipped."""
        for n in range(1, 10**self.free_digits):
            yield f"{self.prefix}{n:0{self.free_digits}d}"


DEFAULT_PLAN = ExtensionPlan.from_pattern("_8XXXX")

"""Where recordings go and how a call asks Asterisk to record it (audio now; video and evidence: issue 5)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class RecordingTarget:
    kind: str  # hotline, mediation, checkin, meeting
    ref: str  # the call's or session's id
    path: Path  # without extension: Asterisk adds the format's

    @property
    def wav(self) -> Path:
        return self.path.with_suffix(".wav")

    def mixmonitor_args(self) -> tuple[str, str]:
        # b: only while bridged (no hold music in the file); the .wav is the two parties mixed.
        return (str(self.wav), "b")


def target(recordings_dir: Path, kind: str, ref: str, when: datetime | None = None) -> RecordingTarget:
    """A unique, date-sharded place for one recording; `ref` is sanitised (it comes from channel ids)."""
    when = when or datetime.now(timezone.utc)
    safe = _SAFE.sub("_", ref)[:120] or "unknown"
    day = recordings_dir / kind / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}"
    day.mkdir(parents=True, exist_ok=True)
    return RecordingTarget(kind=kind, ref=ref, path=day / f"{kind}-{when:%Y%m%dT%H%M%S}-{safe}")

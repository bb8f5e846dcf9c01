"""Recordings as evidence (录音录像): where captures go (`target()`, used by the hotline and the rooms), and
the evidence store built on them (see docs/recording.md):

settings.py  `[recordings]`: keep_raw, tolerance, disk alarm, share links, retention per session type
model.py     pure: the hash chain, verify's verdict, HTTP Range, signed share links, retention, who sees what
media.py     ffmpeg/ffprobe: N audio/video inputs -> one M4A/MP4 (copy where possible; several parties' video
             side by side / in a grid), probe, SHA-256
tap.py       the media tap: tcpdump on the video RTP ports of each recorded session's legs, a manifest beside
             the audio (which legs, when, which capture segments)
pcap.py      reading the tap's capture files
h264.py      RFC 6184 depacketizer (single NAL, STAP-A, FU-A) -> frames with RTP times; IVF for ffmpeg
video.py     a closed tap -> one H.264 stream per leg, placed against the audio
store.py     database: jobs (queue, lease, sweep), chain append, audit, access scope, search
pipeline.py  finalisation, one idempotent step at a time (resumes after a crash)
ops.py       verify, retention purge, re-encode (CLI and the daily task)
service.py   the controller's part: hooks from the bus, worker, disk alarm, sweep, daily purge
cli.py       `huiyan recordings verify|finalise|reencode|purge|jobs`
"""

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
        # Appended, not with_suffix(): a call's id ends in ".<n>" (pbx1-1795937149.0), which with_suffix would
        # replace - two calls answered in the same second would then share one file.
        return self.path.with_name(self.path.name + ".wav")

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

"""Settings of the recordings store: finalisation, disk alarm, share links and retention per session type."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

RETENTION_RE = re.compile(r"^(?:forever|(\d{1,4})([ymd]))$")

# Session types (what a recording is of). Rooms add theirs by `RoomKind` (meeting, mediation, dispatch,
# education); check-ins are issue 7.
SESSION_TYPES = ("hotline", "meeting", "mediation", "dispatch", "education", "checkin")

DEFAULT_RETENTION: dict[str, str] = {
    "mediation": "3y",  # kept for later case follow-up
    "checkin": "3y",
    "dispatch": "3y",
    "hotline": "1y",
    "meeting": "1y",
    "education": "1y",
}


class RecordingSettings(BaseModel):
    """`[recordings]` in huiyan.toml, or HUIYAN_RECORDINGS__<FIELD> in the environment."""

    keep_raw: bool = False  # keep the raw capture (WAV, and the video tap's pcap) after the final file is verified
    settle_s: float = Field(3.0, ge=0, le=600)  # a capture untouched this long (and its call gone) is closed
    duration_tolerance_s: float = Field(1.0, gt=0, le=60)  # final vs raw/session duration
    audio_bitrate: str = Field("64k", pattern=r"^[0-9]{1,4}k$")
    max_attempts: int = Field(3, ge=1, le=20)  # a job failing this often stays failed (raw kept) and alarms
    # Low disk: free bytes of the recordings directory below this raises an alarm and degrades /healthz.
    min_free_bytes: int = Field(2 * 1024**3, ge=0)
    disk_check_every_s: float = Field(30.0, gt=0)
    sweep_every_s: float = Field(600.0, gt=0)  # look for ended sessions whose capture has no job yet
    purge_every_s: float = Field(86400.0, gt=0)  # the daily retention purge
    share_ttl_s: int = Field(24 * 3600, ge=60)  # default lifetime of a share link
    share_max_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    retention: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RETENTION))
    # Video: the media tap (tap.py) captures each recorded session's inbound video RTP with tcpdump.
    video: bool = True
    tcpdump: str = "tcpdump"  # needs CAP_NET_RAW: root, or `setcap cap_net_raw+ep` on the binary
    capture_interface: str = "any"  # where the RTP arrives ("any": every interface, loopback included)
    # "tracks" (default): every party's video copied as its own track, bit for bit as sent (no re-encode:
    # ~150x real time for a two-party call here; most players show the first track, VLC/mpv switch).
    # "grid": two or more parties side by side (2) or in a grid, one re-encoded H.264 track (~6-10x real time
    # on 2 cores, short of issue 5's 20x for an hour); one party is copied either way. bench/recordings_bench.py
    video_layout: Literal["grid", "tracks"] = "tracks"

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: dict[str, str]) -> dict[str, str]:
        out = dict(DEFAULT_RETENTION)
        for kind, spec in v.items():
            spec = spec.strip().lower()
            if not RETENTION_RE.match(spec):
                raise ValueError(f"retention for {kind!r}: {spec!r} is not like '3y', '18m', '90d' or 'forever'")
            out[kind] = spec
        return out

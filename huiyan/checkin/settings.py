"""`[checkin]` in huiyan.toml (or HUIYAN_CHECKIN__<FIELD>): the check-in scheduler, PINs, the liveness
challenge, roll-calls, alerts and their escalation, attendance and the face model's threshold."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator


class CheckinSettings(BaseModel):
    timezone: str = "Asia/Shanghai"  # the province's: schedules' wall-clock times and report months
    tick_s: float = Field(5.0, gt=0, le=600)  # how often the scheduler opens/closes windows and escalates
    horizon_h: float = Field(48.0, gt=0, le=24 * 14)  # windows are made this far ahead
    lookback_h: float = Field(24.0 * 7, gt=0, le=24 * 62)  # after an outage, windows this far back still count
    escalate_after_s: float = Field(1800.0, gt=0)  # an alert nobody acknowledged goes to the office head
    escalate_to: str | None = None  # username; used when the subject's office has no supervisor
    pin_tries: int = Field(3, ge=1, le=10)  # then the check-in is rejected and alerted
    challenge_digits: int = Field(4, ge=3, le=8)  # the liveness challenge: digits to read out
    answer_s: int = Field(6, ge=1, le=60)  # recorded time to read them out (phone flow)
    rollcall_ring_s: int = Field(30, ge=5, le=180)
    rollcall_max_s: float = Field(300.0, ge=10)  # a roll-call call longer than this is given up on
    attendance_share: float = Field(0.8, gt=0, le=1)  # education: present with at least this share
    face_threshold: float = Field(0.6, gt=0, lt=2)  # dlib ResNet descriptor distance: at most this = same person
    session_ttl_s: int = Field(900, ge=60, le=24 * 3600)  # the page's check-in token
    code_ttl_s: int = Field(24 * 3600, ge=60, le=30 * 24 * 3600)  # one-time codes
    max_image_bytes: int = Field(8 * 1024 * 1024, ge=1024)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Shanghai)") from None
        return v

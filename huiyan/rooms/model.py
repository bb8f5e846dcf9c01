"""The rooms' pure decisions: ConfBridge profiles per video mode and role, PIN and admission rules, what each
endpoint sees, dial strings for invitations, and the live state machine of one room. No I/O here.

Video modes and endpoint classes (Asterisk never transcodes video, and ConfBridge decides per room):

| endpoint                                   | streams | `sfu` room                       | `follow_talker` / `presenter` |
|--------------------------------------------|---------|----------------------------------|-------------------------------|
| browser (users, browser seats; webrtc=yes) | 16      | every other participant's stream | one: the talker / presenter   |
| SIP client (softphone devices)             | 16      | every other participant's stream | one: the talker / presenter   |
| bureau terminal (小鱼)                     | 1       | sends its video, receives none   | one: the talker / presenter   |
| legacy room via the trunk                  | 1       | sends its video, receives none   | one: the talker / presenter   |
| legacy H.323 room (chan_ooh323)            | 0       | audio only                       | audio only                    |

So a room that terminals or legacy rooms join is `follow_talker` (the default) or `presenter`; `sfu` is
for rooms of browsers and multi-stream SIP clients (a terminal that joins one anyway is told so in its
participant view: `receives: "none"`). In `presenter` rooms the first moderator (the chair) is the video
source until someone else is made presenter; in `follow_talker` rooms making someone presenter pins the
video to them until the presenter is released, then it follows the talker again. That is how a terminal
shares its PPT (its content goes out as its video); a browser shares its screen as a video stream.
An H.323 room (chan_ooh323 carries no video, see huiyan/rooms/h323.py) hears the mixed audio in any mode;
it never becomes the talker's video (ConfBridge picks video talkers only), so the others keep seeing the
last video talker while it speaks, and it cannot be made presenter (409).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from huiyan.db.models import RoomKind, VideoMode
from huiyan.rooms import h323 as h323_address

__all__ = [
    "RoomKind", "VideoMode", "Role", "Profiles", "profiles", "BRIDGE_PROFILES", "USER_PROFILES", "MENUS",
    "PARTICIPANT_MENU", "MODERATOR_MENU", "RELEASE_PRESENTER_KEYS", "RoomSpec", "Invitee", "Refusal", "admit",
    "needs_pin", "check_pin", "video_receives", "dial_target", "RoomError", "RoomNotFound", "ParticipantNotFound",
    "ParticipantLeft", "RoomNotLive", "RoomConflict", "BadTarget", "BadH323Target", "Participant", "RoomChange",
    "RoomState",
]

PIN_RE = r"^[0-9]{4,12}$"
EARLY_JOIN = timedelta(minutes=15)  # a scheduled room opens this long before its start
DEPARTED_KEPT = 200  # participants who left, remembered per room to answer "already left" (409) not 404


class Role(StrEnum):
    MODERATOR = "moderator"  # ConfBridge admin + marked: may lock, kick, mute others; bypasses lock and limit
    PARTICIPANT = "participant"


# ---- ConfBridge profiles (rendered into confbridge.conf by huiyan.config.render) ------------------------

# Bridge profile per video mode. record_file_timestamp=no: the recording goes exactly where we say.
_BRIDGE_COMMON: dict[str, Any] = {
    "max_members": 200, "mixing_interval": 20, "internal_sample_rate": "auto", "language": "zh",
    "record_file_timestamp": "no", "record_file_append": "no",
}
BRIDGE_PROFILES: dict[VideoMode, tuple[str, dict[str, Any]]] = {
    VideoMode.FOLLOW_TALKER: ("huiyan_follow_talker", {"video_mode": "follow_talker", **_BRIDGE_COMMON}),
    VideoMode.SFU: ("huiyan_sfu", {"video_mode": "sfu", **_BRIDGE_COMMON, "max_members": 50}),
    # first_marked: the first moderator (marked) to join is the source; ConfbridgeSetSingleVideoSrc moves it.
    VideoMode.PRESENTER: ("huiyan_presenter", {"video_mode": "first_marked", **_BRIDGE_COMMON}),
}
# quiet: no English enter/leave sounds; talk_detection_events: ConfbridgeTalking for the participant list.
_USER_COMMON: dict[str, Any] = {
    "quiet": "yes", "announce_join_leave": "no", "talk_detection_events": "yes", "dsp_drop_silence": "yes",
    "music_on_hold_when_empty": "yes",
}
USER_PROFILES: dict[Role, tuple[str, dict[str, Any]]] = {
    Role.PARTICIPANT: ("huiyan_user", dict(_USER_COMMON)),
    Role.MODERATOR: ("huiyan_moderator", {**_USER_COMMON, "admin": "yes", "marked": "yes"}),
}
# DTMF menus. Everyone: mute self, leave, stop presenting. Moderators also: lock, kick the last joiner,
# present their own video, mute/unmute everyone else. *6 is also how the API releases a presenter: it
# plays the keys into the presenter's channel (there is no AMI action for it).
RELEASE_PRESENTER_KEYS = "*6"
PARTICIPANT_MENU: dict[str, str] = {
    "*1": "toggle_mute", "*4": "leave_conference", RELEASE_PRESENTER_KEYS: "release_as_single_video_src",
}
MODERATOR_MENU: dict[str, str] = dict(sorted({
    **PARTICIPANT_MENU, "*2": "admin_toggle_conference_lock", "*3": "admin_kick_last",
    "*5": "set_as_single_video_src", "*7": "admin_toggle_mute_participants",
}.items()))
MENUS: dict[Role, tuple[str, dict[str, str]]] = {
    Role.PARTICIPANT: ("huiyan_menu", PARTICIPANT_MENU),
    Role.MODERATOR: ("huiyan_moderator_menu", MODERATOR_MENU),
}


@dataclass(frozen=True, slots=True)
class Profiles:
    bridge: str
    user: str
    menu: str

    def confbridge_args(self, number: str) -> tuple[str, str, str, str]:
        """Arguments of `ConfBridge(conference, bridge_profile, user_profile, menu)`."""
        return (number, self.bridge, self.user, self.menu)


def profiles(mode: VideoMode | str, role: Role | str) -> Profiles:
    mode, role = VideoMode(mode), Role(role)
    return Profiles(BRIDGE_PROFILES[mode][0], USER_PROFILES[role][0], MENUS[role][0])


# ---- rooms as configured --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitee:
    target: str
    name: str = ""
    moderator: bool = False


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """A room as the runtime needs it (loaded from the database)."""

    id: int
    number: str
    name: str
    kind: RoomKind = RoomKind.MEETING
    video_mode: VideoMode = VideoMode.FOLLOW_TALKER
    pin: str | None = None
    moderator_pin: str | None = None
    max_participants: int = 50
    record: bool = False
    locked: bool = False
    active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    moderator_extensions: frozenset[str] = frozenset()
    invitees: tuple[Invitee, ...] = ()

    @property
    def permanent(self) -> bool:
        return self.starts_at is None and self.ends_at is None

    def invitee_for(self, extension: str | None) -> Invitee | None:
        if not extension:
            return None
        return next((i for i in self.invitees if i.target == extension), None)


class Refusal(StrEnum):
    """Why a caller may not join; each has a prompt of its own."""

    UNAVAILABLE = "unavailable"  # no such room, or deactivated
    CLOSED = "closed"  # a scheduled room outside its time
    LOCKED = "locked"
    FULL = "full"
    PIN = "pin"  # three wrong PINs


REFUSAL_PROMPTS: dict[Refusal, str] = {
    Refusal.UNAVAILABLE: "unavailable",
    Refusal.CLOSED: "room_closed",
    Refusal.LOCKED: "room_locked",
    Refusal.FULL: "room_full",
    Refusal.PIN: "goodbye",
}


def known_role(spec: RoomSpec, *, extension: str | None, invited_as: Role | None = None) -> Role | None:
    """The role a caller has without a PIN: invited by dial-out, a moderator user, an invited extension,
    or anyone when the room has no PIN at all. None: ask for a PIN."""
    if invited_as is not None:
        return invited_as
    if extension and extension in spec.moderator_extensions:
        return Role.MODERATOR
    invitee = spec.invitee_for(extension)
    if invitee is not None:
        return Role.MODERATOR if invitee.moderator else Role.PARTICIPANT
    if not needs_pin(spec):
        return Role.PARTICIPANT
    return None


def needs_pin(spec: RoomSpec) -> bool:
    """A PIN prompt when the room has a PIN, or a moderator PIN (participants of a room without a
    participant PIN then just press #)."""
    return bool(spec.pin or spec.moderator_pin)


def check_pin(spec: RoomSpec, digits: str) -> Role | None:
    """The role the digits give, or None for a wrong PIN."""
    if spec.moderator_pin and digits == spec.moderator_pin:
        return Role.MODERATOR
    if spec.pin and digits == spec.pin:
        return Role.PARTICIPANT
    if not spec.pin and digits == "":
        return Role.PARTICIPANT
    return None


def admit(spec: RoomSpec | None, role: Role | None, *, now: datetime, present: int,
          live_locked: bool) -> Refusal | None:
    """None when the caller may join. Moderators pass a lock and a full room (as ConfBridge admins do);
    nobody joins a scheduled room outside its time (it opens EARLY_JOIN before the start)."""
    if spec is None or not spec.active:
        return Refusal.UNAVAILABLE
    if spec.starts_at is not None and now < spec.starts_at - EARLY_JOIN:
        return Refusal.CLOSED
    if spec.ends_at is not None and now > spec.ends_at:
        return Refusal.CLOSED
    if role == Role.MODERATOR:
        return None
    if spec.locked or live_locked:
        return Refusal.LOCKED
    if present >= spec.max_participants:
        return Refusal.FULL
    return None


def video_receives(mode: VideoMode, *, sends_video: bool | None, max_streams: int) -> str:
    """What video a participant receives: "all" (a stream per other participant), "talker", "presenter",
    or "none" (no video negotiated, or a single-stream endpoint in an SFU room)."""
    if sends_video is False:
        return "none"
    if mode == VideoMode.SFU:
        return "all" if max_streams > 1 else "none"
    return "talker" if mode == VideoMode.FOLLOW_TALKER else "presenter"


# ---- invitations: what Originate dials ---------------------------------------------------------------

_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_SIP_URI = re.compile(r"^sips?:(?:[A-Za-z0-9._~%+-]+@)?([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$")


def dial_target(target: str, *, internal: Any, trunk_endpoint: str | None, trunk_host: str = "",
                anonymous_endpoint: str = "anonymous", h323: Any = None) -> str:
    """The dial string for one invitation.

    - an internal extension (a user's or a device's; `internal` is the plan, e.g. `_8XXXX`) → its endpoint;
    - a SIP URI → sent through the trunk when it names the trunk's host (so the legacy system's
      authentication and codecs apply), otherwise with the anonymous endpoint's media settings;
    - a phone number → through the trunk;
    - an H.323 address (`h323:…`; `h323` is the node's `huiyan.rooms.h323.H323Plan`, None when H.323 is
      off) → `OOH323/…` (see huiyan/rooms/h323.py for the forms and why they must name configured peers).
    """
    t = target.strip()
    if internal.contains(t):
        return f"PJSIP/{t}"
    m = _SIP_URI.match(t)
    if m:
        if trunk_endpoint and trunk_host and m.group(1) == trunk_host:
            return f"PJSIP/{trunk_endpoint}/{t}"
        return f"PJSIP/{anonymous_endpoint}/{t}"
    if h323_address.is_h323(t):
        try:
            return h323_address.dial_string(t, h323)
        except h323_address.H323AddressError as exc:
            raise BadH323Target(str(exc)) from exc
    if _NUMBER.match(t):
        if not trunk_endpoint:
            raise BadTarget(f"cannot call {t}: no trunk to the telephone/legacy network is configured")
        return f"PJSIP/{t.lstrip('+')}@{trunk_endpoint}"
    raise BadTarget(
        f"target {target!r} is not an extension ({internal.pattern}), a SIP URI (sip:user@host) or a phone number"
    )


# ---- errors (the API maps `status` to HTTP) --------------------------------------------------------------


class RoomError(Exception):
    status = 400


class RoomNotFound(RoomError):
    status = 404


class ParticipantNotFound(RoomError):
    status = 404


class ParticipantLeft(RoomError):
    status = 409


class RoomNotLive(RoomError):
    status = 409


class RoomConflict(RoomError):
    status = 409


class BadTarget(RoomError):
    status = 400


class BadH323Target(BadTarget):
    status = 422  # a malformed H.323 address, or one the node cannot dial (H.323 off, not a configured peer)


# ---- the live state of one room ----------------------------------------------------------------------


@dataclass
class Participant:
    id: str  # the channel's uniqueid
    channel: str
    number: str = ""
    name: str = ""
    role: Role = Role.PARTICIPANT
    muted: bool = False
    talking: bool = False
    sends_video: bool | None = None  # None: not known (joined while the controller was away)
    max_streams: int = 1
    invited: bool = False
    joined_at: float = 0.0
    left_at: float | None = None

    def view(self, mode: VideoMode, presenter: str | None) -> dict[str, Any]:
        return {
            "id": self.id, "channel": self.channel, "number": self.number, "name": self.name,
            "role": self.role.value, "muted": self.muted, "talking": self.talking, "invited": self.invited,
            "video": {
                "sends": self.sends_video,
                "receives": video_receives(mode, sends_video=self.sends_video, max_streams=self.max_streams),
                "presenter": presenter == self.id,
            },
            "joined_at": self.joined_at, "left_at": self.left_at,
        }


@dataclass(frozen=True, slots=True)
class RoomChange:
    """Something that changed in a room; the service publishes it as a RoomEvent."""

    # started, ended, joined, left, talking, muted, unmuted, locked, unlocked, presenter, recording_started,
    # recording_stopped; the service adds refused (a caller turned away) and invitation (a dial-out's status)
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class RoomState:
    """One room's live state, driven by what Asterisk reports (and by our own successful actions where
    Asterisk reports nothing: lock, presenter release). Each transition returns what changed."""

    def __init__(self, number: str, mode: VideoMode = VideoMode.FOLLOW_TALKER) -> None:
        self.number = number
        self.mode = mode
        self.bridge_id = ""
        self.started_at: float | None = None
        self.locked = False
        self.recording: str | None = None
        self.presenter: str | None = None
        self.video_source: str | None = None  # whoever's video goes out now (talker or presenter)
        self.participants: dict[str, Participant] = {}
        self.departed: OrderedDict[str, Participant] = OrderedDict()
        self.peak = 0

    @property
    def live(self) -> bool:
        return self.started_at is not None

    # ---- lookups -----------------------------------------------------------------------------------
    def participant(self, pid: str) -> Participant:
        p = self.participants.get(pid)
        if p is not None:
            return p
        gone = self.departed.get(pid)
        if gone is not None:
            raise ParticipantLeft(f"participant {pid} ({gone.name or gone.number or gone.channel}) already left "
                                  f"room {self.number}")
        raise ParticipantNotFound(f"no participant {pid} in room {self.number}")

    def by_channel(self, channel: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.channel == channel), None)

    def require_live(self) -> None:
        if not self.live:
            raise RoomNotLive(f"room {self.number} has no meeting in progress")

    def view(self) -> dict[str, Any]:
        return {
            "number": self.number, "live": self.live, "started_at": self.started_at, "locked": self.locked,
            "recording": self.recording is not None, "presenter": self.presenter, "video_mode": self.mode.value,
            "video_source": self.video_source,
            "participants": [p.view(self.mode, self.presenter) for p in
                             sorted(self.participants.values(), key=lambda p: (p.joined_at, p.id))],
        }

    # ---- transitions -------------------------------------------------------------------------------
    def start(self, bridge_id: str, at: float) -> list[RoomChange]:
        if self.live:
            if bridge_id and not self.bridge_id:
                self.bridge_id = bridge_id
            return []
        self.started_at, self.bridge_id = at, bridge_id
        self.locked, self.recording, self.presenter, self.peak = False, None, None, 0
        return [RoomChange("started", {"bridge_id": bridge_id})]

    def join(self, p: Participant, at: float, bridge_id: str = "") -> list[RoomChange]:
        changes = self.start(bridge_id, at)
        if p.id in self.participants:
            return changes
        p = replace(p, joined_at=p.joined_at or at, left_at=None)
        self.participants[p.id] = p
        self.departed.pop(p.id, None)
        self.peak = max(self.peak, len(self.participants))
        changes.append(RoomChange("joined", p.view(self.mode, self.presenter)))
        if self.mode == VideoMode.PRESENTER and self.video_source == p.id:
            # Asterisk made the chair the source (first_marked) before reporting the join.
            changes += self.set_presenter(p.id)
        return changes

    def leave(self, pid: str, at: float) -> list[RoomChange]:
        p = self.participants.pop(pid, None)
        if p is None:
            return []
        p.left_at, p.talking = at, False
        self._remember(p)
        changes = [RoomChange("left", {"id": pid, "channel": p.channel})]
        if self.presenter == pid:
            self.presenter = None
            changes.append(RoomChange("presenter", {"id": None, "previous": pid}))
        return changes

    def end(self, at: float) -> list[RoomChange]:
        if not self.live and not self.participants:
            return []
        changes: list[RoomChange] = []
        for pid in list(self.participants):
            changes += self.leave(pid, at)
        if self.recording is not None:
            changes += self.recording_stopped()
        self.started_at, self.bridge_id, self.locked, self.presenter, self.video_source = None, "", False, None, None
        return [*changes, RoomChange("ended", {"peak": self.peak})]

    def talking(self, pid: str, on: bool) -> list[RoomChange]:
        p = self.participants.get(pid)
        if p is None or p.talking == on:
            return []
        p.talking = on
        return [RoomChange("talking", {"id": pid, "talking": on})]

    def muted(self, pid: str, on: bool) -> list[RoomChange]:
        p = self.participants.get(pid)
        if p is None or p.muted == on:
            return []
        p.muted = on
        if on:
            p.talking = False
        return [RoomChange("muted" if on else "unmuted", {"id": pid})]

    def set_locked(self, on: bool) -> list[RoomChange]:
        if self.locked == on:
            return []
        self.locked = on
        return [RoomChange("locked" if on else "unlocked")]

    def check_presenter(self, pid: str | None) -> Participant | None:
        """Raises when `pid` cannot be made presenter (or, with None, when there is none to release)."""
        self.require_live()
        if self.mode == VideoMode.SFU:
            raise RoomConflict(f"room {self.number} is an SFU room: everyone's video is sent to everyone, "
                               "there is no single presenter (share a screen as a video stream instead)")
        if pid is None:
            if self.presenter is None:
                raise RoomConflict(f"room {self.number} has no presenter to release")
            return self.participant(self.presenter)
        p = self.participant(pid)
        if p.sends_video is False:
            # Everyone would watch nothing (an audio-only H.323 room, a phone).
            raise RoomConflict(f"participant {pid} in room {self.number} sends no video: it cannot be the presenter")
        return p

    def set_presenter(self, pid: str | None) -> list[RoomChange]:
        if self.presenter == pid:
            return []
        previous, self.presenter = self.presenter, pid
        return [RoomChange("presenter", {"id": pid, "previous": previous})]

    def source_changed(self, uniqueid: str) -> list[RoomChange]:
        """Asterisk's BridgeVideoSourceUpdate: who is the single source now (presenter modes)."""
        self.video_source = uniqueid or None
        if self.mode == VideoMode.FOLLOW_TALKER and self.presenter is None:
            return []  # the talker changed: not a presenter
        if uniqueid in self.participants:
            return self.set_presenter(uniqueid)
        return []

    def recording_started(self, path: str) -> list[RoomChange]:
        if self.recording == path:
            return []
        self.recording = path
        return [RoomChange("recording_started", {"path": path})]

    def recording_stopped(self) -> list[RoomChange]:
        if self.recording is None:
            return []
        path, self.recording = self.recording, None
        return [RoomChange("recording_stopped", {"path": path})]

    def _remember(self, p: Participant) -> None:
        self.departed[p.id] = p
        self.departed.move_to_end(p.id)
        while len(self.departed) > DEPARTED_KEPT:
            self.departed.popitem(last=False)

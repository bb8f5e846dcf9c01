"""Rooms' pure decisions: profiles per video mode and role, PIN and admission, what each endpoint sees,
dial strings for invitations, and the live state machine of one room."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from huiyan.db.numbering import ExtensionPlan
from huiyan.rooms.model import (
    BRIDGE_PROFILES,
    DEPARTED_KEPT,
    EARLY_JOIN,
    MENUS,
    RELEASE_PRESENTER_KEYS,
    BadTarget,
    Invitee,
    Participant,
    ParticipantLeft,
    ParticipantNotFound,
    Refusal,
    Role,
    RoomConflict,
    RoomNotLive,
    RoomSpec,
    RoomState,
    VideoMode,
    admit,
    check_pin,
    dial_target,
    known_role,
    needs_pin,
    profiles,
    video_receives,
)

INTERNAL = ExtensionPlan.from_pattern("_8XXXX")
NOW = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def _spec(**kw: object) -> RoomSpec:
    return replace(RoomSpec(id=1, number="6001", name="周例会"), **kw)  # type: ignore[arg-type]


# ---- profiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(VideoMode))
@pytest.mark.parametrize("role", list(Role))
def test_every_mode_and_role_has_profiles_that_confbridge_conf_defines(mode: VideoMode, role: Role) -> None:
    from huiyan.config.render import RenderInput, render_confbridge_conf
    from huiyan.config.settings import Settings

    conf = render_confbridge_conf(RenderInput(Settings(data_dir=Path("/srv/h")), Path("/m"), Path("/d"), "x"))
    p = profiles(mode, role)
    for name, kind in ((p.bridge, "bridge"), (p.user, "user"), (p.menu, "menu")):
        assert re.search(rf"^\[{name}\]\ntype={kind}$", conf, re.M), name
    assert p.confbridge_args("6001") == ("6001", p.bridge, p.user, p.menu)


def test_profiles_follow_the_video_mode_and_the_role() -> None:
    assert profiles("sfu", "participant").bridge == "huiyan_sfu"
    assert BRIDGE_PROFILES[VideoMode.FOLLOW_TALKER][1]["video_mode"] == "follow_talker"
    assert BRIDGE_PROFILES[VideoMode.PRESENTER][1]["video_mode"] == "first_marked"  # the chair presents
    assert profiles(VideoMode.PRESENTER, Role.MODERATOR).user == "huiyan_moderator"
    mod, part = MENUS[Role.MODERATOR][1], MENUS[Role.PARTICIPANT][1]
    # the moderator essentials from a keypad: mute self, lock, kick the last joiner, leave
    assert {"toggle_mute", "admin_toggle_conference_lock", "admin_kick_last", "leave_conference"} <= set(mod.values())
    assert not any(a.startswith("admin_") or a == "set_as_single_video_src" for a in part.values())
    # the API releases a presenter with these keys, whoever the presenter is
    assert part[RELEASE_PRESENTER_KEYS] == mod[RELEASE_PRESENTER_KEYS] == "release_as_single_video_src"


# ---- who may join, and as what --------------------------------------------------------------------------


def test_pins_give_roles() -> None:
    room = _spec(pin="1357", moderator_pin="8642")
    assert needs_pin(room)
    assert check_pin(room, "8642") == Role.MODERATOR
    assert check_pin(room, "1357") == Role.PARTICIPANT
    assert check_pin(room, "") is None and check_pin(room, "9999") is None
    only_moderators = _spec(moderator_pin="8642")
    assert needs_pin(only_moderators) and check_pin(only_moderators, "") == Role.PARTICIPANT  # just press #
    assert not needs_pin(_spec())


def test_known_callers_skip_the_pin() -> None:
    room = _spec(pin="1357", moderator_extensions=frozenset({"80001"}),
                 invitees=(Invitee("80002"), Invitee("80003", moderator=True), Invitee("sip:x@10.0.0.1")))
    assert known_role(room, extension="80001") == Role.MODERATOR
    assert known_role(room, extension="80002") == Role.PARTICIPANT
    assert known_role(room, extension="80003") == Role.MODERATOR
    assert known_role(room, extension="80009") is None  # ask for the PIN
    assert known_role(room, extension=None, invited_as=Role.PARTICIPANT) == Role.PARTICIPANT  # we dialled them
    assert known_role(_spec(), extension="80009") == Role.PARTICIPANT  # no PIN at all


def test_admission() -> None:
    room = _spec(max_participants=3)
    ok = dict(now=NOW, present=0, live_locked=False)
    assert admit(room, Role.PARTICIPANT, **ok) is None
    assert admit(None, Role.PARTICIPANT, **ok) == Refusal.UNAVAILABLE
    assert admit(_spec(active=False), Role.MODERATOR, **ok) == Refusal.UNAVAILABLE
    assert admit(_spec(locked=True), Role.PARTICIPANT, **ok) == Refusal.LOCKED
    assert admit(room, Role.PARTICIPANT, now=NOW, present=0, live_locked=True) == Refusal.LOCKED
    assert admit(room, Role.MODERATOR, now=NOW, present=3, live_locked=True) is None  # chairs pass
    assert admit(room, Role.PARTICIPANT, now=NOW, present=3, live_locked=False) == Refusal.FULL
    scheduled = _spec(starts_at=NOW, ends_at=NOW + timedelta(hours=2))
    assert admit(scheduled, Role.MODERATOR, now=NOW - EARLY_JOIN - timedelta(seconds=1), present=0,
                 live_locked=False) == Refusal.CLOSED
    assert admit(scheduled, Role.PARTICIPANT, now=NOW - EARLY_JOIN, present=0, live_locked=False) is None
    assert admit(scheduled, Role.PARTICIPANT, now=NOW + timedelta(hours=3), present=0,
                 live_locked=False) == Refusal.CLOSED
    assert not scheduled.permanent and room.permanent


@pytest.mark.parametrize(("mode", "sends", "streams", "receives"), [
    (VideoMode.SFU, True, 16, "all"),  # browsers, multi-stream SIP clients
    (VideoMode.SFU, True, 1, "none"),  # a terminal in an SFU room sends its video, receives none
    (VideoMode.FOLLOW_TALKER, True, 1, "talker"),
    (VideoMode.FOLLOW_TALKER, True, 16, "talker"),
    (VideoMode.PRESENTER, True, 1, "presenter"),
    (VideoMode.PRESENTER, False, 16, "none"),  # audio only
    (VideoMode.FOLLOW_TALKER, None, 1, "talker"),  # not known (joined while we were away)
])
def test_what_each_endpoint_receives(mode: VideoMode, sends: bool | None, streams: int, receives: str) -> None:
    assert video_receives(mode, sends_video=sends, max_streams=streams) == receives


# ---- invitations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "dial"), [
    ("80001", "PJSIP/80001"),
    (" 80001 ", "PJSIP/80001"),
    ("sip:6001@10.20.0.5", "PJSIP/legacy/sip:6001@10.20.0.5"),  # the trunk's host: through the trunk
    ("sip:room@10.20.0.5:5070", "PJSIP/legacy/sip:room@10.20.0.5:5070"),
    ("sip:lawyer@203.0.113.7", "PJSIP/anonymous/sip:lawyer@203.0.113.7"),  # elsewhere: plain SIP
    ("043188889999", "PJSIP/043188889999@legacy"),
    ("+8643188889999", "PJSIP/8643188889999@legacy"),
])
def test_dial_targets(target: str, dial: str) -> None:
    assert dial_target(target, internal=INTERNAL, trunk_endpoint="legacy", trunk_host="10.20.0.5") == dial


@pytest.mark.parametrize(("target", "trunk", "reason"), [
    ("043188889999", None, "no trunk"),
    ("h323:10.0.0.9", "legacy", "H.323"),
    ("lawyer", "legacy", "is not an extension"),
    ("sip:x@y;transport=tcp", "legacy", "is not an extension"),
])
def test_bad_dial_targets(target: str, trunk: str | None, reason: str) -> None:
    with pytest.raises(BadTarget, match=reason):
        dial_target(target, internal=INTERNAL, trunk_endpoint=trunk, trunk_host="10.20.0.5")


# ---- the live state machine ---------------------------------------------------------------------------


def _p(pid: str, **kw: object) -> Participant:
    return replace(Participant(id=pid, channel=f"PJSIP/{pid}-00000001"), **kw)  # type: ignore[arg-type]


def _kinds(changes: list) -> list[str]:  # type: ignore[type-arg]
    return [c.kind for c in changes]


def test_first_join_starts_the_meeting_and_the_last_end_closes_it() -> None:
    s = RoomState("6001")
    assert not s.live
    with pytest.raises(RoomNotLive):
        s.require_live()
    assert _kinds(s.join(_p("a"), 10.0, "bridge-1")) == ["started", "joined"]
    assert s.live and s.bridge_id == "bridge-1" and s.started_at == 10.0
    assert _kinds(s.join(_p("a"), 11.0)) == []  # the same channel twice: nothing new
    assert _kinds(s.join(_p("b"), 12.0)) == ["joined"]
    assert s.peak == 2
    assert _kinds(s.talking("a", True)) == ["talking"] and _kinds(s.talking("a", True)) == []
    assert _kinds(s.muted("a", True)) == ["muted"] and not s.participants["a"].talking
    assert _kinds(s.set_locked(True)) == ["locked"] and _kinds(s.set_locked(True)) == []
    assert _kinds(s.end(20.0)) == ["left", "left", "ended"]
    assert not s.live and not s.locked and s.participants == {}


def test_a_participant_who_left_is_a_clear_conflict_and_a_stranger_is_not_found() -> None:
    s = RoomState("6001")
    s.join(_p("a", name="长春市局"), 1.0)
    assert _kinds(s.leave("a", 2.0)) == ["left"]
    assert _kinds(s.leave("a", 3.0)) == []
    with pytest.raises(ParticipantLeft, match="already left"):
        s.participant("a")
    with pytest.raises(ParticipantNotFound, match="no participant"):
        s.participant("zzz")
    # the memory of who left is bounded
    for i in range(DEPARTED_KEPT + 5):
        s.join(_p(f"x{i}"), 4.0)
        s.leave(f"x{i}", 5.0)
    assert len(s.departed) == DEPARTED_KEPT
    with pytest.raises(ParticipantNotFound):
        s.participant("a")


def test_presenter_rules() -> None:
    s = RoomState("6001", VideoMode.FOLLOW_TALKER)
    with pytest.raises(RoomNotLive):
        s.check_presenter("a")
    s.join(_p("a"), 1.0)
    s.join(_p("b"), 1.0)
    assert s.check_presenter("b").id == "b"  # type: ignore[union-attr]
    with pytest.raises(RoomConflict, match="no presenter"):
        s.check_presenter(None)
    assert _kinds(s.source_changed("a")) == []  # following the talker: not a presenter
    assert s.video_source == "a"
    assert _kinds(s.set_presenter("b")) == ["presenter"]
    assert s.check_presenter(None).id == "b"  # type: ignore[union-attr]
    # the presenter leaves: nobody presents any more
    changes = s.leave("b", 2.0)
    assert _kinds(changes) == ["left", "presenter"] and changes[1].data == {"id": None, "previous": "b"}
    sfu = RoomState("6002", VideoMode.SFU)
    sfu.join(_p("a"), 1.0)
    with pytest.raises(RoomConflict, match="SFU"):
        sfu.check_presenter("a")


def test_in_a_presenter_room_the_chair_who_asterisk_made_the_source_is_the_presenter() -> None:
    s = RoomState("6001", VideoMode.PRESENTER)
    # Asterisk reports the new video source before the chair's ConfbridgeJoin
    assert s.source_changed("chair") == []
    assert _kinds(s.join(_p("chair", role=Role.MODERATOR), 1.0)) == ["started", "joined", "presenter"]
    assert s.presenter == "chair"
    s.join(_p("ppt"), 2.0)
    assert _kinds(s.source_changed("ppt")) == ["presenter"] and s.presenter == "ppt"


def test_recording_state() -> None:
    s = RoomState("6001")
    s.join(_p("a"), 1.0)
    assert _kinds(s.recording_started("/r/a.wav")) == ["recording_started"]
    assert _kinds(s.recording_started("/r/a.wav")) == []
    assert _kinds(s.recording_stopped()) == ["recording_stopped"] and _kinds(s.recording_stopped()) == []
    s.recording_started("/r/b.wav")
    assert _kinds(s.end(2.0)) == ["left", "recording_stopped", "ended"]


def test_views_show_role_mute_talking_and_video() -> None:
    s = RoomState("6001", VideoMode.SFU)
    s.join(_p("a", role=Role.MODERATOR, sends_video=True, max_streams=16, number="80001"), 1.0)
    s.join(_p("t", sends_video=True, max_streams=1), 2.0)
    view = s.view()
    assert view["live"] and view["video_mode"] == "sfu" and [p["id"] for p in view["participants"]] == ["a", "t"]
    a, t = view["participants"]
    assert a["role"] == "moderator" and a["video"] == {"sends": True, "receives": "all", "presenter": False}
    assert t["video"]["receives"] == "none"

"""The `room` FastAGI route: one coroutine per caller joining a room (dialled 6XXX, called in through the
legacy trunk, or invited by dial-out).

What a caller hears: a PIN prompt if the room has one and the caller is not known (a moderator user, an
invited extension, a party we dialled); a wrong PIN gets "input not recognised" and the prompt again,
three times, then goodbye and hang-up. Then "the meeting is locked" / "full" / "not open now" and
hang-up if the caller may not join; otherwise "you are joining the meeting" (and "this meeting is
recorded" when it is; in a mediation room, always the mediation recording notice) and ConfBridge with the profiles of the room's video mode and the caller's role.
When a moderator ends the meeting, everyone hears "the meeting has ended" before the hang-up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from huiyan.agi.server import DONE_VARIABLE, AgiSession, Handler
from huiyan.rooms.model import (
    REFUSAL_PROMPTS,
    Refusal,
    Role,
    RoomKind,
    RoomSpec,
    admit,
    check_pin,
    known_role,
    profiles,
)
from huiyan.rooms.h323 import peer_of_channel
from huiyan.rooms.service import RoomService

PIN_TRIES = 3
PIN_TIMEOUT_MS = 6000  # after the prompt, for each digit
PIN_MAX_DIGITS = 12  # or # to finish


async def _ask_pin(session: AgiSession, spec: RoomSpec) -> Role | None:
    """The role the PIN gives, or None after three wrong (or silent) tries."""
    for attempt in range(PIN_TRIES):
        digits = await session.get_data(session.prompt("room_pin"), PIN_TIMEOUT_MS, PIN_MAX_DIGITS)
        role = check_pin(spec, digits)
        if role is not None:
            return role
        session.log.info("room %s: wrong PIN (try %d)", spec.number, attempt + 1)
        await session.stream_file(session.prompt("invalid"))
    return None


def _sends_video(native: str | None) -> bool | None:
    """CHANNEL(videonativeformat) is "(h264)", "(vp8|h264)" or "(nothing)"."""
    if native is None:
        return None
    names = native.strip("()").strip()
    return bool(names) and names != "nothing"


@dataclass(frozen=True, slots=True)
class CallerFacts:
    """What the flow needs to know about a caller's channel. The huiyan-rooms dialplan puts it in the
    FastAGI request (`endpoint`, `video`, `streams`, `locked` parameters) so that a join costs no GET
    VARIABLE round trips; a call that reached the route another way (a dial-out we originated) is asked."""

    endpoint: str | None  # the PJSIP endpoint (an extension for our terminals and users)
    sends_video: bool | None  # None: not known
    max_streams: int = 1  # video streams the endpoint takes (SFU mode sends it several)
    locked: bool | None = None  # CONFBRIDGE_INFO(locked) when the call arrived; None: ask when it matters

    @classmethod
    def from_params(cls, params: dict[str, str]) -> "CallerFacts | None":
        if "endpoint" not in params:
            return None
        try:
            streams = max(1, int(params.get("streams") or 1))
        except ValueError:
            streams = 1
        return cls(endpoint=params["endpoint"] or None, sends_video=_sends_video(params.get("video")),
                   max_streams=streams, locked=params.get("locked") == "1")


H323_FACTS = CallerFacts(endpoint=None, sends_video=False)


async def _max_streams(session: AgiSession, endpoint: str | None) -> int:
    if not endpoint:
        return 1
    try:
        value = await session.get_variable(f"PJSIP_ENDPOINT({endpoint},max_video_streams)")
        return max(1, int(value or 1))
    except (ValueError, Exception):  # noqa: BLE001 - not a PJSIP channel, or no such field: one stream
        return 1


async def ask_caller_facts(session: AgiSession, *, endpoint: bool = True) -> CallerFacts:
    """The same facts by GET VARIABLE, for a call whose request did not carry them (`endpoint=False`: the
    caller is not identified by its endpoint, e.g. a tourist dialling the public mediation number)."""
    ep = await session.get_variable("CHANNEL(endpoint)") if endpoint else None
    sends_video = _sends_video(await session.get_variable("CHANNEL(videonativeformat)"))
    return CallerFacts(endpoint=ep, sends_video=sends_video, max_streams=await _max_streams(session, ep))


def room_route(service: RoomService) -> Handler:
    async def room(session: AgiSession) -> None:
        req = session.request
        number = req.params.get("number") or req.extension
        spec = service.room_by_number(number)
        invited_as = service.invitation_role(req.uniqueid)
        facts = CallerFacts.from_params(req.params)
        if facts is None:
            await session.answer()  # the huiyan-rooms dialplan answered the others
        if spec is None:
            await refuse_caller(session, service, number, Refusal.UNAVAILABLE)
            return
        # A legacy H.323 room system (chan_ooh323) is audio only (huiyan/rooms/h323.py says why): it hears
        # the mix and sends no video, so it never becomes the talker's video and cannot present. It has no
        # PJSIP endpoint to ask about (CHANNEL(endpoint) means nothing to chan_ooh323).
        h323_peer = peer_of_channel(req.channel)
        if h323_peer:
            facts = H323_FACTS
        elif facts is None:
            facts = await ask_caller_facts(session)
        role = known_role(spec, extension=facts.endpoint, invited_as=invited_as)
        if role is None:
            role = await _ask_pin(session, spec)
            if role is None:
                await refuse_caller(session, service, number, Refusal.PIN)
                return
            facts = replace(facts, locked=None)  # the PIN took time: the room may have been locked since
        await enter_room(session, service, spec, role, facts=facts, h323=bool(h323_peer),
                         invited=invited_as is not None)

    return room


async def refuse_caller(session: AgiSession, service: RoomService, number: str, reason: Refusal) -> None:
    req = session.request
    caller = req.callerid or ""
    session.log.info("room %s: %s refused (%s)", number, caller or req.channel, reason.value)
    service.refused(number, req.uniqueid, reason, caller)
    await session.stream_file(session.prompt(REFUSAL_PROMPTS[reason]))
    await session.hangup()


async def enter_room(session: AgiSession, service: RoomService, spec: RoomSpec, role: Role, *,
                     facts: CallerFacts, h323: bool = False, invited: bool = False) -> None:
    """Admit a caller whose role is settled (known, or by PIN) into `spec`'s conference, or refuse them
    with the reason's prompt; returns when they have left the conference and been hung up."""
    req = session.request
    number = spec.number
    state = service.state(number)
    live_locked = state.locked
    if role != Role.MODERATOR and state.live and not live_locked:
        # A moderator may have locked the room from a keypad: ConfBridge reports no event for that.
        live_locked = facts.locked if facts.locked is not None else (
            await session.get_variable(f"CONFBRIDGE_INFO(locked,{number})") == "1")
    refusal = admit(spec, role, now=datetime.now(UTC), present=len(state.participants), live_locked=live_locked)
    if refusal is not None:
        await refuse_caller(session, service, number, refusal)
        return
    service.expect(req.uniqueid, role=role, sends_video=False if h323 else facts.sends_video,
                   max_streams=facts.max_streams, invited=invited)
    await session.stream_file(session.prompt("room_joining"))
    if spec.kind == RoomKind.MEDIATION:
        # Everyone in a mediation session hears that it is recorded (and to keep it civil), every time.
        await session.stream_file(session.prompt("mediation_notice"))
    elif spec.record:
        await session.stream_file(session.prompt("room_recorded"))
    # From here on the meeting no longer needs us: if the controller goes away, the caller stays in
    # ConfBridge, and the dialplan must not run this route again when they leave.
    await session.set_variable(DONE_VARIABLE, "1")
    session.log.info("room %s: %s joins as %s", number, req.callerid or req.channel, role.value)
    await session.exec("ConfBridge", *profiles(spec.video_mode, role).confbridge_args(number))
    result = await session.get_variable("CONFBRIDGE_RESULT")
    if result == "KICKED" and number in service.ending:
        await session.stream_file(session.prompt("room_ended"))
    elif result == "FAILED":
        # Locked or filled up between our check and the join.
        await refuse_caller(session, service, number, Refusal.LOCKED)
        return
    await session.hangup()

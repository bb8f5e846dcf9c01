"""The `mediation` FastAGI route (service number 12349 by default): a party or a tourist who has no
terminal of their own dials the public mediation number from any phone or SIP app and keys the case PIN.

What a caller hears: "remote mediation, please enter your case PIN, then #"; a PIN that matches no case
gets "input not recognised" and the prompt again, three times, then goodbye. A PIN of a case whose session
is not running (its room is closed between sessions) gets "service unavailable" and hang-up. Otherwise the
caller enters the case's room as a participant exactly as a room dial-in with the PIN would (the
recording notice, then ConfBridge): `huiyan.rooms.flow.enter_room`.

Guests and citizens reach only the public service numbers (see huiyan/dialplan), so this route is how
they reach a mediation room at all; the room numbers themselves stay out of their reach.
"""

from __future__ import annotations

from huiyan.agi.server import AgiSession, Handler
from huiyan.rooms.model import Refusal, Role, RoomKind, RoomSpec
from huiyan.rooms.flow import (
    PIN_MAX_DIGITS,
    PIN_TIMEOUT_MS,
    PIN_TRIES,
    ask_caller_facts,
    enter_room,
    refuse_caller,
)
from huiyan.rooms.service import RoomService


def room_for_pin(service: RoomService, digits: str) -> RoomSpec | None:
    """The mediation room whose PIN (the case's) is `digits`, or None. Case PINs are unique among cases."""
    if not digits:
        return None
    return next((spec for spec in service.by_number.values()
                 if spec.kind == RoomKind.MEDIATION and spec.pin == digits), None)


def mediation_route(service: RoomService) -> Handler:
    async def mediation(session: AgiSession) -> None:
        req = session.request
        number = req.params.get("number") or req.extension
        await session.answer()
        for attempt in range(PIN_TRIES):
            digits = await session.get_data(session.prompt("mediation_pin"), PIN_TIMEOUT_MS, PIN_MAX_DIGITS)
            spec = room_for_pin(service, digits)
            if spec is not None:
                # A tourist is not known by an endpoint: a party by PIN, whichever phone they call from.
                facts = await ask_caller_facts(session, endpoint=False)
                await enter_room(session, service, spec, Role.PARTICIPANT, facts=facts)
                return
            session.log.info("mediation %s: no case with that PIN (try %d)", number, attempt + 1)
            await session.stream_file(session.prompt("invalid"))
        await refuse_caller(session, service, number, Refusal.PIN)

    return mediation

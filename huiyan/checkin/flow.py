"""The `checkin` FastAGI route: the public check-in number (12340 by default) and officers' roll-calls.

What a subject hears, calling in: a subject calling from their registered extension is known by it; anyone
else hears "community correction check-in, enter your subject number, then #" (an unknown number gets
"not found" and goodbye: nothing to record it against, so only an event says it happened). Then "enter your
check-in PIN, then #"; a wrong PIN gets "wrong PIN, enter it again" - after three wrong ones the check-in is
rejected, the officer alerted, and the subject told so. With no window open the subject hears so and the
call is recorded as an attempt outside any window (never a pass). Inside a window: "this check-in is
recorded", the liveness challenge - "remember these digits: 3 8 1 6 ... now read them aloud" - and a few
seconds of recorded time for the answer, then "check-in complete". The whole check-in after the PIN is
recorded (MixMonitor, kind `checkin`; the recordings service finalises it into evidence).

Whether the subject read the right digits is NOT checked automatically (no speech recognition here): the
challenge is stored with the check-in and the officer hears the answer in the recording. A caller on the
phone sends no geolocation, so the check-in says "no_location", never "in_area"; the face check needs the
browser page's snapshots (identity "not_checked" on the phone).

A roll-call arrives here with HUIYAN_CK_ID set on the channel (the check-in row made for it): no subject
number is asked, no window is needed; the PIN, the challenge and the recording are the same.

The subject's phone page (/checkin) calls with the SIP header X-Huiyan-Checkin: a one-time token from
POST /api/checkin/sessions/{id}/call. Its PIN was checked by the API, so the call is recorded against that
check-in at once: "this check-in is recorded", the same challenge the page shows, said aloud too, and the
line stays open (recording) until the page hangs up. The page, not the call, finishes the check-in
(geolocation and snapshots are its evidence); a page that never finishes is closed with its window.
"""

from __future__ import annotations

from pathlib import Path

from huiyan.agi.request import AgiHangup
from huiyan.agi.server import AgiSession, Handler
from huiyan.checkin.service import CheckinService, SubjectInfo
from huiyan.recordings import target as recording_target

BROWSER_HEADER = "X-Huiyan-Checkin"
BROWSER_CALL_MAX_S = 600  # a page that neither finishes nor hangs up is cut off after this
NUMBER_TRIES = 3
PIN_TIMEOUT_MS = 6000  # after the prompt, for each digit
MAX_DIGITS = 16  # or # to finish


async def _ask_subject(session: AgiSession, svc: CheckinService) -> SubjectInfo | None:
    req = session.request
    for attempt in range(NUMBER_TRIES):
        if attempt:  # silence: say so, ask again
            await session.stream_file(session.prompt("invalid"))
        digits = await session.get_data(session.prompt("checkin_subject"), PIN_TIMEOUT_MS, MAX_DIGITS)
        if digits:
            subject = await svc.subject_by_number(digits)
            if subject is not None:
                return subject
            session.log.info("check-in: no active subject numbered %r", digits)
            await svc.unknown_subject(digits, req.uniqueid, req.callerid or "")
            await session.stream_file(session.prompt("checkin_unknown"))
            return None
    return None


async def _ask_pin(session: AgiSession, svc: CheckinService, subject: SubjectInfo) -> bool:
    for attempt in range(svc.cfg.pin_tries):
        digits = await session.get_data(session.prompt("checkin_pin" if attempt == 0 else "checkin_pin_retry"),
                                        PIN_TIMEOUT_MS, MAX_DIGITS)
        if await svc.check_pin(subject.id, digits):
            return True
        session.log.info("check-in %s: wrong PIN (try %d)", subject.number, attempt + 1)
    return False


async def _challenge(session: AgiSession, svc: CheckinService, checkin_id: int, subject: SubjectInfo) -> None:
    """Record the rest of the call, say the digits, give the subject time to read them out."""
    req = session.request
    rec = recording_target(svc.recordings_dir, "checkin", req.uniqueid)
    # No `b`: nothing is bridged here - the subject talks to us, and both directions are what we keep.
    await session.exec("MixMonitor", str(rec.wav))
    digits = svc.new_challenge()
    await svc.evidence(checkin_id, challenge=digits, recording_path=str(rec.wav))
    await session.stream_file(session.prompt("checkin_recorded"))
    await session.stream_file(session.prompt("checkin_challenge"))
    for d in digits:
        await session.stream_file(session.prompt(f"digit_{d}"))
    await session.stream_file(session.prompt("checkin_speak"))
    await session.exec("Wait", str(svc.cfg.answer_s))
    session.log.info("check-in %s: challenge %s answered into %s", subject.number, digits, Path(rec.wav).name)


async def _browser(session: AgiSession, svc: CheckinService, token: str) -> None:
    """The subject's page calling in for its check-in (see the module docstring)."""
    req = session.request
    found = await svc.browser_call(token, req.uniqueid)
    await session.answer()
    if found is None:
        session.log.info("check-in: a page's call with an unknown or used token")
        await session.stream_file(session.prompt("unavailable"))
        await session.hangup()
        return
    checkin_id, subject, digits = found
    try:
        rec = recording_target(svc.recordings_dir, "checkin", req.uniqueid)
        await session.exec("MixMonitor", str(rec.wav))
        await svc.evidence(checkin_id, challenge=digits, recording_path=str(rec.wav))
        await session.stream_file(session.prompt("checkin_recorded"))
        await session.stream_file(session.prompt("checkin_challenge"))
        for d in digits:
            await session.stream_file(session.prompt(f"digit_{d}"))
        await session.stream_file(session.prompt("checkin_speak"))
        session.log.info("check-in %s (page): challenge %s, recording %s", subject.number, digits,
                         Path(rec.wav).name)
        await session.exec("Wait", str(BROWSER_CALL_MAX_S))
        await session.hangup()
    finally:
        await svc.call_ended(checkin_id)


def checkin_route(svc: CheckinService) -> Handler:
    async def checkin(session: AgiSession) -> None:
        req = session.request
        caller = req.callerid or ""
        page = await session.get_variable(f"PJSIP_HEADER(read,{BROWSER_HEADER})")
        if page:
            await _browser(session, svc, page)
            return
        rollcall = await session.get_variable("HUIYAN_CK_ID")
        await session.answer()
        checkin_id: int | None = None
        try:
            if rollcall and rollcall.isdigit():
                subject = await svc.rollcall_answered(int(rollcall), req.uniqueid)
                if subject is None:
                    session.log.info("check-in: roll-call %s is not waiting for an answer", rollcall)
                    await session.hangup()
                    return
                checkin_id = int(rollcall)
            else:
                subject = await svc.subject_by_client(await session.get_variable("CHANNEL(endpoint)"))
                if subject is None:
                    subject = await _ask_subject(session, svc)
                if subject is None:
                    await session.hangup()
                    return
            if not await _ask_pin(session, svc, subject):
                await svc.rejected(subject.id, checkin_id, call_id=req.uniqueid, caller=caller)
                checkin_id = None
                await session.stream_file(session.prompt("checkin_rejected"))
                await session.hangup()
                return
            if checkin_id is None:
                checkin_id, in_window = await svc.begin_phone(subject.id, call_id=req.uniqueid, caller=caller)
                if not in_window:
                    checkin_id = None  # already final: an attempt outside any window
                    await session.stream_file(session.prompt("checkin_no_window"))
                    await session.hangup()
                    return
            await _challenge(session, svc, checkin_id, subject)
            outcome = await svc.complete(checkin_id)
            session.log.info("check-in %s: %s", subject.number, outcome.value)
            await session.stream_file(session.prompt("checkin_done"))
            await session.hangup()
        except AgiHangup:
            if checkin_id is not None:
                await svc.incomplete(checkin_id, "the caller hung up before the check-in was complete")
            raise
        finally:
            if checkin_id is not None:
                await svc.call_ended(checkin_id)

    return checkin

"""The 12348 caller's call flow, one FastAGI coroutine per call: greet, menu, queue, offer, connect.

What a caller hears: the welcome (any menu digit skips ahead), "this call is recorded and videoed",
the menu (1 legal consultation, 2 legal aid, 3 mediation intake — configured per service number);
a wrong digit or silence gets "input not recognised" and the menu again, three times, then goodbye.
Then the agent's phone rings at once if one is free; otherwise "please wait" and music on hold, with the
position in line every `announce_every` seconds, until an agent answers.

Restart safety: the menu choice and the time the caller joined are kept on the channel
(HUIYAN_HL_DIGIT, HUIYAN_HL_QUEUED_AT). If the controller dies, the dialplan holds the caller with music
and runs this route again (see huiyan/dialplan); the new coroutine skips the greeting and re-joins the
queue at the original place. A call that was already answered (DIALSTATUS=ANSWER) is not queued again.
"""

from __future__ import annotations

import asyncio
import time

from huiyan.agi.request import AgiHangup
from huiyan.agi.server import AgiSession
from huiyan.hotline.service import HotlineService, Leave, MenuChoice
from huiyan.prompts.catalog import number_prompt
from huiyan.recordings import target as recording_target

MENU_TRIES = 3
MENU_TIMEOUT_MS = 5000
# Dial fails at once on a phone that is not registered (CHANUNAVAIL), refuses (BUSY) or cannot be reached
# (CONGESTION). With nobody else free the distributor offers the call to that same agent again straight
# away: without a pause between two such Dials the call spins (hundreds of INVITEs/offers a second).
INSTANT_FAILURES = frozenset({"CHANUNAVAIL", "BUSY", "CONGESTION"})
REDIAL_AFTER_FAILURE_S = 2.0
DIGITS = "0123456789*#"


async def _menu(session: AgiSession, menu: dict[str, MenuChoice]) -> str | None:
    """The caller's choice, or None after three bad or silent tries."""
    valid = "".join(sorted(menu))
    # Digits during the greeting count as the choice: regular callers need not listen to it all.
    for name in ("welcome", "recorded"):
        d = await session.stream_file(session.prompt(name), valid)
        if d in menu:
            return d
    if len(menu) == 1:
        return next(iter(menu))  # nothing to choose: no menu
    for attempt in range(MENU_TRIES):
        d = await session.get_data(session.prompt("menu"), MENU_TIMEOUT_MS, 1)
        if d in menu:
            return d
        session.log.info("menu: %s (try %d)", "silence" if not d else f"invalid digit {d!r}", attempt + 1)
        await session.stream_file(session.prompt("invalid"))
    return None


async def _say_position(session: AgiSession, position: int) -> None:
    """'您前面还有 N 位' — callers ahead of this one (position 1 means nobody ahead: say nothing)."""
    ahead = position - 1
    if ahead < 1:
        return
    await session.stream_file(session.prompt("position_prefix"))
    await session.stream_file(session.prompt(number_prompt(ahead)))
    await session.stream_file(session.prompt("position_suffix"))


def hotline_route(service: HotlineService, recordings_dir: object):
    from pathlib import Path

    rec_dir = Path(str(recordings_dir))

    async def hotline(session: AgiSession) -> None:
        req = session.request
        number = req.params.get("number") or req.extension
        call_id = req.uniqueid
        menu = service.menu(number)
        # A transfer to a queue arrives as Q<queue id> (huiyan-transfer in the dialplan; only AMI reaches it).
        transferred_to = number[1:] if number.startswith("Q") else None
        if transferred_to:
            # Sent here by a transfer to a queue: no greeting, no menu (the digit is left empty).
            menu = {"": MenuChoice(digit="", queue_id=transferred_to, requires={})}
        if not menu:
            session.log.warning("no hotline menu for %s", number)
            await session.answer()
            await session.stream_file(session.prompt("unavailable"))
            await session.hangup()
            return
        tries = int(req.params.get("tries") or 0)
        digit = queued_at = None
        if tries:
            if await session.get_variable("DIALSTATUS") == "ANSWER":
                session.log.info("resumed after a restart: the call was already served")
                await session.hangup()
                return
            digit = await session.get_variable("HUIYAN_HL_DIGIT")
            raw = await session.get_variable("HUIYAN_HL_QUEUED_AT")
            queued_at = float(raw) if raw else None
        await session.answer()
        if transferred_to:
            digit = ""
        if digit not in menu:
            digit = await _menu(session, menu)
        if digit is None:
            await session.stream_file(session.prompt("goodbye"))
            await session.hangup()
            return
        choice = menu[digit]
        # Everything the call needs from Asterisk before it can ring an agent is done *before* it joins the
        # line, so that an offer made at enqueue costs one AGI round trip (the Dial) and nothing else:
        # the recording (`b`: it records only while bridged, so starting it early costs nothing) and the
        # restart-safety variables, both in one EXEC each.
        recording = recording_target(rec_dir, "hotline", call_id)
        await session.exec("MixMonitor", *recording.mixmonitor_args())
        if queued_at is None:
            queued_at = time.time()
        await session.exec("MSet", f"HUIYAN_HL_DIGIT={digit}", f"HUIYAN_HL_QUEUED_AT={queued_at:.3f}")
        res, waiter = service.enqueue(call_id, choice, channel=req.channel, caller=req.callerid,
                                      caller_name=req.calleridname, number=number, arrived_wall=queued_at)
        if waiter is None:
            session.log.info("refused by queue %s: %s", choice.queue_id, res.reason)
            await session.stream_file(session.prompt("unavailable"))
            await session.hangup()
            return
        service.note_call(call_id, recording_path=str(recording.wav))
        abandoned = True
        try:
            abandoned = not await _wait_and_connect(session, service, waiter, resumed=tries > 0)
        finally:
            service.ended(call_id, abandoned=abandoned)

    return hotline


async def _wait_and_connect(session: AgiSession, service: HotlineService, waiter, resumed: bool = False) -> bool:
    """Hold the caller until an agent answers and the conversation ends. True if it was answered."""
    music = False
    if waiter.inbox.empty():  # nobody free yet; with an agent already offered, ring at once instead
        if not resumed:  # a caller back after a controller restart has heard it from the dialplan
            await session.stream_file(session.prompt("please_wait"))
        if waiter.inbox.empty():
            await session.set_music(True)
            music = True
    hangup = asyncio.ensure_future(session.wait_hangup())
    failed: tuple[tuple[str, ...], float] | None = None  # agents whose Dial just failed at once, and when
    try:
        while True:
            if not waiter.inbox.empty() and not session.hungup:
                # Fast path, the usual case when an agent is free at enqueue: the offer is already here, so
                # take it without a trip round the event loop (where a burst's AMI events and other callers'
                # commands would queue ahead of this caller's Dial).
                item = waiter.inbox.get_nowait()
            else:
                get = asyncio.ensure_future(waiter.inbox.get())
                done, _ = await asyncio.wait({get, hangup}, timeout=service.announce_every(waiter.queue_id),
                                             return_when=asyncio.FIRST_COMPLETED)
                if hangup in done:
                    get.cancel()
                    raise AgiHangup("caller hung up while waiting")
                if get not in done:
                    get.cancel()
                    pos = service.position(waiter.call_id)
                    if pos is not None:
                        if music:
                            await session.set_music(False)
                        await _say_position(session, pos)
                        await session.set_music(True)
                        music = True
                    continue
                item = get.result()
            if isinstance(item, Leave):
                if music:
                    await session.set_music(False)
                await session.stream_file(session.prompt("unavailable"))
                await session.hangup()
                return False
            offer = item
            if failed is not None and failed[0] == offer.agent_ids:
                pause = failed[1] + REDIAL_AFTER_FAILURE_S - time.monotonic()
                if pause > 0 and hangup in (await asyncio.wait({hangup}, timeout=pause))[0]:
                    raise AgiHangup("caller hung up while waiting")
            left = service.offer_time_left(waiter, offer)
            # Dial must give up before the distributor's own deadline for this offer: otherwise the
            # distributor withdraws it and offers the call elsewhere while this agent still rings.
            ring = 0 if left is None else min(int(round(service.ring_timeout(offer.queue_id))), int(left - 1.0))
            if ring < 1:
                session.log.info("offer to %s withdrawn before it rang", ",".join(offer.agent_ids))
                continue
            if music:
                await session.set_music(False)
                music = False
            dial = "&".join(f"PJSIP/{service.contact[a]}" for a in offer.agent_ids)
            # i: ignore forwarding requests from the agent's phone; the distributor decides who rings.
            # t: the agent (called party) may transfer: the DTMF codes of features.conf and AMI Atxfer
            # need it. The caller gets no such right (no T).
            await session.exec("Dial", dial, str(ring), "it")
            status = await session.get_variable("DIALSTATUS") or ""
            if status == "ANSWER" or waiter.answered.is_set():
                await session.hangup()
                return True
            if status == "CANCEL" or session.hungup:
                # The caller hung up while the agent rang: an abandon (the offer is withdrawn by
                # service.ended), not the agent's no-answer, which would count toward auto-pause.
                raise AgiHangup("caller hung up while the agent's phone rang")
            session.log.info("offer to %s: %s", ",".join(offer.agent_ids), status or "no status")
            failed = (offer.agent_ids, time.monotonic()) if status in INSTANT_FAILURES else None
            service.offer_result(waiter.call_id, offer.agent_ids, status)
            if waiter.inbox.empty():
                await session.set_music(True)
                music = True
    finally:
        hangup.cancel()

"""Live call control for agents and supervisors, done through AMI on the node that carries the call:
hang up, blind and attended transfer, invite a third party into the call, and listen/whisper/barge."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from huiyan.acd.errors import AcdError
from huiyan.dialplan import TRANSFER
from huiyan.hotline.service import HotlineService

log = logging.getLogger(__name__)

SPY_OPTIONS = {"listen": "q", "whisper": "qw", "barge": "qB"}
SPY_DTMF = {"listen": "4", "whisper": "5", "barge": "6"}  # ChanSpy's `d` option: switch without redialling
_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_EXTENSION = re.compile(r"^8[0-9]{4}$")
_SIP_URI = re.compile(r"^sips?:[A-Za-z0-9._~%+-]+@[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


class CallControlError(Exception):
    """Maps to HTTP: `status` 404 (unknown call), 409 (wrong state), 400 (bad target)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class LiveCall:
    call_id: str
    caller_channel: str
    agent_id: str | None
    agent_channel: str | None
    bridge_id: str | None
    parties: tuple[str, ...]  # every channel name in the caller's bridge


def dial_string(target: str, trunk_endpoint: str | None) -> str:
    """What Originate dials for a party: an extension (user or device), a SIP URI, or a number via trunk."""
    t = target.strip()
    if _EXTENSION.match(t):
        return f"PJSIP/{t}"
    if _SIP_URI.match(t):
        # Sent as a request to that URI with the anonymous endpoint's media settings.
        return f"PJSIP/anonymous/{t}"
    if _NUMBER.match(t):
        if not trunk_endpoint:
            raise CallControlError(400, f"cannot call {t}: no trunk to the telephone/legacy network is configured")
        return f"PJSIP/{t.lstrip('+')}@{trunk_endpoint}"
    raise CallControlError(400, f"target {target!r} is not an extension (8XXXX), a SIP URI or a phone number")


class CallControl:
    def __init__(self, service: HotlineService, ami: Any, tracker: Any, *, trunk_endpoint: str | None = None) -> None:
        self.service = service
        self.ami = ami
        self.tracker = tracker
        self.trunk_endpoint = trunk_endpoint
        self.spies: dict[str, str] = {}  # spy channel name -> the call it spies on

    # ---- looking calls up -------------------------------------------------------------
    def live(self, call_id: str) -> LiveCall:
        waiter = self.service.waiters.get(call_id)
        if waiter is None:
            raise CallControlError(404, f"no live hotline call {call_id!r}")
        caller = self.tracker.channels.get(call_id)
        bridge_id = caller.bridge_id if caller else None
        parties = tuple(c.name for c in self.tracker.channels_in_bridge(bridge_id)) if bridge_id else ()
        agent_id = waiter.answered_by
        agent_channel = None
        if agent_id is not None:
            ext = self.service.contact.get(agent_id, "")
            agent_channel = next((p for p in parties if p.startswith(f"PJSIP/{ext}-")), None)
        return LiveCall(call_id, waiter.channel, agent_id, agent_channel, bridge_id, parties)

    def _connected(self, call_id: str) -> LiveCall:
        lc = self.live(call_id)
        if lc.agent_channel is None or lc.bridge_id is None:
            raise CallControlError(409, f"call {call_id} is not connected to an agent")
        return lc

    # ---- operations -------------------------------------------------------------------
    async def hangup(self, call_id: str) -> None:
        lc = self.live(call_id)
        await self.ami.action("Hangup", Channel=lc.caller_channel, Cause="16")

    async def blind_transfer(self, call_id: str, target: str) -> str:
        """Send the caller to `target` (an extension, or `queue:<id>`) and free the agent."""
        lc = self._connected(call_id)
        exten = self._transfer_exten(target)
        self._leave_distributor(call_id, target)
        # BlindTransfer moves everyone bridged with the agent's channel (the caller) to the target.
        await self.ami.action("BlindTransfer", Channel=lc.agent_channel, Context=TRANSFER, Exten=exten)
        return exten

    async def attended_transfer(self, call_id: str, target: str) -> str:
        """The agent consults `target` first (the caller hears hold music); when the agent hangs up the
        caller is connected to the target. The agent is freed when Asterisk reports the transfer."""
        lc = self._connected(call_id)
        exten = self._transfer_exten(target)
        await self.ami.action("Atxfer", Channel=lc.agent_channel, Context=TRANSFER, Exten=exten)
        return exten

    def attended_transfer_done(self, event: Any) -> None:
        """AMI AttendedTransfer: the caller (the transferee) left the agent; the agent goes to wrap-up."""
        if event.fields.get("Result") != "Success":
            return
        call_id = event.fields.get("TransfereeUniqueid", "")
        if call_id in self.service.waiters:
            self._leave_distributor(call_id, "attended")

    async def invite(self, call_id: str, target: str) -> str:
        """Bring a third party (a lawyer, a colleague) into the caller's bridge: a three-way call. The
        caller and the agent stay where they are; the party joins when it answers."""
        lc = self._connected(call_id)
        channel = dial_string(target, self.trunk_endpoint)
        await self.ami.action(
            "Originate", Channel=channel, Application="BridgeAdd", Data=lc.call_id, Async="true",
            CallerID="12348 <12348>", Timeout="30000", Codecs="ulaw,alaw,h264,vp8,opus",
            Variable={"HUIYAN_INVITED_TO": call_id},
        )
        return channel

    async def remove_party(self, call_id: str, channel: str) -> None:
        lc = self._connected(call_id)
        if channel not in lc.parties or channel in (lc.caller_channel, lc.agent_channel):
            raise CallControlError(404 if channel not in lc.parties else 409,
                                   f"{channel} is not an invited party of call {call_id}")
        await self.ami.action("Hangup", Channel=channel, Cause="16")

    async def spy(self, call_id: str, supervisor_extension: str, mode: SpyMode) -> None:
        """Ring the supervisor's device; on answer it listens to (or whispers to, or barges into) the
        agent's side of the call. `d` lets the supervisor, or `switch_spy`, change mode without redialling."""
        lc = self._connected(call_id)
        await self.ami.action(
            "Originate", Channel=f"PJSIP/{supervisor_extension}", Application="ChanSpy",
            Data=f"{lc.agent_channel},{SPY_OPTIONS[mode.value]}dE", Async="true", Timeout="30000",
            CallerID=f"spy {mode.value} <{supervisor_extension}>",
        )

    async def switch_spy(self, spy_channel: str, mode: SpyMode) -> None:
        # ChanSpy reads the mode-switch digits from the spying channel: emulate the supervisor pressing it.
        await self.ami.action("PlayDTMF", Channel=spy_channel, Digit=SPY_DTMF[mode.value], Receive="true")

    # ---- helpers ----------------------------------------------------------------------
    def _transfer_exten(self, target: str) -> str:
        t = target.strip()
        if t.startswith("queue:"):
            qid = t.split(":", 1)[1]
            try:
                self.service.acd.queue_config(qid)
            except AcdError:
                raise CallControlError(404, f"no hotline queue {qid!r}") from None
            return f"Q{qid}"
        if t.startswith("agent:"):
            agent_id = t.split(":", 1)[1]
            ext = self.service.contact.get(agent_id)
            if ext is None:
                raise CallControlError(404, f"no hotline agent {agent_id!r}")
            return ext
        if _EXTENSION.match(t):
            return t
        raise CallControlError(400, f"transfer target {target!r}: use an extension 8XXXX, agent:<id> or queue:<id>")

    def _leave_distributor(self, call_id: str, target: str) -> None:
        try:
            self.service.transfer_out(call_id, target)
        except AcdError as e:
            log.info("transfer of %s: distributor already done with it (%s)", call_id, e)

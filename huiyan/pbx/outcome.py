"""What Asterisk tells about a dial that did not connect, in words: from an Originate's `Reason` (the last
AST_CONTROL_* frame the dial saw) and the channel's Hangup cause (Q.850, which chan_pjsip maps SIP
responses to). On Asterisk 22 an unregistered endpoint and a 603 Decline both end an Originate with Reason
0; what tells them apart is whether a channel ever existed and its Hangup cause. Used by dispatch legs
and room invitations alike."""

from __future__ import annotations

from typing import Literal

DialFailure = Literal["busy", "declined", "no_answer", "unreachable", "failed"]

# Q.850 hang-up causes (what chan_pjsip maps SIP responses to).
CAUSE_NORMAL = 16
CAUSE_BUSY = 17  # 486, 600
CAUSE_NO_USER_RESPONSE = 18  # 408
CAUSE_NO_ANSWER = 19  # 480
CAUSE_REJECTED = 21  # 603, 403
UNREACHABLE_CAUSES = frozenset({
    1,  # unallocated number (404)
    3,  # no route to destination
    20,  # subscriber absent
    27,  # destination out of order (502)
    34,  # no circuit available / congestion (503)
    38,  # network out of order
    41,  # temporary failure
    42,  # switching equipment congestion
})
# OriginateResponse Reason: the last AST_CONTROL_* frame the dial saw.
REASON_HANGUP, REASON_RINGING, REASON_BUSY, REASON_CONGESTION = 1, 3, 5, 8


def dial_failure(reason: int | None, cause: int | None, *, channel_created: bool, rang: bool) -> DialFailure:
    """Why a dial failed: busy, declined, no_answer (rang out), unreachable (no contact, offline, network
    refused) or failed (anything else)."""
    if not channel_created:
        return "unreachable"  # no channel at all: no contact registered, or the endpoint is unavailable
    if cause == CAUSE_BUSY or reason == REASON_BUSY:
        return "busy"
    if cause == CAUSE_REJECTED:
        return "declined"
    if reason == REASON_RINGING:
        return "no_answer"  # rang until the ring timeout
    if cause in (CAUSE_NO_USER_RESPONSE, CAUSE_NO_ANSWER):
        # It never rang: the terminal is registered but gone (INVITE timed out) or unavailable.
        return "no_answer" if rang else "unreachable"
    if cause in UNREACHABLE_CAUSES or reason == REASON_CONGESTION:
        return "unreachable"
    if cause == CAUSE_NORMAL or reason == REASON_HANGUP:
        return "declined"  # hung up on us while ringing
    return "failed"

"""Live hotline operations: agents' state (login, pause, wrap-up), live statistics, and call control
(hang up, transfer, invite a third party, supervisor listen/whisper/barge). Changes go out on the event
WebSocket as HotlineEvent / HotlineStats."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import Field

from huiyan.acd.errors import AcdError, InvalidArgument, InvalidTransition, UnknownAgent, UnknownCall, UnknownQueue
from huiyan.api.access import Allow, Principal, Reader
from huiyan.api.schemas import _In
from huiyan.db.models import Role

router = APIRouter(tags=["hotline live"])

Operator = Annotated[Principal, Depends(Allow(Role.ADMIN, Role.SUPERVISOR, Role.AGENT))]


def _hotline(request: Request) -> Any:
    svc = getattr(request.app.state, "hotline", None)
    if svc is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hotline runtime is not running")
    return svc


def _control(request: Request) -> Any:
    ctl = getattr(request.app.state, "call_control", None)
    if ctl is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "call control is not available (no PBX connection)")
    return ctl


def _self_or_supervisor(caller: Principal, agent_id: int) -> None:
    if caller.role == Role.AGENT and caller.user_id != agent_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may only change their own state")


def _acd(exc: AcdError) -> HTTPException:
    if isinstance(exc, (UnknownAgent, UnknownCall, UnknownQueue)):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, InvalidTransition):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    if isinstance(exc, InvalidArgument):
        return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))
    return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))


def _control_error(exc: Exception) -> HTTPException:
    return HTTPException(getattr(exc, "status", 400), str(exc))


class LoginBody(_In):
    queues: list[int] | None = Field(None, description="queue ids; default: every queue the agent belongs to")
    extension: str | None = Field(None, pattern=r"^8[0-9]{4}$",
                                  description="ring this device instead of the agent's own extension")


class PauseBody(_In):
    reason: str = Field(..., min_length=1, max_length=100, description="e.g. 休息, 培训, 会议")


class TransferBody(_In):
    kind: Literal["blind", "attended"] = "blind"
    target: str = Field(..., min_length=1, max_length=200,
                        description="an extension 8XXXX, agent:<user id> or queue:<queue id>")


class InviteBody(_In):
    target: str = Field(..., min_length=1, max_length=200,
                        description="an extension 8XXXX (a user's or a device's), a SIP URI, or a phone number")


class SpyBody(_In):
    mode: Literal["listen", "whisper", "barge"]
    extension: str | None = Field(None, pattern=r"^8[0-9]{4}$",
                                  description="the supervisor's device; default: their own extension")


class SpySwitchBody(_In):
    channel: str = Field(..., min_length=3, max_length=200, pattern=r"^[A-Za-z0-9/@._;:-]+$")
    mode: Literal["listen", "whisper", "barge"]


def _agent_view(svc: Any, agent_id: str) -> dict[str, Any]:
    from huiyan.hotline.service import _asdict

    view = _asdict(svc.acd.agent(agent_id))
    view["extension"] = svc.contact.get(agent_id)
    view["name"] = svc.agents[agent_id].name if agent_id in svc.agents else ""
    return view


@router.get("/api/agents")
def list_agents(caller: Reader, request: Request) -> list[dict[str, Any]]:
    svc = _hotline(request)
    return [_agent_view(svc, a) for a in sorted(svc.agents, key=lambda x: (len(x), x))]


@router.get("/api/agents/{agent_id}")
def get_agent(caller: Operator, agent_id: int, request: Request) -> dict[str, Any]:
    _self_or_supervisor(caller, agent_id)
    try:
        return _agent_view(_hotline(request), str(agent_id))
    except AcdError as e:
        raise _acd(e) from e


@router.post("/api/agents/{agent_id}/login")
def agent_login(caller: Operator, agent_id: int, body: LoginBody, request: Request) -> dict[str, Any]:
    _self_or_supervisor(caller, agent_id)
    svc = _hotline(request)
    try:
        svc.login(str(agent_id), [str(q) for q in body.queues] if body.queues else None, body.extension)
        return _agent_view(svc, str(agent_id))
    except AcdError as e:
        raise _acd(e) from e


def _agent_op(name: str):  # type: ignore[no-untyped-def]
    def op(caller: Operator, agent_id: int, request: Request) -> dict[str, Any]:
        _self_or_supervisor(caller, agent_id)
        svc = _hotline(request)
        try:
            getattr(svc, name)(str(agent_id))
            return _agent_view(svc, str(agent_id))
        except AcdError as e:
            raise _acd(e) from e

    op.__name__ = f"agent_{name}"
    op.__doc__ = {"logout": "Log the agent out of every queue (a ringing offer is withdrawn).",
                  "unpause": "Back to available.",
                  "finish_wrapup": "End after-call work now instead of waiting for the wrap-up timer."}[name]
    return op


router.post("/api/agents/{agent_id}/logout")(_agent_op("logout"))
router.post("/api/agents/{agent_id}/unpause")(_agent_op("unpause"))
router.post("/api/agents/{agent_id}/wrapup-done")(_agent_op("finish_wrapup"))


@router.post("/api/agents/{agent_id}/pause")
def agent_pause(caller: Operator, agent_id: int, body: PauseBody, request: Request) -> dict[str, Any]:
    """Pause with a reason. During a call the pause applies after wrap-up."""
    _self_or_supervisor(caller, agent_id)
    svc = _hotline(request)
    try:
        svc.pause(str(agent_id), body.reason)
        return _agent_view(svc, str(agent_id))
    except AcdError as e:
        raise _acd(e) from e


@router.get("/api/hotline/stats")
def live_stats(caller: Operator, request: Request) -> dict[str, Any]:
    """Per queue: waiting, longest wait, answered, abandoned, service level, ASA, AHT; per agent: state,
    time in state, calls handled, occupancy. The same object is pushed as HotlineStats on /api/events."""
    return _hotline(request).stats_dict()


@router.get("/api/hotline/live")
def live_calls(caller: Operator, request: Request) -> list[dict[str, Any]]:
    """Calls in the distributor now (waiting, ringing, connected), with position and who has them."""
    from huiyan.hotline.service import _asdict

    svc = _hotline(request)
    out = []
    for call_id, w in list(svc.waiters.items()):
        try:
            view = _asdict(svc.acd.call(call_id))
        except AcdError:
            view = {"id": call_id, "state": "ended"}
        view.update(channel=w.channel, caller=w.caller, position=svc.position(call_id), answered_by=w.answered_by)
        out.append(view)
    return out


def _may_control(caller: Principal, svc: Any, call_id: str) -> None:
    if caller.role != Role.AGENT:
        return
    w = svc.waiters.get(call_id)
    if w is not None and w.answered_by != str(caller.user_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent may only control their own call")


@router.post("/api/hotline/calls/{call_id}/hangup", status_code=status.HTTP_204_NO_CONTENT)
async def hangup_call(caller: Operator, call_id: str, request: Request) -> None:
    ctl = _control(request)
    _may_control(caller, ctl.service, call_id)
    try:
        await ctl.hangup(call_id)
    except Exception as e:  # noqa: BLE001 - mapped to a status with the reason
        raise _control_error(e) from e


@router.post("/api/hotline/calls/{call_id}/transfer")
async def transfer_call(caller: Operator, call_id: str, body: TransferBody, request: Request) -> dict[str, str]:
    ctl = _control(request)
    _may_control(caller, ctl.service, call_id)
    try:
        if body.kind == "blind":
            exten = await ctl.blind_transfer(call_id, body.target)
        else:
            exten = await ctl.attended_transfer(call_id, body.target)
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e
    return {"call_id": call_id, "kind": body.kind, "to": exten}


@router.post("/api/hotline/calls/{call_id}/parties", status_code=status.HTTP_202_ACCEPTED)
async def invite_party(caller: Operator, call_id: str, body: InviteBody, request: Request) -> dict[str, str]:
    """Ring a third party; when they answer they join the call (caller and agent stay connected)."""
    ctl = _control(request)
    _may_control(caller, ctl.service, call_id)
    try:
        channel = await ctl.invite(call_id, body.target)
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e
    return {"call_id": call_id, "dialling": channel}


@router.get("/api/hotline/calls/{call_id}/parties")
def list_parties(caller: Operator, call_id: str, request: Request) -> dict[str, Any]:
    ctl = _control(request)
    try:
        lc = ctl.live(call_id)
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e
    return {"call_id": call_id, "caller": lc.caller_channel, "agent": lc.agent_channel, "parties": list(lc.parties)}


@router.delete("/api/hotline/calls/{call_id}/parties/{channel:path}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_party(caller: Operator, call_id: str, channel: str, request: Request) -> None:
    ctl = _control(request)
    _may_control(caller, ctl.service, call_id)
    try:
        await ctl.remove_party(call_id, channel)
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e


@router.post("/api/hotline/calls/{call_id}/spy", status_code=status.HTTP_202_ACCEPTED)
async def spy_call(caller: Reader, call_id: str, body: SpyBody, request: Request) -> dict[str, str]:
    """Ring the supervisor; on answer they listen, whisper to the agent, or barge in. Keys 4/5/6 on their
    phone (or POST /api/hotline/spy/switch) change the mode without redialling."""
    from huiyan.hotline.control import SpyMode

    ctl = _control(request)
    ext = body.extension
    if ext is None:
        from huiyan.db.models import User

        with request.app.state.huiyan.sessions() as s:
            user = s.get(User, caller.user_id)
            ext = user.extension if user else None
    if not ext:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "no device to ring: give `extension`")
    try:
        await ctl.spy(call_id, ext, SpyMode(body.mode))
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e
    return {"call_id": call_id, "mode": body.mode, "ringing": ext}


@router.post("/api/hotline/spy/switch", status_code=status.HTTP_204_NO_CONTENT)
async def switch_spy(caller: Reader, body: SpySwitchBody, request: Request) -> None:
    from huiyan.hotline.control import SpyMode

    ctl = _control(request)
    try:
        await ctl.switch_spy(body.channel, SpyMode(body.mode))
    except Exception as e:  # noqa: BLE001
        raise _control_error(e) from e

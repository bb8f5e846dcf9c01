"""The mediation tables, kept by their rules (for the API, the seed and the session glue), and the room each
case's sessions run in.

Rules kept here: a case's mediator is an active mediator (or supervisor); its organisation exists (by
default the mediator's); a case number is the year and a running number; the PIN is unique among cases
and is the room's participant PIN; status changes follow `model.check_transition`; a closed case changes no
more but for its notes; parties' SIP targets become the room's invitees (they join from there without the
PIN). A case's room is made at its first session and reused after; it is active only while a session runs,
so nobody can hold an unrecorded, unsupervised sitting in it. Functions flush but never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from huiyan.db.orgtree import oversees
from huiyan.db.errors import Invalid
from huiyan.db.models import (
    CaseStatus,
    CaseType,
    MediationCase,
    MediationNote,
    MediationParty,
    MediationSession,
    Organisation,
    PartyRole,
    Role,
    Room,
    RoomKind,
    RoomRecording,
    User,
    VideoMode,
)
from huiyan.db.numbering import ExtensionPlan
from huiyan.db.store import DISPLAY_NAME_RE, _check, _flush, _page
from huiyan.mediation.model import (
    MEDIATOR_ROLES,
    CaseConflict,
    CaseNotFound,
    CaseScope,
    PartyNotFound,
    assign_recordings,
    check_editable,
    check_transition,
    new_pin,
    next_case_number,
)
from huiyan.rooms import store as rooms
from huiyan.rooms.store import INVITE_TARGET_RE

TITLE_RE = r'^[^\x00-\x1f\x7f]{1,200}$'
PARTY_NAME_RE = DISPLAY_NAME_RE.replace("{0,100}", "{1,100}")
PHONE_RE = r"^\+?[0-9][0-9 -]{2,30}$"
NOTE_MAX = 10_000
CST = timezone(timedelta(hours=8), "CST")  # China Standard Time (no DST): the year in case numbers
SUMMARY_MAX = 10_000
MAX_PARTIES = 20
CASE_FIELDS = frozenset({"title", "type", "summary", "organisation_id", "mediator_id"})


def now() -> datetime:
    return datetime.now(UTC)


# ---- scope ---------------------------------------------------------------------------------------------


def scope_of(session: Session, user_id: int, role: Role) -> CaseScope:
    everything, organisations = oversees(session, user_id, role)
    return CaseScope(user_id, role, everything=everything, organisations=organisations)


# ---- cases ---------------------------------------------------------------------------------------------


def get_case(session: Session, case_id: int) -> MediationCase:
    case = session.get(MediationCase, case_id)
    if case is None:
        raise CaseNotFound(f"mediation case {case_id} not found")
    return case


def _mediator(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise Invalid(f"mediator: user {user_id} does not exist")
    if not user.active:
        raise Invalid(f"mediator: user {user.username} is disabled")
    if user.role not in MEDIATOR_ROLES:
        raise Invalid(f"user {user.username} has role {user.role.value}: a case's mediator is a user with role "
                      f"{' or '.join(sorted(r.value for r in MEDIATOR_ROLES))}")
    return user


def _organisation(session: Session, org_id: int | None) -> None:
    if org_id is not None and session.get(Organisation, org_id) is None:
        raise Invalid(f"organisation {org_id} does not exist")


def _unique_pin(session: Session) -> str:
    for _ in range(100):
        pin = new_pin()
        if session.scalar(select(MediationCase.id).where(MediationCase.pin == pin)) is None:
            return pin
    raise CaseConflict("could not find a free case PIN")  # a million PINs: only with a broken generator


def _note(case: MediationCase, text: str, author_id: int | None, system: bool = True) -> MediationNote:
    note = MediationNote(text=text, author_id=author_id, system=system, at=now())
    case.notes.append(note)
    return note


def create_case(
    session: Session,
    *,
    title: str,
    type: CaseType | str,
    mediator_id: int,
    organisation_id: int | None = None,
    summary: str = "",
    parties: Iterable[Mapping[str, Any]] = (),
    created_by_id: int | None = None,
) -> MediationCase:
    _check(TITLE_RE, title, "case title")
    if len(summary) > SUMMARY_MAX:
        raise Invalid(f"the summary is longer than {SUMMARY_MAX} characters")
    mediator = _mediator(session, mediator_id)
    if organisation_id is None:
        organisation_id = mediator.organisation_id
    _organisation(session, organisation_id)
    year = now().astimezone(CST).year
    numbers = session.scalars(select(MediationCase.number).where(MediationCase.number.startswith(f"{year}-")))
    case = MediationCase(
        number=next_case_number(year, numbers), title=title, type=CaseType(type), status=CaseStatus.OPEN,
        organisation_id=organisation_id, mediator_id=mediator.id, pin=_unique_pin(session), summary=summary,
        created_by_id=created_by_id,
    )
    session.add(case)
    for p in parties:
        add_party(session, case, **p)
    _note(case, f"case opened, mediator {mediator.display_name or mediator.username}", created_by_id)
    _flush(session)
    return case


def update_case(session: Session, case_id: int, changes: Mapping[str, Any], *, actor_id: int | None,
                plan: ExtensionPlan) -> MediationCase:
    case = get_case(session, case_id)
    changes = dict(changes)
    unknown = set(changes) - CASE_FIELDS
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))} of a case")
    check_editable(case.status, "change it")
    if "title" in changes:
        _check(TITLE_RE, changes["title"], "case title")
    if len(changes.get("summary") or "") > SUMMARY_MAX:
        raise Invalid(f"the summary is longer than {SUMMARY_MAX} characters")
    if "organisation_id" in changes:
        _organisation(session, changes["organisation_id"])
    if "type" in changes:
        changes["type"] = CaseType(changes["type"])
    if "mediator_id" in changes and changes["mediator_id"] != case.mediator_id:
        mediator = _mediator(session, changes["mediator_id"])
        _note(case, f"mediator changed to {mediator.display_name or mediator.username}", actor_id)
    for key, value in changes.items():
        setattr(case, key, value)
    _sync_room(session, case, plan)
    _flush(session)
    return case


def list_cases(
    session: Session,
    scope: CaseScope,
    *,
    status: CaseStatus | None = None,
    type: CaseType | None = None,
    mediator_id: int | None = None,
    organisation_id: int | None = None,
    q: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[MediationCase], int]:
    stmt = select(MediationCase).order_by(MediationCase.id.desc())
    if not scope.everything:
        mine = MediationCase.mediator_id == scope.user_id
        stmt = stmt.where(mine | MediationCase.organisation_id.in_(scope.organisations) if scope.organisations
                          else mine)
    if status is not None:
        stmt = stmt.where(MediationCase.status == status)
    if type is not None:
        stmt = stmt.where(MediationCase.type == type)
    if mediator_id is not None:
        stmt = stmt.where(MediationCase.mediator_id == mediator_id)
    if organisation_id is not None:
        stmt = stmt.where(MediationCase.organisation_id == organisation_id)
    if q:
        stmt = stmt.where(MediationCase.title.icontains(q, autoescape=True)
                          | MediationCase.number.icontains(q, autoescape=True)
                          | MediationCase.parties.any(MediationParty.name.icontains(q, autoescape=True)))
    return _page(session, stmt.options(selectinload(MediationCase.parties)), offset, limit)


def set_status(session: Session, case_id: int, target: CaseStatus | str, *, outcome: str | None = None,
               actor_id: int | None = None, reason: str = "") -> tuple[MediationCase, CaseStatus]:
    """Move a case to `target` (not in or out of a session: see begin/finish_session). Returns the case and
    the status it had."""
    case = get_case(session, case_id)
    previous = case.status
    _transition(case, CaseStatus(target), outcome, actor_id, by_session=False,
                session_open=open_session(session, case.id) is not None, reason=reason)
    _flush(session)
    return case, previous


def _transition(case: MediationCase, target: CaseStatus, outcome: str | None, actor_id: int | None, *,
                by_session: bool, session_open: bool, reason: str = "") -> None:
    check_transition(case.status, target, outcome=outcome, by_session=by_session, session_open=session_open)
    previous = case.status
    case.status = target
    if target in (CaseStatus.SETTLED, CaseStatus.FAILED):
        case.outcome = (outcome or "").strip()
    elif target == CaseStatus.OPEN and previous == CaseStatus.FAILED:
        case.outcome = None  # tried again: the old outcome stays in the file (the note below)
    if target == CaseStatus.CLOSED:
        case.closed_at = now()
    text = f"status {previous.value} → {target.value}"
    if target in (CaseStatus.SETTLED, CaseStatus.FAILED):
        text += f": {case.outcome}"
    if reason:
        text += f" ({reason})"
    _note(case, text, actor_id)


# ---- parties -------------------------------------------------------------------------------------------


def _check_party(name: str, phone: str, target: str | None) -> None:
    _check(PARTY_NAME_RE, name, "party name")
    _check(PHONE_RE, phone, "phone number")
    if target is not None:
        _check(INVITE_TARGET_RE, target, "party target")


def add_party(session: Session, case: MediationCase, *, name: str, phone: str, role: PartyRole | str,
              target: str | None = None, plan: ExtensionPlan | None = None) -> MediationParty:
    """Add a party; with `plan`, the case's room (if it has one) learns the party's target at once."""
    check_editable(case.status, "add a party")
    target = (target or "").strip() or None
    _check_party(name, phone, target)
    if len(case.parties) >= MAX_PARTIES:
        raise Invalid(f"at most {MAX_PARTIES} parties per case")
    party = MediationParty(name=name, phone=phone.strip(), role=PartyRole(role), target=target, created_at=now())
    case.parties.append(party)
    if plan is not None:
        _sync_room(session, case, plan)
        _flush(session)
    return party


def get_party(case: MediationCase, party_id: int) -> MediationParty:
    party = next((p for p in case.parties if p.id == party_id), None)
    if party is None:
        raise PartyNotFound(f"case {case.number} has no party {party_id}")
    return party


def update_party(session: Session, case_id: int, party_id: int, changes: Mapping[str, Any], *,
                 plan: ExtensionPlan) -> MediationParty:
    case = get_case(session, case_id)
    party = get_party(case, party_id)
    check_editable(case.status, "change a party")
    values = {"name": party.name, "phone": party.phone, "target": party.target} | dict(changes)
    if "target" in changes:
        values["target"] = (changes["target"] or "").strip() or None
    _check_party(values["name"], values["phone"], values["target"])
    for key in ("name", "phone", "target"):
        setattr(party, key, values[key])
    if "role" in changes:
        party.role = PartyRole(changes["role"])
    _sync_room(session, case, plan)
    _flush(session)
    return party


def remove_party(session: Session, case_id: int, party_id: int, *, plan: ExtensionPlan) -> MediationParty:
    case = get_case(session, case_id)
    party = get_party(case, party_id)
    check_editable(case.status, "remove a party")
    case.parties.remove(party)
    _sync_room(session, case, plan)
    _flush(session)
    return party


# ---- notes ---------------------------------------------------------------------------------------------


def add_note(session: Session, case_id: int, text: str, *, author_id: int | None,
             system: bool = False) -> MediationNote:
    """Append to the case's file (allowed in every status, closed included). `system`: a record of
    something that happened rather than a person's note."""
    case = get_case(session, case_id)
    text = text.strip()
    if not text or len(text) > NOTE_MAX:
        raise Invalid(f"a note has 1..{NOTE_MAX} characters")
    note = _note(case, text, author_id, system=system)
    _flush(session)
    return note


# ---- sessions and the case's room ---------------------------------------------------------------------


def room_name(case: MediationCase) -> str:
    return f"远程调解 {case.number}"


def _invitees(case: MediationCase) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for p in case.parties:
        if p.target and p.target not in seen:
            seen[p.target] = {"target": p.target, "name": p.name, "moderator": False}
    return list(seen.values())


def _sync_room(session: Session, case: MediationCase, plan: ExtensionPlan, **extra: Any) -> Room | None:
    """Keep the case's room in step with the case: its PIN, its mediator as moderator, the parties'
    targets as invitees, always recorded."""
    if case.room_id is None:
        return None
    changes = {"name": room_name(case), "kind": RoomKind.MEDIATION, "pin": case.pin, "record": True,
               "organisation_id": case.organisation_id, "moderator_user_ids": [case.mediator_id],
               "invitees": _invitees(case), **extra}
    session.flush()
    return rooms.update_room(session, case.room_id, changes, plan=plan)


def open_session(session: Session, case_id: int) -> MediationSession | None:
    return session.scalar(select(MediationSession).where(MediationSession.case_id == case_id,
                                                          MediationSession.ended_at.is_(None)))


def begin_session(session: Session, case_id: int, *, plan: ExtensionPlan, actor_id: int | None,
                  video_mode: VideoMode | str | None = None) -> tuple[MediationCase, MediationSession]:
    """Open the case's room (made now if it has none), recorded, with the case's PIN, and put the case in
    session."""
    case = get_case(session, case_id)
    running = open_session(session, case.id)
    if running is not None:
        raise CaseConflict(f"case {case.number} is already in session (since {running.started_at.isoformat()})")
    check_transition(case.status, CaseStatus.IN_SESSION, by_session=True)
    extra: dict[str, Any] = {"active": True, "locked": False}
    if video_mode is not None:
        extra["video_mode"] = VideoMode(video_mode)
    if case.room_id is None:
        room = rooms.create_room(
            session, plan=plan, name=room_name(case), kind=RoomKind.MEDIATION,
            video_mode=VideoMode(video_mode or VideoMode.FOLLOW_TALKER), organisation_id=case.organisation_id,
            pin=case.pin, record=True, moderator_user_ids=[case.mediator_id], invitees=_invitees(case),
        )
        case.room_id = room.id
        case.room = room
    else:
        room = _sync_room(session, case, plan, **extra)
        assert room is not None
    ms = MediationSession(room_id=room.id, started_at=now(), started_by_id=actor_id)
    case.sessions.append(ms)
    _transition(case, CaseStatus.IN_SESSION, None, actor_id, by_session=True, session_open=False,
                reason=f"session in room {room.number}")
    _flush(session)
    return case, ms


def finish_session(session: Session, case_id: int, *, plan: ExtensionPlan, actor_id: int | None,
                   status: CaseStatus | str | None = None, outcome: str | None = None
                   ) -> tuple[MediationCase, MediationSession, CaseStatus]:
    """End the running session: its room closes (nobody joins any more) and the case goes back to open,
    or to the status given (settled/failed with an outcome), or stays settled/failed if it was marked so
    during the session. Returns the case, the session and the status the case had."""
    case = get_case(session, case_id)
    ms = open_session(session, case.id)
    if ms is None:
        raise CaseConflict(f"case {case.number} has no session in progress")
    previous = case.status
    target = CaseStatus(status) if status is not None else (
        CaseStatus.OPEN if case.status == CaseStatus.IN_SESSION else case.status)
    if target != case.status:
        _transition(case, target, outcome, actor_id, by_session=True, session_open=False,
                    reason="session ended")
    else:
        _note(case, "session ended", actor_id)
    ms.ended_at, ms.ended_by_id = now(), actor_id
    if case.room_id is not None:
        rooms.update_room(session, case.room_id, {"active": False}, plan=plan)
    _flush(session)
    return case, ms, previous


# ---- recordings ---------------------------------------------------------------------------------------


def case_recordings(session: Session, case: MediationCase) -> list[tuple[RoomRecording, int | None]]:
    """Every recording of the case's room, oldest first, each with the mediation session it belongs to."""
    if case.room_id is None:
        return []
    stmt = select(RoomRecording).where(RoomRecording.room_id == case.room_id).order_by(RoomRecording.started_at)
    recs = list(session.scalars(stmt))
    owners = assign_recordings([(s.id, s.started_at) for s in case.sessions], [(r.id, r.started_at) for r in recs])
    return [(r, owners[r.id]) for r in recs]

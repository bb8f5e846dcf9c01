"""The organisation tree as the access rules need it: which organisations a user oversees.

One rule for every business line (mediation cases, recordings, check-in subjects, ...): admins oversee
everything; a supervisor their organisation and every organisation below it (everything when attached to
none, as for rooms and queues); anyone else no organisation (they see only what is theirs)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from huiyan.db.models import Organisation, Role, User


def subtree(root: int, parents: Iterable[tuple[int, int | None]]) -> frozenset[int]:
    """`root` and every organisation below it, from (id, parent_id) pairs."""
    children: dict[int | None, list[int]] = {}
    for oid, parent in parents:
        children.setdefault(parent, []).append(oid)
    out, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return frozenset(out)


def organisation_subtree(session: Session, root: int) -> frozenset[int]:
    """`root` and every organisation below it, read from the database."""
    return subtree(root, session.execute(select(Organisation.id, Organisation.parent_id)))


def oversees(session: Session, user_id: int, role: Role) -> tuple[bool, frozenset[int]]:
    """(everything, organisations) that `user_id` in `role` oversees, by the rule above."""
    if role == Role.ADMIN:
        return True, frozenset()
    if role == Role.SUPERVISOR:
        user = session.get(User, user_id)
        org = user.organisation_id if user else None
        if org is None:
            return True, frozenset()
        return False, organisation_subtree(session, org)
    return False, frozenset()

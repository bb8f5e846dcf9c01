"""/api/mediation: cases with their rules (404/409/422 with reasons), who sees and acts on which case, and
sessions over the rooms runtime (a real RoomService on the database, RoomControl on a stub AMI that records
the actions Asterisk would get)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from huiyan.bus import EventBus
from huiyan.db.models import Room, RoomKind
from huiyan.mediation.service import MediationEvent
from huiyan.pbx.ami import AmiResponse
from huiyan.pbx.events import parse_event
from huiyan.rooms.control import RoomControl
from huiyan.rooms.service import RoomService, RoomsChanged
from huiyan.rooms.store import DbRoomStore

if TYPE_CHECKING:
    from conftest import ApiHarness

PARTIES = [
    {"name": "王游客", "phone": "13904351234", "role": "applicant"},
    {"name": "长白山某酒店", "phone": "0433-5751234", "role": "respondent"},
]


@pytest.fixture
def people(api: ApiHarness) -> dict[str, int]:
    """A province with two cities and a county; a mediator in each city, a supervisor of city C.
    Their tokens go into the harness under these names (api.auth("med_c"))."""
    from huiyan.api.access import issue_token
    from huiyan.db import store

    out: dict[str, int] = {}
    with api.sessions() as s:
        prov = store.create_organisation(s, name="省司法厅", code="M220000", level="province")
        city_c = store.create_organisation(s, name="延边州司法局", code="M222400", level="city", parent_id=prov.id)
        s.flush()
        county = store.create_organisation(s, name="安图县司法局", code="M222426", level="county", parent_id=city_c.id)
        city_o = store.create_organisation(s, name="长春市司法局", code="M220100", level="city", parent_id=prov.id)
        s.flush()
        out.update(prov=prov.id, city_c=city_c.id, county=county.id, city_o=city_o.id)
        for name, role, org in [("med_c", "mediator", city_c.id), ("med_k", "mediator", county.id),
                                ("med_o", "mediator", city_o.id), ("sup_c", "supervisor", city_c.id)]:
            user = store.create_user(s, username=name, password=f"{name}-password", role=role, organisation_id=org,
                                     display_name=f"{name}调解员")
            api.user_ids[name] = user.id
            api.tokens[name] = issue_token(user, key=api.settings.secret("jwt"), ttl_seconds=3600)
            out[name] = user.id
        s.commit()
    return out


def _create(api: ApiHarness, who: str = "med_c", **body: Any) -> Any:
    body.setdefault("title", "游客与酒店退订纠纷")
    body.setdefault("type", "tourism")
    return api.client.post("/api/mediation/cases", json=body, headers=api.auth(who))


def _case(api: ApiHarness, who: str = "med_c", **body: Any) -> dict[str, Any]:
    r = _create(api, who, **body)
    assert r.status_code == 201, r.text
    return r.json()


def _events(api: ApiHarness) -> list[Any]:
    seen: list[Any] = []
    api.bus.on(seen.append)
    return seen


# ---- cases ----------------------------------------------------------------------------------------------


def test_a_mediator_opens_a_case_with_its_parties_a_number_and_a_pin(api: ApiHarness, people: dict[str, int]) -> None:
    seen = _events(api)
    case = _case(api, parties=PARTIES, summary="预订的房间与实际不符，要求退款")
    assert re.fullmatch(r"20[0-9]{2}-00001", case["number"]), case["number"]
    assert re.fullmatch(r"[0-9]{6}", case["pin"])
    assert case["status"] == "open" and case["type"] == "tourism" and case["outcome"] is None
    assert case["mediator_id"] == people["med_c"] and case["organisation_id"] == people["city_c"]  # the mediator's
    assert [(p["name"], p["role"]) for p in case["parties"]] == [("王游客", "applicant"), ("长白山某酒店", "respondent")]
    assert case["room_id"] is None and case["join"] is None and case["sessions"] == [] and case["recordings"] == []
    assert [(n["system"], n["author_id"]) for n in case["notes"]] == [(True, people["med_c"])]
    assert "case opened" in case["notes"][0]["text"]
    evs = [e for e in seen if isinstance(e, MediationEvent)]
    assert [(e.case_id, e.kind, e.data["status"]) for e in evs] == [(case["id"], "created", "open")]
    second = _case(api, type="neighbour")
    assert second["number"][-5:] == "00002" and second["pin"] != case["pin"]
    got = api.client.get(f"/api/mediation/cases/{case['id']}", headers=api.auth("med_c")).json()
    assert got["summary"] == "预订的房间与实际不符，要求退款" and got["mediator_name"] == "med_c调解员"


def test_who_a_case_may_be_given_to(api: ApiHarness, people: dict[str, int]) -> None:
    r = _create(api, "med_c", mediator_id=people["med_o"])
    assert r.status_code == 403 and "only admins and supervisors" in r.json()["detail"]
    r = _create(api, "admin")  # an admin is no mediator
    assert r.status_code == 400 and "role admin" in r.json()["detail"]
    r = _create(api, "admin", mediator_id=api.user_ids["lawyer"])
    assert r.status_code == 400 and "role lawyer" in r.json()["detail"]
    r = _create(api, "admin", mediator_id=9999)
    assert r.status_code == 400 and "does not exist" in r.json()["detail"]
    r = _create(api, "admin", mediator_id=people["med_o"], organisation_id=9999)
    assert r.status_code == 400 and "organisation 9999 does not exist" in r.json()["detail"]
    assert _case(api, "admin", mediator_id=people["med_o"])["organisation_id"] == people["city_o"]
    # a supervisor gives cases to the mediators of their organisation (and below), not elsewhere
    r = _create(api, "sup_c", mediator_id=people["med_o"])
    assert r.status_code == 403 and "outside your organisation" in r.json()["detail"]
    assert _case(api, "sup_c", mediator_id=people["med_k"])["organisation_id"] == people["county"]
    assert _case(api, "sup_c")["mediator_id"] == people["sup_c"]  # a supervisor may mediate too


@pytest.mark.parametrize("body", [
    {"type": "divorce"},
    {"title": ""},
    {"parties": [{"name": "张三", "phone": "13904351234", "role": "judge"}]},
    {"parties": [{"name": "张三", "phone": "call me", "role": "applicant"}]},
    {"parties": [{"name": 'a"b', "phone": "13904351234", "role": "applicant"}]},
    {"parties": [{"name": "张三", "phone": "13904351234", "role": "applicant", "target": "h323:10.0.0.1"}]},
    {"parties": [{"name": "张三", "role": "applicant"}]},
    {"colour": "red"},
])
def test_bad_case_bodies_are_422(api: ApiHarness, people: dict[str, int], body: dict[str, Any]) -> None:
    r = _create(api, **body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["msg"]


def test_bad_status_note_session_and_lawyer_bodies_are_422(api: ApiHarness, people: dict[str, int]) -> None:
    case = _case(api)
    base = f"/api/mediation/cases/{case['id']}"
    for path, body, message in [
        ("/status", {"status": "settled"}, "outcome is required"),
        ("/status", {"status": "failed", "outcome": "  "}, "outcome is required"),
        ("/status", {"status": "withdrawn"}, "Input should be"),
        ("/notes", {"text": ""}, "at least 1 character"),
        ("/session", {"video_mode": "mosaic"}, "Input should be"),
        ("/session/end", {"status": "closed"}, "Input should be"),
        ("/session/end", {"status": "settled"}, "outcome is required"),
        ("/lawyer", {}, "exactly one of"),
        ("/lawyer", {"user_id": 1, "target": "80001"}, "exactly one of"),
        ("/lawyer", {"target": "h323:10.0.0.1"}, "pattern"),
    ]:
        r = api.client.post(base + path, json=body, headers=api.auth("med_c"))
        assert r.status_code == 422 and message in r.text, (path, body, r.text)


def test_unknown_cases_and_parties_are_404(api: ApiHarness, people: dict[str, int]) -> None:
    case = _case(api, parties=PARTIES)
    other = _case(api, parties=PARTIES[:1])
    h = api.auth("med_c")
    for method, path, body in [
        ("get", "/api/mediation/cases/999999", None),
        ("patch", "/api/mediation/cases/999999", {"title": "x"}),
        ("post", "/api/mediation/cases/999999/status", {"status": "closed"}),
        ("post", "/api/mediation/cases/999999/notes", {"text": "x"}),
        ("post", "/api/mediation/cases/999999/parties", PARTIES[0]),
        ("get", "/api/mediation/cases/999999/recordings", None),
        ("post", "/api/mediation/cases/999999/session", None),  # 404 before "no PBX" (503)
        ("post", "/api/mediation/cases/999999/session/end", None),
        ("post", "/api/mediation/cases/999999/lawyer", {"target": "80001"}),
    ]:
        r = api.client.request(method, path, json=body, headers=h)
        assert r.status_code == 404 and "case 999999 not found" in r.json()["detail"], (path, r.text)
    theirs = other["parties"][0]["id"]
    for method, body in [("patch", {"phone": "13800000000"}), ("delete", None)]:
        r = api.client.request(method, f"/api/mediation/cases/{case['id']}/parties/{theirs}", json=body, headers=h)
        assert r.status_code == 404 and f"has no party {theirs}" in r.json()["detail"], r.text
        r = api.client.request(method, f"/api/mediation/cases/{case['id']}/parties/999999", json=body, headers=h)
        assert r.status_code == 404, r.text


def test_parties_are_added_changed_and_removed(api: ApiHarness, people: dict[str, int]) -> None:
    seen = _events(api)
    case = _case(api)
    base = f"/api/mediation/cases/{case['id']}/parties"
    r = api.client.post(base, json={**PARTIES[0], "target": "80077"}, headers=api.auth("med_c"))
    assert r.status_code == 201 and r.json()["target"] == "80077", r.text
    pid = r.json()["id"]
    r = api.client.patch(f"{base}/{pid}", json={"target": None, "role": "other"}, headers=api.auth("med_c"))
    assert r.status_code == 200 and r.json()["target"] is None and r.json()["role"] == "other", r.text
    r = api.client.patch(f"{base}/{pid}", json={"name": None}, headers=api.auth("med_c"))
    assert r.status_code == 422
    assert api.client.delete(f"{base}/{pid}", headers=api.auth("med_c")).status_code == 204
    assert api.client.get(f"/api/mediation/cases/{case['id']}", headers=api.auth("med_c")).json()["parties"] == []
    assert [e.kind for e in seen if isinstance(e, MediationEvent)] == [
        "created", "party_added", "party_updated", "party_removed"]


def test_status_transitions_over_the_api(api: ApiHarness, people: dict[str, int]) -> None:
    seen = _events(api)
    h = api.auth("med_c")
    case = _case(api)
    url = f"/api/mediation/cases/{case['id']}/status"

    def go(body: dict[str, Any]) -> Any:
        return api.client.post(url, json=body, headers=h)

    r = go({"status": "in_session"})
    assert r.status_code == 409 and "starts a session" in r.json()["detail"]
    r = go({"status": "open"})
    assert r.status_code == 409 and "already open" in r.json()["detail"]
    r = go({"status": "settled", "outcome": "酒店退还房费 800 元", "reason": "电话确认"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "settled" and r.json()["outcome"] == "酒店退还房费 800 元"
    assert r.json()["notes"][-1]["text"] == "status open → settled: 酒店退还房费 800 元 (电话确认)"
    for target in ("open", "failed"):
        r = go({"status": target, "outcome": "x"})
        assert r.status_code == 409 and f"from settled to {target}" in r.json()["detail"], r.text
    r = go({"status": "closed"})
    assert r.status_code == 200 and r.json()["closed_at"], r.text
    r = go({"status": "open"})
    assert r.status_code == 409 and "closed case cannot change" in r.json()["detail"]
    # a closed case keeps its parties and data, but takes notes
    for method, path, body in [("post", "/parties", PARTIES[0]), ("patch", "", {"title": "新标题"})]:
        r = api.client.request(method, f"/api/mediation/cases/{case['id']}{path}", json=body, headers=h)
        assert r.status_code == 409 and "the case is closed" in r.json()["detail"], (path, r.text)
    assert api.client.post(f"/api/mediation/cases/{case['id']}/notes", json={"text": "归档"}, headers=h).status_code == 201
    statuses = [(e.data["previous"], e.data["status"]) for e in seen if isinstance(e, MediationEvent) and e.kind == "status"]
    assert statuses == [("open", "settled"), ("settled", "closed")]

    # a failed case may be tried again: back to open, the old outcome stays in its file only
    case = _case(api)
    url = f"/api/mediation/cases/{case['id']}/status"
    assert go({"status": "failed", "outcome": "被申请人拒绝调解"}).json()["outcome"] == "被申请人拒绝调解"
    r = go({"status": "open"})
    assert r.status_code == 200 and r.json()["outcome"] is None
    assert any("被申请人拒绝调解" in n["text"] for n in r.json()["notes"])


def test_notes_are_appended_with_author_and_time(api: ApiHarness, people: dict[str, int]) -> None:
    case = _case(api)
    r = api.client.post(f"/api/mediation/cases/{case['id']}/notes", json={"text": "申请人提交了订单截图"},
                        headers=api.auth("med_c"))
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["author_id"] == people["med_c"] and note["author"] == "med_c调解员" and not note["system"] and note["at"]
    r = api.client.post(f"/api/mediation/cases/{case['id']}/notes", json={"text": "督办"}, headers=api.auth("sup_c"))
    assert r.status_code == 201
    notes = api.client.get(f"/api/mediation/cases/{case['id']}", headers=api.auth("med_c")).json()["notes"]
    assert [(n["text"], n["author"]) for n in notes[1:]] == [("申请人提交了订单截图", "med_c调解员"), ("督办", "sup_c调解员")]


def test_who_sees_and_acts_on_which_case(api: ApiHarness, people: dict[str, int]) -> None:
    mine = _case(api, "med_c")
    county = _case(api, "med_k")
    elsewhere = _case(api, "med_o")
    for role in ("agent", "lawyer", "officer"):  # not mediation staff at all
        for path in ("/api/mediation/cases", f"/api/mediation/cases/{mine['id']}"):
            r = api.client.get(path, headers=api.auth(role))
            assert r.status_code == 403 and f"role '{role}' may not do this" in r.json()["detail"]

    def listed(who: str) -> set[int]:
        r = api.client.get("/api/mediation/cases?limit=500", headers=api.auth(who))
        assert r.status_code == 200, r.text
        return {c["id"] for c in r.json()["items"]}

    ids = {mine["id"], county["id"], elsewhere["id"]}
    assert listed("admin") >= ids and listed("supervisor") >= ids  # a supervisor of no bureau: everything
    assert listed("med_c") == {mine["id"]} and listed("med_o") == {elsewhere["id"]}
    assert listed("sup_c") == {mine["id"], county["id"]}  # city C and the county below it
    r = api.client.get(f"/api/mediation/cases/{mine['id']}", headers=api.auth("med_o"))
    assert r.status_code == 403 and "not yours" in r.json()["detail"]
    for who, case, code in [("sup_c", county, 200), ("sup_c", elsewhere, 403), ("med_k", mine, 403)]:
        r = api.client.post(f"/api/mediation/cases/{case['id']}/notes", json={"text": "看过"}, headers=api.auth(who))
        assert r.status_code == (201 if code == 200 else 403), (who, r.text)
    # a mediator keeps their cases; a supervisor reassigns within their organisation
    r = api.client.patch(f"/api/mediation/cases/{mine['id']}", json={"mediator_id": people["med_k"]},
                         headers=api.auth("med_c"))
    assert r.status_code == 403
    r = api.client.patch(f"/api/mediation/cases/{mine['id']}", json={"mediator_id": people["med_k"]},
                         headers=api.auth("sup_c"))
    assert r.status_code == 200 and r.json()["mediator_id"] == people["med_k"], r.text
    assert "mediator changed to med_k调解员" in r.json()["notes"][-1]["text"]
    assert listed("med_c") == set() and mine["id"] in listed("med_k")
    r = api.client.patch(f"/api/mediation/cases/{mine['id']}", json={"organisation_id": people["city_o"]},
                         headers=api.auth("sup_c"))
    assert r.status_code == 403
    # filters
    r = api.client.get("/api/mediation/cases?status=open&type=tourism&q=酒店", headers=api.auth("admin"))
    assert {c["id"] for c in r.json()["items"]} >= ids


# ---- sessions over the rooms runtime -------------------------------------------------------------


class StubAmi:
    """Records the actions Asterisk would get, answers Success."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, Any]]] = []

    async def action(self, name: str, **fields: Any) -> AmiResponse:
        self.actions.append((name, fields))
        return AmiResponse("pbx1", name, {"Response": "Success"})

    async def action_list(self, name: str, **fields: Any) -> list[dict[str, str]]:
        self.actions.append((name, fields))
        return []


@pytest.fixture
def runtime(api: ApiHarness, tmp_path: Path) -> Iterator[tuple[RoomService, StubAmi]]:
    """The rooms runtime the controller would run, on the harness's database, with a stub AMI."""
    svc = RoomService("pbx1", DbRoomStore(api.sessions), api.bus)
    ami = StubAmi()
    api.app.state.rooms = svc
    api.app.state.room_control = RoomControl(svc, ami, api.settings, recordings_dir=tmp_path / "rec")
    yield svc, ami
    del api.app.state.rooms, api.app.state.room_control


def _join(number: str, uid: str) -> Any:
    return parse_event("pbx1", {"Event": "ConfbridgeJoin", "Conference": number, "Channel": f"PJSIP/80001-{uid}",
                                "Uniqueid": uid, "CallerIDNum": "80001", "CallerIDName": "王游客",
                                "BridgeUniqueid": "br", "Admin": "No", "Muted": "No"})


def test_a_session_opens_the_cases_recorded_room_and_ending_it_closes_the_room(
        api: ApiHarness, people: dict[str, int], runtime: tuple[RoomService, StubAmi]) -> None:
    svc, ami = runtime
    seen = _events(api)
    h = api.auth("med_c")
    case = _case(api, parties=PARTIES)
    base = f"/api/mediation/cases/{case['id']}"
    r = api.client.post(f"{base}/lawyer", json={"target": "80001"}, headers=h)
    assert r.status_code == 409 and "no session in progress" in r.json()["detail"]
    assert api.client.post(f"{base}/session/end", headers=h).status_code == 409

    r = api.client.post(f"{base}/session", headers=h)
    assert r.status_code == 201, r.text
    started = r.json()
    join = started["join"]
    assert join["pin"] == case["pin"] and re.fullmatch(r"6[0-9]{3}", join["room_number"])
    assert join["sip_uri"] == f"sip:{join['room_number']}@127.0.0.1" and join["join_path"].startswith("/join/")
    assert started["status"] == "in_session" and started["session"]["ended_at"] is None
    room_id = started["room_id"]
    with api.sessions() as s:
        room = s.get(Room, room_id)
        assert room is not None
        assert (room.kind, room.pin, room.record, room.active) == (RoomKind.MEDIATION, case["pin"], True, True)
        assert [m.user_id for m in room.moderators] == [people["med_c"]]
    spec = svc.room_by_number(join["room_number"])  # the runtime reloaded: it can be dialled at once
    assert spec is not None and spec.kind == RoomKind.MEDIATION and spec.record and spec.active and spec.pin == case["pin"]
    assert RoomsChanged("created", room_id) in seen
    got = api.client.get(base, headers=h).json()
    assert got["status"] == "in_session" and got["session_open"] and got["room_number"] == join["room_number"]
    assert got["join"] == join and [s["id"] for s in got["sessions"]] == [started["session"]["id"]]
    # one session at a time; in session, only ending the session reopens the case
    r = api.client.post(f"{base}/session", headers=h)
    assert r.status_code == 409 and "already in session" in r.json()["detail"]
    r = api.client.post(f"{base}/status", json={"status": "open"}, headers=h)
    assert r.status_code == 409 and "end the session" in r.json()["detail"]
    r = api.client.post(f"{base}/status", json={"status": "closed"}, headers=h)
    assert r.status_code == 409

    # a lawyer mid-session: dialled into the room (a user's endpoint), joins without the PIN
    lawyer_ext = api.client.get(f"/api/users/{api.user_ids['lawyer']}", headers=api.auth("admin")).json()["extension"]
    r = api.client.post(f"{base}/lawyer", json={"user_id": api.user_ids["lawyer"]}, headers=h)
    assert r.status_code == 202, r.text
    inv = r.json()
    assert inv["status"] == "dialling" and inv["dial"] == f"PJSIP/{lawyer_ext}" and inv["role"] == "participant"
    originate = [f for name, f in ami.actions if name == "Originate"]
    assert originate[-1]["Channel"] == f"PJSIP/{lawyer_ext}" and originate[-1]["Exten"] == join["room_number"]
    assert originate[-1]["ChannelId"] == inv["id"]
    r = api.client.post(f"{base}/lawyer", json={"target": "13904351234"}, headers=h)
    assert r.status_code == 400 and "no trunk" in r.json()["detail"]
    r = api.client.post(f"{base}/lawyer", json={"device_id": 999999}, headers=h)
    assert r.status_code == 400 and "device 999999 does not exist" in r.json()["detail"]

    # somebody is in the room: ending the session ends the meeting in Asterisk, and closes the room
    svc.on_event(_join(join["room_number"], "1700000000.1"))
    assert svc.state(join["room_number"]).live
    r = api.client.post(f"{base}/session/end", headers=h)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "open" and ended["participants_ended"] == 1 and ended["session"]["ended_at"]
    assert ("ConfbridgeKick", {"Conference": join["room_number"], "Channel": "all"}) in ami.actions
    svc.on_event(parse_event("pbx1", {"Event": "ConfbridgeEnd", "Conference": join["room_number"]}))  # as Asterisk
    assert not svc.room_by_number(join["room_number"]).active  # type: ignore[union-attr]
    r = api.client.post(f"{base}/lawyer", json={"target": "80001"}, headers=h)
    assert r.status_code == 409
    kinds = [e.kind for e in seen if isinstance(e, MediationEvent)]
    assert kinds == ["created", "session_started", "lawyer_invited", "session_ended", "status"]
    assert any("lawyer" in n["text"] and lawyer_ext in n["text"] for n in api.client.get(base, headers=h).json()["notes"])

    # the next session reuses the room; ending it can settle the case
    r = api.client.post(f"{base}/session", json={"video_mode": "presenter"}, headers=h)
    assert r.status_code == 201 and r.json()["room_id"] == room_id, r.text
    spec = svc.spec(room_id)
    assert spec.active and spec.video_mode.value == "presenter"
    r = api.client.post(f"{base}/session/end", json={"status": "settled", "outcome": "达成协议：退款 800 元"}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "settled" and r.json()["participants_ended"] == 0
    got = api.client.get(base, headers=h).json()
    assert got["status"] == "settled" and got["outcome"] == "达成协议：退款 800 元" and not got["session_open"]
    assert len(got["sessions"]) == 2 and all(s["ended_at"] for s in got["sessions"])
    r = api.client.post(f"{base}/session", headers=h)
    assert r.status_code == 409 and "from settled to in_session" in r.json()["detail"]


def test_settled_during_the_session_stays_settled_when_it_ends(
        api: ApiHarness, people: dict[str, int], runtime: tuple[RoomService, StubAmi]) -> None:
    h = api.auth("med_c")
    case = _case(api)
    base = f"/api/mediation/cases/{case['id']}"
    assert api.client.post(f"{base}/session", headers=h).status_code == 201
    r = api.client.post(f"{base}/status", json={"status": "settled", "outcome": "当场签署协议"}, headers=h)
    assert r.status_code == 200 and r.json()["session_open"], r.text
    r = api.client.post(f"{base}/status", json={"status": "closed"}, headers=h)
    assert r.status_code == 409 and "still running" in r.json()["detail"]
    r = api.client.post(f"{base}/session/end", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "settled" and r.json()["outcome"] == "当场签署协议"


def test_parties_with_a_target_are_invitees_of_the_room_and_can_be_dialled(
        api: ApiHarness, people: dict[str, int], runtime: tuple[RoomService, StubAmi]) -> None:
    svc, ami = runtime
    h = api.auth("med_c")
    case = _case(api, parties=[{**PARTIES[0], "target": "80061"}, PARTIES[1]])
    base = f"/api/mediation/cases/{case['id']}"
    r = api.client.post(f"{base}/session", json={"dial_parties": True}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(i["party_id"], i["dial"]) for i in body["invitations"]] == [(case["parties"][0]["id"], "PJSIP/80061")]
    assert [f["Channel"] for name, f in ami.actions if name == "Originate"] == ["PJSIP/80061"]
    assert [i.target for i in svc.spec(body["room_id"]).invitees] == ["80061"]
    # a party added mid-session can join from its endpoint at once: the runtime's room knows it
    r = api.client.post(f"{base}/parties", json={**PARTIES[1], "name": "翻译", "role": "other",
                                                 "target": "sip:interpreter@10.20.0.9"}, headers=h)
    assert r.status_code == 201, r.text
    assert [i.target for i in svc.spec(body["room_id"]).invitees] == ["80061", "sip:interpreter@10.20.0.9"]


def test_the_case_lists_every_recording_of_every_session(
        api: ApiHarness, people: dict[str, int], runtime: tuple[RoomService, StubAmi], tmp_path: Path) -> None:
    h = api.auth("med_c")
    case = _case(api)
    base = f"/api/mediation/cases/{case['id']}"
    rooms = DbRoomStore(api.sessions)
    files = []
    for i in range(2):
        started = api.client.post(f"{base}/session", headers=h).json()
        sid = rooms.session_started(started["room_id"], "pbx1", f"br{i}", time.time())
        path = tmp_path / f"mediation-{i}.wav"
        if i == 0:
            path.write_bytes(b"RIFF" + b"\0" * 96)  # the second one's file went missing
        rooms.recording_started(started["room_id"], sid, str(path), time.time())
        files.append((started["session"]["id"], sid, str(path)))
        assert api.client.post(f"{base}/session/end", headers=h).status_code == 200
    got = api.client.get(base, headers=h).json()
    flat = [(r["session_id"], r["room_session_id"], r["path"]) for r in got["recordings"]]
    assert flat == files
    assert [r["size_bytes"] for r in got["recordings"]] == [100, None]
    assert [[r["path"] for r in s["recordings"]] for s in got["sessions"]] == [[files[0][2]], [files[1][2]]]
    listed = api.client.get(f"{base}/recordings", headers=h).json()
    assert [r["path"] for r in listed] == [f[2] for f in files] and listed[0]["started_at"]
    assert api.client.get(f"{base}/recordings", headers=api.auth("med_o")).status_code == 403


def test_without_a_pbx_sessions_are_503(api: ApiHarness, people: dict[str, int]) -> None:
    case = _case(api)
    for path in ("/session", "/session/end"):
        r = api.client.post(f"/api/mediation/cases/{case['id']}{path}", headers=api.auth("med_c"))
        assert r.status_code == 503 and "no PBX" in r.json()["detail"]
    assert isinstance(api.bus, EventBus)

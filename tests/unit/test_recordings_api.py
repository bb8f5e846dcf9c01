"""/api/recordings on a real database and real files (no ffmpeg needed): search, metadata, Range streaming,
access by role with every access audited, share links (expired → 410, bad signature → 403), 404s."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from huiyan.db.models import RecordingAudit, RecordingStatus
from huiyan.recordings.model import sign_share
from tests.unit.conftest import ApiHarness
from tests.unit.test_recordings import T0, add_recording

CONTENT = bytes(range(256)) * 40  # 10240 bytes, every offset recognisable


def _root(api: ApiHarness) -> Path:
    root = api.settings.data_dir / "recordings"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _agent_call(api: ApiHarness, **kw: object) -> int:
    parts = [{"role": "caller", "user_id": None, "number": "13904310001", "name": "张三"},
             {"role": "agent", "user_id": api.user_ids["agent"], "number": "80001", "name": "坐席"}]
    return add_recording(api.sessions, _root(api), "1732870000.17", CONTENT, participants=parts, **kw)  # type: ignore[arg-type]


def _audit(api: ApiHarness) -> list[RecordingAudit]:
    with api.sessions() as s:
        return list(s.scalars(select(RecordingAudit).order_by(RecordingAudit.id)))


def test_range_download_returns_the_right_bytes(api: ApiHarness) -> None:
    rid = _agent_call(api)
    h = api.auth("admin")
    whole = api.client.get(f"/api/recordings/{rid}/media", headers=h)
    assert whole.status_code == 200 and whole.content == CONTENT
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/mp4"
    assert whole.headers["content-length"] == str(len(CONTENT))
    part = api.client.get(f"/api/recordings/{rid}/media", headers={**h, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == CONTENT[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(CONTENT)}"
    assert part.headers["content-length"] == "1000"
    tail = api.client.get(f"/api/recordings/{rid}/download", headers={**h, "Range": "bytes=-300"})
    assert tail.status_code == 206 and tail.content == CONTENT[-300:]
    assert tail.headers["content-disposition"].startswith("attachment;")
    open_end = api.client.get(f"/api/recordings/{rid}/media", headers={**h, "Range": "bytes=10000-"})
    assert open_end.status_code == 206 and open_end.content == CONTENT[10000:]
    bad = api.client.get(f"/api/recordings/{rid}/media", headers={**h, "Range": f"bytes={len(CONTENT)}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(CONTENT)}"
    backwards = api.client.get(f"/api/recordings/{rid}/media", headers={**h, "Range": "bytes=50-10"})
    assert backwards.status_code == 416
    codes = [(a.action, a.status_code) for a in _audit(api)]
    assert codes == [("stream", 200), ("stream", 206), ("download", 206), ("stream", 206), ("stream", 416),
                     ("stream", 416)]


def test_wrong_role_is_403_and_audited(api: ApiHarness) -> None:
    rid = _agent_call(api)
    for role in ("lawyer", "officer", "mediator"):  # took no part, mediate no case of it, no organisation scope
        r = api.client.get(f"/api/recordings/{rid}", headers=api.auth(role))
        assert r.status_code == 403, (role, r.text)
        assert api.client.get(f"/api/recordings/{rid}/media", headers=api.auth(role)).status_code == 403
    denied = [a for a in _audit(api) if not a.allowed]
    assert [(a.user_id, a.action, a.status_code, a.recording_id) for a in denied] == [
        (api.user_ids[role], action, 403, rid)
        for role in ("lawyer", "officer", "mediator") for action in ("metadata", "stream")]
    # the agent who took the call may, and so may an admin; both audited as allowed
    assert api.client.get(f"/api/recordings/{rid}", headers=api.auth("agent")).status_code == 200
    r = api.client.get(f"/api/recordings/{rid}/media", headers=api.auth("agent"))
    assert r.status_code == 200 and r.content == CONTENT
    allowed = [(a.user_id, a.action) for a in _audit(api) if a.allowed]
    assert allowed == [(api.user_ids["agent"], "metadata"), (api.user_ids["agent"], "stream")]


def test_unknown_id_is_404_and_audited(api: ApiHarness) -> None:
    for path in ("/api/recordings/999999", "/api/recordings/999999/media", "/api/recordings/999999/download"):
        assert api.client.get(path, headers=api.auth("admin")).status_code == 404
    r = api.client.post("/api/recordings/999999/share", json={}, headers=api.auth("admin"))
    assert r.status_code == 404
    assert [(a.recording_id, a.status_code, a.allowed) for a in _audit(api)] == [(999999, 404, False)] * 4
    assert api.client.get("/api/recordings/1").status_code == 401  # not signed in at all


def test_metadata_and_search(api: ApiHarness) -> None:
    rid = _agent_call(api)
    other = add_recording(api.sessions, _root(api), "meeting-7", b"meeting" * 10, session_type="meeting",
                          participants=[{"role": "participant", "user_id": None, "number": "80002", "name": "县局"}])
    r = api.client.get(f"/api/recordings/{rid}", headers=api.auth("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["session_type"] == "hotline" and body["call_id"] == "1732870000.17"
    assert body["size_bytes"] == len(CONTENT) and body["codecs"] == ["aac"] and body["duration_s"] == 300.0
    assert [p["role"] for p in body["participants"]] == ["caller", "agent"] and body["status"] == "complete"
    assert len(body["sha256"]) == 64 and len(body["digest"]) == 64 and body["seq"] == 1

    def ids(**q: object) -> list[int]:
        r = api.client.get("/api/recordings", params=q, headers=api.auth("admin"))
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert set(ids()) == {rid, other}
    assert ids(call_id="1732870000.17") == [rid]
    assert ids(session_type="meeting") == [other]
    assert ids(participant="13904310001") == [rid]
    assert ids(participant="县") == [other]
    assert ids(participant_user_id=api.user_ids["agent"]) == [rid]
    assert set(ids(since=(T0.replace(hour=7)).isoformat(), until=T0.isoformat())) == {rid, other}
    assert ids(since=T0.isoformat()) == []
    # an agent finds only what they took part in; a lawyer nothing
    r = api.client.get("/api/recordings", headers=api.auth("agent"))
    assert [x["id"] for x in r.json()["items"]] == [rid] and r.json()["total"] == 1
    assert api.client.get("/api/recordings", headers=api.auth("lawyer")).json()["total"] == 0
    assert api.client.get("/api/recordings", params={"since": "2026-01-01T00:00:00"},
                          headers=api.auth("admin")).status_code == 422
    searches = [a for a in _audit(api) if a.action == "search"]
    assert len(searches) == 10 and searches[1].detail["query"] == {"call_id": "1732870000.17"}


def test_share_link_works_without_signing_in_until_it_expires(api: ApiHarness) -> None:
    rid = _agent_call(api)
    r = api.client.post(f"/api/recordings/{rid}/share", json={"ttl_s": 600}, headers=api.auth("agent"))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert r.json()["url"].endswith(f"/api/recordings/shared/{token}")
    got = api.client.get(f"/api/recordings/shared/{token}", headers={"Range": "bytes=0-9"})
    assert got.status_code == 206 and got.content == CONTENT[:10]
    assert api.client.get(f"/api/recordings/shared/{token}").content == CONTENT
    # expired (signed with our key, but in the past) → 410
    key = api.settings.secret("recordings_share")
    expired = sign_share(key, rid, api.user_ids["agent"], int(time.time()) - 1)
    assert api.client.get(f"/api/recordings/shared/{expired}").status_code == 410
    # signed with another key, or altered → 403
    forged = sign_share("not our key", rid, api.user_ids["agent"], int(time.time()) + 600)
    assert api.client.get(f"/api/recordings/shared/{forged}").status_code == 403
    assert api.client.get(f"/api/recordings/shared/{token[:-3]}abc").status_code == 403
    # too long a lifetime, or someone else's recording → refused
    assert api.client.post(f"/api/recordings/{rid}/share", json={"ttl_s": 10**9},
                           headers=api.auth("agent")).status_code == 422
    assert api.client.post(f"/api/recordings/{rid}/share", json={}, headers=api.auth("lawyer")).status_code == 403
    trail = [(a.action, a.allowed, a.status_code, a.user_id) for a in _audit(api)]
    agent = api.user_ids["agent"]
    assert trail == [("share", True, 201, agent), ("shared", True, 206, agent), ("shared", True, 200, agent),
                     ("shared", False, 410, None), ("shared", False, 403, None), ("shared", False, 403, None),
                     ("share", False, 422, agent), ("share", False, 403, api.user_ids["lawyer"])]
    assert _audit(api)[3].recording_id == rid  # the expired link's recording is named in the audit


def test_purged_recording_keeps_its_metadata_but_its_media_is_gone(api: ApiHarness) -> None:
    from huiyan.recordings import ops
    from huiyan.recordings.settings import DEFAULT_RETENTION

    rid = _agent_call(api)
    ops.purge(api.sessions, _root(api), DEFAULT_RETENTION, now=T0.replace(year=T0.year + 2))
    meta = api.client.get(f"/api/recordings/{rid}", headers=api.auth("admin"))
    assert meta.status_code == 200 and meta.json()["status"] == RecordingStatus.PURGED.value
    assert api.client.get(f"/api/recordings/{rid}/media", headers=api.auth("admin")).status_code == 410
    assert api.client.post(f"/api/recordings/{rid}/share", json={}, headers=api.auth("admin")).status_code == 410


def test_audit_and_jobs_are_for_admins(api: ApiHarness) -> None:
    rid = _agent_call(api)
    api.client.get(f"/api/recordings/{rid}", headers=api.auth("lawyer"))
    assert api.client.get("/api/recordings/audit", headers=api.auth("supervisor")).status_code == 403
    assert api.client.get("/api/recordings/jobs", headers=api.auth("agent")).status_code == 403
    r = api.client.get("/api/recordings/audit", params={"recording_id": rid, "allowed": False},
                       headers=api.auth("admin"))
    assert r.status_code == 200 and [(a["action"], a["username"]) for a in r.json()["items"]] == [
        ("metadata", "lawyer1")]
    assert api.client.get("/api/recordings/jobs", headers=api.auth("admin")).json() == []

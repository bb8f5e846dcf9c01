"""GET /healthz: every part, and the database, must be ok for a 200."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huiyan.db import make_engine, session_factory

if TYPE_CHECKING:
    from conftest import ApiHarness


def test_all_parts_ok_is_200_without_a_token(api: ApiHarness) -> None:
    r = api.client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"asterisk", "ami", "fastagi", "database"}
    assert body["checks"]["database"]["ok"] is True


def test_one_part_down_is_503_and_says_which(api: ApiHarness) -> None:
    api.health_parts["ami"] = {"ok": False, "error": "not connected"}
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["ok"] is False and r.json()["checks"]["ami"] == {"ok": False, "error": "not connected"}


def test_a_part_without_ok_true_counts_as_down(api: ApiHarness) -> None:
    api.health_parts["fastagi"] = {"listening": True}
    assert api.client.get("/healthz").status_code == 503


def test_a_failing_health_callback_is_503_not_500(api: ApiHarness) -> None:
    async def broken() -> dict[str, dict[str, Any]]:
        raise ConnectionError("AMI gone")

    api.app.state.huiyan.health = broken
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["runtime"] == {"ok": False, "error": "ConnectionError"}
    assert r.json()["checks"]["database"]["ok"] is True


def test_database_down_is_503(api: ApiHarness, tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/no/such/dir/huiyan.db")
    api.app.state.huiyan.sessions = session_factory(engine)
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"]["ok"] is False
    engine.dispose()

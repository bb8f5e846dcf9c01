"""WS /api/events: bus events, live, as JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from starlette.websockets import WebSocketDisconnect

from huiyan.api.access import issue_token
from huiyan.api.events import encode_event
from huiyan.db import store

if TYPE_CHECKING:
    from conftest import ApiHarness


def test_a_change_made_over_http_arrives_on_the_websocket(api: ApiHarness) -> None:
    org = api.org()
    with api.client.websocket_connect(f"/api/events?token={api.tokens['supervisor']}") as ws:
        r = api.client.post("/api/devices", json={"serial": "XY-1", "organisation_id": org}, headers=api.auth("admin"))
        assert r.status_code == 201
        msg = ws.receive_json()
    assert msg == {"type": "DirectoryChanged", "kind": "device", "action": "created", "id": r.json()["id"],
                   "extension": r.json()["extension"]}


def test_any_published_event_is_streamed(api: ApiHarness) -> None:
    @dataclass
    class QueueCallerJoined:
        queue: str
        position: int
        at: datetime

    at = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    with api.client.websocket_connect(f"/api/events?token={api.tokens['admin']}") as ws:
        ws.portal.call(api.bus.publish, QueueCallerJoined("12348", 1, at))
        ws.portal.call(api.bus.publish, "a plain string")
        first, second = ws.receive_json(), ws.receive_json()
    assert first == {"type": "QueueCallerJoined", "queue": "12348", "position": 1, "at": "2024-05-01T08:30:00+00:00"}
    assert second == {"type": "str", "data": "a plain string"}
    assert not api.bus._queues, "the subscription outlived the connection"


def test_the_stream_closes_when_the_token_expires(api: ApiHarness) -> None:
    with api.sessions() as session:
        token = issue_token(store.get_user(session, api.user_ids["admin"]), key=api.settings.secret("jwt"),
                            ttl_seconds=1)
    with api.client.websocket_connect(f"/api/events?token={token}") as ws:
        started = time.monotonic()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 4401
    assert time.monotonic() - started < 3


def test_encoding_keeps_the_class_name_as_type() -> None:
    @dataclass
    class Weird:
        type: str

    assert encode_event(Weird("x")) == '{"type": "Weird"}'

"""Device presence against a real Asterisk: a SIPp terminal registers (online, last seen, a DevicePresence
event, visible in GET /api/devices), signs off with Expires: 0 (offline), and a presence service started
afresh while a terminal is registered (as after a controller restart) finds it online from PJSIPShowContacts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Running
from tests.integration.sipp import SCENARIOS, Sipp
from tests.integration.test_foundation import _admin_token, _create_device

pytestmark = pytest.mark.integration


def _device(h: Running, auth: dict[str, str], device_id: int) -> dict[str, Any]:
    r = httpx.get(f"{h.api}/api/devices/{device_id}", headers=auth)
    r.raise_for_status()
    return r.json()


def _wait_online(h: Running, auth: dict[str, str], device_id: int, online: bool, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        d = _device(h, auth, device_id)
        if d["online"] is online:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"device {device_id} not online={online} after {timeout}s: {d}")
        time.sleep(0.1)


def _register(h: Running, dev: dict, tmp_path: Path) -> Sipp:
    ext = dev["extension"]
    deadline = time.monotonic() + 5  # the endpoint is loaded by the reload the create route awaited
    while f" {ext}/{ext} " not in h.ctl.pbx.rx("pjsip show endpoints") and time.monotonic() < deadline:
        time.sleep(0.1)
    return Sipp("register_stay.xml", h.sip_target, service=ext, workdir=tmp_path, user=ext,
                password=dev["sip_password"], timeout=120, timeout_error=False,
                extra=("-oocsf", str(SCENARIOS / "answer_options.xml"))).start()


def test_device_goes_online_on_register_and_offline_on_unregister(huiyan: Running, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {_admin_token(huiyan)}"}
    dev = _create_device(huiyan, "terminal")
    assert dev["online"] is False and dev["last_seen"] is None
    phone = _register(huiyan, dev, tmp_path)
    try:
        on = _wait_online(huiyan, auth, dev["id"], True)
        assert on["last_seen"] is not None
        listed = httpx.get(f"{huiyan.api}/api/devices", params={"online": "true", "limit": 500}, headers=auth).json()
        assert dev["id"] in [d["id"] for d in listed["items"]]
        huiyan.wait_event(lambda e: type(e).__name__ == "DevicePresence" and e.device_id == dev["id"] and e.online)
        time.sleep(4)  # past Asterisk's first qualify (3 s timeout): the OPTIONS answered, still online
        assert _device(huiyan, auth, dev["id"])["online"] is True
    finally:
        phone.stop()

    bye = Sipp("unregister.xml", huiyan.sip_target, service=dev["extension"], workdir=tmp_path,
               user=dev["extension"], password=dev["sip_password"], timeout=10, port=phone.port).run()
    assert bye.ok, bye.stderr + bye.errors
    off = _wait_online(huiyan, auth, dev["id"], False)
    assert off["last_seen"] >= on["last_seen"]
    huiyan.wait_event(lambda e: type(e).__name__ == "DevicePresence" and e.device_id == dev["id"] and not e.online)
    listed = httpx.get(f"{huiyan.api}/api/devices", params={"online": "false", "limit": 500}, headers=auth).json()
    assert dev["id"] in [d["id"] for d in listed["items"]]


def test_a_fresh_presence_service_finds_registered_devices_online(huiyan: Running, tmp_path: Path) -> None:
    """What a restarted controller does: start from a stale table and rebuild it from PJSIPShowContacts."""
    from huiyan.db.models import Device
    from huiyan.directory.presence import PresenceService

    auth = {"Authorization": f"Bearer {_admin_token(huiyan)}"}
    dev = _create_device(huiyan, "terminal")
    ghost = _create_device(huiyan, "terminal")  # never registers, but the table says it is online
    phone = _register(huiyan, dev, tmp_path)
    try:
        _wait_online(huiyan, auth, dev["id"], True)
        ctl = huiyan.ctl
        old = ctl.presence
        ctl.bus._callbacks.remove(old.on_event)
        huiyan.call(old.stop())
        with ctl.session_factory() as s:  # what a controller that died a while ago left behind
            s.get(Device, dev["id"]).online = False
            s.get(Device, ghost["id"]).online = True
            s.commit()
        assert _device(huiyan, auth, dev["id"])["online"] is False

        fresh = PresenceService(ctl.node.name, ctl.session_factory, ctl.bus, ctl.ami)
        ctl.bus.on(fresh.on_event)
        huiyan.call(fresh.start())
        ctl.presence = fresh
        assert _device(huiyan, auth, dev["id"])["online"] is True
        assert _device(huiyan, auth, ghost["id"])["online"] is False
    finally:
        phone.stop()

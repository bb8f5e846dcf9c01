"""Rendering: golden files for every Asterisk config, and the properties that must hold whatever the data."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from huiyan.config.model import EndpointSpec
from huiyan.config.render import MODULES, RenderInput, render_all, write_files
from huiyan.config.settings import Settings, TrunkSettings

GOLDEN = Path(__file__).parent / "golden"


def _input(tmp: Path, *, trunk: bool = True, endpoints: tuple[EndpointSpec, ...] | None = None) -> RenderInput:
    s = Settings(
        data_dir=Path("/srv/huiyan"), sip_port=5060, http_port=8088, ami_port=5038, agi_port=4573,
        trunk=TrunkSettings(host="10.20.0.5", username="huiyan", password="trunkpw") if trunk else TrunkSettings(),
    )
    eps = endpoints if endpoints is not None else (
        EndpointSpec("80001", "s3cret-terminal-pw", "terminal", display_name="长春市局 指挥中心"),
        EndpointSpec("80002", "s3cret-agent-pw", "staff", webrtc=True, display_name="坐席 1"),
        EndpointSpec("80003", "s3cret-kiosk-pw", "citizen", display_name="大厅自助终端"),
    )
    return RenderInput(settings=s, modules_dir=Path("/nonexistent/asterisk/modules"), asterisk_data_dir=Path("/usr/share/asterisk"),
                       ami_secret="ami-secret-for-tests", endpoints=eps)


def test_golden_files(tmp_path: Path) -> None:
    files = render_all(_input(tmp_path))
    if os.environ.get("HUIYAN_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for name, text in files.items():
            (GOLDEN / name).write_text(text)
    expected = {p.name: p.read_text() for p in GOLDEN.iterdir()}
    assert sorted(files) == sorted(expected), "set of rendered files changed"
    for name, text in files.items():
        assert text == expected[name], f"{name} differs from tests/unit/golden/{name} (HUIYAN_UPDATE_GOLDEN=1 to accept)"


def test_render_is_deterministic(tmp_path: Path) -> None:
    a = render_all(_input(tmp_path))
    b = render_all(_input(tmp_path, endpoints=tuple(reversed(_input(tmp_path).endpoints))))
    assert a == b


def test_modules_conf_loads_only_present_modules(tmp_path: Path) -> None:
    mods = tmp_path / "mods"
    mods.mkdir()
    for m in ("chan_pjsip.so", "res_pjsip.so", "app_dial.so"):
        (mods / m).touch()
    r = _input(tmp_path)
    r = RenderInput(settings=r.settings, modules_dir=mods, asterisk_data_dir=r.asterisk_data_dir,
                    ami_secret=r.ami_secret, endpoints=r.endpoints)
    text = render_all(r)["modules.conf"]
    assert "autoload=no" in text
    loaded = re.findall(r"^load => (\S+)$", text, re.M)
    assert loaded == [m for m in MODULES if m in ("chan_pjsip.so", "res_pjsip.so", "app_dial.so")]


def test_endpoint_classes_and_webrtc(tmp_path: Path) -> None:
    pj = render_all(_input(tmp_path))["pjsip.conf"]
    assert "[80001](ep-terminal)" in pj
    assert "[80002](ep-staff,ep-webrtc)" in pj
    assert "[80003](ep-citizen)" in pj
    assert "[anonymous](ep-guest)" in pj
    webrtc = pj.split("[ep-webrtc](!)")[1].split("\n\n")[0]
    assert "webrtc=yes" in webrtc and "dtls_auto_generate_cert=yes" in webrtc
    assert "context=from-guest" in pj.split("[ep-guest](!,ep-base)")[1].split("\n\n")[0]


def test_trunk_only_rendered_when_configured(tmp_path: Path) -> None:
    with_trunk = render_all(_input(tmp_path))
    without = render_all(_input(tmp_path, trunk=False))
    assert "[legacy](ep-trunk)" in with_trunk["pjsip.conf"]
    assert "legacy" not in without["pjsip.conf"].replace("legacy conference", "")
    assert "@legacy" in with_trunk["extensions.conf"]
    assert "@legacy" not in without["extensions.conf"]


def test_manager_is_loopback_only(tmp_path: Path) -> None:
    m = render_all(_input(tmp_path))["manager.conf"]
    assert "bindaddr=127.0.0.1" in m
    assert "deny=0.0.0.0/0.0.0.0" in m and "permit=127.0.0.1/255.255.255.255" in m


@pytest.mark.parametrize("bad", ["pw;evil", "pw\n[evil]", " padded", "pw]"])
def test_config_injection_is_refused(tmp_path: Path, bad: str) -> None:
    r = _input(tmp_path, endpoints=(EndpointSpec("80001", bad, "terminal"),))
    with pytest.raises(ValueError, match="not allowed"):
        render_all(r)


def test_duplicate_or_reserved_endpoint_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_all(_input(tmp_path, endpoints=(EndpointSpec("80001", "a-long-password", "terminal"),) * 2))
    with pytest.raises(ValueError):
        render_all(_input(tmp_path, endpoints=(EndpointSpec("anonymous", "a-long-password", "terminal"),)))


def test_write_files_reports_only_changes(tmp_path: Path) -> None:
    files = render_all(_input(tmp_path))
    etc = tmp_path / "etc"
    assert sorted(write_files(files, etc)) == sorted(files)
    assert write_files(files, etc) == []
    files2 = render_all(_input(tmp_path, endpoints=()))
    assert write_files(files2, etc) == ["pjsip.conf"]
    assert oct((etc / "manager.conf").stat().st_mode & 0o777) == "0o600"

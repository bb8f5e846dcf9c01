"""CLI commands that need no running Asterisk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from huiyan.cli import main


def test_seed_demo_loads_the_province_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIYAN_ASTERISK_ROOT", str(tmp_path / "no-root"))
    monkeypatch.setattr("shutil.which", lambda name: None)  # no host Asterisk either
    assert main(["--data-dir", str(tmp_path), "seed-demo"]) == 0
    out = capsys.readouterr().out
    counts = json.loads(out[: out.rindex("}") + 1])
    assert counts == {"organisations": 76, "users": 7, "devices": 360, "queues": 5, "menu_options": 8}
    assert "huiyan setup" in out  # no Asterisk yet: says what to do
    assert main(["--data-dir", str(tmp_path), "seed-demo"]) == 0
    out = capsys.readouterr().out
    assert set(json.loads(out[: out.rindex("}") + 1]).values()) == {0}


def test_setup_error_is_a_message_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIYAN_ASTERISK_ROOT", str(tmp_path / "no-root"))
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert main(["--data-dir", str(tmp_path), "render"]) == 2
    assert "run `huiyan setup` first" in capsys.readouterr().err

"""Asterisk install: where the mirror comes from, and clear failures when the disk or mirror is missing."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from huiyan.pbx import install
from huiyan.pbx.install import SetupError, build_root, debian_mirror, find_or_install


def test_mirror_from_deb822_sources_skips_security(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    monkeypatch.setattr(install, "Path", _redirect(tmp_path))
    assert debian_mirror() == "http://mirror.example/debian"


def test_mirror_from_one_line_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n"
        "deb http://old.example/debian-security bookworm-security main\n"
    )
    monkeypatch.setattr(install, "Path", _redirect(tmp_path))
    assert debian_mirror() == "http://old.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install, "Path", _redirect(tmp_path))
    with pytest.raises(SetupError, match="HUIYAN_DEBIAN_MIRROR"):
        debian_mirror()


def test_low_disk_space_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(install, "ensure_host_packages", lambda *a, **k: None)
    monkeypatch.setattr(install.shutil, "disk_usage", lambda p: usage(10**10, 10**10 - 10**8, 10**8))
    with pytest.raises(SetupError, match=r"only 0\.1 GB free.*Free space"):
        build_root(tmp_path / "root", mirror="http://127.0.0.1:9/debian")
    assert not (tmp_path / "root").exists()


@pytest.mark.skipif(shutil.which("debootstrap") is None, reason="debootstrap is installed by `huiyan setup`")
def test_unreachable_mirror_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback refuses at once: the same failure as a mirror that is down.
    with pytest.raises(SetupError, match="debootstrap from http://127.0.0.1:9/debian failed.*mirror"):
        build_root(tmp_path / "root", mirror="http://127.0.0.1:9/debian")
    assert not (tmp_path / "root").exists()
    assert not (tmp_path / "root.building").exists()


def test_no_install_when_not_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    with pytest.raises(SetupError, match="huiyan setup"):
        find_or_install(root=tmp_path / "root", install=False)


def test_old_host_asterisk_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "asterisk"
    fake.write_text("#!/bin/sh\necho 'Asterisk 18.2.0'\n")
    fake.chmod(0o755)
    with pytest.raises(SetupError, match="needs 20 or newer"):
        install.host_install(str(fake))


def _redirect(base: Path):  # type: ignore[no-untyped-def]
    """Path() that maps /etc/apt/... into a test directory."""
    real = Path

    def make(p: str | Path = ".", *rest: str) -> Path:
        s = str(p)
        if s.startswith("/etc/apt"):
            s = str(base) + s[len("/etc/apt"):]
        return real(s, *rest)

    return make

"""Settings: defaults, huiyan.toml, HUIYAN_* environment (which wins), and generated secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from huiyan.config.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("HUIYAN_"):
            monkeypatch.delenv(k)


def test_defaults_put_everything_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.data_dir == tmp_path / "var"
    assert s.db_url == f"sqlite:///{tmp_path / 'var' / 'huiyan.db'}"
    assert s.root_dir == tmp_path / "var" / "asterisk-root"
    assert s.services["12348"] == "hotline"


def test_toml_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "huiyan.toml"
    cfg.write_text('sip_port = 5070\napi_port = 9000\n[trunk]\nhost = "10.1.2.3"\nusername = "hy"\n'
                   '[services]\n"12348" = "hotline"\n"1234801" = "hotline"\n')
    monkeypatch.setenv("HUIYAN_CONFIG", str(cfg))
    monkeypatch.setenv("HUIYAN_API_PORT", "9100")
    s = Settings(data_dir=tmp_path)
    assert s.sip_port == 5070
    assert s.api_port == 9100  # the environment wins over the file
    assert s.trunk.host == "10.1.2.3" and s.trunk.username == "hy"
    assert s.services == {"12348": "hotline", "1234801": "hotline"}


def test_unprefixed_environment_variables_do_not_configure_a_trunk(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # HOST/PORT/USERNAME/PASSWORD are common in any environment: only HUIYAN_TRUNK__* may set the trunk.
    for k, v in {"HOST": "1.2.3.4", "PORT": "7000", "USERNAME": "someone", "PASSWORD": "x"}.items():
        monkeypatch.setenv(k, v)
    s = Settings(data_dir=tmp_path)
    assert (s.trunk.host, s.trunk.port, s.trunk.username, s.trunk.password) == ("", 5060, "", "")
    monkeypatch.setenv("HUIYAN_TRUNK__HOST", "10.9.8.7")
    assert Settings(data_dir=tmp_path).trunk.host == "10.9.8.7"


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUIYAN_SIP_PORT", "not-a-port")
    with pytest.raises(ValueError, match="sip_port"):
        Settings()


def test_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    a = s.secret("ami")
    assert len(a) >= 24
    assert Settings(data_dir=tmp_path).secret("ami") == a
    assert s.secret("jwt") != a
    assert oct(s.secrets_file.stat().st_mode & 0o777) == "0o600"

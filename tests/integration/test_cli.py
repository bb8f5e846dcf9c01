"""The CLI as a user runs it: `huiyan up` in the foreground until Ctrl-C, `huiyan status`, and isolation
from any other Asterisk on the machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, Running
from tests.integration.sipp import free_port

pytestmark = pytest.mark.integration


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIYAN_")}
    env.update({
        "HUIYAN_DATA_DIR": str(data),
        "HUIYAN_ASTERISK_ROOT": os.environ.get("HUIYAN_ASTERISK_ROOT", str(REPO / "var" / "asterisk-root")),
        "HUIYAN_SIP_PORT": str(free_port()), "HUIYAN_HTTP_PORT": str(free_port()),
        "HUIYAN_AMI_PORT": str(free_port()), "HUIYAN_AGI_PORT": str(free_port()),
        "HUIYAN_API_PORT": str(free_port()),
    })
    rtp = free_port() // 2 * 2
    env.update({"HUIYAN_RTP_START": str(rtp), "HUIYAN_RTP_END": str(rtp + 200)})
    return env


def _huiyan(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "huiyan", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_up_becomes_healthy_and_ctrl_c_stops_everything(tmp_path: Path, huiyan: Running) -> None:
    env = _env(tmp_path / "data")
    setup = _huiyan("setup", "--no-host-packages", env=env)
    assert setup.returncode == 0, setup.stderr
    api = f"http://127.0.0.1:{env['HUIYAN_API_PORT']}"
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "huiyan", "up"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        healthy = None
        while time.monotonic() - t0 < 60:
            try:
                r = httpx.get(f"{api}/healthz", timeout=2)
                if r.status_code == 200 and r.json()["ok"]:
                    healthy = time.monotonic() - t0
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        assert healthy is not None, "huiyan up never became healthy"
        print(f"\nhuiyan up -> healthy in {healthy:.2f}s")
        status = _huiyan("status", env=env, timeout=30)
        assert status.returncode == 0, status.stdout + status.stderr
        st = json.loads(status.stdout)
        assert st["asterisk"]["running"] is True and st["api"]["ok"] is True
        pid = st["asterisk"]["pid"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    # Ctrl-C took Asterisk down with it, and the session's own Asterisk was not touched.
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert huiyan.ctl.pbx.pid() is not None and huiyan.ctl.pbx.pid() != pid
    status = _huiyan("status", env=env, timeout=30)
    assert status.returncode == 1 and json.loads(status.stdout)["asterisk"]["running"] is False

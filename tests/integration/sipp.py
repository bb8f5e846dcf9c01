"""Run SIPp scenarios against the test Asterisk (a real SIP peer, as in Asterisk's own testsuite)."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).parent / "scenarios"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on loopback."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        try:
            with socket.socket(socket.AF_INET, other) as s2:
                s2.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def free_port_block(count: int = 4) -> int:
    """An even UDP port with `count` free ports from it: SIPp's media uses -mp, +1 (RTCP), +2 (video), +3."""
    for _ in range(200):
        base = free_port() // 2 * 2
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free block of UDP ports")


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Sipp:
    def __init__(self, scenario: str, target: str, *, service: str, workdir: Path,
                 user: str | None = None, password: str | None = None, timeout: float = 30,
                 extra: tuple[str, ...] = (), port: int | None = None, max_calls: int | None = 1,
                 timeout_error: bool = True) -> None:
        self.port = port or free_port()
        self.media_port = free_port_block()
        self.workdir = workdir
        self.args = [
            "sipp", target, "-sf", str(SCENARIOS / scenario), "-s", service,
            *(("-m", str(max_calls)) if max_calls else ()),
            "-i", "127.0.0.1", "-p", str(self.port), "-mp", str(self.media_port),
            "-timeout", f"{int(timeout)}s", *(("-timeout_error",) if timeout_error else ()),
            "-nostdin", "-trace_err",
            "-error_file", str(workdir / f"{scenario}.{self.port}.errors.log"),
            *(("-au", user) if user else ()), *(("-ap", password) if password else ()),
            *extra,
        ]
        self.timeout = timeout
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> "Sipp":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.args, cwd=self.workdir, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        return self

    def wait(self) -> SippResult:
        assert self.proc is not None
        try:
            out, err = self.proc.communicate(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        errfile = self.workdir / f"{Path(self.args[3]).name}.{self.port}.errors.log"
        errors = errfile.read_text(errors="replace") if errfile.exists() else ""
        return SippResult(self.proc.returncode, out, err, errors)

    def run(self) -> SippResult:
        return self.start().wait()

    def stop(self) -> SippResult:
        """End a long-running phone (one started without a call limit) and collect what it said."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.wait()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

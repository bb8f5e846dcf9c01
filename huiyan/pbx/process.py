"""Run one Asterisk as a child process with huiyan's own directories and ports; never touch another one."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from huiyan.pbx.install import AsteriskInstall
from huiyan.pbx.node import PbxNode

log = logging.getLogger(__name__)


class PbxError(RuntimeError):
    pass


@dataclass
class PbxStatus:
    running: bool
    pid: int | None
    uptime: str | None
    version: str


class AsteriskProcess:
    """An Asterisk whose whole world (etc, run, log, spool, lib) lives in `pbx_dir`.

    The control socket and pid file are in our own run dir, so `-rx` and `stop` can only ever reach
    this instance, even when a system Asterisk runs on the same host.
    """

    def __init__(self, install: AsteriskInstall, pbx_dir: Path, node: PbxNode) -> None:
        self.install = install
        self.dir = pbx_dir
        self.node = node
        self.proc: subprocess.Popen[bytes] | None = None

    # ---- paths ----------------------------------------------------------------------
    @property
    def conf(self) -> Path:
        return self.dir / "etc" / "asterisk.conf"

    @property
    def pid_file(self) -> Path:
        return self.dir / "run" / "asterisk.pid"

    @property
    def log_dir(self) -> Path:
        return self.dir / "log"

    @property
    def messages_log(self) -> Path:
        return self.log_dir / "messages.log"

    def prepare_dirs(self) -> None:
        for sub in ("etc", "run", "log", "spool", "lib", "agi-bin", "sbin", "spool/monitor", "spool/recording", "lib/keys"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)

    def _argv(self, *args: str) -> list[str]:
        return [*self.install.argv, "-C", str(self.conf), *args]

    # ---- control --------------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        # The pid may have been reused: check it is an asterisk using our config.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid
        return pid if str(self.conf).encode() in cmdline else None

    def rx(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command on *this* instance through its own control socket."""
        r = subprocess.run(self._argv("-rx", command), capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise PbxError(f"asterisk -rx {command!r} failed: {(r.stderr or r.stdout).strip()[:300]}")
        return r.stdout

    def start(self) -> None:
        if self.pid() is not None:
            raise PbxError(f"an Asterisk for {self.dir} is already running (pid {self.pid()})")
        if not self.conf.exists():
            raise PbxError(f"{self.conf} is missing: render the configuration first")
        self.prepare_dirs()
        for stale in ("asterisk.ctl", "asterisk.pid"):
            (self.dir / "run" / stale).unlink(missing_ok=True)
        out = open(self.log_dir / "console.log", "ab")
        # -f: stay in the foreground as our child; -n: no colour codes in the logs.
        self.proc = subprocess.Popen(
            self._argv("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.install.env},
            start_new_session=True,  # Ctrl-C on `huiyan up` is handled by us, not delivered to Asterisk too
        )
        out.close()
        log.info("started Asterisk %s pid %s in %s", self.install.version, self.proc.pid, self.dir)

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until the AMI accepts our login and Asterisk is fully booted; return seconds waited."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = "not started"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise PbxError(
                    f"Asterisk exited with code {self.proc.returncode} during start; see {self.log_dir}/console.log"
                )
            try:
                if await ami_login_probe(self.node, fully_booted=True):
                    return time.monotonic() - t0
                last = "AMI login refused"
            except OSError as e:
                last = str(e)
            await asyncio.sleep(0.1)
        raise PbxError(f"Asterisk not ready after {timeout:.0f}s ({last}); see {self.log_dir}")

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful stop, then SIGTERM, then SIGKILL: never leaves a stray Asterisk behind."""
        pid = self.proc.pid if self.proc and self.proc.poll() is None else self.pid()
        if pid is None:
            return
        try:
            self.rx("core stop now", timeout=5)
        except (PbxError, subprocess.TimeoutExpired, OSError):
            pass
        if not self._wait_gone(pid, timeout / 2):
            self._signal(pid, signal.SIGTERM)
            if not self._wait_gone(pid, timeout / 2):
                self._signal(pid, signal.SIGKILL)
                self._wait_gone(pid, 5)
        self.proc = None

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.pid == pid:
                if self.proc.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def status(self) -> PbxStatus:
        pid = self.pid()
        uptime = None
        if pid is not None:
            try:
                out = self.rx("core show uptime seconds", timeout=5)
                uptime = out.strip().splitlines()[0] if out.strip() else None
            except (PbxError, subprocess.TimeoutExpired):
                uptime = None
        return PbxStatus(running=pid is not None, pid=pid, uptime=uptime, version=self.install.version)

    def errors_in_log(self) -> list[str]:
        if not self.messages_log.exists():
            return []
        return [ln for ln in self.messages_log.read_text(errors="replace").splitlines() if " ERROR[" in ln]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie. An Asterisk adopted from a previous controller is not our
    child: once it exits nobody may reap it (a container's PID 1 often does not), and os.kill(pid, 0)
    would go on succeeding on the zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


async def ami_login_probe(node: PbxNode, fully_booted: bool = False, timeout: float = 3.0) -> bool:
    """Log in to AMI with a raw socket (no library state), optionally waiting for FullyBooted."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(node.ami_host, node.ami_port), timeout)
    try:
        banner = await asyncio.wait_for(reader.readline(), timeout)
        if not banner.startswith(b"Asterisk Call Manager"):
            return False
        writer.write(
            f"Action: Login\r\nUsername: {node.ami_user}\r\nSecret: {node.ami_secret}\r\n"
            f"Events: {'system' if fully_booted else 'off'}\r\n\r\n".encode()
        )
        await writer.drain()
        ok = False
        end = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < end:
            block = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            text = block.decode(errors="replace")
            if "Response: Error" in text:
                return False
            if "Response: Success" in text:
                ok = True
                if not fully_booted:
                    return True
            if "Event: FullyBooted" in text:
                return ok or True
        return False
    finally:
        writer.close()

"""A second Asterisk that plays a legacy H.323 room system for the H.323 tests.

Same Debian root as huiyan's Asterisk (`huiyan.pbx.process.AsteriskProcess`, so the same loader and the
same guarantees: its own control socket, pid file and etc/run/log dirs, never another Asterisk), its own
ports, and only the modules an H.323 room system needs. Its ooh323.conf is written here by hand, not by
huiyan's renderer: it stands for somebody else's equipment.

- `call(number)` places an H.323 call to huiyan (`OOH323/<number>@huiyan`, the form chan_ooh323 uses to
  call an extension at a peer) that echoes what it hears once connected, after keying a PIN if asked to;
- every call huiyan places to it is answered and echoed (Answer + Echo), whatever number it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from huiyan.pbx.install import root_install
from huiyan.pbx.node import PbxNode
from huiyan.pbx.process import AsteriskProcess
from tests.integration.sipp import free_port

HUIYAN_PEER = "huiyan"  # what the legacy system calls huiyan in its own config
MODULES = (
    "res_sorcery_config.so", "res_sorcery_memory.so", "res_pjproject.so",  # res_rtp_asterisk needs pjproject
    "res_rtp_asterisk.so", "res_timing_timerfd.so", "chan_ooh323.so", "pbx_config.so", "res_clioriginate.so",
    "app_dial.so", "app_echo.so", "app_playback.so", "app_senddtmf.so", "app_verbose.so", "func_channel.so",
    "codec_ulaw.so", "codec_alaw.so", "format_gsm.so", "format_wav.so",
)
# Files Asterisk's core reads at start: present (even empty) so its log holds no ERROR of its own.
QUIET = ("cdr.conf", "cel.conf", "features.conf", "ccss.conf", "udptl.conf", "indications.conf", "acl.conf",
         "pjproject.conf")


@dataclass
class LegacyChannel:
    channel: str
    context: str
    exten: str
    state: str
    application: str
    callerid: str
    uniqueid: str


class LegacyH323:
    """The legacy H.323 room system. `port` is its H.323 (H.225) port; huiyan listens on `huiyan_port`."""

    def __init__(self, workdir: Path, root: Path, *, huiyan_port: int, port: int | None = None,
                 h323id: str = "legacy-room", e164: str = "7100") -> None:
        self.dir = workdir
        self.port = port or free_port()
        self.huiyan_port = huiyan_port
        self.h323id, self.e164 = h323id, e164
        self.install = root_install(root)
        self.node = PbxNode(name="legacy", ami_host="127.0.0.1", ami_port=free_port(), ami_user="legacy",
                            ami_secret="legacy-ami-secret", sip_host="127.0.0.1", sip_port=0)
        self.pbx = AsteriskProcess(self.install, workdir, self.node)
        self.rtp_start = free_port() // 2 * 2

    # ---- configuration ----------------------------------------------------------------------------
    def _write_config(self) -> None:
        etc = self.dir / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        d = self.dir
        files = {
            "asterisk.conf": f"""[directories]
astetcdir => {etc}
astmoddir => {self.install.modules_dir}
astvarlibdir => {d / 'lib'}
astdbdir => {d / 'lib'}
astkeydir => {d / 'lib'}
astdatadir => {self.install.data_dir}
astspooldir => {d / 'spool'}
astrundir => {d / 'run'}
astlogdir => {d / 'log'}

[options]
verbose = 3
nocolor = yes
systemname = legacy
""",
            "modules.conf": "[modules]\nautoload=no\n" + "".join(f"load => {m}\n" for m in MODULES),
            "logger.conf": "[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages.log => notice,warning,error\n"
                           "full.log => verbose,notice,warning,error\n",
            "manager.conf": f"[general]\nenabled=yes\nport={self.node.ami_port}\nbindaddr=127.0.0.1\n\n"
                            f"[{self.node.ami_user}]\nsecret={self.node.ami_secret}\nread=all\nwrite=all\n",
            "rtp.conf": f"[general]\nrtpstart={self.rtp_start}\nrtpend={self.rtp_start + 200}\n",
            # A typical room system: G.711, fast start, tunnelling, keypad as H.245 user input.
            "ooh323.conf": f"""[general]
port={self.port}
bindaddr=127.0.0.1
h323id={self.h323id}
e164={self.e164}
gatekeeper=DISABLE
context=from-huiyan
faststart=yes
h245tunneling=yes
disallow=all
allow=ulaw
allow=alaw
dtmfmode=h245alphanumeric
faxdetect=no

[{HUIYAN_PEER}]
type=friend
ip=127.0.0.1
port={self.huiyan_port}
context=from-huiyan
""",
            # Calls huiyan places here: answered and echoed, whatever number they name (or none: "s").
            "extensions.conf": """[general]
static=yes

[from-huiyan]
exten => _[0-9A-Za-z]!,1,NoOp(legacy room system: incoming call for ${EXTEN})
same => n,Answer()
same => n,Echo()

[legacy-out]
; the calling side of a call to huiyan once connected: echo, or first key digits + # (a PIN) after
; huiyan's prompt has begun
exten => echo,1,Echo()
exten => _X.,1,Wait(3)
same => n,SendDTMF(${EXTEN}#,250)
same => n,Echo()
""",
        }
        for name in QUIET:
            files[name] = "" if name in ("acl.conf", "pjproject.conf") else "[general]\n"
        for name, text in files.items():
            (etc / name).write_text(text)

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self) -> LegacyH323:
        self._write_config()
        self.pbx.start()
        asyncio.run(self.pbx.wait_ready(timeout=60))
        return self

    def stop(self) -> None:
        self.pbx.stop()

    def rx(self, command: str) -> str:
        return self.pbx.rx(command, timeout=15)

    def errors(self) -> list[str]:
        return self.pbx.errors_in_log()

    # ---- calls ------------------------------------------------------------------------------------
    def call(self, number: str, *, pin: str = "") -> None:
        """An H.323 call from this room system to `number` at huiyan (`OOH323/<number>@huiyan`); once
        connected it keys `pin` and # (3 s in, while huiyan's prompt plays) and then echoes what it hears."""
        out = self.rx(f"channel originate OOH323/{number}@{HUIYAN_PEER} extension {pin or 'echo'}@legacy-out")
        assert "error" not in out.lower() and "unable" not in out.lower(), out

    def channels(self) -> list[LegacyChannel]:
        out = []
        for line in self.rx("core show channels concise").splitlines():
            f = line.split("!")
            if len(f) >= 14:
                out.append(LegacyChannel(channel=f[0], context=f[1], exten=f[2], state=f[4], application=f[5],
                                         callerid=f[7], uniqueid=f[13]))
        return out

    def wait_channel(self, pred: Callable[[LegacyChannel], bool], timeout: float = 20) -> LegacyChannel:
        deadline = time.monotonic() + timeout
        seen: list[LegacyChannel] = []
        while time.monotonic() < deadline:
            seen = self.channels()
            for c in seen:
                if pred(c):
                    return c
            time.sleep(0.2)
        raise AssertionError(f"no matching channel on the legacy H.323 system within {timeout}s; it has {seen}")

    def hangup_all(self) -> None:
        self.rx("channel request hangup all")

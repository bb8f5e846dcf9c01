"""Find a usable Asterisk (>= 20) on the host, or build one from Debian sid with debootstrap.

Debian 12/13 ship no `asterisk` package, sid does. We debootstrap a minimal sid root into the data
directory and run Asterisk straight out of it through that root's own dynamic loader: no chroot, no
mounts, nothing to clean up. The result is cached: a second `huiyan setup` only checks the marker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MIN_MAJOR = 20
SID_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-ooh323", "asterisk-core-sounds-en-gsm")
MARKER = ".huiyan-root-complete"
NEEDED_FREE_BYTES = 1_500_000_000  # the root is ~500 MB; debootstrap keeps the .debs while it runs

# Host tools huiyan itself uses: SIPp for tests and benchmarks, ffmpeg for recordings, tcpdump for the video
# media tap (huiyan/recordings/tap.py), espeak-ng + sox for the Mandarin prompts, debootstrap for the Asterisk root.
HOST_PACKAGES = {
    "debootstrap": "debootstrap",
    "sipp": "sip-tester",
    "ffmpeg": "ffmpeg",
    "tcpdump": "tcpdump",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
}

Progress = Callable[[str], None]


class SetupError(RuntimeError):
    """Setup could not finish. The message says what failed and what to do about it."""


@dataclass(frozen=True, slots=True)
class AsteriskInstall:
    """How to run one Asterisk binary and where its modules and shipped data are."""

    argv: tuple[str, ...]  # the command prefix: loader + binary, or just the binary
    modules_dir: Path
    data_dir: Path  # astdatadir: sounds, static-http, ...
    version: str
    origin: str  # "host", "configured" or "debian-sid-root"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def major(self) -> int:
        return _major(self.version)


def _major(version: str) -> int:
    m = re.search(r"(\d+)\.\d+", version)
    return int(m.group(1)) if m else 0


def _say(progress: Progress | None, msg: str) -> None:
    if progress:
        progress(msg)


def _version_of(argv: tuple[str, ...]) -> str:
    try:
        out = subprocess.run([*argv, "-V"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SetupError(f"cannot run {argv[-1]}: {e}") from e
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0 or not text.startswith("Asterisk"):
        raise SetupError(f"{argv[-1]} -V did not print an Asterisk version: {text[:200]!r}")
    return text.split()[1]


def root_install(root: Path) -> AsteriskInstall:
    """The Asterisk inside a Debian root built by `build_root`, run through that root's loader."""
    libs = f"{root}/usr/lib/x86_64-linux-gnu:{root}/lib/x86_64-linux-gnu"
    loader = root / "lib64" / "ld-linux-x86-64.so.2"
    if not loader.exists():  # other architectures name their loader differently
        found = sorted(root.glob("lib/*/ld-linux*.so.*")) + sorted(root.glob("lib*/ld-linux*.so.*"))
        if not found:
            raise SetupError(f"no dynamic loader in {root}; delete it and run `huiyan setup` again")
        loader = found[0]
        arch = loader.parent.name
        libs = f"{root}/usr/lib/{arch}:{root}/lib/{arch}"
    argv = (str(loader), "--library-path", libs, str(root / "usr" / "sbin" / "asterisk"))
    mods = next(iter(sorted(root.glob("usr/lib/*/asterisk/modules"))), root / "usr/lib/asterisk/modules")
    return AsteriskInstall(
        argv=argv,
        modules_dir=mods,
        data_dir=root / "usr" / "share" / "asterisk",
        version=_version_of(argv),
        origin="debian-sid-root",
    )


def host_install(binary: str, origin: str = "host") -> AsteriskInstall:
    argv = (binary,)
    version = _version_of(argv)
    if _major(version) < MIN_MAJOR:
        raise SetupError(f"{binary} is Asterisk {version}; huiyan needs {MIN_MAJOR} or newer")
    candidates = [
        *sorted(Path("/usr/lib").glob("*/asterisk/modules")),
        Path("/usr/lib/asterisk/modules"),
        Path("/usr/lib64/asterisk/modules"),
        Path("/usr/local/lib/asterisk/modules"),
    ]
    mods = next((p for p in candidates if (p / "chan_pjsip.so").exists()), None)
    if mods is None:
        raise SetupError(f"found {binary} but not its modules (chan_pjsip.so) in {candidates}")
    data = next(
        (p for p in (Path("/usr/share/asterisk"), Path("/var/lib/asterisk")) if (p / "sounds").exists()),
        Path("/usr/share/asterisk"),
    )
    return AsteriskInstall(argv=argv, modules_dir=mods, data_dir=data, version=version, origin=origin)


def debian_mirror() -> str:
    """The Debian mirror apt on this machine already uses (read at run time, never hard-coded)."""
    uris: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    for f in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in f.read_text(errors="replace").split("\n\n"):
            if re.search(r"^Suites:.*-security", stanza, re.M):
                continue
            m = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            if m:
                uris.append(m.group(1))
    lists = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))] if sources.is_dir() else [
        Path("/etc/apt/sources.list")
    ]
    for f in lists:
        if not f.exists():
            continue
        for line in f.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in line:
                uris.append(next(p for p in parts[1:] if not p.startswith("[")))
    for uri in uris:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    if uris:
        return uris[0].rstrip("/")
    raise SetupError(
        "no Debian mirror found in /etc/apt/sources.list(.d); set HUIYAN_DEBIAN_MIRROR to a Debian mirror URL"
    )


def ensure_host_packages(progress: Progress | None = None, names: tuple[str, ...] | None = None) -> None:
    """apt-get install the host tools that are missing (only as root; otherwise say what to install)."""
    wanted = {cmd: pkg for cmd, pkg in HOST_PACKAGES.items() if names is None or cmd in names}
    missing = sorted({pkg for cmd, pkg in wanted.items() if shutil.which(cmd) is None})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SetupError(f"missing host packages {missing}: run `sudo apt-get install {' '.join(missing)}`")
    _say(progress, f"installing host packages: {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ("install", "update"):
        if attempt == "update":
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        r = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env,
            capture_output=True,
            text=True,
        )
        if r.returncode == 0:
            return
    raise SetupError(f"apt-get install {' '.join(missing)} failed: {r.stderr.strip()[-500:]}")


def build_root(root: Path, mirror: str | None = None, progress: Progress | None = None) -> None:
    """debootstrap a minimal Debian sid with Asterisk into `root` (atomically: build beside, then rename)."""
    ensure_host_packages(progress, ("debootstrap",))
    root.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root.parent).free
    if free < NEEDED_FREE_BYTES:
        raise SetupError(
            f"only {free / 1e9:.1f} GB free in {root.parent}; the Asterisk root needs "
            f"{NEEDED_FREE_BYTES / 1e9:.1f} GB while it is built. Free space or set HUIYAN_ASTERISK_ROOT elsewhere"
        )
    mirror = mirror or debian_mirror()
    tmp = root.with_name(root.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(SID_PACKAGES)}",
        "sid",
        str(tmp),
        mirror,
    ]
    _say(progress, "building the Asterisk root with debootstrap (Debian sid, about a minute)")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    phases = {"Retrieving Release": "fetching the package index", "Retrieving Packages": None,
              "Validating": "checking packages", "Retrieving": "downloading packages",
              "Extracting": "extracting", "Installing core": "installing core packages",
              "Unpacking the base": "unpacking", "Configuring": "configuring", "Base system installed": "done"}
    shown: set[str] = set()
    count = 0
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-30:]
        if not line.startswith("I: "):
            continue
        count += 1
        for key, label in phases.items():
            if line[3:].startswith(key):
                if label and label not in shown:
                    shown.add(label)
                    _say(progress, f"  debootstrap: {label} (step {count})")
                break
    if proc.wait() != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        hint = "check that the machine reaches the Debian mirror"
        if any("No space" in t for t in tail):
            hint = "the disk is full: free space and run again"
        raise SetupError(f"debootstrap from {mirror} failed ({hint}):\n" + "\n".join(tail[-10:]))
    # debootstrap runs maintainer scripts inside a chroot with /proc mounted; make sure nothing stays mounted.
    _unmount_below(tmp)
    (tmp / MARKER).write_text(" ".join(SID_PACKAGES) + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)


def _unmount_below(path: Path) -> None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    for line in reversed(mounts):
        target = line.split()[1]
        if target.startswith(str(path) + "/"):
            subprocess.run(["umount", "-l", target], capture_output=True)


def find_or_install(
    *,
    root: Path,
    binary: str | None = None,
    mirror: str | None = None,
    install: bool = True,
    progress: Progress | None = None,
) -> AsteriskInstall:
    """The Asterisk to use: an explicit binary, else one on PATH (>= 20), else our cached sid root."""
    if binary:
        return host_install(binary, origin="configured")
    on_path = shutil.which("asterisk")
    if on_path:
        try:
            found = host_install(on_path)
            _say(progress, f"using the host's Asterisk {found.version} ({on_path})")
            return found
        except SetupError as e:
            _say(progress, f"ignoring host Asterisk: {e}")
    if (root / MARKER).exists():
        try:
            return root_install(root)
        except SetupError as e:
            _say(progress, f"cached Asterisk root is broken ({e}); rebuilding")
    if not install:
        raise SetupError(f"no Asterisk found and none installed in {root}: run `huiyan setup` first")
    build_root(root, mirror, progress)
    found = root_install(root)
    _say(progress, f"Asterisk {found.version} ready in {root}")
    return found


def main_progress(msg: str) -> None:
    print(f"[huiyan setup] {msg}", file=sys.stderr, flush=True)

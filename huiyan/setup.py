"""`huiyan setup`: everything a fresh machine needs, idempotent and cached (a second run takes seconds)."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from huiyan.config.settings import Settings
from huiyan.pbx.install import AsteriskInstall, Progress, SetupError, ensure_host_packages, find_or_install


@dataclass
class SetupResult:
    install: AsteriskInstall
    seconds: float


def make_moh(moh_dir: Path) -> Path:
    """A calm on-hold melody made with sox (no copyrighted music, nothing downloaded)."""
    moh_dir.mkdir(parents=True, exist_ok=True)
    out = moh_dir / "huiyan-hold.wav"
    if out.exists() and out.stat().st_size > 0:
        return out
    if shutil.which("sox") is None:
        raise SetupError("sox is missing: run `apt-get install sox` (or `huiyan setup` as root)")
    # A pentatonic phrase (C D E G A), each note 0.6 s with a soft fade, repeated; 8 kHz mono like the prompts.
    notes = [261.63, 293.66, 329.63, 392.0, 440.0, 392.0, 329.63, 293.66]
    tmp = out.with_suffix(".tmp.wav")
    parts: list[str] = []
    for i, f in enumerate(notes):
        p = moh_dir / f".note{i}.wav"
        subprocess.run(
            ["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(p), "synth", "0.6", "sine", str(f),
             "fade", "q", "0.05", "0.6", "0.2", "vol", "0.25"],
            check=True, capture_output=True,
        )
        parts.append(str(p))
    subprocess.run(["sox", *parts, str(tmp), "repeat", "3"], check=True, capture_output=True)
    for p in parts:
        Path(p).unlink()
    tmp.replace(out)
    return out


def run_setup(settings: Settings, progress: Progress | None = None, *, host_packages: bool = True) -> SetupResult:
    from huiyan import prompts
    from huiyan.db import upgrade

    say = progress or (lambda m: None)
    t0 = time.monotonic()
    steps = 6
    say(f"[1/{steps}] host tools (debootstrap, sipp, ffmpeg, tcpdump, espeak-ng, sox)")
    if host_packages:
        ensure_host_packages(progress)
    say(f"[2/{steps}] Asterisk")
    install = find_or_install(
        root=settings.root_dir, binary=settings.asterisk_binary, mirror=settings.debian_mirror, progress=progress
    )
    say(f"      Asterisk {install.version} ({install.origin})")
    say(f"[3/{steps}] voice prompts and music on hold")
    prompts.generate(settings.data_dir / "sounds")
    make_moh(settings.data_dir / "moh")
    say(f"[4/{steps}] database {settings.db_url.split('://')[0]}")
    upgrade(settings.db_url)
    say(f"[5/{steps}] Asterisk configuration")
    from huiyan.runtime import render_from_db

    changed = render_from_db(settings, install)
    say(f"      {len(changed)} file(s) written to {settings.pbx_dir / 'etc'}")
    import importlib.util

    if importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models"):
        say("      check-in face model: dlib + face-recognition-models (the 'face' extra) installed")
    else:
        say("      check-in face model missing: pip install -e '.[face]' (officers confirm identity meanwhile)")
    say(f"[6/{steps}] browser clients (web/: npm packages from the lockfile, esbuild)")
    from huiyan.web.build import build as build_web

    if not build_web(settings.data_dir / "web", progress=say, install_node=host_packages):
        say("      up to date")
    from huiyan.entrypoints.poster import PosterError, ensure_font

    try:  # the QR entry posters are drawn in a Chinese font
        say(f"      QR poster font: {ensure_font(say, install=host_packages)}")
    except PosterError as e:
        say(f"      {e} (posters cannot be drawn until then)")
    return SetupResult(install=install, seconds=time.monotonic() - t0)

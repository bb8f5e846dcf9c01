"""Builds the browser clients from web/ into `<data_dir>/web`: npm packages pinned by web/package-lock.json,
bundled by esbuild (JsSIP is CommonJS only). Cached: nothing runs when the sources and the lock are unchanged.

Layout of the result (served by huiyan/web/serve.py):
    <page>.html for each of PAGES  assets/<entry>.js (+ .map) for each of ENTRIES  assets/*.css  BUILD (stamp)

A page may hold a line `<!-- partial: NAME -->`: the build puts web/src/partials/NAME.html there, indented
like the comment (the console pages share their sign-in form that way).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from huiyan.pbx.install import SetupError

Progress = Callable[[str], None]

SOURCE = Path(__file__).resolve().parents[2] / "web"  # the repository's web/ (next to the huiyan package)
ENTRIES = ("citizen.js", "agent.js", "wall.js", "rooms.js", "recordings.js", "reports.js", "admin.js", "checkin.js")  # src/ modules bundled into assets/
PAGES = ("call.html", "agent.html", "wall.html", "rooms.html", "recordings.html", "reports.html", "admin.html", "checkin.html")
BUILD_VERSION = "2"  # bump when this file changes what it produces
PARTIAL = re.compile(r"^(?P<indent>[ \t]*)<!-- partial: (?P<name>[a-z_]+) -->[ \t]*$", re.MULTILINE)
STAMP = "BUILD"


class WebBuildError(SetupError):
    """The browser clients could not be built (reported by `huiyan setup` like any other setup step)."""


def source_digest(src: Path = SOURCE) -> str:
    """What the build depends on: the package files, every source file, and this builder's version."""
    files = [src / "package.json", src / "package-lock.json"]
    files += [p for p in (src / "src").rglob("*") if p.is_file()]
    h = hashlib.sha256(BUILD_VERSION.encode())
    for p in sorted(files):
        h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def render_page(text: str, partials: Path) -> str:
    """The page with each `<!-- partial: NAME -->` line replaced by partials/NAME.html, indented alike."""

    def expand(m: re.Match[str]) -> str:
        path = partials / f"{m['name']}.html"
        if not path.is_file():
            raise WebBuildError(f"no partial {m['name']!r} ({path})")
        lines = path.read_text(encoding="utf-8").rstrip("\n").splitlines()
        return "\n".join(m["indent"] + line if line else line for line in lines)

    return PARTIAL.sub(expand, text)


def _apt_install(packages: list[str], say: Progress) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise WebBuildError(f"Node.js/npm are missing: install {' '.join(packages)} and run `huiyan setup` again")
    say(f"      installing {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ("install", "update"):
        if attempt == "update":
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                           env=env, capture_output=True, text=True)
        if r.returncode == 0:
            return
    raise WebBuildError(f"apt-get install {' '.join(packages)} failed: {r.stderr.strip()[-500:]}")


def _npm(src: Path, say: Progress, install_node: bool) -> None:
    """`npm ci` when web/node_modules does not match the lockfile (a stamp in node_modules says which)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        if not install_node:
            raise WebBuildError("Node.js/npm are missing: `apt-get install nodejs npm`, then `huiyan setup` again")
        _apt_install(["nodejs", "npm"], say)
    lock = (src / "package-lock.json").read_bytes()
    want = hashlib.sha256(lock).hexdigest()
    stamp = src / "node_modules" / ".huiyan-lock"
    if stamp.exists() and stamp.read_text() == want:
        return
    say("      npm ci (packages pinned by web/package-lock.json)")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=src,
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise WebBuildError(f"npm ci failed in {src}: {(r.stderr or r.stdout).strip()[-800:]}")
    stamp.write_text(want)


def build(out: Path, src: Path = SOURCE, progress: Progress | None = None, *, install_node: bool = True) -> bool:
    """Build into `out` unless it already holds this exact build. Returns True if it built.
    `install_node`: apt-get install Node.js and npm when they are missing (as root)."""
    say = progress or (lambda m: None)
    if not (src / "package-lock.json").is_file():
        raise WebBuildError(f"no web sources at {src} (web/package-lock.json): install huiyan from its repository")
    digest = source_digest(src)
    if (out / STAMP).is_file() and (out / STAMP).read_text() == digest:
        return False
    _npm(src, say, install_node)
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "assets").mkdir(parents=True)
    esbuild = src / "node_modules" / ".bin" / "esbuild"
    cmd = [str(esbuild), *[f"src/{e}" for e in ENTRIES], "--bundle", "--format=esm", "--target=es2020",
           "--minify", "--sourcemap", "--charset=utf8", "--log-level=warning", f"--outdir={tmp / 'assets'}"]
    r = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WebBuildError(f"esbuild failed: {(r.stderr or r.stdout).strip()[-1500:]}")
    for page in PAGES:
        try:
            html = render_page((src / "src" / page).read_text(encoding="utf-8"), src / "src" / "partials")
        except WebBuildError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        (tmp / page).write_text(html, encoding="utf-8")
    for css in (src / "src").glob("*.css"):
        shutil.copy2(css, tmp / "assets" / css.name)
    (tmp / STAMP).write_text(digest)
    old = out.with_name(out.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        out.replace(old)
    tmp.replace(out)
    shutil.rmtree(old, ignore_errors=True)
    say(f"      built {', '.join(PAGES)} into {out}")
    return True

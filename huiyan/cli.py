"""The `huiyan` command: setup, up, status, render, seed-demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.request

from huiyan.config.settings import Settings, load_settings
from huiyan.pbx.install import SetupError, main_progress


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return load_settings(**overrides)


def cmd_setup(args: argparse.Namespace) -> int:
    from huiyan.setup import run_setup

    s = _settings(args)
    res = run_setup(s, main_progress, host_packages=not args.no_host_packages)
    main_progress(f"done in {res.seconds:.1f}s — data in {s.data_dir}; start with `huiyan up`")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from huiyan.runtime import Controller

    s = _settings(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)

    async def main() -> None:
        ctl = Controller(s)
        t0 = time.monotonic()
        await ctl.start()
        print(
            f"huiyan is up in {time.monotonic() - t0:.1f}s — API http://{s.api_host}:{s.api_port}/docs, "
            f"SIP {s.sip_host}:{s.sip_port} (UDP/TCP), WebSocket ws://{s.sip_host}:{s.http_port}/ws. "
            "Ctrl-C stops everything.",
            flush=True,
        )
        try:
            await ctl.wait_closed()
        finally:
            await ctl.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    s = _settings(args)
    from huiyan.pbx.install import find_or_install
    from huiyan.pbx.node import PbxNode
    from huiyan.pbx.process import AsteriskProcess

    out: dict[str, object] = {"data_dir": str(s.data_dir)}
    try:
        inst = find_or_install(root=s.root_dir, binary=s.asterisk_binary, install=False)
        st = AsteriskProcess(inst, s.pbx_dir, PbxNode.from_settings(s)).status()
        out["asterisk"] = {"running": st.running, "pid": st.pid, "uptime": st.uptime, "version": st.version}
    except SetupError as e:
        out["asterisk"] = {"running": False, "error": str(e)}
    try:
        with urllib.request.urlopen(f"http://{s.api_host}:{s.api_port}/healthz", timeout=3) as r:
            out["api"] = json.loads(r.read())
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable", which is the answer
        body = getattr(e, "read", None)
        out["api"] = json.loads(body()) if callable(body) else {"ok": False, "error": str(e)}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    api = out.get("api")
    return 0 if isinstance(api, dict) and api.get("ok") else 1


def _render_and_reload(s: Settings) -> list[str]:
    """Render from settings + database; if our Asterisk is running, reload what changed (no restart)."""
    from huiyan.pbx.install import find_or_install
    from huiyan.pbx.node import PbxNode
    from huiyan.pbx.process import AsteriskProcess
    from huiyan.runtime import RELOADS, render_from_db

    inst = find_or_install(root=s.root_dir, binary=s.asterisk_binary, install=False)
    changed = render_from_db(s, inst)
    pbx = AsteriskProcess(inst, s.pbx_dir, PbxNode.from_settings(s))
    if changed and pbx.pid() is not None:
        for name in changed:
            if name in RELOADS:
                pbx.rx(RELOADS[name])
    return changed


def cmd_render(args: argparse.Namespace) -> int:
    s = _settings(args)
    changed = _render_and_reload(s)
    print(f"{len(changed)} file(s) changed in {s.pbx_dir / 'etc'}: {' '.join(changed)}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from huiyan.db import make_engine, session_factory, upgrade
    from huiyan.db.seed import seed_demo

    s = _settings(args)
    upgrade(s.db_url)
    factory = session_factory(make_engine(s.db_url))
    with factory() as session:
        counts = seed_demo(session)
        session.commit()
    print(json.dumps(counts, ensure_ascii=False, indent=2))
    try:
        changed = _render_and_reload(s)
        print(f"Asterisk configuration updated ({', '.join(changed) or 'no change'}).")
    except SetupError:
        print("Asterisk is not installed yet: `huiyan setup` renders the devices.")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="huiyan", description="慧眼 huiyan — video legal-service contact centre")
    p.add_argument("--data-dir", help="data directory (default: $HUIYAN_DATA_DIR or ./var)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("setup", help="install Asterisk and everything else; idempotent")
    sp.add_argument("--no-host-packages", action="store_true", help="do not apt-get install host tools")
    sp.set_defaults(fn=cmd_setup)
    up = sub.add_parser("up", help="run Asterisk + FastAGI + AMI + API in the foreground")
    up.add_argument("-v", "--verbose", action="store_true")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("status", help="is Asterisk running, is the API healthy").set_defaults(fn=cmd_status)
    sub.add_parser("render", help="render the Asterisk config from settings + database; reload a running one").set_defaults(
        fn=cmd_render)
    sub.add_parser("seed-demo", help="load the demo Jilin province").set_defaults(fn=cmd_seed_demo)
    from huiyan.recordings.cli import register as register_recordings

    register_recordings(sub)  # huiyan recordings verify|finalise|reencode|purge|jobs
    args = p.parse_args(argv)
    try:
        return int(args.fn(args))
    except SetupError as e:
        print(f"huiyan: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

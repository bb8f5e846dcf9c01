"""Call flows served over FastAGI, and the route table that names them."""

from __future__ import annotations

from pathlib import Path

from huiyan.agi.request import AgiHangup
from huiyan.agi.server import AgiSession, Handler
from huiyan.config.settings import Settings
from huiyan.prompts import prompt_language, prompt_path


def _prompt(session: AgiSession, sounds_dir: Path, name: str) -> str:
    return prompt_path(sounds_dir, name, prompt_language(session.request.language))


def selftest(sounds_dir: Path) -> Handler:
    """自检: answer, welcome, goodbye, hang up. Proves SIP, dialplan, FastAGI and prompt files end to end."""

    async def handle(session: AgiSession) -> None:
        try:
            await session.answer()
            await session.stream_file(_prompt(session, sounds_dir, "welcome"))
            await session.stream_file(_prompt(session, sounds_dir, "goodbye"))
            await session.hangup()
        except AgiHangup:
            session.log.info("selftest: caller hung up early")

    return handle


def default_routes(settings: Settings) -> dict[str, Handler]:
    """Route name -> handler; the names are the values of `settings.services`."""
    sounds_dir = settings.data_dir / "sounds"
    return {"selftest": selftest(sounds_dir)}

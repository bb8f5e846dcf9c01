"""Call flows over FastAGI, exercised with the fake Asterisk: what the caller hears and when we hang up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from huiyan.agi import FastAgiServer
from huiyan.agi.flows import default_routes
from huiyan.agi.testing import FakeAsterisk
from huiyan.config.settings import Settings
from huiyan.prompts import PROMPTS, prompt_file

HOST = "127.0.0.1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path)
    # Stand-in prompt files: the flow only needs them to exist to pick a language.
    for lang in ("zh", "en"):
        for name in PROMPTS:
            path = prompt_file(s.data_dir / "sounds", name, lang)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"RIFF")
    return s


def test_only_real_routes_are_registered(settings: Settings) -> None:
    routes = default_routes(settings)
    assert set(routes) == {"selftest"}
    # Every registered route is reachable from a public service number.
    assert set(routes) <= set(settings.services.values())


@pytest.mark.parametrize(("agi_language", "lang"), [("en", "en"), ("zh", "zh"), ("", "zh"), ("fr", "zh")])
async def test_selftest_answers_plays_welcome_and_goodbye_then_hangs_up(
    settings: Settings, agi_language: str, lang: str
) -> None:
    sounds = settings.data_dir / "sounds"
    async with FastAgiServer(default_routes(settings), HOST, 0) as server:
        async with FakeAsterisk(HOST, server.port, headers={"agi_language": agi_language},
                                responses={"STREAM FILE": "200 result=0 endpos=40000"}) as fa:
            await fa.wait_closed()
    assert fa.commands == [
        "ANSWER",
        f'STREAM FILE "{sounds}/{lang}/huiyan/welcome" ""',
        f'STREAM FILE "{sounds}/{lang}/huiyan/goodbye" ""',
        "HANGUP",
    ]


async def test_selftest_falls_back_to_english_prompts(settings: Settings) -> None:
    sounds = settings.data_dir / "sounds"
    prompt_file(sounds, "welcome", "zh").unlink()
    async with FastAgiServer(default_routes(settings), HOST, 0) as server:
        async with FakeAsterisk(HOST, server.port, headers={"agi_language": "zh"}) as fa:
            await fa.wait_closed()
    assert fa.commands[1] == f'STREAM FILE "{sounds}/en/huiyan/welcome" ""'
    assert fa.commands[2] == f'STREAM FILE "{sounds}/zh/huiyan/goodbye" ""'


async def test_selftest_caller_hangs_up_during_welcome(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with FastAgiServer(default_routes(settings), HOST, 0) as server:
        async with FakeAsterisk(HOST, server.port,
                                responses={"STREAM FILE": "HANGUP\n200 result=-1 endpos=1200"}) as fa:
            await fa.wait_closed()
        assert server.listening
    # Nothing after the interrupted prompt: no goodbye to a dead channel, no HANGUP of our own.
    assert fa.commands == ["ANSWER", f'STREAM FILE "{settings.data_dir}/sounds/en/huiyan/welcome" ""']
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("hung up" in r.getMessage() for r in caplog.records)


async def test_service_without_a_route_gets_the_unavailable_prompt(settings: Settings) -> None:
    sounds = settings.data_dir / "sounds"
    routes = default_routes(settings)
    async with FastAgiServer(routes, HOST, 0, sounds_dir=sounds) as server:
        async with FakeAsterisk(HOST, server.port, script="hotline?number=12348",
                                headers={"agi_language": "zh"}) as fa:
            await fa.wait_closed()
    assert fa.commands == [
        'SET VARIABLE "HUIYAN_AGI_ERROR" "unknown-route"',
        'SET VARIABLE "HUIYAN_DONE" "1"',
        "ANSWER",
        f'STREAM FILE "{sounds}/zh/huiyan/unavailable" ""',
        "HANGUP",
    ]

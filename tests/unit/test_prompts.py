"""Voice prompts: rendered locally with espeak-ng + sox into what Asterisk plays without transcoding."""

from __future__ import annotations

import array
import json
import os
import shutil
import wave
from pathlib import Path

import pytest

from huiyan.prompts import (
    LANGS,
    PROMPTS,
    PromptToolMissing,
    generate,
    prompt_file,
    prompt_language,
    prompt_path,
)
from huiyan.prompts.synth import MANIFEST_NAME, spoken_text

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="needs espeak-ng and sox"
)

REQUIRED = {
    "welcome", "recorded", "please_wait", "position_prefix", "position_suffix", "estimated_wait",
    "goodbye", "unavailable", "invalid", "menu",
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    sounds = tmp_path_factory.mktemp("sounds")
    return sounds, generate(sounds)


def mtimes(sounds: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in sounds.rglob("*.wav")}


def test_catalogue_has_every_prompt_in_both_languages() -> None:
    assert REQUIRED <= set(PROMPTS)
    for name, (zh, en) in PROMPTS.items():
        assert zh.strip() and en.strip(), name
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), f"{name}: zh text has no Chinese"
        assert en.isascii(), name
    assert "12348" in PROMPTS["welcome"][0].replace("一二三四八", "12348")
    assert "录音录像" in PROMPTS["recorded"][0]
    assert PROMPTS["unavailable"][0].startswith("服务暂不可用")
    for option in ("法律咨询", "法律援助", "调解受理"):
        assert option in PROMPTS["menu"][0]


def test_polyphones_are_spelled_out_for_the_synthesiser() -> None:
    assert "tiao2jie3" in spoken_text("menu", "zh")
    assert spoken_text("menu", "en") == PROMPTS["menu"][1]


def test_generates_8khz_mono_16bit_wav_for_every_prompt(rendered: tuple[Path, list[Path]]) -> None:
    sounds, written = rendered
    expected = {sounds / lang / "huiyan" / f"{name}.wav" for lang in LANGS for name in PROMPTS}
    assert set(written) == expected
    for path in expected:
        with wave.open(str(path), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), path
            assert w.getcomptype() == "NONE"
            duration = w.getnframes() / w.getframerate()
            samples = array.array("h", w.readframes(w.getnframes()))
        assert duration > 0.3, (path, duration)
        # Real speech, not silence: peaks near the -3 dB the pipeline normalises to.
        assert max(abs(s) for s in samples) > 10000, path
    # A sentence is longer than a one-syllable fragment: the text really reached the synthesiser.
    assert _duration(sounds / "zh/huiyan/menu.wav") > 3 * _duration(sounds / "zh/huiyan/position_suffix.wav")


def _duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def test_second_run_is_a_no_op(rendered: tuple[Path, list[Path]]) -> None:
    sounds, _ = rendered
    before = mtimes(sounds)
    assert generate(sounds) == []
    assert mtimes(sounds) == before
    manifest = json.loads((sounds / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["files"]["zh/welcome"]["text"] == PROMPTS["welcome"][0]


def test_changed_text_or_missing_file_is_regenerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path)
    before = mtimes(tmp_path)
    monkeypatch.setitem(PROMPTS, "goodbye", ("再见。", "Bye."))
    prompt_file(tmp_path, "menu", "en").unlink()
    written = generate(tmp_path)
    assert sorted(written) == sorted([
        prompt_file(tmp_path, "goodbye", "zh"),
        prompt_file(tmp_path, "goodbye", "en"),
        prompt_file(tmp_path, "menu", "en"),
    ])
    after = mtimes(tmp_path)
    unchanged = set(before) - set(written)
    assert all(after[p] == before[p] for p in unchanged)
    assert _duration(prompt_file(tmp_path, "goodbye", "en")) < 1.5  # "Bye." is short


def test_force_regenerates_everything(rendered: tuple[Path, list[Path]], tmp_path: Path) -> None:
    sounds, _ = rendered
    copy = tmp_path / "sounds"
    shutil.copytree(sounds, copy)
    assert len(generate(copy, force=True)) == len(LANGS) * len(PROMPTS)


def test_missing_tools_give_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          rendered: tuple[Path, list[Path]]) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(PromptToolMissing, match="espeak-ng and sox not found"):
        generate(tmp_path / "fresh")
    # Only sox missing.
    os.symlink(shutil.which("espeak-ng", path="/usr/bin:/usr/local/bin") or "/usr/bin/espeak-ng",
               empty_bin / "espeak-ng")
    with pytest.raises(PromptToolMissing, match=r"sox not found.*apt-get install sox"):
        generate(tmp_path / "fresh2")
    # An up-to-date directory needs no tools at all.
    sounds, _ = rendered
    assert generate(sounds) == []


def test_prompt_path_is_absolute_without_extension(rendered: tuple[Path, list[Path]]) -> None:
    sounds, _ = rendered
    path = prompt_path(sounds, "welcome")
    assert path == str(sounds / "zh" / "huiyan" / "welcome")
    assert os.path.isabs(path) and not path.endswith(".wav")
    assert Path(path + ".wav").is_file()
    assert prompt_path(sounds, "welcome", "en") == str(sounds / "en" / "huiyan" / "welcome")


def test_prompt_path_falls_back_to_english(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "en" / "huiyan").mkdir(parents=True)
    (tmp_path / "en" / "huiyan" / "goodbye.wav").write_bytes(b"RIFF")
    monkeypatch.chdir(tmp_path)
    # A relative sounds dir still yields an absolute path: Asterisk runs with its own cwd.
    assert prompt_path(Path("."), "goodbye", "zh") == str(tmp_path / "en" / "huiyan" / "goodbye")
    # Neither language present: the requested one, so the error names the file that should exist.
    assert prompt_path(tmp_path, "welcome", "zh") == str(tmp_path / "zh" / "huiyan" / "welcome")
    with pytest.raises(KeyError, match="unknown prompt"):
        prompt_path(tmp_path, "no_such_prompt")
    with pytest.raises(ValueError, match="language"):
        prompt_path(tmp_path, "welcome", "fr")


@pytest.mark.parametrize(
    ("channel_language", "lang"),
    [("en", "en"), ("EN", "en"), ("en_GB", "en"), ("zh", "zh"), ("cmn", "zh"), ("", "zh"), (None, "zh"),
     ("english", "zh")],
)
def test_prompt_language(channel_language: str | None, lang: str) -> None:
    assert prompt_language(channel_language) == lang


def test_numbers_for_position_announcements() -> None:
    from huiyan.prompts.catalog import PROMPTS, number_prompt, zh_number

    assert [zh_number(n) for n in (1, 10, 11, 20, 23, 99)] == ["一", "十", "十一", "二十", "二十三", "九十九"]
    assert number_prompt(7) == "number_7" and PROMPTS["number_7"] == ("七", "7")
    assert number_prompt(0) == number_prompt(31) == "number_many"

"""Render the prompt catalogue to 8 kHz mono 16-bit WAV files with espeak-ng and sox, only when texts change."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from huiyan.prompts.catalog import LANGS, PROMPTS, prompt_file, prompt_text

log = logging.getLogger(__name__)

MANIFEST_NAME = "huiyan-prompts.json"
SAMPLE_RATE = 8000  # Asterisk's .wav format is 8 kHz signed linear: playing it to a call costs no resampling
SPEED_WPM = 150  # a little slower than espeak's 175: phone audio is narrowband and callers are often elderly

# espeak-ng 1.51 (Debian 12) `-v cmn` turns each character into tone-numbered pinyin and then, because that
# voice reads Latin script as English, pronounces "请" as "qing three". `cmn-Latn-pinyin` is the same
# Mandarin voice and dictionary but reads that pinyin as Mandarin, so we use it for Chinese.
VOICES: dict[str, str] = {"zh": "cmn-latn-pinyin", "en": "en"}

# Polyphonic characters espeak-ng reads with the wrong tone in our texts; spelled in pinyin for it only.
ZH_PRONUNCIATION: dict[str, str] = {
    "调解": "tiao2jie3",  # not diao4
    "重新": "chong2xin1",  # not zhong4
}

# Bumped when the rendering pipeline changes, so every file is re-rendered once.
PIPELINE_VERSION = 1


class PromptError(RuntimeError):
    """Prompt files could not be generated."""


class PromptToolMissing(PromptError):
    """espeak-ng or sox is not installed."""


def spoken_text(name: str, lang: str) -> str:
    """The text actually handed to espeak-ng for one prompt."""
    text = prompt_text(name, lang)
    if lang == "zh":
        for word, pinyin in ZH_PRONUNCIATION.items():
            text = text.replace(word, pinyin)
    return text


def _record(name: str, lang: str) -> dict[str, Any]:
    # Everything that changes the audio goes in here; a difference means the file is re-rendered.
    return {
        "text": prompt_text(name, lang),
        "spoken": spoken_text(name, lang),
        "voice": VOICES[lang],
        "speed": SPEED_WPM,
        "rate": SAMPLE_RATE,
        "pipeline": PIPELINE_VERSION,
    }


def _find_tools() -> tuple[str, str]:
    espeak = shutil.which("espeak-ng")
    sox = shutil.which("sox")
    missing = [name for name, path in (("espeak-ng", espeak), ("sox", sox)) if path is None]
    if missing or espeak is None or sox is None:
        raise PromptToolMissing(
            f"cannot generate voice prompts: {' and '.join(missing)} not found on PATH "
            f"(install with: apt-get install {' '.join(missing)})"
        )
    return espeak, sox


def _run(argv: list[str], stdin: str | None = None) -> None:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise PromptError(f"{argv[0]} did not finish within 60 s") from exc
    if proc.returncode != 0:
        raise PromptError(f"{' '.join(argv)} failed with exit code {proc.returncode}: {proc.stderr.strip()}")


def _render(espeak: str, sox: str, text: str, voice: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial"
    with tempfile.TemporaryDirectory(prefix="huiyan-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        # Text on stdin, so nothing in it can be taken for an option.
        _run([espeak, "-v", voice, "-s", str(SPEED_WPM), "-w", str(raw)], stdin=text)
        # norm -3 leaves headroom: espeak peaks at full scale and resampling would clip.
        _run([sox, str(raw), "-t", "wav", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
              str(partial), "norm", "-3"])
    # Rename last, so Asterisk never plays a half-written file.
    os.replace(partial, target)


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("prompt manifest %s is unreadable; regenerating all prompts", path)
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def _save_manifest(path: Path, files: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"files": files}, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def generate(sounds_dir: Path, force: bool = False) -> list[Path]:
    """Write `sounds_dir/<lang>/huiyan/<name>.wav` for every prompt in zh and en.

    Returns the files written this time: empty when everything was already up to date. A file is skipped
    when it exists and the manifest records the same text and settings. Blocking (it runs espeak-ng and
    sox); call it when provisioning a node, not from inside a call.
    """
    sounds_dir = Path(sounds_dir).expanduser().resolve()
    sounds_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = sounds_dir / MANIFEST_NAME
    manifest = _load_manifest(manifest_path)
    tools: tuple[str, str] | None = None
    written: list[Path] = []
    try:
        for lang in LANGS:
            for name in PROMPTS:
                key = f"{lang}/{name}"
                target = prompt_file(sounds_dir, name, lang)
                record = _record(name, lang)
                if not force and target.exists() and manifest.get(key) == record:
                    continue
                # Looked up only when there is work to do, so an up-to-date node needs no TTS installed.
                tools = tools or _find_tools()
                _render(*tools, text=record["spoken"], voice=record["voice"], target=target)
                manifest[key] = record
                written.append(target)
    finally:
        # Keep what was rendered before a failure, so a retry does not redo it.
        if written:
            _save_manifest(manifest_path, manifest)
    if written:
        log.info("generated %d voice prompt file(s) in %s", len(written), sounds_dir)
    return written

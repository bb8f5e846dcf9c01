"""ffmpeg and ffprobe: turn N raw audio/video captures into one MP4 (M4A when audio only), probe, hash.

Blocking calls: run them in a worker thread (`asyncio.to_thread`) or a CLI, never on the event loop.
Streams are copied when they already are what the file needs (AAC audio, H.264 video) and re-encoded only
otherwise; several audio inputs are mixed into one track (a call's or a room's sound as heard). Video, by
`layout`: "tracks" (the default) copies each video input as its own track (no re-encode: fast, and every
frame as received, but most players show only the first track); "grid" puts several video inputs side by
side / in a grid in one track (a re-encode: every player shows everyone, at a fraction of the speed), and
copies a single one. `+faststart` puts the index first, so a browser plays while it downloads.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import math
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ffmpeg

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class MediaError(Exception):
    """ffmpeg or ffprobe failed, or a file is not what it should be (the message says which)."""


@dataclass(frozen=True, slots=True)
class MediaInput:
    """One raw capture: an audio file (WAV from MixMonitor/ConfBridge) or a video track (e.g. H.264 Annex-B
    from the coming recorder participant). `options` are ffmpeg input options (`{"r": 25}` for raw H.264);
    `offset_s` delays this input against the others (tracks that started later)."""

    path: Path
    kind: Literal["audio", "video"] = "audio"
    offset_s: float = 0.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    kind: str  # audio, video, other
    codec: str


@dataclass(frozen=True, slots=True)
class Probe:
    duration_s: float | None
    streams: tuple[StreamInfo, ...]
    format_name: str

    def codecs(self, kind: str | None = None) -> list[str]:
        return [s.codec for s in self.streams if kind is None or s.kind == kind]


def probe(path: Path, options: Mapping[str, Any] | None = None) -> Probe:
    """ffprobe's view of a file: duration (None when it cannot tell), streams with codecs, container."""
    args = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json"]
    for k, v in (options or {}).items():
        args += [f"-{k}", str(v)]
    try:
        out = subprocess.run([*args, str(path)], capture_output=True, check=True, timeout=120,
                             preexec_fn=_die_with_parent)
    except subprocess.CalledProcessError as exc:
        raise MediaError(f"ffprobe {path}: {exc.stderr.decode(errors='replace').strip()[-300:]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffprobe {path}: timed out") from exc
    data = json.loads(out.stdout or b"{}")
    fmt = data.get("format", {})
    streams = tuple(StreamInfo(s.get("codec_type", "other"), s.get("codec_name", "")) for s in data.get("streams", []))
    duration: float | None = None
    for candidate in [fmt.get("duration")] + [s.get("duration") for s in data.get("streams", [])]:
        try:
            duration = float(candidate)
            break
        except (TypeError, ValueError):
            continue
    return Probe(duration, streams, str(fmt.get("format_name", "")))


def capture_duration(inp: MediaInput) -> float:
    """How long a raw capture lasts. A WAV whose header was never finalised (Asterisk stopped while writing)
    still has its samples: PCM duration is then worked out from the size."""
    p = probe(inp.path, inp.options)
    if p.duration_s is not None and p.duration_s > 0:
        return p.duration_s + inp.offset_s
    if inp.path.suffix.lower() == ".wav":
        return _wav_duration_from_size(inp.path) + inp.offset_s
    return (p.duration_s or 0.0) + inp.offset_s


def _wav_duration_from_size(path: Path) -> float:
    import struct

    with path.open("rb") as f:
        head = f.read(44)
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0.0
    byte_rate = struct.unpack("<I", head[28:32])[0]
    return max(0, path.stat().st_size - 44) / byte_rate if byte_rate else 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    """What the finaliser will do: the container, and per output stream copy or encode (for the record)."""

    container: Literal["m4a", "mp4"]
    audio: str  # "copy", "aac", "mix+aac" or "" (no audio)
    video: tuple[str, ...]  # per output video track: "copy", "h264", or "grid" (all video inputs in one)
    duration_s: float = 0.0  # the output's length (the grid's canvas lasts this long)

    @property
    def suffix(self) -> str:
        return f".{self.container}"


GRID_WIDTH = 1280  # the grid's canvas: cells of 16:9 side by side, 2 across (640x360 each) up to 4 inputs
GRID_FPS = 25


def grid_geometry(n: int) -> tuple[int, int, int, int]:
    """(columns, rows, cell width, cell height) for n video inputs: 2 side by side, 3-4 in 2x2, 5-9 in 3x3..."""
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    cw = GRID_WIDTH // cols // 2 * 2
    ch = cw * 9 // 16 // 2 * 2
    return cols, rows, cw, ch


def plan(inputs: Sequence[MediaInput], probes: Sequence[Probe], *, layout: str = "tracks",
         duration_s: float = 0.0) -> Plan:
    """Copy where the codec already fits the MP4 (AAC, H.264), re-encode otherwise; `layout` "grid" puts
    two or more video inputs in one re-encoded track."""
    audio = [p for i, p in zip(inputs, probes, strict=True) if i.kind == "audio"]
    video = [p for i, p in zip(inputs, probes, strict=True) if i.kind == "video"]
    if not audio and not video:
        raise MediaError("nothing to finalise: no inputs")
    if len(audio) > 1:
        a = "mix+aac"
    elif audio:
        a = "copy" if audio[0].codecs("audio") == ["aac"] else "aac"
    else:
        a = ""
    if layout == "grid" and len(video) > 1:
        v: tuple[str, ...] = ("grid",)
    else:
        v = tuple("copy" if p.codecs("video")[:1] == ["h264"] else "h264" for p in video)
    return Plan("mp4" if video else "m4a", a, v, duration_s)


def command(inputs: Sequence[MediaInput], the_plan: Plan, output: Path, *, audio_bitrate: str = "64k") -> list[str]:
    """The ffmpeg command line (built with ffmpeg-python) that writes `output` according to the plan."""
    nodes = []
    for inp in inputs:
        opts = dict(inp.options)
        if inp.offset_s:
            opts["itsoffset"] = f"{inp.offset_s:.3f}"
        nodes.append(ffmpeg.input(str(inp.path), **opts))
    streams: list[Any] = []
    kwargs: dict[str, Any] = {}
    audio_nodes = [n for n, i in zip(nodes, inputs, strict=True) if i.kind == "audio"]
    if len(audio_nodes) > 1:
        streams.append(ffmpeg.filter([n.audio for n in audio_nodes], "amix", inputs=len(audio_nodes),
                                     duration="longest", dropout_transition=0, normalize=0))
    elif audio_nodes:
        streams.append(audio_nodes[0].audio)
    if the_plan.audio:
        kwargs["c:a"] = "copy" if the_plan.audio == "copy" else "aac"
        if the_plan.audio != "copy":
            kwargs["b:a"] = audio_bitrate
    video_nodes = [n for n, i in zip(nodes, inputs, strict=True) if i.kind == "video"]
    if the_plan.video == ("grid",):
        streams.append(_grid([n.video for n in video_nodes], the_plan.duration_s))
        kwargs.update({"c:v": "libx264", "preset:v": "veryfast", "pix_fmt:v": "yuv420p", "g": GRID_FPS * 2})
    for k, (node, how) in enumerate(zip(video_nodes, the_plan.video, strict=True) if the_plan.video != ("grid",)
                                    else ()):
        streams.append(node.video)
        if k:  # one party shown by default (the first): players that honour the flag show one, not a muddle
            kwargs[f"disposition:v:{k}"] = "0"
        if how == "copy":
            kwargs[f"c:v:{k}"] = "copy"
        else:
            kwargs[f"c:v:{k}"] = "libx264"
            kwargs[f"preset:v:{k}"] = "veryfast"
            kwargs[f"pix_fmt:v:{k}"] = "yuv420p"
    out = ffmpeg.output(*streams, str(output), format="mp4", movflags="+faststart", **kwargs)
    out = out.global_args("-nostdin", "-hide_banner", "-loglevel", "error").overwrite_output()
    return list(ffmpeg.compile(out, cmd="ffmpeg"))


def _grid(videos: list[Any], duration_s: float) -> Any:
    """Every video on one black canvas, each in its cell (scaled to fit, aspect kept), from its own start (the
    inputs' `itsoffset`) to its end; a cell is black before a party's first frame and after its last.
    Variable frame rates in, 25 fps out: each output frame shows each party's latest frame."""
    cols, rows, cw, ch = grid_geometry(len(videos))
    canvas = ffmpeg.input(f"color=c=black:s={cols * cw}x{rows * ch}:r={GRID_FPS}:d={max(duration_s, 0.1):.3f}",
                          f="lavfi").video
    for k, v in enumerate(videos):
        cell = (v.filter("scale", cw, ch, force_original_aspect_ratio="decrease", force_divisible_by=2)
                .filter("pad", cw, ch, "(ow-iw)/2", "(oh-ih)/2").filter("setsar", 1))
        canvas = ffmpeg.overlay(canvas, cell, x=(k % cols) * cw, y=(k // cols) * ch, eof_action="pass")
    return canvas


def encode(inputs: Sequence[MediaInput], the_plan: Plan, output: Path, *, audio_bitrate: str = "64k",
           timeout: float = 3600.0) -> None:
    """Run ffmpeg; the output is complete only if this returns. ffmpeg dies with its parent (so a killed
    finaliser leaves no orphan writing behind the next run's back)."""
    args = command(inputs, the_plan, output, audio_bitrate=audio_bitrate)
    log.debug("ffmpeg: %s", " ".join(args))
    try:
        res = subprocess.run(args, capture_output=True, timeout=timeout, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffmpeg timed out after {timeout:.0f}s writing {output}") from exc
    if res.returncode != 0:
        raise MediaError(f"ffmpeg failed ({res.returncode}) writing {output}: "
                         f"{res.stderr.decode(errors='replace').strip()[-500:]}")


def sha256_file(path: Path, progress: Any = None) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks; `progress(n)` is told of each chunk."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return h.hexdigest(), size


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux/glibc: no such guarantee, the temporary file name still isolates runs
        pass

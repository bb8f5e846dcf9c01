"""A browser agent's video in a hotline recording: a SIPp citizen (plain RTP, H.264 from a pcap made with ffmpeg,
solid red) calls 12348 and the agent answers in the real console in Chromium (fake camera). The agent's leg is
DTLS-SRTP, which no tap can read; but Asterisk relays the agent's picture in the clear to the citizen's leg,
and the tap captures it there (tap.TapRelay). The finalised MP4 has both parties' video: the citizen's red in
the first track, the agent's fake camera in the second (not blank, moving, not red).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from huiyan.db.models import HotlineCall, Recording, RecordingJob
from huiyan.recordings import media, tap
from tests.e2e.conftest import Hotline12348, Pages, screenshot, wait_until
from tests.e2e.test_hotline_web import agent_console, flowing, state_of
from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import Sipp
from tests.integration.test_video_recording import colour_of, frame_rgb, h264_pcap, mean_rgb, play, ulaw_tone

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CALLER = "13904315348"


def video_codec_sent(page: Any) -> str:
    """The codec of the browser's outbound video (what it encodes and Asterisk relays)."""
    return page.evaluate("""async () => {
      const pc = window.huiyan.pc(); if (!pc) return '';
      const r = await pc.getStats(); let codec = '';
      r.forEach(s => {
        if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId) codec = r.get(s.codecId).mimeType;
      });
      return codec;
    }""")


def ready(agent: Any) -> None:
    """Signed in to the queue and available, whatever an earlier test of the package left the agent in."""
    for _ in range(4):
        state = state_of(agent)
        if state == "available":
            return
        button = {"wrap_up": "#btn-wrapup", "paused": "#btn-available"}.get(state, "#btn-login")
        if agent.is_visible(button):
            agent.click(button)
        time.sleep(1.5)
    wait_until(lambda: state_of(agent) == "available", 15, "agent available")


def gray_frames(path: Path, track: int, start: float, seconds: float, size: tuple[int, int] = (64, 48)) -> list[bytes]:
    """Track `track`'s frames (grey, scaled down), 5 a second, from `start` for `seconds`."""
    w, h = size
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{start:.2f}", "-i", str(path), "-map", f"0:v:{track}",
                          "-t", f"{seconds:.2f}", "-vf", f"fps=5,scale={w}:{h}", "-f", "rawvideo", "-pix_fmt", "gray",
                          "-"], capture_output=True, check=True).stdout
    return [raw[i:i + w * h] for i in range(0, len(raw) - w * h + 1, w * h)]


def test_a_browser_agent_s_video_is_recorded_as_asterisk_relays_it_to_the_sipp_citizen(
        pages: Pages, huiyan: Running, hotline: Hotline12348, tmp_path: Path) -> None:
    agent = agent_console(pages, huiyan, hotline)
    ready(agent)

    # The citizen: a SIP phone sending solid red H.264 and a 1 kHz tone, pressing 1 for 法律咨询.
    red = h264_pcap(tmp_path / "citizen-red.pcap", "red", 60, ssrc=0x43495401)
    tone = ulaw_tone(tmp_path / "citizen.ulaw", 1000.0, 60.0)
    xml = callflows.caller(tmp_path / "citizen.xml", digits="1", hangup_after_ms=60000, number=CALLER)
    xml.write_text(play(xml.read_text(), '  <recv request="BYE"', ("rtp_stream", tone), ("play_pcap_video", red)))
    citizen = Sipp(str(xml), huiyan.sip_target, service="12348", workdir=tmp_path, timeout=90).start()
    try:
        agent.wait_for_selector("#ringing:not([hidden])", timeout=30000)
        wait_until(lambda: agent.inner_text("#ci-phone") == CALLER, 15, "the citizen's number on the console")
        agent.click("#btn-answer")
        wait_until(lambda: flowing(agent), 30, "the citizen's video decoded in the console")
        # Asterisk does not transcode video: the H.264-only citizen makes the browser send H.264 too.
        assert wait_until(lambda: video_codec_sent(agent), 15, "the browser's video codec") == "video/H264"

        def call() -> HotlineCall | None:
            with huiyan.ctl.session_factory() as s:
                return s.scalar(select(HotlineCall).where(HotlineCall.caller_number == CALLER)
                                .order_by(HotlineCall.id.desc()))

        wav = Path(wait_until(lambda: (c := call()) and c.recording_path, 15, "the call's recording path"))
        mf = tap.manifest_path(wav)
        m = wait_until(lambda: mf.exists() and (x := tap.TapManifest.load(mf)).relays and x, 15, "the relay capture")
        citizen_leg, agent_leg = m.legs
        assert citizen_leg.channel.startswith("PJSIP/anonymous-") and citizen_leg.captured and not citizen_leg.secure
        assert agent_leg.channel.startswith(f"PJSIP/{hotline.agent.extension}-") and agent_leg.secure
        (relay,) = m.relays
        assert (relay.leg, relay.via, relay.sport, relay.dst) == (agent_leg.id, citizen_leg.id, citizen_leg.port,
                                                                  citizen_leg.remote)
        assert m.segments[-1].ports == [citizen_leg.port] and m.segments[-1].relays == [relay.spec]
        screenshot(agent, "agent-recorded-call")
        time.sleep(10)  # ten seconds of conversation
        agent.click("#btn-hangup")
        result = citizen.wait()
        assert result.ok, result.errors
    finally:
        if citizen.proc is not None and citizen.proc.poll() is None:
            citizen.proc.kill()
            citizen.proc.wait()

    ended = wait_until(lambda: (c := call()) and c.ended_at and c, 15, "the call ended")

    def row() -> Recording | None:
        with huiyan.ctl.session_factory() as s:
            return s.scalar(select(Recording).where(Recording.call_id == ended.id))

    rec = wait_until(row, 120, "the finalised recording")
    final = huiyan.settings.data_dir / "recordings" / rec.path
    assert rec.container == "mp4" and sorted(rec.codecs) == ["aac", "h264", "h264"]
    p = media.probe(final)
    assert p.codecs("video") == ["h264", "h264"] and p.codecs("audio") == ["aac"]
    assert p.duration_s is not None and abs(p.duration_s - ended.talk_s) <= 1.0, (p.duration_s, ended.talk_s)
    with huiyan.ctl.session_factory() as s:
        job = s.scalar(select(RecordingJob).where(RecordingJob.recording_id == rec.id))
        assert job is not None
        meta = job.meta
    legs = meta["video_legs"]
    print("video legs:", legs)
    assert [g["number"] for g in legs] == [CALLER, hotline.agent.extension]
    assert legs[0]["source"] == "sent" and legs[1]["source"].startswith("relayed by Asterisk to PJSIP/anonymous-")
    assert all(g["frames"] > 50 for g in legs), legs
    assert meta["video_not_captured"] == []

    # Track 1: the citizen's red, as sent. Track 2: the agent's fake camera - not blank, moving, not red.
    at = p.duration_s / 2
    w, h, _ = frame = frame_rgb(final, at, 0)
    assert colour_of(mean_rgb(frame, w // 4, h // 4, 3 * w // 4, 3 * h // 4)) == "red"
    w, h, _ = frame = frame_rgb(final, at, 1)
    rgb = mean_rgb(frame, 0, 0, w, h)
    print(f"agent's track: {w}x{h}, mean colour {rgb}")
    assert colour_of(rgb) != "red" and max(rgb) > 40, rgb  # a picture, not black, not the citizen's
    grey = gray_frames(final, 1, max(0.0, legs[1]["offset_s"]) + 0.5, 5.0)
    assert len(grey) >= 20, len(grey)
    spread = max(grey[0]) - min(grey[0])
    changes = [sum(abs(a - b) for a, b in zip(x, y, strict=True)) / len(x) for x, y in zip(grey, grey[1:])]
    print(f"agent's track: spread {spread}, mean change per 0.2 s {sum(changes) / len(changes):.2f}")
    assert spread > 50  # detail in the picture (the fake camera's pattern), not a flat colour
    assert sum(1 for c in changes if c > 0.5) >= len(changes) // 2, changes  # it moves

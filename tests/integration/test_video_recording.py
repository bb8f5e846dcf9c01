"""Video recordings through the media tap, against the real Asterisk: SIPp parties send H.264 RTP (made here
with ffmpeg, one colour each) and a tone each; the recording that comes out is an MP4 with H.264 video in which
each party's colour is where it should be (the default layout: each party its own copied track; the `grid`
layout: side by side in one track), AAC audio with their tones, and the call's or meeting's duration.
And the finaliser (real ffmpeg, no Asterisk): an MP4 is never recorded before ffprobe accepts it, and the raw
pcap stays until then."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from huiyan.db.models import Recording, RecordingJob, RecordingJobState
from huiyan.recordings import h264, media, pcap, tap
from tests.integration import callflows
from tests.integration.conftest import Running
from tests.integration.sipp import Sipp
from tests.integration.test_hotline import Hotline, _ok, hotline  # noqa: F401 - the fixture is used by name
from tests.integration.test_recordings import Store, decode_pcm, tone_power

pytestmark = pytest.mark.integration
_seq = itertools.count(1)

COLOURS = {"red": (255, 0, 0), "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}  # ffmpeg's names


# ---- media the parties send ------------------------------------------------------------------------------

def camera(path: Path, colour: str, seconds: float, *, ssrc: int, size: str = "320x240",
           then: tuple[str, float] | None = None) -> list[tuple[float, h264.RtpPacket]]:
    """A terminal's camera: ffmpeg's solid `colour` as baseline H.264 (a keyframe every second, parameter
    sets repeated), packetized (RFC 6184) into RTP, 25 frames a second: (send time, packet).
    then=(colour2, at): the picture turns colour2 at `at` seconds (a whole second: on a keyframe)."""

    def clip(c: str) -> list[list[bytes]]:
        es = path.with_name(f"{path.stem}-{c}.h264")
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c={c}:s={size}:r=25", "-t", "2", "-c:v", "libx264", "-profile:v", "baseline",
                        "-pix_fmt", "yuv420p", "-g", "25", "-bf", "0", "-x264-params", "keyint=25:repeat-headers=1",
                        "-f", "h264", str(es)], check=True, timeout=60)
        return h264.access_units(h264.nal_units(es.read_bytes()))

    first = clip(colour)
    second, switch = (clip(then[0]), int(then[1] * 25)) if then else (first, 1 << 30)
    frames = ((first if k < switch else second)[k % 50] for k in range(int(seconds * 25)))
    return list(h264.rtp_stream(frames, ssrc=ssrc))


def h264_pcap(path: Path, colour: str, seconds: float, *, ssrc: int, then: tuple[str, float] | None = None) -> Path:
    """The camera as a capture SIPp's play_pcap_video replays."""
    return pcap.write(path, [(at, p.build()) for at, p in camera(path, colour, seconds, ssrc=ssrc, then=then)])


def ulaw_tone(path: Path, freq: float, seconds: float, then: tuple[float, float] | None = None) -> str:
    """A party's voice: a tone as raw G.711 mu-law, for SIPp's `rtp_stream` (file, loops, payload type 0).

    Not a second `play_pcap_audio`: SIPp 3.6.1 plays one capture at a time per call, and starting the video's
    `play_pcap_video` cancels an audio capture still playing (the party would send no sound at all);
    `rtp_stream` runs on its own thread, beside the video. then=(freq2, at): the tone changes at `at` s."""
    src = f"sine=f={freq}:d={seconds}:sample_rate=8000"
    if then:
        src = (f"sine=f={freq}:d={then[1]}:sample_rate=8000[a];sine=f={then[0]}:d={seconds - then[1]}:"
               "sample_rate=8000[b];[a][b]concat=n=2:v=0:a=1")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-af", "volume=0.4", "-f", "mulaw",
                    "-ar", "8000", "-ac", "1", str(path)], check=True, timeout=60)
    return f"{path},1,0"


def play(xml: str, anchor: str, *media_: tuple[str, Any]) -> str:
    """Insert `<exec rtp_stream / play_pcap_video>` actions before the first `anchor` line of a scenario."""
    actions = "".join(f'<exec {kind}="{p}"/>' for kind, p in media_)
    assert anchor in xml, anchor
    return xml.replace(anchor, f"  <nop><action>{actions}</action></nop>\n{anchor}", 1)


# ---- what came out -------------------------------------------------------------------------------------------

def frame_rgb(path: Path, at: float, track: int = 0) -> tuple[int, int, bytes]:
    """The decoded frame of video track `track` at `at` seconds: (width, height, RGB bytes)."""
    info = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", f"v:{track}", "-show_entries",
                                      "stream=width,height", "-of", "json", str(path)],
                                     capture_output=True, text=True, check=True).stdout)["streams"][0]
    w, h = int(info["width"]), int(info["height"])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at:.2f}", "-i", str(path), "-map", f"0:v:{track}",
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    assert len(raw) == w * h * 3, (len(raw), w, h)
    return w, h, raw


def mean_rgb(frame: tuple[int, int, bytes], x0: int, y0: int, x1: int, y1: int) -> tuple[float, float, float]:
    w, _, raw = frame
    sums, n = [0, 0, 0], 0
    for y in range(y0, y1, 4):
        row = raw[(y * w + x0) * 3:(y * w + x1) * 3]
        for x in range(0, len(row), 12):
            sums[0] += row[x]
            sums[1] += row[x + 1]
            sums[2] += row[x + 2]
            n += 1
    return (sums[0] / n, sums[1] / n, sums[2] / n)


def colour_switch(path: Path, around: float, cell: tuple[int, int, int, int], colour: str,
                  size: tuple[int, int] = (1280, 360), track: int = 0) -> float:
    """When (seconds into the file) the picture in `cell` (x0, y0, x1, y1) of video track `track` first shows
    `colour`: every frame of the two seconds around `around`, decoded at once (25 fps out: frame i is at
    around - 1 + i/25)."""
    w, h = size[0] // 8, size[1] // 8  # scaled down 8x
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{around - 1:.3f}", "-i", str(path),
                          "-map", f"0:v:{track}", "-t", "2", "-vf",
                          f"scale={w}:{h}", "-r", "25", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    x0, y0, x1, y1 = (v // 8 for v in cell)
    for i in range(len(raw) // (w * h * 3)):
        frame = (w, h, raw[i * w * h * 3:(i + 1) * w * h * 3])
        if colour_of(mean_rgb(frame, x0, y0, x1, y1)) == colour:
            return around - 1 + i / 25
    raise AssertionError(f"no {colour} frame within a second of {around}")


def tone_switch(pcm: list[int], before: float, after: float, rate: int = 8000) -> float:
    """When (seconds) the tone `after` first outweighs `before`, in 20 ms steps (40 ms windows)."""
    win, step = rate // 25, rate // 50
    for start in range(0, len(pcm) - win, step):
        chunk = pcm[start:start + win]
        if tone_power(chunk, after) > 4 * tone_power(chunk, before):
            return (start + win / 2) / rate
    raise AssertionError(f"{after} Hz never outweighs {before} Hz")


def cell_colours(path: Path, at: float, n: int) -> list[str | None]:
    """The colour in the middle of each of the n cells of the grid (media.grid_geometry) at `at` seconds."""
    cols, rows, cw, ch = media.grid_geometry(n)
    frame = frame_rgb(path, at)
    assert frame[:2] == (cols * cw, rows * ch), frame[:2]
    out = []
    for k in range(n):
        x, y = (k % cols) * cw, (k // cols) * ch
        out.append(colour_of(mean_rgb(frame, x + cw // 3, y + ch // 4, x + 2 * cw // 3, y + 3 * ch // 4)))
    return out


def track_colours(path: Path, at: float, n: int) -> list[str | None]:
    """The colour in the middle of each of the n video tracks (the `tracks` layout: one party each) at `at`."""
    out = []
    for k in range(n):
        frame = frame_rgb(path, at, k)
        w, h = frame[:2]
        out.append(colour_of(mean_rgb(frame, w // 4, h // 4, 3 * w // 4, 3 * h // 4)))
    return out


def colour_of(rgb: tuple[float, float, float]) -> str | None:
    """Which of COLOURS a mean colour is (each channel high or low as the name says), or None (black, mixed)."""
    for name, ref in COLOURS.items():
        if all((c > 150) if r else (c < 90) for c, r in zip(rgb, ref, strict=True)):
            return name
    return None


def finalised(h: Running, **where: Any) -> Recording | None:
    with h.ctl.session_factory() as s:
        stmt = select(Recording)
        for k, v in where.items():
            stmt = stmt.where(getattr(Recording, k) == v)
        return s.scalar(stmt)


def job_of(h: Running, recording_id: int) -> RecordingJob:
    with h.ctl.session_factory() as s:
        job = s.scalar(select(RecordingJob).where(RecordingJob.recording_id == recording_id))
        assert job is not None
        return job


def wait(pred: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


# ---- the two-party hotline call ------------------------------------------------------------------------------

def test_two_party_hotline_video_call_is_recorded_in_an_mp4_with_both_parties(hotline, huiyan: Running,  # noqa: F811
                                                                              tmp_path: Path) -> None:
    from huiyan.db import store as directory
    from huiyan.recordings.service import RecordingEvent

    hl: Hotline = hotline()
    agent = hl.add_agent()
    # The agent answers on a SIP softphone (plain RTP): a browser seat's video is DTLS-SRTP, which no tap can
    # read (see docs/recording.md).
    with huiyan.ctl.session_factory() as s:
        org = directory.create_organisation(s, name=f"录像测试{time.monotonic_ns()}", code=f"VR{time.monotonic_ns()}",
                                            level="city")
        dev = directory.create_device(s, serial=f"VID-{time.monotonic_ns()}", organisation_id=org.id,
                                      kind="softphone", display_name="坐席话机")
        s.commit()
        agent.extension, agent.password = dev.extension, dev.sip_password
    hl.start(login=False)
    hl.login(agent, dev.extension)

    number = f"1390431{next(_seq):04d}"
    # The caller's picture turns from red to yellow at 7 s, at the same instant as its voice from 1000 to 700 Hz:
    # where the two changes land in the MP4 says how well video and audio line up.
    caller_video = h264_pcap(tmp_path / "caller-red.pcap", "red", 16, ssrc=0x52454401, then=("yellow", 7.0))
    agent_video = h264_pcap(tmp_path / "agent-blue.pcap", "blue", 16, ssrc=0x424C5501)
    caller_tone = ulaw_tone(tmp_path / "caller.ulaw", 1000.0, 16.0, then=(700.0, 7.0))
    agent_tone = ulaw_tone(tmp_path / "agent.ulaw", 1500.0, 16.0)

    phone_xml = tmp_path / "agent-phone.xml"
    callflows.agent(phone_xml, answer_after_ms=300)
    phone_xml.write_text(play(phone_xml.read_text(), '  <recv request="BYE"/>',
                              ("rtp_stream", agent_tone), ("play_pcap_video", agent_video)))
    agent.sipp = Sipp(str(phone_xml), huiyan.sip_target, service=agent.extension, workdir=tmp_path, port=agent.port,
                      timeout=60, max_calls=None, timeout_error=False, extra=("-aa",)).start()
    hl.sipps.append(agent.sipp)
    time.sleep(0.2)
    caller_xml = callflows.caller(tmp_path / "caller.xml", digits="1", hangup_after_ms=11000, number=number)
    caller_xml.write_text(play(caller_xml.read_text(), '  <recv request="BYE"',
                               ("rtp_stream", caller_tone), ("play_pcap_video", caller_video)))
    caller = Sipp(str(caller_xml), huiyan.sip_target, service=hl.number, workdir=tmp_path, timeout=60).start()
    hl.sipps.append(caller)

    # while the call goes on, the tap captures both legs beside the audio
    call = hl.call_of(number)
    answered = wait(lambda: (c := hl.call_of(number)).answered_at and c, 30, "answer")
    assert answered.agent_user_id == agent.user_id
    manifest = tap.manifest_path(Path(wait(lambda: hl.call_of(number).recording_path, 10, "recording path")))
    m = wait(lambda: manifest.exists() and len((mm := tap.TapManifest.load(manifest)).legs) == 2
             and mm.segments and mm, 15, "both legs in the tap's manifest")
    assert [g.channel.rsplit("-", 1)[0] for g in m.legs] == ["PJSIP/anonymous", f"PJSIP/{dev.extension}"]
    assert all(g.captured and g.port for g in m.legs) and m.segments[0].ports == sorted(g.port for g in m.legs)
    segment = manifest.with_name(m.segments[0].file)
    assert segment.exists()

    _ok(caller.wait())
    call = hl.ended(number)[0]
    assert call.outcome.value == "completed" and call.talk_s is not None
    row = wait(lambda: finalised(huiyan, call_id=call.id), 90, "the finalised recording")
    huiyan.wait_event(lambda e: isinstance(e, RecordingEvent) and e.kind == "finalised"
                      and e.recording_id == row.id, timeout=30)
    root = huiyan.settings.data_dir / "recordings"
    final = root / row.path
    assert final.suffix == ".mp4" and row.container == "mp4"
    assert sorted(row.codecs) == ["aac", "h264", "h264"]  # the caller's and the agent's video
    p = media.probe(final)
    assert p.codecs("video") == ["h264", "h264"] and p.codecs("audio") == ["aac"]  # the default: a track each
    assert p.duration_s is not None and abs(p.duration_s - call.talk_s) <= 1.0, (p.duration_s, call.talk_s)
    # the raw capture (WAV, pcap, manifest) went once the MP4 was in the chain; nothing of the tap is left
    assert not manifest.exists() and not segment.exists() and tap.companions(manifest.with_suffix("").with_suffix(".wav")) == []
    job = job_of(huiyan, row.id)
    assert [g["number"] for g in job.meta["video_legs"]] == [number, dev.extension]
    assert all(g["frames"] > 50 and g["damaged"] == 0 for g in job.meta["video_legs"]), job.meta["video_legs"]
    assert job.meta["plan"]["video"] == ["copy", "copy"]  # both parties' H.264 as sent, not re-encoded

    # each party in its own track: the caller (red, then yellow) first, the agent (blue) second, through the call
    assert track_colours(final, 2.5, 2) == ["red", "blue"]
    assert track_colours(final, p.duration_s - 1.0, 2) == ["yellow", "blue"]
    # both parties are heard
    pcm = decode_pcm(final)
    assert tone_power(pcm, 1000) > 50 * tone_power(pcm, 1250) and tone_power(pcm, 1500) > 50 * tone_power(pcm, 1250)
    # and seen in step with what they say: the caller's colour and voice change together (lip sync)
    heard = tone_switch(pcm, 1000.0, 700.0)
    seen = colour_switch(final, heard, (80, 60, 240, 180), "yellow", size=(320, 240), track=0)
    print(f"A/V offset of the caller's switch: video {seen:.3f} s, audio {heard:.3f} s ({1000 * (seen - heard):+.0f} ms)")
    assert abs(seen - heard) <= 0.2, (seen, heard)


# ---- a recorded room ---------------------------------------------------------------------------------------------

def test_recorded_room_with_three_video_terminals_gives_an_mp4_of_everyone(huiyan: Running, tmp_path: Path) -> None:
    """A meeting room that records itself: three SIPp terminals join one after the other (the tap follows the
    conference's bridge, a new capture segment as each joins), each sending its own colour and its own tone."""
    from tests.integration.test_rooms import Rooms, participant_xml

    if "room" not in huiyan.ctl.agi.routes:  # see tests/integration/test_rooms.py's fixture
        from huiyan.rooms.flow import room_route

        huiyan.ctl.agi.routes["room"] = room_route(huiyan.ctl.rooms)
    rooms = Rooms(huiyan, tmp_path)
    colours, freqs = ("red", "lime", "blue"), (500.0, 900.0, 1300.0)
    # the first terminal turns yellow and its voice 500 -> 700 Hz together, 12 s after it starts sending
    switch = {0: (("yellow", 12.0), (700.0, 12.0))}
    room: dict[str, Any] = {}
    try:
        room = rooms.room(record=True)
        terminals = rooms.terminals(3)
        for i, (t, colour, f) in enumerate(zip(terminals, colours, freqs, strict=True)):
            xml = participant_xml(tmp_path / f"terminal-{i}.xml", user=t.extension, steps=(("pause", 30000),),
                                  hold_ms=1000)
            xml.write_text(play(xml.read_text(), '  <pause milliseconds="30000"/>',
                                ("rtp_stream", ulaw_tone(tmp_path / f"tone-{i}.ulaw", f, 32.0,
                                                         then=switch[i][1] if i in switch else None)),
                                ("play_pcap_video", h264_pcap(tmp_path / f"{colour}.pcap", colour, 32,
                                                              ssrc=0x524F4F00 + i,
                                                              then=switch[i][0] if i in switch else None))))
            sipp = Sipp(str(xml), huiyan.sip_target, service=room["number"], workdir=tmp_path, timeout=60,
                        user=t.extension, password=t.password, extra=("-aa",))
            rooms.running.append(sipp.start())
            rooms.joined(room, f"PJSIP/{t.extension}-")  # in this order: the order of the cells
        started = rooms.room_event(room, "recording_started")
        raw = Path(started.data["path"])
        manifest = tap.manifest_path(raw)
        m = wait(lambda: manifest.exists() and len((mm := tap.TapManifest.load(manifest)).ports()) == 3 and mm,
                 15, "three legs captured")
        assert [g.number for g in m.legs] == [t.extension for t in terminals]
        # a segment per change of the legs: the last one covers all three ports
        assert len(m.segments) >= 2 and m.segments[-1].ports == sorted(g.port for g in m.legs)
        time.sleep(6)
        assert rooms.api("delete", f"/api/rooms/{room['id']}/recording").status_code == 200
        row = wait(lambda: finalised(huiyan, room_id=room["id"]), 90, "the room's finalised recording")
        assert row.session_type == "meeting" and row.container == "mp4" and sorted(row.codecs) == ["aac", *["h264"] * 3]
        assert {p["number"] for p in row.participants} == {t.extension for t in terminals}
        final = huiyan.settings.data_dir / "recordings" / row.path
        assert final == raw.with_suffix(".mp4")
        p = media.probe(final)
        assert p.codecs("video") == ["h264"] * 3 and p.codecs("audio") == ["aac"]  # a track per participant
        with huiyan.ctl.session_factory() as s:
            from huiyan.db.models import RoomRecording

            rec = s.scalar(select(RoomRecording).where(RoomRecording.path == str(raw)))
            assert rec is not None and rec.ended_at is not None
            length = (rec.ended_at - rec.started_at).total_seconds()
        assert p.duration_s is not None and abs(p.duration_s - length) <= 1.0, (p.duration_s, length)
        # every participant's video, each in its track (in the order they joined), to the end of the recording
        assert track_colours(final, p.duration_s - 1.0, 3) == ["yellow", *colours[1:]]
        # and all three voices
        pcm = decode_pcm(final)
        control = tone_power(pcm, 1700.0)
        powers = {f: tone_power(pcm, f) for f in (*freqs, 700.0)}
        assert all(pw > 50 * control for pw in powers.values()), (powers, control)
        # the first terminal's picture and voice change together in the recording too
        heard = tone_switch(pcm, 500.0, 700.0)
        seen = colour_switch(final, heard, (80, 60, 240, 180), "yellow", size=(320, 240), track=0)
        print(f"A/V offset in the room: video {seen:.3f} s, audio {heard:.3f} s ({1000 * (seen - heard):+.0f} ms)")
        assert abs(seen - heard) <= 0.2, (seen, heard)
        job = job_of(huiyan, row.id)
        assert len(job.meta["video_legs"]) == 3 and not manifest.exists()
    finally:
        if room:
            rooms.api("post", f"/api/rooms/{room['id']}/end")
        rooms.close()


# ---- the finaliser and the tap's files (real ffmpeg, no Asterisk) ------------------------------------------

def tapped(raw: Path, colours: list[str], seconds: float, work: Path, *, closed: bool = True) -> Path:
    """What the tap leaves beside a call's audio: one capture segment holding each party's H.264 (party k on
    port 40002 + 2k, from 0.5 s after the audio starts) and the manifest. Returns the manifest's path."""
    t0 = time.time() - 120
    legs, dgs = [], []
    for k, colour in enumerate(colours):
        port = 40002 + 2 * k
        legs.append(tap.TapLeg(id=f"leg{k}", channel=f"PJSIP/party{k}-0000000{k}", number=f"8000{k}", port=port,
                               joined=t0, left=t0 + seconds))
        dgs += [(t0 + 0.5 + at, p.build(), port)
                for at, p in camera(work / f"cam{k}", colour, seconds - 1.0, ssrc=0x100 + k)]
    seg = tap.segment_path(raw, 1)
    pcap.write(seg, sorted(dgs, key=lambda d: d[0]))
    m = tap.TapManifest(session="hotline:test", audio=raw.name, anchor=t0, owner=tap.this_owner(), legs=legs,
                        segments=[tap.TapSegment(seg.name, sorted(g.port for g in legs), t0, t0 + seconds)],
                        closed=closed, closed_at=t0 + seconds if closed else None)
    mf = tap.manifest_path(raw)
    m.save(mf)
    return mf


def _job(st: Store) -> RecordingJob:
    (job,) = st.jobs()
    return job


def test_a_video_recording_is_chained_only_once_ffprobe_confirms_it_and_the_pcap_stays_until_then(
        tmp_path: Path) -> None:
    from huiyan.recordings import store as rstore
    from huiyan.recordings.pipeline import Finaliser

    st = Store(tmp_path)
    try:
        st.settings.recordings.video_layout = "grid"  # the side-by-side option (the default is tested above)
        raw = st.call("video.1", 8.0)
        mf = tapped(raw, ["red", "blue"], 8.0, tmp_path, closed=False)
        seg = tap.segment_path(raw, 1)
        with st.sessions() as s:
            rstore.sweep(s, 0.0)
        fin = Finaliser(st.sessions, st.root, st.settings.recordings)
        job_id = _job(st).id
        # the tap is still capturing (its controller - this process - is alive): nothing happens yet
        out = fin.run(job_id)
        assert out.postponed and "video capture is still running" in out.reason
        assert st.rows() == [] and seg.exists() and mf.exists()
        m = tap.TapManifest.load(mf)
        m.closed = True
        m.save(mf)
        # a wrong MP4 (audio only, as if an interrupted run had left it) sits where the recording goes:
        # ffprobe finds no video, so it is deleted, nothing is chained, and every raw file stays
        final = raw.with_suffix(".mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(raw), "-c:a", "aac", str(final)], check=True)
        out = fin.run(job_id)
        assert out.state == RecordingJobState.QUEUED and "video streams [], expected 1 H.264" in out.reason, out
        assert st.rows() == [] and not final.exists()
        assert raw.exists() and seg.exists() and mf.exists()
        # retried: now the real thing
        out = fin.run(job_id)
        assert out.state == RecordingJobState.DONE, out
        (row,) = st.rows()
        assert row.container == "mp4" and sorted(row.codecs) == ["aac", "h264"] and abs(row.duration_ms - 8000) <= 1000
        p = media.probe(final)
        assert p.codecs("video") == ["h264"] and p.codecs("audio") == ["aac"]
        # side by side: the first party (red) on the left, the second (blue) on the right, in 1280x360
        assert media.grid_geometry(2) == (2, 1, 640, 360)
        assert cell_colours(final, 4.0, 2) == ["red", "blue"]
        # done: the raw capture is gone - WAV, pcap, manifest - and so are the per-leg streams made from it
        assert not raw.exists() and not seg.exists() and not mf.exists() and tap.companions(raw) == []
        job = _job(st)
        assert [g["frames"] for g in job.meta["video_legs"]] == [175, 175]
        assert [g["offset_s"] for g in job.meta["video_legs"]] == [0.5, 0.5]
    finally:
        st.close()


def test_kept_raw_capture_verifies_clean_and_re_encodes_from_the_pcap(tmp_path: Path) -> None:
    from huiyan.recordings import store as rstore
    from huiyan.recordings.pipeline import Finaliser

    st = Store(tmp_path)
    try:
        st.settings.recordings.keep_raw = True
        raw = st.call("video.2", 6.0)
        mf = tapped(raw, ["blue"], 6.0, tmp_path)
        with st.sessions() as s:
            rstore.sweep(s, 0.0)
        fin = Finaliser(st.sessions, st.root, st.settings.recordings)
        assert [o.state for o in fin.run_due()] == [RecordingJobState.DONE]
        (row,) = st.rows()
        assert sorted(row.codecs) == ["aac", "h264"]
        # one party: its video copied as it came (no re-encode); the raw capture kept, the derived stream not
        job = _job(st)
        assert job.meta["plan"]["video"] == ["copy"] and mf.exists() and tap.segment_path(raw, 1).exists()
        assert not list(raw.parent.glob("*.ivf"))
        cli = st.cli("recordings", "verify", "--json", "--no-progress")
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0 and json.loads(out)["extra"] == [], out + err  # kept tap files are accounted for
        # re-encoding goes back to the pcap: the new file has the video again
        cli = st.cli("recordings", "reencode", "--id", str(row.id), "--no-progress")
        _, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err
        old, new = st.rows()
        assert old.status.value == "superseded" and new.supersedes_id == old.id
        assert sorted(new.codecs) == ["aac", "h264"] and new.path.endswith(".mp4")
        assert colour_of(mean_rgb(frame_rgb(st.root / new.path, 3.0), 120, 80, 200, 160)) == "blue"
        # a planted pcap is still an extra file
        (raw.parent / "planted.tap1.pcap").write_bytes(tap.segment_path(raw, 1).read_bytes())
        cli = st.cli("recordings", "verify", "--json", "--no-progress")
        out, _ = cli.communicate(timeout=120)
        assert cli.returncode == 1 and json.loads(out)["extra"] == [
            str((raw.parent / "planted.tap1.pcap").relative_to(st.root))]
    finally:
        st.close()


def test_a_video_that_cannot_be_made_does_not_cost_the_audio_and_its_capture_is_kept(tmp_path: Path) -> None:
    from huiyan.recordings import store as rstore
    from huiyan.recordings.pipeline import Finaliser

    st = Store(tmp_path)
    try:
        raw = st.call("video.3", 5.0)
        mf = tapped(raw, ["red"], 5.0, tmp_path)
        seg = tap.segment_path(raw, 1)
        seg.write_bytes(b"not a capture file" + seg.read_bytes()[18:])
        with st.sessions() as s:
            rstore.sweep(s, 0.0)
        assert [o.state for o in Finaliser(st.sessions, st.root, st.settings.recordings).run_due()] == [
            RecordingJobState.DONE]
        (row,) = st.rows()
        assert row.container == "m4a" and row.codecs == ["aac"] and abs(row.duration_ms - 5000) <= 1000
        job = _job(st)
        assert "PcapError" in job.meta["video_error"] and seg.exists() and mf.exists() and not raw.exists()
        cli = st.cli("recordings", "verify", "--json", "--no-progress")
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, out + err  # the kept capture is accounted for
    finally:
        st.close()

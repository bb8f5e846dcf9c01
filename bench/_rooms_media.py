"""What the rooms benchmark's SIPp participants send and say: RTP captures (PCMU talker / silence, H.264 from
ffmpeg, packetized here) and the participant scenario. Generated per run into the throw-away data dir."""

from __future__ import annotations

import math
import struct
import subprocess
from pathlib import Path

AUDIO_PT = 0  # PCMU
VIDEO_PT = 99  # H.264, as in the offer below
RTP_MTU = 1200


# ---- captures -----------------------------------------------------------------------------------

def _ulaw(sample: int) -> int:
    """16-bit linear PCM -> G.711 mu-law byte (ITU-T G.711, with the usual bias)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _write_pcap(path: Path, packets: list[tuple[float, bytes]]) -> None:
    """RTP packets as an Ethernet/IPv4/UDP capture, the form SIPp's play_pcap_* replays (it keeps the timing
    and the RTP, and sends from its own media port to the far end's)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for at, rtp in packets:
            udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            sec = int(at)
            f.write(struct.pack("<IIII", sec, int(round((at - sec) * 1e6)) % 1000000, len(frame), len(frame)) + frame)


def audio_pcap(path: Path, seconds: float, *, talking: bool, ssrc: int = 0x48590101) -> Path:
    """PCMU, 20 ms packets. talking: a voice-like signal (two tones, syllable-rate envelope, never quiet long
    enough for ConfBridge to call it silence), so this participant is the talker and the video source of a
    follow_talker room; otherwise digital silence, which ConfBridge (dsp_drop_silence) leaves out of the mix,
    as it does a muted-by-nature listener."""
    frames = int(seconds * 50)
    if talking:
        cycle = []
        for n in range(8000):  # one second of signal, repeated
            t = n / 8000
            env = 0.55 + 0.45 * math.sin(2 * math.pi * 3 * t)
            v = env * (0.30 * math.sin(2 * math.pi * 220 * t) + 0.15 * math.sin(2 * math.pi * 660 * t))
            cycle.append(_ulaw(int(v * 32767)))
        one = bytes(cycle)
    else:
        one = bytes([0xFF]) * 8000
    packets = []
    for i in range(frames):
        off = (i * 160) % 8000
        payload = one[off:off + 160]
        header = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | AUDIO_PT, i & 0xFFFF,
                             (i * 160) & 0xFFFFFFFF, ssrc)
        packets.append((i * 0.02, header + payload))
    _write_pcap(path, packets)
    # The same second of signal as raw G.711 for SIPp's rtp_stream, which the video scenarios use instead
    # (see participant_scenario).
    path.with_suffix(".ulaw").write_bytes(one)
    return path


def _nal_units(annexb: bytes) -> list[bytes]:
    out = []
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = annexb.find(b"\x00\x00\x01", start)
        end = len(annexb) if j < 0 else j
        nal = annexb[start:end]
        if j >= 0 and nal.endswith(b"\x00"):  # the 4-byte start code's leading zero
            nal = nal[:-1]
        if nal:
            out.append(nal)
        i = j
    return out


def _access_units(nals: list[bytes]) -> list[list[bytes]]:
    """One slice per frame (x264's default): a frame is the parameter sets / SEI before it plus its slice."""
    aus, cur = [], []
    for nal in nals:
        cur.append(nal)
        if nal[0] & 0x1F in (1, 5):
            aus.append(cur)
            cur = []
    return aus


def _packetize(au: list[bytes]) -> list[bytes]:
    """RFC 6184 payloads of one frame: single NAL unit packets, FU-A for the big ones."""
    out = []
    for nal in au:
        if len(nal) <= RTP_MTU:
            out.append(nal)
            continue
        head, body = nal[0], nal[1:]
        chunks = [body[k:k + RTP_MTU - 2] for k in range(0, len(body), RTP_MTU - 2)]
        for n, chunk in enumerate(chunks):
            fu_header = (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0) | (head & 0x1F)
            out.append(bytes([(head & 0xE0) | 28, fu_header]) + chunk)
    return out


def video_pcap(path: Path, seconds: float, workdir: Path, *, size: str = "640x360", fps: int = 25,
               bitrate: str = "500k", ssrc: int = 0x48590201) -> tuple[Path, float]:
    """H.264 (baseline, a keyframe every second, parameter sets repeated: what a terminal sends) made by
    ffmpeg from its moving test pattern with noise (so the encoder needs the bit rate a camera would), 4 s
    encoded once and repeated to `seconds`, packetized as RTP.
    Returns the capture and its average bit rate (kbit/s)."""
    es = workdir / "testsrc.h264"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate={fps},noise=alls=12:allf=t", "-t", "4",
                    "-c:v", "libx264", "-profile:v", "baseline",
                    "-pix_fmt", "yuv420p", "-b:v", bitrate, "-g", str(fps), "-bf", "0",
                    "-x264-params", f"keyint={fps}:repeat-headers=1:slices=1", "-f", "h264", str(es)],
                   check=True, timeout=120)
    aus = _access_units(_nal_units(es.read_bytes()))
    if not aus:
        raise RuntimeError(f"ffmpeg produced no H.264 frames in {es}")
    payloads = [_packetize(au) for au in aus]
    packets: list[tuple[float, bytes]] = []
    seq = 0
    total = 0
    frames = int(seconds * fps)
    for k in range(frames):
        frame = payloads[k % len(payloads)]
        at = k / fps
        for n, payload in enumerate(frame):
            marker = 0x80 if n == len(frame) - 1 else 0
            header = struct.pack("!BBHII", 0x80, marker | VIDEO_PT, seq & 0xFFFF, (k * 90000 // fps) & 0xFFFFFFFF,
                                 ssrc)
            packets.append((at + n * 0.0002, header + payload))
            seq += 1
            total += len(payload)
    _write_pcap(path, packets)
    return path, total * 8 / 1000 / max(seconds, 1e-9)


# ---- the participant ------------------------------------------------------------------------------

_AUDIO_SDP = """      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
"""
_VIDEO_SDP = """      m=video [media_port+2] RTP/AVP 99
      a=rtpmap:99 H264/90000
      a=fmtp:99 profile-level-id=42e01e;packetization-mode=1
"""


def participant_scenario(path: Path, *, audio: Path, video: Path | None, hold_s: int) -> Path:
    """A terminal that dials a room: one call per line of the injection file (field0 its extension, field1
    its digest credentials as SIPp's [authentication] keyword, field2 the number to dial). It logs the wall
    clock when it sends its first INVITE (for join latency), answers the digest challenge, plays `audio` (and
    `video`) and waits for our BYE (the benchmark ends each step by hanging everyone up); after `hold_s` it
    hangs up by itself."""
    frm = '"bench" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]'
    sdp = ("      v=0\n      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]\n      s=-\n"
           "      c=IN IP[media_ip_type] [media_ip]\n      t=0 0\n" + _AUDIO_SDP + (_VIDEO_SDP if video else ""))
    cseq_action = ('<action><ereg regexp="([0-9]+) INVITE" search_in="hdr" header="CSeq:" '
                   'assign_to="junk,cs"/></action>')

    def invite(cseq: int, auth: str) -> str:
        return f"""  <send retrans="500">
    <![CDATA[
      INVITE sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[field2]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: {cseq} INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70{auth}
      Content-Type: application/sdp
      Content-Length: [len]

{sdp}
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
"""

    # SIPp 3.6.1 plays one capture per call at a time: a play_pcap_video cancels a play_pcap_audio still
    # playing. With video, the voice goes by rtp_stream (its own thread; the raw G.711 beside the pcap,
    # looped, payload type 0) so the participant sends both.
    if video:
        play = f'<exec rtp_stream="{audio.with_suffix(".ulaw")},-1,0"/><exec play_pcap_video="{video}"/>'
    else:
        play = f'<exec play_pcap_audio="{audio}"/>'
    xml = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="room load participant">
  <nop><action><gettimeofday assign_to="t_s,t_us"/>
    <log message="INVITE [field0] [field2] [$t_s] [$t_us]"/></action></nop>
{invite(1, "")}  <recv response="401" auth="true" optional="true" next="auth"/>
  <recv response="200" rtd="true" next="answered">{cseq_action}</recv>
  <label id="auth"/>
  <send>
    <![CDATA[
      ACK sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      [last_Via:]
      From: {frm}
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
{invite(2, chr(10) + "      [field1]")}  <recv response="200" rtd="true">{cseq_action}</recv>
  <label id="answered"/>
  <send>
    <![CDATA[
      ACK sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[field2]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: [$cs] ACK
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop><action>{play}</action></nop>
  <recv request="BYE" timeout="{hold_s * 1000}" ontimeout="hangup" next="farbye"/>
  <label id="hangup"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[field2]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {frm}
      To: <sip:[field2]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 10 BYE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" next="end"/>
  <label id="farbye"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <label id="end"/>
</scenario>
"""
    path.write_text(xml)
    return path


def injection_file(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """SIPp's -inf: one call per line, in order (extension; its credentials; number to dial). SIPp expands the
    [authentication] keyword found in a field (a keyword's own arguments cannot be [fieldN])."""
    path.write_text("SEQUENTIAL\n" + "".join(f"{e};[authentication username={e} password={p}];{n};\n"
                                               for e, p, n in rows))
    return path

"""H.264 over RTP (RFC 6184) back into frames: RTP packets -> access units (Annex B) with their RTP times, and
the IVF file ffmpeg reads them from (one timestamp per frame, so variable frame rates and gaps survive).

Pure: bytes in, bytes out; the media tap (tap.py) feeds it the packets it captured, in arrival order.

- Payloads: single NAL unit packets (types 1-23), STAP-A (24) and FU-A (28) - everything packetization modes
  0 and 1 use, which is what SIP terminals and browsers send. STAP-B, MTAP and FU-B (interleaved mode 2 only)
  are counted and their frame dropped.
- Order: packets are put back in sequence-number order inside a small window (`reorder`); duplicates (the
  same packet captured twice) and packets arriving after their turn are dropped. Sequence numbers (16 bit)
  and timestamps (32 bit) are unwrapped to 64 bit, so an hour-long call crosses a wrap unharmed.
- Frames: the packets sharing one RTP timestamp; a frame ends at the marker bit (or when the timestamp
  changes, if the marker packet was lost). A frame missing a packet (a gap in the sequence numbers inside
  it, an FU-A without its start or end) is *damaged* and dropped: it cannot be decoded correctly, and with
  `resync` (the default) the frames after it are dropped too until the next keyframe (IDR), because they
  reference the damaged one - the video then freezes instead of smearing. The same rule drops whatever
  arrives before the first keyframe (a capture that starts mid-stream).
- A gap *between* two frames is not always a loss: a browser sends padding-only packets (bandwidth probes)
  in its video stream, which Asterisk does not relay, so the stream Asterisk relays to another party has
  holes in its sequence numbers where no frame was missing. After such a gap the next frame is kept if its
  `frame_num` (slice header) follows the last reference frame's: no reference frame was lost, so it decodes.
- One sender, one stream: packets of another SSRC than the current one start a new stream (a phone that
  restarted its camera); the caller gives them in time order (see `tap.py`, which picks the streams).
"""

from __future__ import annotations

import heapq
import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_RATE = 90000  # RFC 6184: H.264's RTP clock
NAL_IDR, NAL_SEI, NAL_SPS, NAL_PPS = 5, 6, 7, 8
STAP_A, STAP_B, MTAP16, MTAP24, FU_A, FU_B = 24, 25, 26, 27, 28, 29
START_CODE = b"\x00\x00\x00\x01"
_RTP = struct.Struct("!BBHII")


@dataclass(frozen=True, slots=True)
class RtpPacket:
    seq: int
    timestamp: int
    ssrc: int
    payload_type: int
    marker: bool
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket | None:
        """An RTP packet, or None for what is not one (STUN, RTCP multiplexed on the port, garbage)."""
        if len(data) < 12:
            return None
        b0, b1, seq, ts, ssrc = _RTP.unpack_from(data)
        if b0 >> 6 != 2:
            return None
        pt = b1 & 0x7F
        if 72 <= pt <= 76:  # RTCP SR/RR/SDES/BYE/APP on an rtcp-mux port (RFC 5761)
            return None
        start = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
            if len(data) < start + 4:
                return None
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data)
        if b0 & 0x20:  # padding: the last byte says how much
            end -= data[-1]
        if start > end:
            return None
        return cls(seq, ts, ssrc, pt, bool(b1 & 0x80), bytes(data[start:end]))

    def build(self) -> bytes:
        return _RTP.pack(0x80, (0x80 if self.marker else 0) | self.payload_type, self.seq & 0xFFFF,
                         self.timestamp & 0xFFFFFFFF, self.ssrc) + self.payload


@dataclass(frozen=True, slots=True)
class Frame:
    """One access unit: its NAL units (without start codes) and its unwrapped 90 kHz RTP timestamp."""

    ssrc: int
    timestamp: int
    nals: tuple[bytes, ...]
    arrival: float  # capture time of its first packet (seconds, the capture's clock)

    @property
    def keyframe(self) -> bool:
        return any(n[0] & 0x1F == NAL_IDR for n in self.nals)

    def annexb(self) -> bytes:
        return b"".join(START_CODE + n for n in self.nals)


@dataclass
class Stats:
    packets: int = 0
    duplicates: int = 0
    late: int = 0  # arrived after its place in the sequence had been passed
    lost: int = 0  # sequence numbers never seen
    frames: int = 0  # frames handed out
    damaged: int = 0  # frames dropped because a packet of theirs was lost or malformed
    skipped: int = 0  # complete frames dropped while waiting for a keyframe (start, after damage)
    gaps_kept: int = 0  # gaps between frames after which the frame_num showed no reference frame lost
    unsupported: int = 0  # STAP-B / MTAP / FU-B / reserved payloads
    streams: int = 0  # SSRCs seen in turn

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def unwrap(value: int, reference: int | None, bits: int) -> int:
    """`value` (a wrapped counter of `bits` bits) extended to the 64-bit value nearest `reference`."""
    if reference is None:
        return value
    mod = 1 << bits
    delta = (value - reference) % mod
    if delta >= mod // 2:
        delta -= mod
    return reference + delta


@dataclass
class _Building:
    timestamp: int
    arrival: float
    nals: list[bytes] = field(default_factory=list)
    fu: bytearray | None = None
    damaged: bool = False


class Depacketizer:
    """Feed packets in arrival order (`push`), then `flush`; frames come out in order.

    reorder: how many packets may wait for an earlier one (the network reorders a little; a capture on the
    PBX host sees packets as the kernel got them). resync: after a damaged frame, drop frames until the
    next keyframe (and drop everything before the first)."""

    def __init__(self, *, reorder: int = 64, resync: bool = True) -> None:
        self.reorder = reorder
        self.resync = resync
        self.stats = Stats()
        self._ssrc: int | None = None
        self._heap: list[tuple[int, float, RtpPacket]] = []
        self._in_heap: set[int] = set()
        self._recent: deque[int] = deque()  # sequence numbers recently handed on (to tell copies from latecomers)
        self._recent_set: set[int] = set()
        self._top_seq: int | None = None  # highest unwrapped sequence number seen
        self._top_ts: int | None = None
        self._next_seq: int | None = None  # the next sequence number due out of the window
        self._cur: _Building | None = None
        self._synced = not resync
        self._have_sps = self._have_pps = False
        self._sps: SpsInfo | None = None
        self._last_ref: int | None = None  # frame_num of the last reference frame handed out
        self._gap = False  # packets were missing between the last frame and this one

    # ---- input ------------------------------------------------------------------------------------
    def push(self, arrival: float, pkt: RtpPacket) -> list[Frame]:
        out: list[Frame] = []
        if pkt.ssrc != self._ssrc:
            out += self._new_stream(pkt.ssrc)
        self.stats.packets += 1
        seq = unwrap(pkt.seq, self._top_seq, 16)
        if self._next_seq is not None and seq < self._next_seq:
            if seq in self._recent_set:
                self.stats.duplicates += 1  # a copy of one already handed on
            else:
                self.stats.late += 1  # its place was passed (and counted lost)
            return out
        if seq in self._in_heap:
            self.stats.duplicates += 1
            return out
        self._top_seq = seq if self._top_seq is None else max(self._top_seq, seq)
        heapq.heappush(self._heap, (seq, arrival, pkt))
        self._in_heap.add(seq)
        while len(self._heap) > self.reorder:
            out += self._pop()
        return out

    def flush(self) -> list[Frame]:
        out: list[Frame] = []
        while self._heap:
            out += self._pop()
        out += self._finish()
        return out

    def _new_stream(self, ssrc: int) -> list[Frame]:
        out = self.flush()
        if self._ssrc is not None:
            self._synced = not self.resync  # a new encoder session starts with its own keyframe
        self._ssrc = ssrc
        self._top_seq = self._top_ts = self._next_seq = None
        self._last_ref, self._gap = None, False
        self._in_heap.clear()
        self._recent.clear()
        self._recent_set.clear()
        self.stats.streams += 1
        return out

    # ---- in sequence order ------------------------------------------------------------------------
    def _pop(self) -> list[Frame]:
        seq, arrival, pkt = heapq.heappop(self._heap)
        self._in_heap.discard(seq)
        self._recent.append(seq)
        self._recent_set.add(seq)
        if len(self._recent) > 4 * self.reorder + 64:
            self._recent_set.discard(self._recent.popleft())
        out: list[Frame] = []
        gap = 0 if self._next_seq is None else seq - self._next_seq
        self._next_seq = seq + 1
        ts = unwrap(pkt.timestamp, self._top_ts, 32)
        self._top_ts = ts if self._top_ts is None else max(self._top_ts, ts)
        cur = self._cur
        if gap > 0:
            self.stats.lost += gap
            if cur is not None:
                # Lost from the middle of this frame, or its tail (its marker never came): either way broken.
                # (A frame that had its marker was handed on already.)
                cur.damaged = True
                if self.resync:
                    self._synced = False  # whole frames may be gone too: what follows references them
            else:
                self._gap = True  # between frames: whole frames, or only padding; the next frame's frame_num tells
        if cur is not None and cur.timestamp != ts:
            out += self._finish()
            cur = None
        if cur is None:
            cur = self._cur = _Building(ts, arrival)
        self._payload(cur, pkt.payload)
        if pkt.marker:
            out += self._finish()
        return out

    def _payload(self, cur: _Building, p: bytes) -> None:
        if not p:
            cur.damaged = True
            return
        kind = p[0] & 0x1F
        if 1 <= kind <= 23:
            if cur.fu is not None:  # a fragmented NAL never ended
                cur.damaged, cur.fu = True, None
            cur.nals.append(p)
        elif kind == STAP_A:
            i = 1
            while i + 2 <= len(p):
                size = struct.unpack_from("!H", p, i)[0]
                i += 2
                if size == 0 or i + size > len(p):
                    cur.damaged = True
                    return
                cur.nals.append(p[i:i + size])
                i += size
            if i != len(p):
                cur.damaged = True
        elif kind == FU_A:
            if len(p) < 2:
                cur.damaged = True
                return
            start, end = bool(p[1] & 0x80), bool(p[1] & 0x40)
            if start:
                if cur.fu is not None:
                    cur.damaged = True
                cur.fu = bytearray([(p[0] & 0xE0) | (p[1] & 0x1F)]) + p[2:]
            elif cur.fu is None:
                cur.damaged = True  # a middle or end without its start: the start was lost
                return
            else:
                cur.fu += p[2:]
            if end and cur.fu is not None:
                cur.nals.append(bytes(cur.fu))
                cur.fu = None
        else:  # STAP-B, MTAP16/24, FU-B (interleaved mode), reserved 0/30/31
            self.stats.unsupported += 1
            cur.damaged = True

    def _finish(self) -> list[Frame]:
        cur, self._cur = self._cur, None
        if cur is None:
            return []
        if cur.fu is not None:
            cur.damaged = True
        if cur.damaged or not cur.nals:
            if cur.damaged:
                self.stats.damaged += 1
                if self.resync:
                    self._synced = False
            return []
        assert self._ssrc is not None
        frame = Frame(self._ssrc, cur.timestamp, tuple(cur.nals), cur.arrival)
        kinds = {n[0] & 0x1F for n in frame.nals}
        self._have_sps |= NAL_SPS in kinds
        self._have_pps |= NAL_PPS in kinds
        for n in frame.nals:
            if n[0] & 0x1F == NAL_SPS:
                self._sps = parse_sps(n) or self._sps
        slice_nal = next((n for n in frame.nals if n[0] & 0x1F in (1, NAL_IDR)), None)
        frame_num = slice_frame_num(slice_nal, self._sps) if slice_nal is not None else None
        if self._gap:
            self._gap = False
            follows = (frame_num is not None and self._last_ref is not None and self._sps is not None
                       and frame_num == (self._last_ref + 1) % (1 << self._sps.log2_max_frame_num))
            if follows:
                self.stats.gaps_kept += 1
            elif self.resync:
                self._synced = False  # a reference frame may be gone: what follows references it
        if not self._synced:
            if NAL_IDR in kinds and self._have_sps and self._have_pps:
                self._synced = True
            else:
                self.stats.skipped += 1
                return []
        self.stats.frames += 1
        if slice_nal is not None and slice_nal[0] & 0x60:  # nal_ref_idc: a reference frame
            self._last_ref = frame_num
        return [frame]


# ---- the little of the bitstream the depacketizer reads --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SpsInfo:
    log2_max_frame_num: int
    separate_colour_planes: bool = False


class _Bits:
    """An RBSP bit reader (emulation prevention bytes removed), for Exp-Golomb fields."""

    def __init__(self, nal: bytes) -> None:
        self.data = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
        self.pos = 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("past the end")
            v = (v << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def parse_sps(nal: bytes) -> SpsInfo | None:
    """What a slice header's frame_num needs from a sequence parameter set (H.264 7.3.2.1.1); None if unreadable."""
    try:
        b = _Bits(nal)
        profile = b.u(8)
        b.u(16)  # constraint flags, level
        b.ue()  # seq_parameter_set_id
        separate = False
        if profile in _HIGH_PROFILES:
            chroma = b.ue()
            if chroma == 3:
                separate = bool(b.u(1))
            b.ue()  # bit_depth_luma_minus8
            b.ue()  # bit_depth_chroma_minus8
            b.u(1)  # qpprime_y_zero_transform_bypass_flag
            if b.u(1):  # seq_scaling_matrix_present_flag
                for i in range(8 if chroma != 3 else 12):
                    if b.u(1):  # this list present: skip its delta_scale values
                        last = nxt = 8
                        for _ in range(16 if i < 6 else 64):
                            if nxt:
                                nxt = (last + b.se() + 256) % 256
                            last = nxt or last
        log2 = b.ue() + 4
        return SpsInfo(log2, separate) if 4 <= log2 <= 16 else None
    except ValueError:
        return None


def slice_frame_num(nal: bytes, sps: SpsInfo | None) -> int | None:
    """frame_num of a slice (H.264 7.3.3), or None without its parameter set or when unreadable."""
    if sps is None:
        return None
    try:
        b = _Bits(nal)
        b.ue()  # first_mb_in_slice
        b.ue()  # slice_type
        b.ue()  # pic_parameter_set_id
        if sps.separate_colour_planes:
            b.u(2)
        return b.u(sps.log2_max_frame_num)
    except ValueError:
        return None


def depacketize(packets: Iterable[tuple[float, RtpPacket]], **kw: object) -> tuple[list[Frame], Stats]:
    """All frames of a list of (arrival, packet); for tests and small captures."""
    d = Depacketizer(**kw)  # type: ignore[arg-type]
    frames: list[Frame] = []
    for at, p in packets:
        frames += d.push(at, p)
    frames += d.flush()
    return frames, d.stats


# ---- the other direction (tests, benchmarks) ------------------------------------------------------------

def nal_units(annexb: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    out = []
    i = annexb.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = annexb.find(b"\x00\x00\x01", start)
        nal = annexb[start:len(annexb) if j < 0 else j]
        if j >= 0:
            nal = nal.rstrip(b"\x00")  # the next 4-byte start code's leading zero (trailing zeros are padding)
        if nal:
            out.append(nal)
        i = j
    return out


def access_units(nals: Iterable[bytes]) -> list[list[bytes]]:
    """Group NAL units into frames: parameter sets and SEI go with the slice after them (one slice a frame)."""
    aus: list[list[bytes]] = []
    cur: list[bytes] = []
    for nal in nals:
        cur.append(nal)
        if nal[0] & 0x1F in (1, 5):
            aus.append(cur)
            cur = []
    return aus


def packetize(au: Iterable[bytes], *, mtu: int = 1200, stap: bool = True) -> list[bytes]:
    """RFC 6184 payloads of one frame: small NAL units aggregated into STAP-A (when `stap`), big ones split
    into FU-A, the rest as single NAL unit packets."""
    out: list[bytes] = []
    small: list[bytes] = []

    def flush_small() -> None:
        if len(small) == 1:
            out.append(small[0])
        elif small:
            nri = max(n[0] & 0x60 for n in small)
            out.append(bytes([nri | STAP_A]) + b"".join(struct.pack("!H", len(n)) + n for n in small))
        small.clear()

    for nal in au:
        if len(nal) > mtu:
            flush_small()
            head, body = nal[0], nal[1:]
            chunks = [body[k:k + mtu - 2] for k in range(0, len(body), mtu - 2)]
            for n, chunk in enumerate(chunks):
                fu = (0x80 if n == 0 else 0) | (0x40 if n == len(chunks) - 1 else 0) | (head & 0x1F)
                out.append(bytes([(head & 0xE0) | FU_A, fu]) + chunk)
        elif stap and sum(len(n) + 2 for n in small) + len(nal) + 3 <= mtu:
            small.append(nal)
        else:
            flush_small()
            small.append(nal)
    flush_small()
    return out


def rtp_stream(aus: Iterable[list[bytes]], *, fps: float = 25.0, ssrc: int = 0x48590001, payload_type: int = 99,
               seq: int = 0, timestamp: int = 0, mtu: int = 1200) -> Iterator[tuple[float, RtpPacket]]:
    """(send time, packet) for each packet of each frame: the marker on a frame's last packet."""
    for k, au in enumerate(aus):
        payloads = packetize(au, mtu=mtu)
        ts = (timestamp + round(k * CLOCK_RATE / fps)) & 0xFFFFFFFF
        for n, payload in enumerate(payloads):
            yield (k / fps + n * 0.0002,
                   RtpPacket(seq & 0xFFFF, ts, ssrc, payload_type, n == len(payloads) - 1, payload))
            seq += 1


# ---- IVF: the frames with their times, for ffmpeg -------------------------------------------------------

IVF_TIMEBASE = 1000  # milliseconds: 49 days fit the header's 32-bit duration; frame times need no more
_IVF_HEADER = struct.Struct("<4sHH4sHHIIII")
_IVF_FRAME = struct.Struct("<IQ")


class IvfWriter:
    """Frames written as they come, with a provisional time; `set_times` patches every frame's time in
    place once the stream's clock is known (see tap.py), `close` writes the duration into the header.
    ffmpeg reads H.264 from IVF (fourcc H264) with these per-frame times."""

    def __init__(self, path: Path, width: int = 0, height: int = 0) -> None:
        self.path = path
        self.f = path.open("wb")
        self.f.write(_IVF_HEADER.pack(b"DKIF", 0, 32, b"H264", width, height, IVF_TIMEBASE, 1, 0, 0))
        self.offsets: list[int] = []

    def write(self, data: bytes) -> None:
        self.offsets.append(self.f.tell())
        self.f.write(_IVF_FRAME.pack(len(data), 0) + data)

    def set_times(self, times_ms: list[int]) -> None:
        assert len(times_ms) == len(self.offsets)
        for off, t in zip(self.offsets, times_ms, strict=True):
            self.f.seek(off + 4)
            self.f.write(struct.pack("<Q", t))
        self.f.seek(0, 2)

    def close(self, duration_ms: int) -> None:
        self.f.seek(24)
        self.f.write(struct.pack("<I", min(max(duration_ms, 0), 0xFFFFFFFF)))
        self.f.flush()
        self.f.close()


def read_ivf(path: Path) -> list[tuple[int, bytes]]:
    """(time in ms, frame) of every frame of an IVF file (tests)."""
    data = path.read_bytes()
    header_len = struct.unpack_from("<H", data, 6)[0]
    out, i = [], header_len
    while i + 12 <= len(data):
        size, t = _IVF_FRAME.unpack_from(data, i)
        out.append((t, data[i + 12:i + 12 + size]))
        i += 12 + size
    return out

"""Reading the media tap's capture files: classic pcap (as `tcpdump -w` writes it) -> UDP datagrams.

Link types: Linux cooked v1/v2 (`tcpdump -i any`), Ethernet (with 802.1Q tags), loopback/null, raw IP;
IPv4 and IPv6. A file cut short (tcpdump killed mid-write) ends at its last whole packet. IP fragments
are skipped: RTP from terminals stays under the MTU, and a datagram that does not is lost either way.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2 = 113, 228, 229, 276
_RAW_ALIASES = (12, 14)  # DLT_RAW on some systems
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}


class PcapError(Exception):
    """Not a capture file this reader understands."""


@dataclass(frozen=True, slots=True)
class Datagram:
    at: float  # capture time, seconds since the epoch
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def _ip_payload(link: int, frame: bytes) -> bytes | None:
    """The IP packet inside one link-layer frame, or None when it is something else (ARP, ...)."""
    if link == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20 or frame[0:2] not in (b"\x08\x00", b"\x86\xdd"):
            return None
        return frame[20:]
    if link == LINKTYPE_LINUX_SLL:
        if len(frame) < 16 or frame[14:16] not in (b"\x08\x00", b"\x86\xdd"):
            return None
        return frame[16:]
    if link == LINKTYPE_ETHERNET:
        off, ethertype = 12, frame[12:14]
        while ethertype in (b"\x81\x00", b"\x88\xa8"):  # VLAN tags
            off += 4
            ethertype = frame[off:off + 2]
        return frame[off + 2:] if ethertype in (b"\x08\x00", b"\x86\xdd") else None
    if link in (LINKTYPE_NULL, LINKTYPE_LOOP):
        return frame[4:]
    if link in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, *_RAW_ALIASES):
        return frame
    raise PcapError(f"link type {link} is not supported")


def _udp(ip: bytes) -> tuple[str, int, str, int, bytes] | None:
    if not ip:
        return None
    version = ip[0] >> 4
    if version == 4:
        if len(ip) < 20:
            return None
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            return None
        flags_frag = struct.unpack_from("!H", ip, 6)[0]
        if flags_frag & 0x3FFF:  # a fragment (more-fragments flag or an offset)
            return None
        total = struct.unpack_from("!H", ip, 2)[0]
        src, dst = ip[12:16], ip[16:20]
        udp = ip[ihl:total] if total >= ihl else ip[ihl:]
    elif version == 6:
        if len(ip) < 40 or ip[6] != 17:  # UDP straight after the fixed header (no extension headers)
            return None
        plen = struct.unpack_from("!H", ip, 4)[0]
        src, dst = ip[8:24], ip[24:40]
        udp = ip[40:40 + plen]
    else:
        return None
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack_from("!HHH", udp)
    return (str(ipaddress.ip_address(src)), sport, str(ipaddress.ip_address(dst)), dport,
            bytes(udp[8:length] if 8 <= length <= len(udp) else udp[8:]))


def read(path: Path) -> Iterator[Datagram]:
    """Every UDP datagram of a pcap file, in file order (which is capture order)."""
    with path.open("rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return  # tcpdump was stopped before it wrote its header: nothing captured
        if head[:4] not in _MAGIC:
            raise PcapError(f"{path}: not a pcap file (magic {head[:4].hex()})")
        endian, unit = _MAGIC[head[:4]]
        link = struct.unpack(endian + "I", head[20:24])[0] & 0x0FFFFFFF
        record = struct.Struct(endian + "IIII")
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            sec, frac, incl, _orig = record.unpack(rh)
            frame = f.read(incl)
            if len(frame) < incl:
                return  # cut short
            ip = _ip_payload(link, frame)
            if ip is None:
                continue
            u = _udp(ip)
            if u is None:
                continue
            yield Datagram(sec + frac * unit, *u)


def write(path: Path, datagrams: list[tuple[float, bytes]] | list[tuple[float, bytes, int]], *,
          src: tuple[str, int] = ("127.0.0.1", 40000), dst: tuple[str, int] = ("127.0.0.1", 40002)) -> Path:
    """UDP payloads as an Ethernet/IPv4 capture (what SIPp's play_pcap_* replays; tests build inputs with it).
    An item (time, payload, port) goes to that destination port instead of dst's."""
    s_ip, d_ip = ipaddress.IPv4Address(src[0]).packed, ipaddress.IPv4Address(dst[0]).packed
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        for item in datagrams:
            at, payload = item[0], item[1]
            dport = item[2] if len(item) > 2 else dst[1]  # type: ignore[misc]
            udp = struct.pack("!HHHH", src[1], dport, 8 + len(payload), 0) + payload
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, s_ip, d_ip) + udp
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            sec = int(at)
            usec = int(round((at - sec) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return path

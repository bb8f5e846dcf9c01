"""The printable poster of an entry point (扫码海报): an A4 page with the QR code of the entry URL, the title,
how to use it and who runs the service, in Chinese (English below where given). PNG and PDF from the same
picture, drawn with Pillow in a CJK font (fonts-wqy-microhei; `huiyan setup` installs it where missing).

The QR code uses error correction level M and is drawn with whole pixels per module and a quiet zone of
four modules, so a phone reads it off paper or a screen.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_M

DPI = 200
A4 = (round(210 / 25.4 * DPI), round(297 / 25.4 * DPI))  # 1654 x 2339 pixels
BLUE = (11, 92, 173)
INK = (27, 36, 48)
MUTED = (95, 107, 122)
FONT_PACKAGE = "fonts-wqy-microhei"
# Where Debian's packages put CJK fonts; the first found is used (fc-list is asked when none is).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class PosterError(Exception):
    """The poster cannot be drawn here (no CJK font): the message says what to install."""


@dataclass(frozen=True, slots=True)
class PosterText:
    title: str
    url: str  # what the QR code holds
    service: str  # e.g. "12348 · 旅游纠纷调解"
    title_en: str = ""
    instructions: str = ""
    instructions_en: str = ""
    organisation: str = ""
    dial_hint: str = ""  # e.g. "也可拨打 12348 按 3"


def find_font() -> Path | None:
    env = os.environ.get("HUIYAN_POSTER_FONT")
    if env and Path(env).is_file():
        return Path(env)
    for p in FONT_CANDIDATES:
        if Path(p).is_file():
            return Path(p)
    if shutil.which("fc-list"):
        out = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            path = line.split(":", 1)[0].strip()
            if path and Path(path).is_file():
                return Path(path)
    return None


def ensure_font(say: Callable[[str], None], *, install: bool) -> Path:
    """The CJK font posters are drawn in; apt-get installs fonts-wqy-microhei when missing (as root)."""
    font = find_font()
    if font is not None:
        return font
    if install and os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"      installing {FONT_PACKAGE} (Chinese text on the QR posters)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for attempt in ("install", "update"):
            if attempt == "update":
                subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", FONT_PACKAGE],
                               env=env, capture_output=True, text=True)
            if r.returncode == 0:
                break
        _font.cache_clear()
        font = find_font()
        if font is not None:
            return font
    raise PosterError(f"no Chinese font for the QR posters: `apt-get install {FONT_PACKAGE}`")


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont:
    path = find_font()
    if path is None:
        raise PosterError(f"no Chinese font for the QR posters: `apt-get install {FONT_PACKAGE}`")
    return ImageFont.truetype(str(path), size)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Lines no wider than `width`: Chinese breaks between any two characters, Latin words stay whole
    (unless one word alone is too wide). Line breaks in the text are kept."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        tokens: list[str] = []
        word = ""
        for ch in para:
            if ch.isascii() and not ch.isspace():
                word += ch
                continue
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        if word:
            tokens.append(word)
        line = ""
        for tok in tokens:
            if font.getlength(line + tok) <= width:
                line += tok
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = "" if tok.isspace() else tok
            while font.getlength(line) > width and len(line) > 1:  # one over-long word: cut it
                cut = len(line)
                while cut > 1 and font.getlength(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return lines


def qr_image(url: str, size: int) -> Image.Image:
    """The code as a black-on-white image of at most `size` pixels a side, whole pixels per module."""
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, box_size=1)
    qr.add_data(url)
    qr.make(fit=True)
    img = qr.make_image(fill_color="black", back_color="white").get_image().convert("L")
    modules = img.size[0]
    scale = max(1, size // modules)
    return img.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)


def render(text: PosterText) -> Image.Image:
    """The poster as an RGB picture of an A4 page at 200 dpi."""
    w, h = A4
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    margin = 120
    inner = w - 2 * margin

    def centred(y: int, line: str, font: ImageFont.FreeTypeFont, fill: tuple[int, int, int]) -> int:
        d.text(((w - font.getlength(line)) / 2, y), line, font=font, fill=fill)
        return y + round(font.size * 1.35)

    # The band: the service, then the title.
    band_font, title_font, en_font = _font(46), _font(92), _font(44)
    title_lines = wrap(text.title, title_font, inner)
    en_lines = wrap(text.title_en, en_font, inner) if text.title_en else []
    band_h = 110 + 70 + len(title_lines) * round(92 * 1.35) + len(en_lines) * round(44 * 1.35) + 60
    d.rectangle((0, 0, w, band_h), fill=BLUE)
    y = centred(90, text.service, band_font, (214, 230, 247)) + 20
    for line in title_lines:
        y = centred(y, line, title_font, (255, 255, 255))
    for line in en_lines:
        y = centred(y, line, en_font, (214, 230, 247))

    # The code, as large as the page allows, with the URL under it for typing.
    y = band_h + 80
    caption_font = _font(56)
    y = centred(y, "手机扫码 · 视频连线", caption_font, BLUE)
    qr = qr_image(text.url, min(900, h - y - 700))
    img.paste(qr, ((w - qr.size[0]) // 2, y + 20))
    y += qr.size[1] + 40
    url_font = _font(34)
    for line in wrap(text.url, url_font, inner):
        y = centred(y, line, url_font, MUTED)

    # How to use it.
    y += 40
    body_font, body_en_font = _font(44), _font(34)
    for line in wrap(text.instructions, body_font, inner) if text.instructions else []:
        d.text((margin, y), line, font=body_font, fill=INK)
        y += round(44 * 1.5)
    if text.instructions_en:
        y += 10
        for line in wrap(text.instructions_en, body_en_font, inner):
            d.text((margin, y), line, font=body_en_font, fill=MUTED)
            y += round(34 * 1.45)

    # Who runs it, and the phone alternative, at the foot of the page.
    foot_font = _font(40)
    foot = [line for line in (text.organisation, text.dial_hint) if line]
    fy = h - 100 - len(foot) * round(40 * 1.4)
    d.line((margin, fy - 30, w - margin, fy - 30), fill=(217, 222, 229), width=3)
    for line in foot:
        fy = centred(fy, line, foot_font, INK)
    return img


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", dpi=(DPI, DPI), optimize=True)
    return buf.getvalue()


def pdf(img: Image.Image, title: str = "") -> bytes:
    """One A4 page (the picture at 200 dpi)."""
    buf = io.BytesIO()
    img.save(buf, "PDF", resolution=float(DPI), title=title, author="huiyan 慧眼")
    return buf.getvalue()

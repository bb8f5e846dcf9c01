"""The identity check on images the test draws itself (no real person's photo anywhere): synthetic faces made
with Pillow - skin-toned oval, hair, eyes with iris and pupil, brows, nose, mouth - that dlib's detectors find.
The real model (dlib's ResNet descriptor, weights from face-recognition-models) then has to tell the same
drawn person, moved, scaled, darkened and JPEG-compressed, from a different drawn person."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw, ImageFilter

from huiyan.checkin.face import FaceEngine, ImageError, read_image

# Two drawn people: their descriptors lie 0.72 apart (above dlib's 0.6), while A moved, scaled, darkened and
# JPEG-compressed stays 0.29 from A (measured while writing this test; the test asserts the verdicts only).
PERSON_A, PERSON_B = 15, 21


def synthetic_face(seed: int, size: int = 400, *, shift: tuple[int, int] = (0, 0), scale: float = 1.0,
                   bright: float = 1.0) -> Image.Image:
    """A cartoon face whose features come from `seed`; shift/scale/bright make another shot of the same one."""
    r = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(int(r.uniform(150, 230)) for _ in range(3)))
    d = ImageDraw.Draw(img)
    cx, cy = size / 2 + shift[0], size / 2 + shift[1]
    s = scale * size / 400
    fw, fh = r.uniform(95, 150) * s, r.uniform(140, 185) * s
    tone = r.random()
    skin = (int(90 + 150 * tone), int(55 + 135 * tone), int(35 + 125 * tone))
    hair = tuple(int(r.uniform(10, 120)) for _ in range(3))
    if r.random() < 0.5:  # long hair
        d.rectangle([cx - fw - 20 * s, cy - fh * 0.6, cx + fw + 20 * s, cy + fh * 0.9], fill=hair)
    d.ellipse([cx - fw - 10 * s, cy - fh - r.uniform(10, 40) * s, cx + fw + 10 * s, cy + fh * 0.3], fill=hair)
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=skin)
    d.ellipse([cx - fw - 15 * s, cy - 20 * s, cx - fw + 10 * s, cy + 30 * s], fill=skin)
    d.ellipse([cx + fw - 10 * s, cy - 20 * s, cx + fw + 15 * s, cy + 30 * s], fill=skin)
    ey, ex = cy - r.uniform(5, 45) * s, r.uniform(35, 65) * s
    ew, eh = r.uniform(15, 28) * s, r.uniform(6, 14) * s
    for sx in (-1, 1):
        x = cx + sx * ex
        d.ellipse([x - ew, ey - eh, x + ew, ey + eh], fill=(240, 240, 240))
        ir = eh * 0.95
        d.ellipse([x - ir, ey - ir, x + ir, ey + ir], fill=tuple(int(r.uniform(20, 90)) for _ in range(3)))
        d.ellipse([x - ir * 0.45, ey - ir * 0.45, x + ir * 0.45, ey + ir * 0.45], fill=(5, 5, 5))
        by = ey - r.uniform(16, 34) * s
        d.line([x - ew * 1.2, by, x + ew * 1.2, by - r.uniform(-6, 8) * s], fill=hair, width=int(r.uniform(3, 10) * s))
    nl, nw = r.uniform(40, 75) * s, r.uniform(9, 22) * s
    d.polygon([(cx, ey + 5 * s), (cx - nw, ey + nl), (cx + nw, ey + nl)], fill=tuple(max(0, c - 35) for c in skin))
    d.ellipse([cx - nw - 3 * s, ey + nl - 6 * s, cx + nw + 3 * s, ey + nl + 8 * s],
              fill=tuple(max(0, c - 50) for c in skin))
    my, mw = ey + nl + r.uniform(22, 42) * s, r.uniform(22, 50) * s
    lip = (int(r.uniform(110, 200)), int(r.uniform(30, 80)), int(r.uniform(40, 90)))
    d.chord([cx - mw, my - r.uniform(6, 14) * s, cx + mw, my + r.uniform(8, 18) * s], 0, 180, fill=lip)
    if r.random() < 0.4:  # beard
        d.chord([cx - fw * 0.85, my - 10 * s, cx + fw * 0.85, cy + fh], 0, 180, fill=hair)
        d.chord([cx - mw, my - 12 * s, cx + mw, my + 14 * s], 0, 180, fill=lip)
    img = img.filter(ImageFilter.GaussianBlur(2 * s))
    if bright != 1.0:
        img = img.point(lambda v: max(0, min(255, int(v * bright))))
    return img


def encoded(img: Image.Image, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def enrolled_photo() -> bytes:
    return encoded(synthetic_face(PERSON_A), "PNG")


def same_person_snapshot() -> bytes:
    return encoded(synthetic_face(PERSON_A, shift=(12, -8), scale=0.9, bright=0.85))


def other_person_snapshot() -> bytes:
    return encoded(synthetic_face(PERSON_B))


@pytest.fixture(scope="module")
def face() -> FaceEngine:
    e = FaceEngine(0.6)
    assert e.available, e.reason  # the 'face' extra is part of the test install (pyproject)
    return e


def test_a_matching_and_a_non_matching_pair_get_different_verdicts(face: FaceEngine) -> None:
    enrolled = face.faces(read_image(enrolled_photo()))
    assert enrolled.count == 1 and enrolled.descriptor is not None and len(enrolled.descriptor) == 128

    same = face.compare(enrolled.descriptor, read_image(same_person_snapshot()))
    other = face.compare(enrolled.descriptor, read_image(other_person_snapshot()))

    assert same.identity == "match", same
    assert other.identity == "no_match", other
    assert same.distance is not None and other.distance is not None
    assert same.distance <= 0.6 < other.distance
    assert "dlib_face_recognition_resnet_model_v1" in same.model


def test_no_face_and_no_enrolment_are_said_as_such_never_scored(face: FaceEngine) -> None:
    blank = encoded(Image.new("RGB", (300, 300), (120, 160, 200)))
    v = face.compare([0.0] * 128, read_image(blank))
    assert (v.identity, v.faces, v.distance) == ("no_face", 0, None)
    v = face.compare(None, read_image(same_person_snapshot()))
    assert v.identity == "no_enrolment" and v.distance is None


def test_without_the_model_the_verdict_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_dlib(name: str, *a: object, **kw: object) -> object:
        if name == "dlib":
            raise ImportError("No module named 'dlib'", name="dlib")
        return real_import(name, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    e = FaceEngine(0.6)
    assert not e.available and "face" in e.reason
    v = e.compare([0.0] * 128, read_image(same_person_snapshot()))
    assert (v.identity, v.distance) == ("unavailable", None)


@pytest.mark.parametrize(("data", "why"), [
    (b"", "empty"),
    (b"GIF89a" + b"\x00" * 100, "not a readable image"),
    (b"this is not an image at all", "not a readable image"),
])
def test_unreadable_images_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(ImageError, match=why):
        read_image(data)


def test_truncated_jpeg_and_other_formats_are_refused() -> None:
    jpeg = same_person_snapshot()
    with pytest.raises(ImageError, match="not a readable image"):
        read_image(jpeg[: len(jpeg) // 2])
    gif = io.BytesIO()
    synthetic_face(1).save(gif, format="GIF")
    with pytest.raises(ImageError, match="GIF"):
        read_image(gif.getvalue())
    with pytest.raises(ImageError, match="at most 1000 are accepted"):
        read_image(jpeg, max_bytes=1000)
    ok = read_image(jpeg)
    assert (ok.format, ok.content_type, ok.width, ok.height) == ("JPEG", "image/jpeg", 400, 400)

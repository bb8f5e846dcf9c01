"""Images and the identity check (人脸比对): an uploaded photo or snapshot is read as a JPEG or PNG (anything
else, or a broken file, is refused with the reason); faces are found with dlib's HOG detector (its CNN
detector when HOG finds none) and described by dlib's ResNet face descriptor, with the weights that the
`face-recognition-models` package ships (installed with the `face` extra: `pip install -e '.[face]'`; no
download at run time). Two descriptors at most `threshold` apart (0.6, dlib's documented operating point
for this model) are the same person.

Without dlib or the weights, `FaceEngine.available` is False and says why: snapshots are still stored and
the verdict is "unavailable" - the officer confirms identity by looking (review pass/fail). No score is
ever made up.

Blocking (image decoding, the models): called from worker threads, never on the event loop.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger(__name__)

MAX_PIXELS = 40_000_000
MAX_SIDE = 1024  # analysed at most this big: enough for a face, and keeps the CNN detector quick
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}


class ImageError(ValueError):
    """The bytes are not a usable JPEG or PNG image; the message says why."""


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    format: str  # JPEG, PNG
    width: int
    height: int
    sha256: str

    @property
    def content_type(self) -> str:
        return FORMATS[self.format]

    @property
    def suffix(self) -> str:
        return ".jpg" if self.format == "JPEG" else ".png"


def read_image(data: bytes, max_bytes: int = 8 * 1024 * 1024) -> Image:
    """Check that `data` is a whole, decodable JPEG or PNG of a sensible size."""
    from PIL import Image as PilImage
    from PIL import UnidentifiedImageError

    if not data:
        raise ImageError("the image is empty")
    if len(data) > max_bytes:
        raise ImageError(f"the image is {len(data)} bytes; at most {max_bytes} are accepted")
    try:
        with PilImage.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            if fmt not in FORMATS:
                raise ImageError(f"the image is {fmt or 'of an unknown format'}: send a JPEG or PNG")
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise ImageError(f"the image is {w}x{h}: at most {MAX_PIXELS} pixels are accepted")
            if w < 32 or h < 32:
                raise ImageError(f"the image is {w}x{h}: too small to show a face")
            im.load()  # decodes every pixel: a truncated or corrupt file fails here
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not a readable image: the data is not a JPEG or PNG") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated, corrupt, decompression bomb
        raise ImageError(f"not a readable image: {exc}") from None
    return Image(data, fmt, w, h, hashlib.sha256(data).hexdigest())


def _pixels(img: Image) -> Any:
    """RGB numpy array, scaled down to MAX_SIDE."""
    import numpy as np
    from PIL import Image as PilImage
    from PIL import ImageOps

    with PilImage.open(io.BytesIO(img.data)) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        if max(im.size) > MAX_SIDE:
            im.thumbnail((MAX_SIDE, MAX_SIDE))
        return np.ascontiguousarray(np.asarray(im))


@dataclass(frozen=True, slots=True)
class Faces:
    count: int
    descriptor: list[float] | None  # of the largest face


@dataclass(frozen=True, slots=True)
class Verdict:
    """identity: match, no_match, no_face (none in the snapshot), several_faces, no_enrolment (no usable
    enrolled photo), unavailable (no model installed)."""

    identity: str
    faces: int | None
    distance: float | None
    threshold: float
    model: str
    reason: str = ""

    def view(self) -> dict[str, Any]:
        return {"identity": self.identity, "faces": self.faces, "distance": self.distance,
                "threshold": self.threshold, "model": self.model, "reason": self.reason}


class FaceEngine:
    """The face model, loaded once on first use (about 40 MB of weights) and shared by the threads."""

    def __init__(self, threshold: float = 0.6) -> None:
        self.threshold = threshold
        self._lock = threading.Lock()
        self._loaded = False
        self._reason = ""
        self._models: tuple[Any, Any, Any, Any] | None = None
        self.model = "dlib_face_recognition_resnet_model_v1"

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            try:
                import dlib
                import face_recognition_models as frm
                import numpy  # noqa: F401 - dlib takes numpy arrays

                hog = dlib.get_frontal_face_detector()
                cnn = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
                shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
                rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
                self._models = (hog, cnn, shape, rec)
                try:
                    self.model += f" (dlib {dlib.__version__}, face-recognition-models {version('face_recognition_models')})"
                except PackageNotFoundError:
                    self.model += f" (dlib {dlib.__version__})"
            except ImportError as exc:
                self._reason = (f"no face model installed ({exc.name or exc}): install the 'face' extra "
                                "(dlib-bin, face-recognition-models); the officer confirms identity meanwhile")
                log.warning("check-in identity: %s", self._reason)
            except Exception as exc:  # noqa: BLE001 - a broken install must not stop check-ins
                self._reason = f"the face model could not be loaded: {exc}"
                log.exception("check-in identity: loading the face model failed")
            self._loaded = True

    @property
    def available(self) -> bool:
        self._load()
        return self._models is not None

    @property
    def reason(self) -> str:
        self._load()
        return self._reason

    def faces(self, img: Image) -> Faces:
        """How many faces `img` shows, and the descriptor of the largest. Raises RuntimeError without a model."""
        self._load()
        if self._models is None:
            raise RuntimeError(self._reason)
        import numpy as np

        hog, cnn, shape, rec = self._models
        px = _pixels(img)
        rects = list(hog(px, 1))
        if not rects:
            rects = [d.rect for d in cnn(px, 1)]
        if not rects:
            return Faces(0, None)
        largest = max(rects, key=lambda r: r.width() * r.height())
        desc = rec.compute_face_descriptor(px, shape(px, largest), 1)
        return Faces(len(rects), [round(float(x), 6) for x in np.asarray(desc)])

    def compare(self, enrolled: list[float] | None, probe: Image) -> Verdict:
        """The verdict on a snapshot against the enrolled descriptor."""
        if not self.available:
            return Verdict("unavailable", None, None, self.threshold, "none", self._reason)
        found = self.faces(probe)
        if found.count == 0 or found.descriptor is None:
            return Verdict("no_face", 0, None, self.threshold, self.model, "no face found in the snapshot")
        if enrolled is None:
            return Verdict("no_enrolment", found.count, None, self.threshold, self.model,
                           "the subject has no enrolled photo with a face: enrol one")
        distance = distance_of(enrolled, found.descriptor)
        if found.count > 1:
            return Verdict("several_faces", found.count, distance, self.threshold, self.model,
                           f"{found.count} faces in the snapshot: only the subject may be in view")
        same = distance <= self.threshold
        return Verdict("match" if same else "no_match", found.count, distance, self.threshold, self.model,
                       "" if same else f"distance {distance} is above the threshold {self.threshold}")


def distance_of(a: list[float], b: list[float]) -> float:
    import math

    return round(math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True))), 4)


_ENGINES: dict[float, FaceEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine(threshold: float = 0.6) -> FaceEngine:
    """The process's engine for `threshold` (the weights are loaded once, on first use)."""
    with _ENGINES_LOCK:
        e = _ENGINES.get(threshold)
        if e is None:
            e = _ENGINES[threshold] = FaceEngine(threshold)
        return e

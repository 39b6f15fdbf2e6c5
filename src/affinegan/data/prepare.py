"""Raw videos or frame folders -> training-ready clips (``affinegan prepare``).

The original asks users to cut videos into frames, keep the head centred and fixed, resize and
draw mouth masks by hand. Per clip this module:

1. reads the frames (a video through imageio-ffmpeg, optionally resampled to ``fps``, or a folder
   of images) and locates the face and its 68 landmarks in each (``align.locate_face``);
2. drops the frames before the first and after the last detected face; frames in between where
   the detector missed keep their place, their landmarks located inside the previous face box;
   a clip whose face is missing in most frames fails;
3. picks ONE crop square for the clip (``align.face_crop_box``), optionally trims to the
   neutral-to-peak segment (training needs a neutral first frame and a monotonic expression)
   and caps the frame count evenly;
4. reads the frames again (two passes keep a long phone video out of memory), moves each onto
   the first frame's head position by its rigid landmarks (``align.Stabiliser``: a similarity on
   the eye corners and nose, so the model learns the expression, not the camera), crops,
   resizes and writes them, plus outer-lip masks with ``masks``, into a hidden temporary folder
   that is renamed into ``<root>/<split>/img|patch/<clip>`` only when the whole clip succeeded.

Frames are JPEG (quality 95). With masks, frames AND masks are lossless PNG with the same file
names, because the dataset validator (and the original code) pair a mask with its frame by exact
file name, and a binary mask must not go through JPEG.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image
from tqdm import tqdm

from affinegan.cli.command_options import PrepareOptions
from affinegan.data.align import (
    CropBox,
    Face,
    Stabiliser,
    face_crop_box,
    locate_face,
    mouth_mask,
)
from affinegan.data.dataset import list_frames
from affinegan.data.images import IMAGE_EXTENSIONS, open_image
from affinegan.data.trim import head_motion, neutral_to_peak
from affinegan.errors import AffineGANError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v"})
MIN_FACE_FRACTION = 0.5  # a clip fails when the face is detected in fewer of its frames
PADDING_WARNING = 0.1  # warn when this fraction of the crop lies outside the frame
SMALL_CROP = 0.75  # warn when the crop is upscaled by more than 1 / SMALL_CROP
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Source:
    """One clip to prepare: a video file (``frames`` None) or an ordered list of frame files."""

    name: str
    path: Path
    frames: tuple[Path, ...] | None = None


@dataclass
class ClipReport:
    """What happened to one clip: counts, the crop, warnings, or the one-line error."""

    name: str
    source: Path
    frames_read: int = 0
    frames_kept: int = 0
    no_face: int = 0  # frames where the detector found no face
    dropped: int = 0  # frames dropped for lack of a face (before the first / after the last)
    frame_size: tuple[int, int] | None = None
    box: CropBox | None = None
    trimmed: tuple[int, int] | None = None  # first and last frame kept by --trim (read order)
    output: Path | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def lines(self) -> list[str]:
        """The human-readable report ``affinegan prepare`` prints."""
        if self.error is not None:
            return [f"{self.name}: FAILED: {self.error}"]
        w, h = self.frame_size or (0, 0)
        missed = self.no_face - self.dropped
        faces = (
            f"no face in {self.no_face}: {self.dropped} dropped at the ends, {missed} kept with "
            "landmarks located in the previous face box"
            if self.no_face
            else "a face in every frame"
        )
        out = [
            f"{self.name}: {self.frames_kept} frames -> {self.output} ({self.seconds:.1f} s)",
            f"  read {self.frames_read}, kept {self.frames_kept}; {faces}",
        ]
        if self.box is not None:
            b = self.box
            out.append(f"  crop box left {b.left}, top {b.top}, side {b.side} in {w}x{h} frames")
        if self.trimmed is not None:
            first, last = self.trimmed
            out.append(f"  --trim kept frames {first + 1}..{last + 1} of those read")
        out += [f"  warning: {text}" for text in self.warnings]
        return out


def find_sources(paths: Sequence[Path]) -> list[Source]:
    """Expand command-line paths into clips: a video or an image is one clip, a folder of images
    is one clip, and any other folder holds one clip per video or frame folder inside it."""
    sources = []
    for path in map(Path, paths):
        if not path.is_dir():
            is_image = path.suffix.lower() in IMAGE_EXTENSIONS
            sources.append(Source(path.stem, path, (path,) if is_image else None))
            continue
        images = list_frames(path)
        if images:
            sources.append(Source(path.name, path, tuple(images)))
            continue
        inner = []
        for entry in sorted(path.iterdir(), key=lambda p: p.name):
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
                inner.append(Source(entry.stem, entry))
            elif entry.is_dir() and (frames := list_frames(entry)):
                inner.append(Source(entry.name, entry, tuple(frames)))
        # An empty folder stays a clip of its own so it is reported as failed, not skipped.
        sources += inner or [Source(path.name, path, ())]
    return sources


def _reason(err: BaseException) -> str:
    """The last informative line of an ffmpeg/OS error, for a one-line message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


class _Frames:
    """A clip's frames as HWC uint8 RGB; iterating again yields exactly the same frames."""

    def __init__(self, source: Source, fps: float | None) -> None:
        self.source = source
        self.note: str | None = None
        self.step = 1.0
        self.total: int | None = None
        if source.frames is not None:
            if not source.frames:
                raise AffineGANError(
                    f"{source.path}: no frames or videos found; give a video, a folder of frames "
                    "or a folder of videos"
                )
            self.total = len(source.frames)
            if fps is not None:
                self.note = "--fps ignored: a folder of frames has no frame rate"
            return
        if not source.path.exists():
            raise AffineGANError(f"{source.path}: no such file or folder; check the path")
        reader, meta = self._open()
        reader.close()
        src_fps = float(meta.get("fps") or 0.0)
        self.total = round(float(meta.get("duration") or 0.0) * src_fps) or None
        if fps is None:
            return
        if src_fps <= 0:
            raise AffineGANError(
                f"{source.path}: the video's frame rate is unknown; leave out --fps"
            )
        if fps < src_fps:
            self.step = src_fps / fps
            if self.total is not None:
                self.total = int(self.total / self.step) + 1
        else:
            self.note = f"--fps {fps:g} is not below the video's {src_fps:g} fps; kept every frame"

    def _open(self) -> tuple[Iterator[bytes], dict]:
        path = self.source.path
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        try:
            meta = next(reader)
        except (OSError, RuntimeError, StopIteration) as err:
            raise AffineGANError(
                f"{path}: cannot read video ({_reason(err)}); the file is corrupt or not a "
                "video, re-copy or re-export it"
            ) from None
        return reader, meta

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._images() if self.source.frames is not None else self._video()

    def _images(self) -> Iterator[np.ndarray]:
        first: tuple[int, int] | None = None
        for path in self.source.frames or ():
            img = open_image(path).convert("RGB")
            if first is None:
                first = img.size
            elif img.size != first:
                raise AffineGANError(
                    f"{path}: frame is {img.width}x{img.height} but the clip's first frame is "
                    f"{first[0]}x{first[1]}; all frames of a clip must come from one camera"
                )
            yield np.asarray(img)

    def _video(self) -> Iterator[np.ndarray]:
        reader, meta = self._open()
        w, h = meta["size"]  # after ffmpeg's autorotation, so portrait phone videos stay upright
        kept = 0
        try:
            for i, buf in enumerate(reader):
                if i >= round(kept * self.step):  # the source frame nearest each output time
                    kept += 1
                    yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as err:
            raise AffineGANError(
                f"{self.source.path}: video decoding failed ({_reason(err)}); the file is "
                "truncated or corrupt, re-copy or re-export it"
            ) from None
        finally:
            reader.close()


def _evenly(indices: list[int], n: int) -> list[int]:
    """At most ``n`` of ``indices``, evenly spread, first and last included."""
    if len(indices) <= n:
        return indices
    return [indices[int(i)] for i in np.linspace(0, len(indices) - 1, n).round()]


def _locate(frames: _Frames, name: str) -> tuple[list[Face | None], tuple[int, int]]:
    """Pass 1: the face (tracked from frame to frame) and landmarks of every frame.

    Landmarks are fitted in boxes of the first detected face's size, so that detector scale
    jumps do not read as expression change (``--trim``) or mask jitter.
    """
    faces: list[Face | None] = []
    near = None
    side = None
    size = (0, 0)
    bar = tqdm(
        frames, total=frames.total, desc=f"{name}: faces", unit="frame", leave=False, disable=None
    )
    for rgb in bar:
        size = (rgb.shape[1], rgb.shape[0])
        face = locate_face(rgb, near, side)
        if face is not None and face.detected:
            near = face.box
            side = side or (near.width + near.height) / 2
        faces.append(face)
    return faces, size


def _select(
    faces: list[Face | None], opts: PrepareOptions, report: ClipReport
) -> tuple[list[int], CropBox]:
    """Which frames to keep and the clip's crop box; fills the report, raises on a bad clip."""
    path = report.source
    n = len(faces)
    if n == 0:
        raise AffineGANError(f"{path}: no frames could be read; the video is empty")
    detected = [i for i, f in enumerate(faces) if f is not None and f.detected]
    report.frames_read = n
    report.no_face = n - len(detected)
    if not detected:
        raise AffineGANError(f"no face found in {path}; film one frontal, well-lit face")
    if len(detected) < MIN_FACE_FRACTION * n:
        raise AffineGANError(
            f"{path}: a face was found in only {len(detected)} of {n} frames; film the face "
            "frontally, well lit and unobstructed"
        )
    keep = list(range(detected[0], detected[-1] + 1))
    report.dropped = n - len(keep)
    boxes = [f.box for f in faces if f is not None and f.detected]
    box = face_crop_box(boxes, opts.margin)
    report.box = box

    face_size = float(np.median([(b.width + b.height) / 2 for b in boxes]))
    track = np.stack([faces[i].points for i in keep])  # every face in ``keep`` is located
    motion = head_motion(track, face_size)
    if motion.turned():
        report.warnings.append(
            f"the head turns or nods ({motion.turn:.0%} of the eye distance after aligning the "
            "frames); AffineGAN cannot model a turning head, film it facing the camera"
        )
    outside = box.outside(*report.frame_size) if report.frame_size else 0.0
    if outside > PADDING_WARNING:
        report.warnings.append(
            f"{outside:.0%} of the crop lies outside the frame and repeats its border; keep the "
            "head away from the frame edge or lower --margin"
        )
    if box.side < SMALL_CROP * opts.size:
        report.warnings.append(
            f"the crop is only {box.side} px, upscaled to {opts.size}; film closer or lower --size"
        )

    if opts.trim:
        span = neutral_to_peak(track)
        if isinstance(span, str):
            report.warnings.append(f"--trim cannot tell neutral from peak: {span}; kept all frames")
        else:
            keep = keep[span[0] : span[1] + 1]
            report.trimmed = (keep[0], keep[-1])
    if opts.max_frames is not None:
        keep = _evenly(keep, opts.max_frames)
    if len(keep) < opts.min_frames:
        raise AffineGANError(
            f"{path}: only {len(keep)} frame(s) left; a training clip needs the neutral face "
            "plus at least one expression frame, give a longer clip (or leave out --trim)"
        )
    return keep, box


def _write(
    frames: _Frames,
    faces: list[Face | None],
    keep: list[int],
    box: CropBox,
    tmp: Path,
    opts: PrepareOptions,
    name: str,
) -> None:
    """Pass 2: crop, resize and save the kept frames (and their masks) under ``tmp``."""
    (tmp / "img").mkdir(parents=True)
    if opts.masks:
        (tmp / "patch").mkdir()
    number = {i: k + 1 for k, i in enumerate(keep)}
    width = max(4, len(str(len(keep))))
    written = 0
    with closing(iter(frames)) as it:
        bar = tqdm(
            it, total=keep[-1] + 1, desc=f"{name}: write", unit="frame", leave=False, disable=None
        )
        for i, rgb in enumerate(bar):
            if i not in number:
                continue
            file = f"{number[i]:0{width}d}{opts.suffix}"
            # Every frame is moved onto the first's head position (align.Stabiliser).
            steady = Stabiliser.between(faces[i].points, faces[keep[0]].points)
            img = Image.fromarray(steady.crop(rgb, box, opts.size))
            if opts.masks:
                img.save(tmp / "img" / file, format="PNG")
                mask = mouth_mask(steady.points(faces[i].points), box, opts.size)
                Image.fromarray(mask).save(tmp / "patch" / file, format="PNG")
            else:
                img.save(tmp / "img" / file, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
            written += 1
            if i == keep[-1]:
                break
    if written != len(keep):
        raise AffineGANError(
            f"{frames.source.path}: the second read gave fewer frames than the first; the file "
            "changed while it was read, try again"
        )


def _existing(root: Path, split: str, name: str) -> list[Path]:
    return [p for p in (root / split / "img" / name, root / split / "patch" / name) if p.exists()]


def _install(tmp: Path, root: Path, opts: PrepareOptions, name: str) -> Path:
    """Move the finished clip into place; masks first, so a frame folder never lacks masks."""
    split_dir = root / opts.split
    for old in _existing(root, opts.split, name):  # only with --overwrite (checked earlier)
        os.replace(old, tmp / f"old-{old.parent.name}")
    for part in ("patch", "img") if opts.masks else ("img",):
        dest = split_dir / part / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / part, dest)
    return split_dir / "img" / name


def _refuse_overwriting_inputs(source: Source, outputs: list[Path]) -> None:
    """``--overwrite`` replaces whole clip folders: never one that holds this clip's input."""
    inputs = [p.resolve() for p in (source.frames or (source.path,))]
    for out in (p.resolve() for p in outputs):
        if any(out == p or out in p.parents for p in inputs):
            raise AffineGANError(
                f"{out}: is also the input {source.path}, so --overwrite would replace the "
                "frames being read; write to another --out"
            )


def prepare_clip(source: Source, root: Path, opts: PrepareOptions) -> ClipReport:
    """Prepare one clip. Failures end up in the report, and then nothing is written."""
    started = time.perf_counter()
    report = ClipReport(source.name, source.path)
    tmp = Path(root) / opts.split / f".prepare-{source.name}-{uuid.uuid4().hex[:8]}"
    try:
        existing = _existing(Path(root), opts.split, source.name)
        if existing and not opts.overwrite:
            raise AffineGANError(
                f"{existing[0]}: clip already exists; remove it or pass --overwrite"
            )
        _refuse_overwriting_inputs(source, existing)
        frames = _Frames(source, opts.fps)
        if frames.note:
            report.warnings.append(frames.note)
        faces, report.frame_size = _locate(frames, source.name)
        keep, box = _select(faces, opts, report)
        _write(frames, faces, keep, box, tmp, opts, source.name)
        report.output = _install(tmp, Path(root), opts, source.name)
        report.frames_kept = len(keep)
    except AffineGANError as err:
        report.error = str(err)
    except OSError as err:
        report.error = (
            f"{err.filename or source.path}: file error ({err.strerror or err}); check the "
            f"free space and permissions under {root}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    log.debug("%s: %s in %.1f s", source.name, "ok" if report.ok else "failed", report.seconds)
    return report


def prepare(paths: Sequence[Path], root: Path, opts: PrepareOptions) -> Iterator[ClipReport]:
    """Prepare every clip found in ``paths`` under ``root``, one report per clip as it ends;
    a failed clip does not stop the others."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise AffineGANError(f"{root}: is a file; give a folder for --out")
    seen: dict[str, Path] = {}
    for source in tqdm(find_sources(paths), desc="clips", unit="clip", disable=None):
        if source.name in seen:
            yield ClipReport(
                source.name,
                source.path,
                error=f"{source.path}: clip name {source.name!r} is also used by "
                f"{seen[source.name]}; rename one of them",
            )
            continue
        seen[source.name] = source.path
        yield prepare_clip(source, root, opts)

"""The one image loader (issue 13, items 1 and 9): every way a camera, phone or editor stores a
photo reaches the model as an image viewer shows it, or is refused with one line."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from affinegan.data.check import check_dataset
from affinegan.data.dataset import ClipDataset, scan_clips
from affinegan.data.images import check_image, decode, load_input_image, open_image
from affinegan.errors import AffineGANError
from affinegan.export.onnx_runtime import load_face
from affinegan.serving.serve import Limits, read_photo

RNG = np.random.default_rng(0)
FACE = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)  # what the viewer should show
GREY = RNG.integers(0, 256, (24, 32), dtype=np.uint8)


def _png(width: int, height: int, depth: int, colour: int, rows: bytes) -> bytes:
    """A PNG written by hand, for what Pillow does not write (16-bit RGB, forged headers)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _png16_rgb(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    wide = (rgb.astype(">u2") * 257).reshape(h, w * 3)
    return _png(w, h, 16, 2, b"".join(b"\0" + row.tobytes() for row in wide))


def _linear_rgb_profile() -> bytes:
    """An ICC v2 matrix/TRC profile with sRGB's primaries and gamma 1 (linear light): a viewer
    shows a tagged pixel of 128 much brighter (about 188)."""
    fixed = lambda *v: b"".join(struct.pack(">i", round(x * 65536)) for x in v)  # noqa: E731
    xyz = lambda *v: b"XYZ \0\0\0\0" + fixed(*v)  # noqa: E731
    gamma_one = b"curv\0\0\0\0" + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    text = b"linear sRGB\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 79
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", gamma_one),
        (b"gTRC", gamma_one),
        (b"bTRC", gamma_one),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + fixed(0.9642, 1.0, 0.8249)
        + b"\0" * 48
    )
    return header + struct.pack(">I", len(tags)) + table + data


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _tiff(arr: np.ndarray, **kw: object) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def _rgba(alpha: int) -> Image.Image:
    rgba = np.dstack([FACE, np.full(FACE.shape[:2], 255, np.uint8)])
    rgba[:8, :8, 3] = alpha
    return Image.fromarray(rgba, "RGBA")


def _on_white(alpha: int) -> np.ndarray:
    out = FACE.astype(np.float64)
    out[:8, :8] = out[:8, :8] * alpha / 255 + 255 * (1 - alpha / 255)
    return np.rint(out).astype(np.uint8)


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the file stores the picture turned left
    return _save(Image.fromarray(np.rot90(FACE)), "PNG", exif=exif.tobytes())


def _cmyk() -> tuple[bytes, np.ndarray]:
    cmyk = Image.fromarray(FACE).convert("CMYK")
    return _save(cmyk, "TIFF"), np.asarray(cmyk.convert("RGB"))


def _lab() -> tuple[bytes, np.ndarray]:
    """8-bit LAB cannot hold every sRGB colour exactly: the reference is its sRGB rendering."""
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    img = ImageCms.profileToProfile(Image.fromarray(FACE), srgb, lab, outputMode="LAB")
    return _save(img, "TIFF"), np.asarray(
        ImageCms.profileToProfile(img, lab, srgb, outputMode="RGB")
    )


def _jpeg() -> tuple[bytes, np.ndarray]:
    data = _save(Image.fromarray(FACE), "JPEG", quality=90)
    return data, np.asarray(Image.open(io.BytesIO(data)))


def _palette() -> tuple[bytes, np.ndarray]:
    pal = Image.fromarray(FACE).quantize(64)
    return _save(pal, "GIF"), np.asarray(pal.convert("RGB"))


def _palette_transparent() -> tuple[bytes, np.ndarray]:
    pal = Image.fromarray(FACE).quantize(64)
    index = pal.getpixel((0, 0))
    view = np.asarray(pal.convert("RGB")).copy()
    view[np.asarray(pal) == index] = 255
    return _save(pal, "PNG", transparency=index), view


def _linear_tagged() -> tuple[bytes, np.ndarray]:
    flat = Image.new("RGB", (8, 8), (128, 128, 128))
    return _save(flat, "PNG", icc_profile=_linear_rgb_profile()), np.full((8, 8, 3), 188)


def _grey3(arr: np.ndarray) -> np.ndarray:
    return np.repeat(arr[..., None], 3, 2)


# (file bytes, what a viewer shows as uint8 RGB, tolerance in levels)
CASES: dict[str, Callable[[], tuple[bytes, np.ndarray, int]]] = {
    "png-rgb8": lambda: (_save(Image.fromarray(FACE), "PNG"), FACE, 0),
    "png-grey8": lambda: (_save(Image.fromarray(GREY), "PNG"), _grey3(GREY), 0),
    "png-grey16": lambda: (
        _save(Image.fromarray(GREY.astype(np.uint16) * 257), "PNG"),
        _grey3(GREY),
        0,
    ),
    "tiff-grey16-big-endian": lambda: (
        _tiff((GREY.astype(np.uint16) * 257).astype(">u2"), byteorder=">"),
        _grey3(GREY),
        0,
    ),
    "tiff-grey32-int": lambda: (_tiff(GREY.astype(np.int32) * 257), _grey3(GREY), 0),
    "png-rgb16": lambda: (_png16_rgb(FACE), FACE, 1),
    "tiff-rgb16": lambda: (_tiff(FACE.astype(np.uint16) * 257, photometric="rgb"), FACE, 1),
    "png-1bit": lambda: (
        _save(Image.fromarray(GREY > 127), "PNG"),
        _grey3(np.where(GREY > 127, 255, 0)),
        0,
    ),
    "gif-palette": lambda: (*_palette(), 0),
    "png-palette-transparent": lambda: (*_palette_transparent(), 0),
    "png-rgba-opaque": lambda: (_save(_rgba(255), "PNG"), FACE, 0),
    "png-rgba-transparent": lambda: (_save(_rgba(0), "PNG"), _on_white(0), 0),
    "png-rgba-half": lambda: (_save(_rgba(128), "PNG"), _on_white(128), 1),
    "png-grey-alpha": lambda: (
        _save(Image.fromarray(np.dstack([GREY, np.full_like(GREY, 255)]), "LA"), "PNG"),
        _grey3(GREY),
        0,
    ),
    "png-exif-rotated": lambda: (_exif_rotated(), FACE, 0),
    "png-linear-icc": lambda: (*_linear_tagged(), 2),
    "tiff-cmyk": lambda: (*_cmyk(), 0),
    "tiff-lab": lambda: (*_lab(), 0),
    "jpeg-rgb": lambda: (*_jpeg(), 0),
    "webp-lossless": lambda: (_save(Image.fromarray(FACE), "WEBP", lossless=True), FACE, 0),
    "bmp": lambda: (_save(Image.fromarray(FACE), "BMP"), FACE, 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_storage_looks_as_in_a_viewer(case: str, tmp_path: Path) -> None:
    data, view, tolerance = CASES[case]()
    path = tmp_path / "frame.img"
    path.write_bytes(data)
    img = open_image(path)
    assert img.mode in ("L", "RGB")
    got = np.asarray(img.convert("RGB")).astype(int)
    assert got.shape == view.shape
    assert np.abs(got - view).max() <= tolerance


REFUSED = {
    "float": (_tiff(GREY.astype(np.float32) / 255), "floating-point"),
    "heic": (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64, "HEIC"),
    "huge": (_png(20000, 20000, 8, 0, b"\0"), "400 megapixels, more than the limit of 50"),
    "truncated": (_save(Image.fromarray(FACE), "PNG")[:200], "truncated or corrupt"),
    "text": (b"not an image at all", "not an image"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusals_are_one_line(case: str, tmp_path: Path) -> None:
    data, words = REFUSED[case]
    path = tmp_path / "frame.png"
    path.write_bytes(data)
    with pytest.raises(AffineGANError) as err:
        open_image(path)
    assert words in str(err.value) and "\n" not in str(err.value) and str(path) in str(err.value)


def test_pixel_limit_is_an_option(tmp_path: Path) -> None:
    """Item 9: a frame above the limit is refused by training and check, with the limit named."""
    root = tmp_path / "data"
    for n, arr in enumerate((FACE, np.zeros((60, 40, 3), np.uint8))):
        path = root / f"train/img/clip/{n:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
    with pytest.raises(AffineGANError, match=r"40x60 pixels .* limit of 0.002 megapixels"):
        scan_clips(root, max_pixels=2000)
    assert scan_clips(root, max_pixels=2400)
    report = check_dataset(root, use_patch=False, max_pixels=2000)
    assert any("limit of 0.002 megapixels" in p for p in report.problems)


def test_sixteen_bit_frame_reaches_every_command_as_its_8_bit_original(tmp_path: Path) -> None:
    """Item 1: training, check, generate and serve see a 16-bit frame as its 8-bit original."""
    root = tmp_path / "data"
    clips = {"eight": GREY, "sixteen": GREY.astype(np.uint16) * 257}
    for name, arr in clips.items():
        for n in (1, 2):
            path = root / f"train/img/{name}/{n:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(path)
    dataset = ClipDataset(scan_clips(root), 32, 32, 1, flip=False)
    eight, sixteen = dataset[0]["A"], dataset[1]["A"]
    assert (eight - sixteen).abs().max() <= 2 / 255 + 1e-6  # one level of [-1, 1]
    assert sixteen.mean() < 0.5  # not the solid white of old

    report = check_dataset(root, use_patch=False)
    assert report.ok and report.splits[0].grey == 4

    a = load_input_image(root / "train/img/eight/0001.png", 32)
    b = load_input_image(root / "train/img/sixteen/0001.png", 32)
    assert (a - b).abs().max() <= 2 / 255 + 1e-6

    onnx_input = load_face(root / "train/img/sixteen/0001.png", 32)  # generate --backend onnx
    assert np.abs(onnx_input[0] - a.numpy()).max() <= 2 / 255 + 1e-6

    photo, _ = read_photo(root / "train/img/sixteen/0001.png", Limits())
    assert np.array_equal(np.asarray(photo), _grey3(GREY))
    with pytest.raises(AffineGANError, match="limit of 0.0001 megapixels"):  # generate's limit
        load_input_image(root / "train/img/sixteen/0001.png", 32, max_pixels=100)


def test_decode_names_the_upload_not_a_path() -> None:
    with pytest.raises(AffineGANError, match=r"^upload\.png: is not an image"):
        decode(b"nonsense", "upload.png", 10**6)
    assert decode(_save(Image.fromarray(GREY), "PNG"), "x", 10**6).size == (32, 24)


MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F")
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")  # damaged files
@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(FORMATS),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    damage=st.sampled_from(("none", "truncate", "flip")),
    where=st.floats(0.0, 1.0),
)
def test_loader_decodes_or_refuses_in_one_line(
    tmp_path_factory: pytest.TempPathFactory,
    mode: str,
    fmt: str,
    width: int,
    height: int,
    seed: int,
    damage: str,
    where: float,
) -> None:
    """Any mode, size and format, intact or damaged: viewer pixels or one line, nothing else."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    img = Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode != "I;16":
        img = rgb.convert(mode) if mode not in ("LAB", "HSV") else rgb.convert("RGB")
        img = img if mode not in ("LAB", "HSV") else Image.merge(mode, img.split())
    try:
        data = _save(img, fmt)
    except (OSError, ValueError, KeyError, TypeError):
        assume(False)  # this format cannot store this mode
    cut = int(where * len(data))
    if damage == "truncate":
        data = data[:cut]
    elif damage == "flip" and data:
        data = data[:cut] + bytes([data[min(cut, len(data) - 1)] ^ 0xFF]) + data[cut + 1 :]
    path = tmp_path_factory.mktemp("prop") / "frame.img"
    path.write_bytes(data)
    try:
        check_image(path)  # the cheap check of every file before training
        out = open_image(path)
    except AffineGANError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert out.mode in ("L", "RGB") and out.width * out.height > 0
    if damage == "none":
        assert out.size == (width, height)

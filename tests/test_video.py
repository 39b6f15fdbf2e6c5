"""GIF/MP4 writing, the HTML image table, and the img2gif command (original flags)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affinegan.cli import script_main
from affinegan.errors import AffineGANError
from affinegan.generation.html import write_image_table
from affinegan.generation.video import parse_formats, read_frames, write_gif, write_mp4


def img2gif_main(argv: list[str]) -> int:
    """The original's img2gif.py, in process: one-line errors with exit status 2."""
    return script_main("img2gif.py", argv)


REPO_ROOT = Path(__file__).resolve().parents[1]


def _gradient(h: int, w: int, shift: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 2 % 256], -1)
    return np.clip(rgb + shift, 0, 255).astype(np.uint8)


def _clip(n: int, h: int, w: int) -> list[np.ndarray]:
    """n frames with runs of identical consecutive frames at the start, middle and end."""
    shifts = [0, 0, 0] + [min(i, n) * 3 for i in range(n - 5)] + [40, 40]
    shifts[len(shifts) // 2 + 1] = shifts[len(shifts) // 2]
    return [_gradient(h, w, s) for s in shifts[:n]]


@pytest.mark.parametrize("n", [7, 20])
@pytest.mark.parametrize(("h", "w"), [(64, 64), (47, 65)])
def test_gif_keeps_every_frame_and_size(tmp_path: Path, n: int, h: int, w: int) -> None:
    frames = _clip(n, h, w)
    path = write_gif(frames, tmp_path / "sub" / "clip.gif")
    back = read_frames(path)
    assert len(back) == n
    assert all(f.shape == (h, w, 3) and f.dtype == np.uint8 for f in back)
    with Image.open(path) as im:
        assert im.info["loop"] == 0
        assert im.info["duration"] == 100


@pytest.mark.parametrize("n", [7, 20])
@pytest.mark.parametrize(("h", "w"), [(64, 64), (47, 65)])
def test_mp4_keeps_every_frame_and_pads_to_even(tmp_path: Path, n: int, h: int, w: int) -> None:
    frames = _clip(n, h, w)
    back = read_frames(write_mp4(frames, tmp_path / "sub" / "clip.mp4", fps=12))
    assert len(back) == n
    # yuv420p needs even sizes: odd sides grow by exactly one edge-replicated pixel.
    assert all(f.shape == (h + h % 2, w + w % 2, 3) for f in back)
    err = np.abs(back[n // 2][:h, :w].astype(int) - frames[n // 2]).mean()
    assert err < 6


def test_gif_colours_close_on_smooth_gradient(tmp_path: Path) -> None:
    frame = _gradient(64, 64)
    back = read_frames(write_gif([frame, frame, frame], tmp_path / "g.gif"))
    assert np.abs(back[0].astype(int) - frame).mean() < 5
    assert all(np.array_equal(back[0], f) for f in back)


def test_writes_are_atomic_no_leftovers(tmp_path: Path) -> None:
    write_gif(_clip(7, 32, 32), tmp_path / "a.gif")
    write_mp4(_clip(7, 32, 32), tmp_path / "a.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]


def test_parse_formats() -> None:
    assert parse_formats("png,gif,mp4") == ("png", "gif", "mp4")
    assert parse_formats(" GIF , png,gif ") == ("gif", "png")
    with pytest.raises(AffineGANError, match="'avi'.*png, gif, mp4"):
        parse_formats("png,avi")
    with pytest.raises(AffineGANError, match="no output format"):
        parse_formats(" , ")


def test_read_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(AffineGANError, match="no such video file"):
        read_frames(tmp_path / "missing.gif")
    (tmp_path / "x.avi").write_bytes(b"")
    with pytest.raises(AffineGANError, match=r"\.avi"):
        read_frames(tmp_path / "x.avi")


def test_image_table_escapes_and_references(tmp_path: Path) -> None:
    page = write_image_table(
        tmp_path / "web" / "index.html",
        "Results <exp>",
        [
            ("clip <1> & co", [("real_A", "images/1_real_A.png"), ("gif", "gifs/1 a.gif")]),
            ("video", [("mp4", "gifs/1.mp4")]),
        ],
        refresh_s=30,
    )
    text = page.read_text(encoding="utf-8")
    assert "<h2>clip &lt;1&gt; &amp; co</h2>" in text
    assert "<title>Results &lt;exp&gt;</title>" in text
    assert '<img src="images/1_real_A.png"' in text
    assert '<img src="gifs/1%20a.gif"' in text
    assert '<video src="gifs/1.mp4" controls loop autoplay muted' in text
    assert '<meta http-equiv="refresh" content="30">' in text
    assert "http://" not in text and "https://" not in text
    no_refresh = write_image_table(tmp_path / "b.html", "t", []).read_text(encoding="utf-8")
    assert "refresh" not in no_refresh


def _fake_results(root: Path, clips: list[str], n: int) -> tuple[Path, Path]:
    dataroot, results = root / "data", root / "results"
    images = results / "exp1" / "test_latest" / "images"
    images.mkdir(parents=True)
    for clip in clips:
        (dataroot / "test" / "img" / clip).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_gradient(32, 32, i * 5)).save(images / f"{clip}_fake_B_list{i}.png")
    return dataroot, results


def test_img2gif_original_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataroot, results = _fake_results(tmp_path, ["001", "002"], 20)
    argv = ["--exp_names", "exp1", "--dataroot", str(dataroot), "--results_dir", str(results)]
    assert img2gif_main([*argv, "--epoch", "latest", "--phase", "test", "--interval", "0.05"]) == 0
    for clip in ("001", "002"):
        frames = read_frames(results / "gifs" / "exp1" / f"{clip}_latest.gif")
        assert len(frames) == 20
    assert "001_latest.gif" in capsys.readouterr().out


def test_img2gif_other_frame_count_numeric_order_and_mp4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataroot, results = _fake_results(tmp_path, ["7"], 12)
    argv = ["--exp_names", "exp1", "--dataroot", str(dataroot), "--results_dir", str(results)]
    assert img2gif_main([*argv, "--mp4", "--fps", "5", "--gpu_ids", "0"]) == 0
    assert "ignoring unrecognised arguments: --gpu_ids 0" in capsys.readouterr().err
    gif = read_frames(results / "gifs" / "exp1" / "7_latest.gif")
    assert len(gif) == 12
    # Frame 10 must follow frame 9 (numeric, not lexicographic order): brightness rises.
    means = [f.mean() for f in gif]
    assert means == sorted(means)
    assert len(read_frames(results / "gifs" / "exp1" / "7_latest.mp4")) == 12


def test_img2gif_missing_frames_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataroot, results = _fake_results(tmp_path, ["001"], 20)
    (dataroot / "test" / "img" / "002").mkdir()
    argv = ["--exp_names", "exp1", "--dataroot", str(dataroot), "--results_dir", str(results)]
    assert img2gif_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "002" in err and "generate.py" in err
    assert not (results / "gifs" / "exp1" / "001_latest.gif").exists()

    assert img2gif_main([*argv[:1], "nope", *argv[2:]]) == 2
    assert "nope" in capsys.readouterr().err

    (dataroot / "test" / "img" / "002").rmdir()
    (results / "exp1" / "test_latest" / "images" / "001_fake_B_list5.png").unlink()
    assert img2gif_main(argv) == 2
    assert "001_fake_B_list5.png: frame missing" in capsys.readouterr().err


def test_img2gif_root_shim_subprocess(tmp_path: Path) -> None:
    dataroot, results = _fake_results(tmp_path, ["001"], 20)
    argv = ["--exp_names", "exp1", "--dataroot", str(dataroot), "--results_dir", str(results)]
    proc = subprocess.run(
        [sys.executable, "img2gif.py", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(read_frames(results / "gifs" / "exp1" / "001_latest.gif")) == 20

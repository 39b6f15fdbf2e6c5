"""``prepare --trim`` on synthetic smiles whose true intensity of every frame is known (issue 13,
item 2): the kept segment starts at the most neutral frame and reaches the peak."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from affinegan.cli.command_options import PrepareOptions
from affinegan.data.prepare import find_sources, prepare_clip
from affinegan.data.synthetic import render_dataset
from affinegan.data.trim import neutral_to_peak

needs_dlib = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("dlib", "face_recognition_models")),
    reason="face tools need affinegan[face]",
)


@needs_dlib
@pytest.mark.slow
def test_trim_keeps_the_neutral_start_and_the_peak(tmp_path: Path) -> None:
    """Six smiles rising monotonically from 0 to 0.8-1 (the clips the issue reported)."""
    root = render_dataset(tmp_path / "data", clips=6, test_clips=0, size=128, min_frames=20)
    for clip in sorted((root / "train/img").iterdir()):
        intensity = json.loads((root / f"train/meta/{clip.name}.json").read_text())["intensity"]
        (source,) = find_sources([clip])
        report = prepare_clip(source, tmp_path / "out", PrepareOptions(size=64, trim=True))
        assert report.ok, report.error
        assert report.trimmed is not None, report.warnings
        first, last = report.trimmed
        assert first <= int(np.argmin(intensity)) + 2, (clip.name, report.trimmed)
        assert intensity[last] >= 0.99 * max(intensity), (clip.name, report.trimmed)


def _track(intensity: list[float], seed: int = 0) -> np.ndarray:
    """68 landmarks whose mouth widens by ``intensity[t]``, with detector-like jitter."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 100, (68, 2))
    base[36], base[45] = (20, 40), (80, 40)
    out = []
    for a in intensity:
        p = base.copy()
        p[48:68, 0] += np.sign(p[48:68, 0] - 50) * 8 * a
        out.append(p + rng.normal(0, 0.3, p.shape))
    return np.array(out)


def test_trim_finds_a_late_neutral_frame_and_a_plateau_peak() -> None:
    rise = [0.3, 0.2, 0.1, 0.0, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0]
    neutral, peak = neutral_to_peak(_track(rise))
    assert abs(neutral - 3) <= 1 and peak == 10


def test_trim_says_when_it_cannot_decide() -> None:
    halfway = [0.5, 0.5, 0.5, 0.0, 0.0, 1.0, 1.0, 0.5, 0.5]
    assert "halfway" in neutral_to_peak(_track(halfway))
    assert "barely" in neutral_to_peak(_track([0.0] * 8))

"""benchmarks/quality.py's report: the standard errors it prints beside a run's figures."""

import math

import pytest
from quality import clip_errors, row_line


def clip(strength: float, spearman: float | None, gain: float) -> dict:
    """An evaluation's per-clip record, reduced to the figures the report's errors read."""
    return {
        "oracle": {"strength_peak": strength, "region_gain_peak": gain},
        "intensity": {"spearman": spearman},
    }


def test_clip_errors_are_the_standard_errors_of_the_defined_clip_values():
    clips = [clip(0.5, 0.9, 1.0), clip(0.7, None, 3.0), clip(0.9, math.nan, 2.0)]
    got = clip_errors(clips)
    assert got["oracle_strength_peak"] == pytest.approx(0.2 / math.sqrt(3))
    assert got["oracle_region_gain_peak"] == pytest.approx(1.0 / math.sqrt(3))
    assert got["spearman"] is None  # one clip with a defined order: no spread to measure
    clips.append(clip(0.6, 0.5, 2.0))
    assert clip_errors(clips)["spearman"] == pytest.approx(0.2)  # stdev 0.2828 / sqrt(2)


def test_a_run_row_shows_each_oracle_figure_with_its_error():
    summary = {
        "oracle_psnr": 28.0,
        "copy_psnr": 27.5,
        "region_gain": 1.0,
        "oracle_region_gain": 1.1,
        "region_gain_peak": 2.0,
        "oracle_region_gain_peak": 2.5,
        "strength_peak": 0.8,
        "oracle_strength_peak": 0.7,
        "spearman": 0.9,
        "spearman_pooled": 0.8,
        "acd_i": 0.3,
        "gt_acd_i": 0.3,
        "region_fraction": 0.05,
    }
    errors = {"oracle_region_gain_peak": 0.456, "oracle_strength_peak": 0.123, "spearman": None}
    run = {"name": "smile", "steps": 10, "train_cpu_s": 60.0, "summary": summary}
    line = row_line({**run, "clip_se": errors})
    assert "| 2.00 / 2.50 ± 0.46 |" in line
    assert "| 0.800 / 0.700 ± 0.12 |" in line
    assert "| 0.900 (0.800) |" in line  # no error known: the value alone
    assert "±" not in row_line(run)  # reports saved before the errors existed still print

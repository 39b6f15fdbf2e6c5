"""benchmarks/quality.py's report: the standard errors it prints beside a run's figures."""

import math
import sys

import pytest
from tiny import REPO

sys.path.insert(0, str(REPO / "benchmarks"))  # the benchmark under test is a script, not a module
from quality import clip_errors, parse_seeds, row_line, run_name  # noqa: E402


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


def test_several_seeds_name_every_seed_but_0_as_the_docs_name_a_second_seed():
    assert parse_seeds("0,1") == [0, 1] and parse_seeds("3") == [3]
    assert [run_name("smile", "_x", s, several=True) for s in (0, 1)] == [
        "smile_x",
        "smile_x_seed1",
    ]
    assert run_name("smile", "_x_seed1", 1, several=False) == "smile_x_seed1"  # one seed: the tag
    assert run_name("anger", "", 2, several=True, size=128) == "anger_seed2_128px"
    for bad in ("0,0", "a", "-1", "0,"):
        with pytest.raises(SystemExit, match="--seed"):
            parse_seeds(bad)

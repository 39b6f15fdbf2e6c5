"""Evaluation results as people read them: terminal lines, Markdown, HTML, plots, comparisons.

Everything here reads the plain dict that ``evaluate`` stores as JSON, so a report can be
rebuilt, or two runs compared, from the files alone.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from affinegan.errors import AffineGANError
from affinegan.files import atomic_output

FORMAT = "affinegan-eval/1"  # what load_result accepts

# (summary key, label, which way is better: "higher" | "lower" | None, decimals). ACD-c and
# smoothness have no better direction: a video that never moves scores 0 on both.
SUMMARY_METRICS: tuple[tuple[str, str, str | None, int], ...] = (
    ("ssim", "SSIM (alpha schedule)", "higher", 4),
    ("psnr", "PSNR dB (alpha schedule)", "higher", 2),
    ("oracle_ssim", "SSIM (oracle alphas)", "higher", 4),
    ("oracle_psnr", "PSNR dB (oracle alphas)", "higher", 2),
    ("copy_ssim", "SSIM of the input repeated (reference)", None, 4),
    ("copy_psnr", "PSNR dB of the input repeated (reference)", None, 2),
    ("recon_ssim", "SSIM of the alpha-0 frame vs input", "higher", 4),
    ("recon_psnr", "PSNR dB of the alpha-0 frame vs input", "higher", 2),
    ("region_gain", "region gain dB vs copy-input (schedule)", "higher", 2),
    ("region_gain_peak", "region gain dB vs copy-input, peak third (schedule)", "higher", 2),
    ("oracle_region_gain", "region gain dB vs copy-input (oracle)", "higher", 2),
    ("oracle_region_gain_peak", "region gain dB vs copy-input, peak third (oracle)", "higher", 2),
    ("strength_peak", "expression strength, peak third (schedule; 1 = truth)", None, 3),
    ("oracle_strength_peak", "expression strength, peak third (oracle; 1 = truth)", None, 3),
    ("region_psnr", "region PSNR dB (schedule)", "higher", 2),
    ("region_ssim", "region SSIM (schedule)", "higher", 4),
    ("oracle_region_psnr", "region PSNR dB (oracle)", "higher", 2),
    ("oracle_region_ssim", "region SSIM (oracle)", "higher", 4),
    ("copy_region_psnr", "region PSNR dB of the input repeated (reference)", None, 2),
    ("copy_region_ssim", "region SSIM of the input repeated (reference)", None, 4),
    ("region_psnr_peak", "region PSNR dB, peak third (schedule)", "higher", 2),
    ("oracle_region_psnr_peak", "region PSNR dB, peak third (oracle)", "higher", 2),
    ("copy_region_psnr_peak", "region PSNR dB, peak third, input repeated (reference)", None, 2),
    ("region_ssim_peak", "region SSIM, peak third (schedule)", "higher", 4),
    ("oracle_region_ssim_peak", "region SSIM, peak third (oracle)", "higher", 4),
    ("copy_region_ssim_peak", "region SSIM, peak third, input repeated (reference)", None, 4),
    ("region_fraction", "expression region, share of the frame", None, 3),
    ("region_empty", "clips with an empty expression region", None, 0),
    ("acd_m", "ACD-m generated vs truth", "lower", 4),
    ("acd_i", "ACD-i generated vs input", "lower", 4),
    ("acd_c", "ACD-c among generated (compare with truth)", None, 4),
    ("oracle_acd_m", "ACD-m oracle vs truth", "lower", 4),
    ("oracle_acd_i", "ACD-i oracle vs input", "lower", 4),
    ("oracle_acd_c", "ACD-c among oracle (compare with truth)", None, 4),
    ("gt_acd_i", "ACD-i truth vs input (reference)", None, 4),
    ("gt_acd_c", "ACD-c among truth (reference)", None, 4),
    ("spearman", "Spearman inferred alpha vs true intensity (per clip)", "higher", 3),
    ("spearman_pooled", "Spearman inferred alpha vs true intensity (pooled)", "higher", 3),
    ("spearman_pixel_baseline", "Spearman pixel change vs intensity (reference)", None, 3),
    ("monotonic_fraction", "non-decreasing steps of inferred alpha", "higher", 3),
    ("kendall_tau", "Kendall tau inferred alpha vs frame index", "higher", 3),
    ("alpha_peak", "largest inferred alpha (mean over clips)", None, 3),
    ("smooth_mean", "frame-to-frame change, mean (generated)", None, 2),
    ("smooth_max", "frame-to-frame change, max (generated)", None, 2),
    ("oracle_smooth_mean", "frame-to-frame change, mean (oracle)", None, 2),
    ("oracle_smooth_max", "frame-to-frame change, max (oracle)", None, 2),
    ("gt_smooth_mean", "frame-to-frame change, mean (truth)", None, 2),
    ("gt_smooth_max", "frame-to-frame change, max (truth)", None, 2),
    ("faces_missing_input", "inputs without a detected face", "lower", 0),
    ("faces_missing_gt", "truth frames without a detected face", None, 0),
    ("faces_missing_generated", "generated frames without a detected face", "lower", 0),
    ("faces_missing_oracle", "oracle frames without a detected face", "lower", 0),
    ("face_mouth_width_ratio", "real faces: mouth width change / truth's (median)", None, 2),
    ("face_corner_lift_ratio", "real faces: corner lift change / truth's (median)", None, 2),
    ("face_mouth_opening_ratio", "real faces: mouth opening / truth's, open truths", None, 2),
    ("face_eye_opening_ratio", "real faces: eye opening change / truth's (median)", None, 2),
    ("face_brow_height_ratio", "real faces: brow height change / truth's (median)", None, 2),
    ("face_identity_peak", "real faces: identity distance peak-input (median)", "lower", 3),
    ("face_identity_truth", "real faces: identity distance truth-input (reference)", None, 3),
    ("face_sharpness", "real faces: face sharpness at alpha 1 / input's", "higher", 2),
    ("face_alpha0_error", "real faces: alpha-0 mean level error", "lower", 2),
    ("face_frames_without_face", "real faces: generated frames without a face", "lower", 0),
    ("clips", "clips", None, 0),
    ("frames", "ground-truth frames scored", None, 0),
)
CONTACT_COLUMNS = 8
CONTACT_CLIPS = 6


def _fmt(value: Any, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{decimals}f}" if decimals else f"{int(value)}"


def _rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (label, _fmt(summary[key], dec), {"higher": "↑", "lower": "↓"}.get(better or "", ""))
        for key, label, better, dec in SUMMARY_METRICS
        if key in summary
    ]


def _clip_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["clip", "frames", "SSIM", "PSNR", "oracle SSIM", "oracle PSNR", "Spearman", "monotonic"]
    head += [
        "region %",
        "region gain",
        "oracle region gain",
        "strength peak",
        "oracle strength peak",
    ]
    faces = any("input_face_found" in c for c in result["clips"])
    if faces:
        head += ["ACD-i", "truth ACD-i", "no face (gen/truth)"]
    rows = []
    for c in result["clips"]:
        s, o, i = c["schedule"], c["oracle"], c["intensity"]
        row = [
            c["clip"],
            str(c["frames"]),
            _fmt(s["ssim_mean"], 4),
            _fmt(s["psnr_mean"], 2),
            _fmt(o["ssim_mean"], 4),
            _fmt(o["psnr_mean"], 2),
            _fmt(i["spearman"], 3),
            _fmt(i["monotonic_fraction"], 3),
            _fmt(100 * c["region"]["fraction"], 1),
            _fmt(s["region_gain"], 2),
            _fmt(o["region_gain"], 2),
            _fmt(s["strength_peak"], 3),
            _fmt(o["strength_peak"], 3),
        ]
        if faces:
            row += [
                _fmt(s["acd_i"]["value"], 4),
                _fmt(c["gt"]["acd_i"]["value"], 4),
                f"{s['faces_missing']}/{c['gt']['faces_missing']}",
            ]
        rows.append(row)
    return head, rows


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _title(result: dict[str, Any]) -> str:
    run = result["run"]
    return f"Evaluation of {run['name']} ({run['epoch']}) on {run['dataroot']} [{run['phase']}]"


def terminal_summary(result: dict[str, Any]) -> str:
    """A few lines for the console: the headline figures of the run."""
    s = result["summary"]

    def g(key: str, dec: int) -> str:
        return _fmt(s.get(key), dec)

    lines = [
        _title(result),
        f"  clips {s['clips']}, truth frames {s['frames']}, size {result['run']['size']} px",
        f"  SSIM {g('ssim', 4)}  PSNR {g('psnr', 2)} dB   (oracle alphas: SSIM "
        f"{g('oracle_ssim', 4)}  PSNR {g('oracle_psnr', 2)} dB)",
        f"  intensity: Spearman {g('spearman', 3)} (pooled {g('spearman_pooled', 3)}), "
        f"monotonic {g('monotonic_fraction', 3)}, Kendall tau {g('kendall_tau', 3)}, "
        f"peak alpha {g('alpha_peak', 3)}",
    ]
    lines += [
        f"  expression region {_fmt(100 * s['region_fraction'], 1)}% of the frame "
        f"({g('region_empty', 0)} clips empty): region PSNR {g('region_psnr', 2)} dB, "
        f"copy-input {g('copy_region_psnr', 2)} dB",
        f"  region gain {g('region_gain', 2)} dB, peak third {g('region_gain_peak', 2)} dB "
        f"(oracle {g('oracle_region_gain', 2)} / {g('oracle_region_gain_peak', 2)}); "
        f"strength at the peak third {g('strength_peak', 3)} "
        f"(oracle {g('oracle_strength_peak', 3)}; truth 1)",
    ]
    if "acd_i" in s:
        lines.append(
            f"  ACD-m {g('acd_m', 3)}  ACD-i {g('acd_i', 3)} (truth {g('gt_acd_i', 3)})  "
            f"ACD-c {g('acd_c', 3)} (truth {g('gt_acd_c', 3)}); frames without a face: "
            f"generated {g('faces_missing_generated', 0)}, truth {g('faces_missing_gt', 0)}, "
            f"inputs {g('faces_missing_input', 0)}"
        )
    if "face_people" in s:
        lines.append(
            f"  real faces ({g('face_people', 0)} people, medians): mouth width "
            f"{g('face_mouth_width_ratio', 2)}, corner lift {g('face_corner_lift_ratio', 2)}, "
            f"opening {g('face_mouth_opening_ratio', 2)} of the truth's change; identity "
            f"{g('face_identity_peak', 3)} (truth {g('face_identity_truth', 3)}), sharpness "
            f"{g('face_sharpness', 2)}, alpha-0 error {g('face_alpha0_error', 2)}"
        )
    lines.append(
        f"  smoothness: mean {g('smooth_mean', 2)} max {g('smooth_max', 2)} "
        f"(truth {g('gt_smooth_mean', 2)} / {g('gt_smooth_max', 2)})"
    )
    return "\n".join(lines)


def plot_curves(result: dict[str, Any], path: Path) -> Path:
    """Per-frame SSIM, PSNR and expression strength against relative clip position, schedule
    and oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("ssim", "SSIM"), ("psnr", "PSNR (dB)"), ("strength", "expression strength"))
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.6), constrained_layout=True)
    for idx, c in enumerate(result["clips"]):
        pos = np.arange(1, c["frames"]) / (c["frames"] - 1)
        color = f"C{idx % 10}"
        for ax, (key, _) in zip(axes, panels, strict=True):
            values = [math.nan if v is None else v for v in c["schedule"][key]]
            oracle = [math.nan if v is None else v for v in c["oracle"][key]]
            ax.plot(pos, values, color=color, label=c["clip"])
            ax.plot(pos, oracle, color=color, ls="--", alpha=0.7)
    for ax, (_, name) in zip(axes, panels, strict=True):
        ax.set_xlabel("relative position in clip (solid: schedule, dashed: oracle alphas)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[2].axhline(1.0, color="k", ls=":", lw=1)
    axes[2].axvspan(2 / 3, 1, color="0.9", zorder=0)  # the peak third
    if len(result["clips"]) <= 10:
        axes[1].legend(fontsize=7)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def plot_alphas(result: dict[str, Any], path: Path) -> Path:
    """Inferred alpha against true intensity (synthetic data) or against clip position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_truth = any(c["true_intensity"] for c in result["clips"])
    fig, ax = plt.subplots(figsize=(5, 4), constrained_layout=True)
    for idx, c in enumerate(result["clips"]):
        n = c["frames"]
        x = c["true_intensity"] if has_truth and c["true_intensity"] else np.arange(n) / (n - 1)
        ax.plot(x, c["alpha_inferred"], "o-", ms=3, color=f"C{idx % 10}", label=c["clip"])
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="alpha schedule")
    ax.set_xlabel("true intensity" if has_truth else "relative position in clip")
    ax.set_ylabel("inferred alpha (model encoder)")
    ax.grid(alpha=0.3)
    if len(result["clips"]) <= 10:
        ax.legend(fontsize=7)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def contact_sheet(videos: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """Rows of truth / schedule / oracle frames per clip at evenly spaced clip positions."""
    label_w, gap = 70, 4
    rows: list[tuple[str, list[np.ndarray]]] = []
    for clip, v in list(videos.items())[:CONTACT_CLIPS]:
        n = len(v["truth"])
        pick = np.unique(np.linspace(0, n - 1, min(n, CONTACT_COLUMNS)).round().astype(int))
        for key in ("truth", "schedule", "oracle"):
            rows.append((f"{clip}\n{key}", [v[key][i] for i in pick]))
    size = rows[0][1][0].shape[0]
    cols = max(len(frames) for _, frames in rows)
    sheet = Image.new(
        "RGB", (label_w + cols * (size + gap), len(rows) * (size + gap)), (255, 255, 255)
    )
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        y = r * (size + gap)
        draw.multiline_text((2, y + 2), label, fill=(0, 0, 0))
        for c, frame in enumerate(frames):
            sheet.paste(Image.fromarray(frame), (label_w + c * (size + gap), y))
    with atomic_output(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def write_reports(
    result: dict[str, Any], json_path: Path, videos: dict[str, dict[str, np.ndarray]]
) -> dict[str, Path]:
    """Write the JSON, the plots, and Markdown/HTML pages beside it; returns their paths."""
    json_path = Path(json_path)
    stem = json_path.with_suffix("")
    paths = {
        "json": json_path,
        "curves": Path(f"{stem}_curves.png"),
        "alphas": Path(f"{stem}_alphas.png"),
        "contact": Path(f"{stem}_contact.png"),
        "markdown": json_path.with_suffix(".md"),
        "html": json_path.with_suffix(".html"),
    }
    with atomic_output(json_path) as tmp:
        tmp.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    plot_curves(result, paths["curves"])
    plot_alphas(result, paths["alphas"])
    contact_sheet(videos, paths["contact"])
    images = [(k, paths[k].name) for k in ("curves", "alphas", "contact")]
    head, rows = _clip_table(result)
    md = [
        f"# {_title(result)}",
        "",
        _md_table(["metric", "value", "better"], _rows(result["summary"])),
        "",
        "## Per clip",
        "",
        _md_table(head, rows),
        "",
        "## Protocol",
        "",
        result["protocol"],
        "",
        *[f"![{k}]({name})" for k, name in images],
        "",
    ]
    with atomic_output(paths["markdown"]) as tmp:
        tmp.write_text("\n".join(md), encoding="utf-8")
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}pre{white-space:pre-wrap}"
    )
    html = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(_title(result))}</title><style>{style}</style></head><body>",
        f"<h1>{escape(_title(result))}</h1>",
        _html_table(["metric", "value", "better"], _rows(result["summary"])),
        "<h2>Per clip</h2>",
        _html_table(head, rows),
        *[f'<p><img src="{escape(name)}" alt="{k}"></p>' for k, name in images],
        f"<h2>Protocol</h2><pre>{escape(result['protocol'])}</pre>",
        "</body></html>",
        "",
    ]
    with atomic_output(paths["html"]) as tmp:
        tmp.write_text("\n".join(html), encoding="utf-8")
    return paths


def compare_table(a: dict[str, Any], b: dict[str, Any], name_a: str, name_b: str) -> str:
    """Markdown table of two evaluations' summaries with B - A and which run is better."""
    sa, sb = a["summary"], b["summary"]
    rows = []
    for key, label, better, dec in SUMMARY_METRICS:
        if key not in sa and key not in sb:
            continue
        va, vb = sa.get(key), sb.get(key)
        delta, verdict = "n/a", ""
        if va is not None and vb is not None:
            d = round(vb - va, dec) + 0.0  # + 0.0 turns -0.0 into 0.0
            delta = f"{d:+.{dec}f}" if dec else f"{int(d):+d}"
            if better and d != 0:
                verdict = "B" if (d > 0) == (better == "higher") else "A"
        rows.append([label, _fmt(va, dec), _fmt(vb, dec), delta, verdict])
    head = ["metric", f"A: {name_a}", f"B: {name_b}", "B - A", "better"]
    notes = []
    for tag, r in (("A", a["run"]), ("B", b["run"])):
        notes.append(f"{tag}: {r['name']} ({r['epoch']}) on {r['dataroot']} [{r['phase']}]")
    if (a["run"]["dataroot"], a["run"]["phase"]) != (b["run"]["dataroot"], b["run"]["phase"]):
        notes.append("note: the runs were evaluated on different clips")
    return "\n".join([*notes, "", _md_table(head, rows)])


def load_result(path: Path) -> dict[str, Any]:
    """An evaluation JSON written by ``affinegan evaluate``, or a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise AffineGANError(
            f"{path}: no such evaluation file; write it with affinegan evaluate --out"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AffineGANError(
            f"{path}: not valid JSON ({err}); give a file from affinegan evaluate"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "summary" not in data:
        raise AffineGANError(
            f"{path}: not an affinegan evaluation ({FORMAT}); give a file from affinegan evaluate"
        )
    return data

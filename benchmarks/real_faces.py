"""Real faces: the expressive preset against the paper's method on the shared example clips.

    nice -n 10 python benchmarks/real_faces.py --out bench_real --categories happy,closeeye \\
      --steps happy_expressive=2800,happy_paper=3270,closeeye_expressive=3200,closeeye_paper=3840 \\
      --sheet docs/real-faces.png     # docs/results.md, "Real faces"

For each category it trains (or reuses, or resumes to more steps) two runs at 128 px
(``unet_128``, ``ngf = ndf = 16``, ``loadSize 144``, one torch thread, seed 0): ``<cat>_expressive``
(``--preset expressive``) and ``<cat>_paper`` (no preset: the paper's method), each with
``affinegan train`` in a child process whose CPU time is added up in ``<run>/train_cpu.json``
(its output goes to ``<run>/train_log.txt``). Categories without mouth masks train with
``--no_patch``. Then
``affinegan generate`` animates every held-out example face (the first frame of
``<category>/test/img/<clip>/`` of every category, not only the trained one) at 20 frames,
alpha 0 -> 1, and the script prints, per face and run, the no-reference figures of
``benchmarks/identity.py`` (ACD-i, ACD-c, faces not found, frame-to-frame change, peak change,
alpha-0 error)
and the same figures of the real training clips for scale, writes them to
``<out>/real_faces.md`` and composes a contact sheet: a row per face, the input, then per
category the middle (alpha 0.5) and last (alpha 1) frame of the preset and of the paper's method.
The example images stay where they are; only the sheet of generated frames is meant for docs/.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity import no_reference  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "examples"
SIZE = 128
FRAMES = 20
METHODS = ("expressive", "paper")
# A constant rate for both methods (the explicit --niter replaces the preset's decay): the runs
# grow by resuming to more steps, which a budget-sized decay would restart, and docs/results.md's
# real-face figures were measured so.
TRAIN_FLAGS = [
    "--netG", "unet_128", "--ngf", "16", "--ndf", "16", "--loadSize", "144", "--fineSize", "128",
    "--niter", "1000000", "--niter_decay", "0", "--num_threads", "0", "--torch_threads", "1",
    "--print_freq", "100", "--display_freq", "1000000000", "--save_latest_freq", "500",
    "--save_epoch_freq", "1000000000", "--no_html", "--seed", "0", "--gpu_ids", "-1",
]  # fmt: skip


def affinegan(*args: str) -> list[str]:
    return [sys.executable, "-m", "affinegan", *args]


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def train_or_reuse(examples: Path, ck: Path, category: str, method: str, steps: int) -> dict:
    """Train ``<category>_<method>`` to ``steps`` steps (resuming a shorter run); its CPU record."""
    name = f"{category}_{method}"
    record_path = ck / name / "train_cpu.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record and record["steps"] >= steps:
        print(f"{name}: reusing {record['steps']} steps ({record['cpu_s'] / 60:.1f} CPU min)")
        return record
    data = examples / category
    argv = ["train", "--dataroot", str(data), "--name", name, "--checkpoints_dir", str(ck)]
    argv += TRAIN_FLAGS + ["--max_steps", str(steps)]
    if not (data / "train" / "patch").is_dir():
        argv.append("--no_patch")
    if method != "paper":
        argv += ["--preset", method]
    if record:
        argv.append("--continue_train")
    print(f"{name}: affinegan {' '.join(argv)}", flush=True)
    (ck / name).mkdir(parents=True, exist_ok=True)
    c0 = children_cpu_s()
    with open(ck / name / "train_log.txt", "a", encoding="utf-8") as log:
        subprocess.run(affinegan(*argv), check=True, stdout=log, stderr=subprocess.STDOUT)
    cpu = children_cpu_s() - c0
    record = {
        "steps": steps,
        "cpu_s": cpu + (record["cpu_s"] if record else 0.0),
        "commands": (record["commands"] if record else []) + [" ".join(argv)],
    }
    record_path.write_text(json.dumps(record, indent=1))
    return record


def held_out_faces(examples: Path, out: Path) -> list[Path]:
    """Links ``<out>/faces/<category>_<clip>.<ext>`` to every test clip's first frame."""
    faces = out / "faces"
    faces.mkdir(parents=True, exist_ok=True)
    links = []
    for test in sorted(examples.glob("*/test/img")):
        for clip in sorted(p for p in test.iterdir() if p.is_dir()):
            first = sorted(clip.iterdir())[0]
            link = faces / f"{test.parents[1].name}_{clip.name}{first.suffix}"
            if not link.exists():
                link.symlink_to(first.resolve())
            links.append(link)
    return links


def generate(ck: Path, results: Path, name: str, faces: list[Path]) -> Path:
    argv = ["generate", "--name", name, "--checkpoints_dir", str(ck), "--results_dir"]
    argv += [str(results), "--num_frames", str(FRAMES), "--gpu_ids", "-1", "--torch_threads", "1"]
    subprocess.run(
        affinegan(*argv, "--input", *map(str, faces)), check=True, stdout=subprocess.DEVNULL
    )
    return results / name / "test_latest" / "images"


def read_video(images: Path, face: str) -> tuple[np.ndarray, np.ndarray]:
    """The input (H,W,3) and the frames (N,H,W,3) ``affinegan generate`` wrote for ``face``."""
    load = lambda p: np.asarray(Image.open(p).convert("RGB"))  # noqa: E731
    frames = [load(images / f"{face}_fake_B_list{i}.png") for i in range(FRAMES)]
    return load(images / f"{face}_input_A.png"), np.stack(frames)


def training_clip_figures(examples: Path, category: str) -> list[dict[str, Any]]:
    """The same figures of the real training clips, resized as generation resizes a face."""
    rows = []
    for clip in sorted((examples / category / "train" / "img").iterdir()):
        frames = [
            np.asarray(Image.open(f).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC))
            for f in sorted(clip.iterdir())
        ]
        rows.append(
            {"face": f"{category} train {clip.name}", **no_reference(np.stack(frames), frames[0])}
        )
    return rows


def fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def mean_row(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r[key] is not None and not np.isnan(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def markdown(records: dict[str, dict], figures: dict[str, list[dict]], own: dict[str, set]) -> str:
    keys = ("acd_i", "acd_c", "change_mean", "change_max", "peak_change", "alpha0_error")
    head = "| ACD-i | ACD-c | no face / frames | change mean / max | peak change | alpha-0 error |"
    lines = ["## Per run (mean over faces)", ""]
    lines += ["| run | steps | train CPU min | faces " + head, "|---" * 11 + "|"]
    for name, rows in figures.items():
        cat = name.rsplit("_", 1)[0]
        groups = [("own test", [r for r in rows if r["face"] in own[cat]])]
        groups.append(("other categories'", [r for r in rows if r["face"] not in own[cat]]))
        if name.endswith("_train"):
            groups = [("training clips (real)", rows)]
        for label, group in groups:
            m = {k: mean_row(group, k) for k in keys}
            nf = sum(r["no_face"] for r in group), sum(r["frames"] for r in group)
            rec = records.get(name)
            steps = rec["steps"] if rec else ""
            cpu = f"{rec['cpu_s'] / 60:.1f}" if rec else ""
            lines.append(
                f"| {name} | {steps} | {cpu} | {label} ({len(group)}) | {fmt(m['acd_i'])} "
                f"| {fmt(m['acd_c'])} | {nf[0]} / {nf[1]} | {fmt(m['change_mean'], 2)} / "
                f"{fmt(m['change_max'], 2)} | {fmt(m['peak_change'], 2)} "
                f"| {fmt(m['alpha0_error'], 2)} |"
            )
    lines += ["", "## Per face", "", "| run | face " + head, "|---" * 8 + "|"]
    for name, rows in figures.items():
        for r in rows:
            lines.append(
                f"| {name} | {r['face']} | {fmt(r['acd_i'])} | {fmt(r['acd_c'])} "
                f"| {r['no_face']} / {r['frames']} | {fmt(r['change_mean'], 2)} / "
                f"{fmt(r['change_max'], 2)} | {fmt(r['peak_change'], 2)} "
                f"| {fmt(r['alpha0_error'], 2)} |"
            )
    return "\n".join(lines) + "\n"


def contact_sheet(
    videos: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
    faces: list[str],
    figures: dict[str, list[dict]],
    path: Path,
) -> None:
    """Rows = faces; columns = input, then per run its middle and last frame."""
    runs = list(videos)
    cell, label_w, head_h, cap_h = SIZE, 118, 34, 13
    font = ImageFont.load_default(size=11)
    width = label_w + cell * (1 + 2 * len(runs))
    sheet = Image.new("RGB", (width, head_h + len(faces) * (cell + cap_h)), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((label_w + 4, 4), "input", fill="black", font=font)
    for j, run in enumerate(runs):
        x = label_w + cell * (1 + 2 * j)
        draw.text((x + 4, 4), run, fill="black", font=font)
        draw.text((x + 4, 18), "alpha 0.5          alpha 1", fill="black", font=font)
        draw.line([(x, 0), (x, sheet.height)], fill="grey")
    for i, face in enumerate(faces):
        y = head_h + i * (cell + cap_h)
        draw.text((4, y + cell // 2 - 6), face.replace("_vid", "\nvid"), fill="black", font=font)
        sheet.paste(Image.fromarray(videos[runs[0]][face][0]), (label_w, y))
        for j, run in enumerate(runs):
            _, frames = videos[run][face]
            x = label_w + cell * (1 + 2 * j)
            sheet.paste(Image.fromarray(frames[FRAMES // 2]), (x, y))
            sheet.paste(Image.fromarray(frames[-1]), (x + cell, y))
            r = next(r for r in figures[run] if r["face"] == face)
            cap = f"ACD-i {fmt(r['acd_i'], 2)}   change 0 -> 1: {fmt(r['peak_change'], 1)}"
            draw.text((x + 4, y + cell), cap, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    if path.stat().st_size > 1_000_000:  # photos compress badly: 256 adaptive colours
        sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    w, h = sheet.size
    print(f"contact sheet {path} ({path.stat().st_size / 1e6:.2f} MB, {w}x{h})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=Path, default=EXAMPLES, help="the shared example clips")
    ap.add_argument("--out", type=Path, default=Path("bench_real"))
    ap.add_argument("--categories", default="happy,closeeye", help="categories to train")
    ap.add_argument("--default_steps", type=int, default=2800, help="steps of a run")
    ap.add_argument(
        "--steps", default="", help="per run, e.g. happy_paper=3100,closeeye_paper=3000"
    )
    ap.add_argument("--sheet", type=Path, default=None, help="contact sheet PNG (default <out>/)")
    a = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "src"))
    steps = {k: int(v) for k, v in (kv.split("=") for kv in a.steps.split(",") if kv)}
    ck, results = a.out / "checkpoints", a.out / "results"
    categories = [c for c in a.categories.split(",") if c]
    records = {}
    for cat in categories:
        for method in METHODS:
            name = f"{cat}_{method}"
            records[name] = train_or_reuse(
                a.examples, ck, cat, method, steps.get(name, a.default_steps)
            )
    links = held_out_faces(a.examples, a.out)
    faces = [p.stem for p in links]
    own = {cat: {f for f in faces if f.startswith(f"{cat}_")} for cat in categories}
    videos, figures = {}, {}
    for name in records:
        images = generate(ck, results, name, links)
        videos[name] = {f: read_video(images, f) for f in faces}
        figures[name] = [{"face": f, **no_reference(v[1], v[0])} for f, v in videos[name].items()]
    for cat in categories:
        figures[f"{cat}_train"] = training_clip_figures(a.examples, cat)
    table = markdown(records, figures, own)
    (a.out / "real_faces.md").write_text(table)
    (a.out / "real_faces.json").write_text(
        json.dumps({"records": records, "figures": figures}, indent=1)
    )
    print(table)
    contact_sheet(videos, faces, figures, a.sheet or a.out / "real_faces.png")


if __name__ == "__main__":
    main()

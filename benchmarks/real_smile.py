"""The shipped smile model: trained on real people, measured on people it never saw.

    nice -n 10 python benchmarks/real_smile.py --out bench_smile --seeds 0,1 \\
      --sheet docs/real-smile.png --readme_sheet docs/smile.png \\
      --ship src/affinegan/models/smile   # docs/results.md, the README's first picture

The London set (``../shared/data/london-smile``: 68 people, a neutral and a smiling photo
each) is split once, by person, with a fixed seed: 52 train, 16 held out (``split``). Both
parts are cut by ``affinegan prepare`` at 128 px (every smile moved onto its neutral photo's
head position; mouth masks for training). Per seed, ``affinegan train`` runs the recipe
(``RECIPE``: the expressive preset, the keep loss, each peak's alpha pulled to 1, one target
per step since a pair has one) in a child process whose CPU time is recorded in
``<run>/train_cpu.json``; the run is packed as a shipped model would be (half-precision
safetensors) and everything below uses the packed model:

1. ``affinegan generate`` animates each held-out person's neutral crop at 16 frames, and
   ``affinegan evaluate`` scores them against the person's real (stabilised) smile: the
   landmark geometry ratios, identity, sharpness, faces found, alpha-0 error and region gain
   (docs in ``evaluate.py``), medians over people;
2. through the Python API, each held-out neutral photo is animated in place at its full
   512 px (paste-back), what a user gets, and scored the same way against the real smile
   moved onto the photo's head: geometry, identity, the face's sharpness at alpha 1 over the
   photo's (variance of the Laplacian at 256 px), the alpha-0 frame's difference;
3. photos unlike the training set (the shared example clips' first frames: other people,
   light, cameras) give the model's own alpha-0 error on its crop.

It prints a table per seed and the mean and standard error over seeds, writes it to
``<out>/real_smile.md`` and composes a contact sheet of seed 0's model (the one shipped): a
row per held-out person, their photo, alpha 0.5, alpha 1, their real smile. With ``--ship``
seed 0's packed model is copied there (its model card is written by hand).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_faces import affinegan, children_cpu_s  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLIT_SEED, HELD_OUT = 2026, 16
FRAMES = 16
RECIPE = [
    "--preset", "expressive", "--lambda_keep", "30", "--lambda_position", "100",
    "--train_imagenum", "1",
    "--netG", "unet_128", "--ngf", "16", "--ndf", "16", "--loadSize", "144", "--fineSize", "128",
    "--num_threads", "0", "--torch_threads", "1", "--gpu_ids", "-1",
    "--display_freq", "2000", "--print_freq", "500",
]  # fmt: skip
# Figures of the evaluation summary shown per seed (key, label, decimals).
FIGURES = [
    ("face_mouth_width_ratio", "mouth width / real", 2),
    ("face_corner_lift_ratio", "corner lift / real", 2),
    ("face_mouth_opening_ratio", "mouth opening / real (open smiles)", 2),
    ("face_identity_peak", "identity peak-input", 3),
    ("face_identity_truth", "identity, the real smile's own", 3),
    ("face_sharpness", "sharpness at alpha 1 / input (crop)", 2),
    ("face_frames_without_face", "generated frames without a face", 0),
    ("region_gain_peak", "region gain at the peak, dB", 2),
    ("face_alpha0_error", "alpha-0 error, crop (levels)", 2),
    ("paste_mouth_width_ratio", "pasted back, 512 px: mouth width / real", 2),
    ("paste_corner_lift_ratio", "pasted back: corner lift / real", 2),
    ("paste_mouth_opening_ratio", "pasted back: mouth opening / real (open smiles)", 2),
    ("paste_identity_peak", "pasted back: identity peak-input", 3),
    ("paste_identity_truth", "pasted back: identity, the real smile's own", 3),
    ("paste_sharpness", "pasted back: sharpness at alpha 1 / photo", 2),
    ("paste_alpha0_error", "pasted back: alpha-0 error (levels)", 2),
    ("unlike_alpha0_error", "alpha-0 error, photos unlike training", 2),
]


def split(people: list[str]) -> tuple[list[str], list[str]]:
    """(train, held out): a fixed, person-disjoint split of the set's ids."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(people))
    held = sorted(people[i] for i in order[:HELD_OUT])
    return sorted(set(people) - set(held)), held


def prepare(london: Path, data: Path, train: list[str], held: list[str]) -> None:
    for part, ids, extra in (("train", train, ["--masks"]), ("test", held, [])):
        if (data / part / "img").is_dir():
            continue
        argv = ["prepare", *(str(london / i) for i in ids), "--out", str(data), "--split", part]
        subprocess.run(affinegan(*argv, "--size", "128", *extra), check=True)


def train(data: Path, ck: Path, seed: int, steps: int) -> dict[str, Any]:
    """Train ``smile_s<seed>`` to ``steps`` (resuming a shorter run); its CPU record."""
    name = f"smile_s{seed}"
    record_path = ck / name / "train_cpu.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else None
    if record and record["steps"] >= steps:
        return record
    argv = ["train", "--dataroot", str(data), "--name", name, "--checkpoints_dir", str(ck)]
    argv += [*RECIPE, "--seed", str(seed), "--max_steps", str(steps)]
    argv += ["--continue_train"] if (ck / name / "latest_net_G.pth").is_file() else []
    print(f"{name}: affinegan {' '.join(argv)}", flush=True)
    (ck / name).mkdir(parents=True, exist_ok=True)
    c0 = children_cpu_s()
    with open(ck / name / "train_log.txt", "a", encoding="utf-8") as log:
        subprocess.run(affinegan(*argv), check=True, stdout=log, stderr=subprocess.STDOUT)
    spent = children_cpu_s() - c0 + (record["cpu_s"] if record else 0.0)
    record = {"steps": steps, "cpu_s": spent, "command": " ".join(argv)}
    record_path.write_text(json.dumps(record, indent=1))
    return record


def crop_figures(data: Path, packed: Path, results: Path, name: str) -> dict[str, Any]:
    """Step 1: generate the held-out crops, then ``affinegan evaluate`` them."""
    common = ["--name", name, "--checkpoints_dir", str(packed), "--results_dir", str(results)]
    common += ["--dataroot", str(data), "--gpu_ids", "-1"]
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run(affinegan("generate", *common, "--num_frames", str(FRAMES)), **quiet)
    out = results / f"eval_{name}.json"
    subprocess.run(affinegan("evaluate", *common, "--out", str(out)), **quiet)
    return json.loads(out.read_text())["summary"]


def pasted_figures(model: Any, london: Path, held: list[str]) -> tuple[dict[str, float], dict]:
    """Step 2: the held-out photos animated in place, at 512 px, scored as in step 1 against
    the real smile moved onto the photo's head; the figures and the frames per person."""
    from affinegan.data.align import Stabiliser, locate_face
    from affinegan.evaluation.face_geometry import real_face_figures
    from affinegan.evaluation.face_geometry import summarize as medians

    records, errors, frames = [], [], {}
    for person in held:
        photo = np.asarray(Image.open(london / person / "0001.jpg").convert("RGB"))
        smile = np.asarray(Image.open(london / person / "0002.jpg").convert("RGB"))
        steady = Stabiliser.between(locate_face(smile).points, locate_face(photo).points)
        video = [np.asarray(f) for f in model.animate(photo, alphas=[0.0, 0.5, 1.0])]
        frames[person] = (photo, video, steady.image(smile))
        errors.append(float(np.abs(video[0].astype(float) - photo).mean()))
        records.append(real_face_figures(photo, frames[person][2], [video[0], video[2]]))
    faces = medians(records)
    return {
        "paste_alpha0_error": float(np.mean(errors)),
        "paste_sharpness": faces["sharpness"],
        "paste_mouth_width_ratio": faces["mouth_width_ratio"],
        "paste_corner_lift_ratio": faces["corner_lift_ratio"],
        "paste_mouth_opening_ratio": faces["mouth_opening_ratio"],
        "paste_identity_peak": faces["identity_peak"],
        "paste_identity_truth": faces["identity_truth"],
    }, frames


def unlike_figures(model: Any, examples: Path) -> dict[str, float]:
    """Step 3: the model's alpha-0 error on the crops of photos unlike its training set."""
    from affinegan.errors import AffineGANError
    from affinegan.generation.pasteback import place

    errors = []
    for first in sorted(examples.glob("*/*/img/*/0001.*")):
        rgb = np.asarray(Image.open(first).convert("RGB"))
        try:
            inp = place(rgb, model.size).crop
        except AffineGANError:  # no face found: nothing to animate
            continue
        out = np.asarray(model.animate(rgb, alphas=[0.0], paste_back=False)[0])
        errors.append(float(np.abs(out.astype(float) - inp).mean()))
    return {"unlike_alpha0_error": float(np.mean(errors)), "unlike_photos": len(errors)}


def fmt(v: Any, d: int) -> str:
    return "n/a" if v is None else f"{v:.{d}f}"


def table(rows: dict[str, dict[str, Any]], records: dict[str, dict]) -> str:
    """Per seed, then the mean ± standard error over seeds."""
    names = list(rows)
    lines = ["| figure | " + " | ".join(names) + " | mean ± SE |", "|---" * (len(names) + 2) + "|"]
    for key, label, d in FIGURES:
        values = [rows[n].get(key) for n in names]
        kept = [v for v in values if v is not None]
        se = statistics.stdev(kept) / len(kept) ** 0.5 if len(kept) > 1 else None
        mean = f"{fmt(statistics.mean(kept), d)} ± {fmt(se, d)}" if kept else "n/a"
        lines.append(f"| {label} | " + " | ".join(fmt(v, d) for v in values) + f" | {mean} |")
    budget = [f"{records[n]['steps']} / {records[n]['cpu_s'] / 60:.0f}" for n in names]
    lines.append("| steps / CPU min | " + " | ".join(budget) + " | |")
    return "\n".join(lines) + "\n"


def contact_sheet(frames: dict, path: Path, cell: int = 160) -> None:
    """Rows = held-out people: photo, alpha 0.5, alpha 1 (pasted back), the real smile moved
    onto the photo's head, each cut to the face square the model saw."""
    from affinegan.data.align import crop, face_crop_box, locate_face

    font = ImageFont.load_default(size=12)
    head = 18
    sheet = Image.new("RGB", (4 * cell, head + len(frames) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for j, title in enumerate(("photo", "alpha 0.5", "alpha 1", "real smile")):
        draw.text((j * cell + 4, 3), title, fill="black", font=font)
    for i, (photo, video, steady) in enumerate(frames.values()):
        box = face_crop_box([locate_face(photo).box])
        for j, img in enumerate((photo, video[1], video[2], steady)):
            sheet.paste(Image.fromarray(crop(img, box, cell)), (j * cell, head + i * cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    if path.stat().st_size > 1_500_000:  # photos compress badly: 256 adaptive colours
        sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    print(f"contact sheet {path} ({path.stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--london", type=Path, default=SHARED / "london-smile")
    ap.add_argument("--examples", type=Path, default=SHARED / "examples")
    ap.add_argument("--out", type=Path, default=Path("bench_smile"))
    ap.add_argument("--checkpoints", type=Path, default=None, help="default <out>/checkpoints")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--sheet", type=Path, default=None, help="default <out>/real_smile.png")
    ap.add_argument("--ship", type=Path, default=None, help="copy seed 0's packed model here")
    ap.add_argument("--readme_sheet", type=Path, default=None, help="the first 4 rows alone")
    a = ap.parse_args()
    import affinegan
    from affinegan.shipped import pack

    if not a.london.is_dir():
        raise SystemExit(f"{a.london}: the London set is not there; see its SOURCE.md")
    people = sorted(p.name for p in a.london.iterdir() if (p / "0002.jpg").is_file())
    train_ids, held = split(people)
    data, ck = a.out / "data", a.checkpoints or a.out / "checkpoints"
    prepare(a.london, data, train_ids, held)
    rows, records, sheet_frames = {}, {}, None
    for seed in (int(s) for s in a.seeds.split(",")):
        name = f"smile_s{seed}"
        records[name] = train(data, ck, seed, a.steps)
        pack(ck / name, a.out / "packed" / name)
        model = affinegan.load(a.out / "packed" / name)
        rows[name] = crop_figures(data, a.out / "packed", a.out / "results", name)
        pasted, frames = pasted_figures(model, a.london, held)
        rows[name].update(pasted | unlike_figures(model, a.examples))
        sheet_frames = sheet_frames or frames
    text = table(rows, records)
    (a.out / "real_smile.md").write_text(text)
    (a.out / "real_smile.json").write_text(json.dumps({"rows": rows, "records": records}, indent=1))
    print(text)
    contact_sheet(sheet_frames, a.sheet or a.out / "real_smile.png")
    if a.readme_sheet:
        contact_sheet(dict(list(sheet_frames.items())[:4]), a.readme_sheet, cell=192)
    if a.ship:
        shutil.copytree(a.out / "packed" / "smile_s0", a.ship, dirs_exist_ok=True)
        print(f"shipped seed 0's model in {a.ship}")


if __name__ == "__main__":
    main()

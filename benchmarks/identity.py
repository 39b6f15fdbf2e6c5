"""No-reference figures of a trained model on single photos: identity kept, consistency, smoothness.

    python benchmarks/identity.py checkpoints/happy64 photo.png [more photos] --frames 20

For photos without ground-truth frames (e.g. the ``test`` split of the shared examples), where
``affinegan evaluate`` has nothing to compare against: each photo is animated at
``alpha = linspace(0, 1, frames)`` and the script prints ACD-i (each generated frame after the
first vs the input, dlib embeddings), ACD-c (all pairs of generated frames), how many frames had
no detected face, and the frame-to-frame change (mean / max, grey levels). Dropout is off
(as ``affinegan generate`` by default and ``generate.py --eval``). ``no_reference`` computes
the figures (and the peak change) for ``benchmarks/real_faces.py`` too.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from affinegan.data.images import load_input_image, tensor_to_uint8
from affinegan.evaluation.evaluate import face_embedding
from affinegan.evaluation.metrics import acd_c, acd_i, smoothness
from affinegan.generation.generate import animate, load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder with latest_net_G.pth")
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--frames", type=int, default=20)
    a = ap.parse_args()
    if a.frames < 2:
        ap.error("--frames must be at least 2")
    model = load_generator(a.run)
    model.G.eval()
    alphas = [i / (a.frames - 1) for i in range(a.frames)]
    print("| photo | ACD-i | ACD-c | no face / frames | change mean / max |")
    print("|---|---|---|---|---|")
    for photo in a.photos:
        x = load_input_image(photo, model.size)
        with torch.inference_mode():
            frames = animate(model.G, x, alphas)
        f = no_reference(frames, tensor_to_uint8(x))
        acd_i_text = "no input face" if f["acd_i"] is None else f"{f['acd_i']:.3f}"
        print(
            f"| {photo.name} | {acd_i_text} | {f['acd_c']:.3f} | {f['no_face']} / {f['frames']} "
            f"| {f['change_mean']:.2f} / {f['change_max']:.2f} |"
        )


def no_reference(frames: np.ndarray, face: np.ndarray) -> dict[str, Any]:
    """The figures of a video (N,H,W,3 uint8) of the input ``face`` (H,W,3 uint8) that need no
    ground truth: ACD-i of frames 1..N-1 against the input (None without an input face), ACD-c
    over them, how many had no face, the frame-to-frame change (mean / max grey levels), the
    peak change (mean |last frame - first frame|: how far the video moves from alpha 0 to the
    peak) and the alpha-0 error (mean |first frame - input|: how well alpha 0 redraws the face),
    in grey levels."""
    emb = [face_embedding(f) for f in frames[1:]]
    found = [e for e in emb if e is not None]
    e_in = face_embedding(face)
    s = smoothness(frames)
    return {
        "acd_i": None if e_in is None else acd_i(found, e_in).value,
        "acd_c": acd_c(found).value,
        "no_face": len(emb) - len(found),
        "frames": len(emb),
        "change_mean": s.mean,
        "change_max": s.max,
        "peak_change": float(np.abs(frames[-1].astype(float) - frames[0]).mean()),
        "alpha0_error": float(np.abs(frames[0].astype(float) - face).mean()),
    }


if __name__ == "__main__":
    main()

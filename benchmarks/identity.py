"""No-reference figures of a trained model on single photos: identity kept, consistency, smoothness.

    python benchmarks/identity.py checkpoints/happy64 photo.png [more photos] --frames 20

For photos without ground-truth frames (e.g. the ``test`` split of the shared examples), where
``affinegan evaluate`` has nothing to compare against: each photo is animated at
``alpha = linspace(0, 1, frames)`` and the script prints ACD-i (each generated frame after the
first vs the input, dlib embeddings), ACD-c (all pairs of generated frames), how many frames had
no detected face, and the frame-to-frame change (mean / max, grey levels). Dropout is off
(as ``affinegan generate`` by default and ``generate.py --eval``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from affinegan.data.images import load_input_image, tensor_to_uint8
from affinegan.evaluate import face_embedding
from affinegan.generate import animate, load_generator
from affinegan.metrics import acd_c, acd_i, smoothness


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
        emb = [face_embedding(f) for f in frames[1:]]
        found = [e for e in emb if e is not None]
        e_in = face_embedding(tensor_to_uint8(x))
        di = acd_i(found, e_in) if e_in is not None else None
        s = smoothness(frames)
        print(
            f"| {photo.name} | {'no input face' if di is None else f'{di.value:.3f}'} "
            f"| {acd_c(found).value:.3f} | {len(emb) - len(found)} / {len(emb)} "
            f"| {s.mean:.2f} / {s.max:.2f} |"
        )


if __name__ == "__main__":
    main()

"""How fast a 12-megapixel photo becomes a 16-frame MP4 with the shipped model, pasted back.

    python benchmarks/pasteback_speed.py --repeat 3      # docs/performance.md, "Paste-back"

The photo is a held-out London neutral photo (or, without the shared data, the shipped
example photo) enlarged to 4000 x 3000, saved as a JPEG. Two figures, the median of
``--repeat`` tries each:

- model loaded: ``affinegan.load("smile")`` once, then ``animate`` (find the face, crop,
  encode once, decode 16 alphas, paste each back) and ``save`` to MP4;
- whole process: ``affinegan generate --model smile --input photo.jpg --num_frames 16
  --format mp4`` as a user types it, start to exit (imports and model loading included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "london-smile" / "006"
SIZE = (4000, 3000)


def photo(folder: Path) -> Path:
    import affinegan.shipped as shipped

    source = SHARED / "0001.jpg"
    if not source.is_file():
        source = sorted((shipped.shipped_models()["smile"] / "examples").glob("*.jpg"))[0]
    out = folder / "photo_12mp.jpg"
    big = Image.open(source).convert("RGB").resize((SIZE[1], SIZE[1]), Image.BICUBIC)
    canvas = Image.new("RGB", SIZE, big.getpixel((4, 4)))
    canvas.paste(big, ((SIZE[0] - SIZE[1]) // 2, 0))
    canvas.save(out, quality=92)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    import affinegan

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = photo(folder)
        model = affinegan.load("smile")
        loaded = []
        for i in range(a.repeat):
            t0 = time.perf_counter()
            model.save(model.animate(path, alphas=[k / 15 for k in range(16)]), folder / f"{i}.mp4")
            loaded.append(time.perf_counter() - t0)
        whole = []
        argv = [sys.executable, "-m", "affinegan", "generate", "--model", "smile", "--input"]
        argv += [str(path), "--num_frames", "16", "--format", "mp4", "--gpu_ids", "-1"]
        for i in range(a.repeat):
            t0 = time.perf_counter()
            out = ["--results_dir", str(folder / f"r{i}")]
            subprocess.run(argv + out, check=True, capture_output=True)
            whole.append(time.perf_counter() - t0)
    tries = {"model loaded": loaded, "whole process": whole}
    print(f"12 MP photo ({SIZE[0]}x{SIZE[1]}), 16 frames, MP4, pasted back:")
    for what, times in tries.items():
        each = ", ".join(f"{t:.2f}" for t in times)
        print(f"  {what}: {statistics.median(times):.2f} s (tries: {each})")


if __name__ == "__main__":
    main()

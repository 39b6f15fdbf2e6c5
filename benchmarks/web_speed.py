"""The exported page in headless Chromium: milliseconds per frame, export time, graph sizes.

    python benchmarks/web_speed.py --checkpoints_dir demo_out/checkpoints demo_surprise
    python benchmarks/web_speed.py --checkpoints_dir ck run64 run128 --variants fp16,int8

For each run: ``affinegan export --web`` into a temporary folder (timed; graph sizes and the
variants' PSNR against fp32), served by ``http.server`` on 127.0.0.1, opened in Chromium with
every request elsewhere blocked and counted. After a face is encoded (``--photo``, else the web
demo's first example face), the page decodes ``--singles`` single frames at changing
intensities, as dragging the slider does, and one ``--frames``-frame video in one call; the
table gives the page's own ms/frame (median of the singles; the video's total / frames) per
variant. The helpers that serve and drive the page are in tests/browser.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

# tests/browser.py: the helpers that serve and drive the page, shared with the page's test.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import launch_chromium, offline_page, open_with_photo, static_server  # noqa: E402


def use_variant(page, variant: str) -> None:
    """Switch the page to one variant's graphs and wait until the photo is encoded again."""
    if page.evaluate("document.getElementById('variant').value") != variant:
        page.select_option("#variant", variant)
        # a selector, not wait_for_function: the page's CSP forbids the eval that one uses
        page.wait_for_selector(f"#status:has-text('{variant} weights loaded')", timeout=120_000)


def page_speed(page, variant: str, singles: int, frames: int) -> tuple[float, float]:
    """(median ms of a single-frame decode, ms/frame of one ``frames``-frame call)."""
    use_variant(page, variant)
    page.evaluate("window.affinegan.frame(0.5)")  # warm-up
    ms = []
    for i in range(singles):
        page.evaluate(f"window.affinegan.frame({(i % 11) / 10})")
        ms.append(page.evaluate("window.affinegan.msPerFrame"))
    page.fill("#frames", str(frames))
    page.evaluate("window.affinegan.video()")
    return statistics.median(ms), page.evaluate("window.affinegan.msPerFrame")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from affinegan.export.onnx_export import export
    from affinegan.serving.serve import write_examples

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", help="run names under --checkpoints_dir")
    ap.add_argument("--checkpoints_dir", default="./checkpoints")
    ap.add_argument("--variants", default="fp16,int8")
    ap.add_argument("--singles", type=int, default=30)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--photo", help="the photo to animate (default: serve's first example face)")
    ap.add_argument("--screenshot", help="save the first run's page here, at intensity 1")
    a = ap.parse_args()
    variants = [v for v in a.variants.split(",") if v]
    rows = []
    with tempfile.TemporaryDirectory(prefix="affinegan-web-") as tmp, sync_playwright() as pw:
        browser = launch_chromium(pw)
        for name in a.names:
            out = Path(tmp) / name
            r = export(
                Path(a.checkpoints_dir) / name,
                out / "onnx",
                variants=variants,
                web_dir=out / "page",
            )
            size = json.loads((out / "onnx" / "model.json").read_text())["image_size"]
            photo = Path(a.photo) if a.photo else write_examples(out / "faces")[0]
            with static_server(out / "page") as origin:
                page, blocked, errors = offline_page(browser, origin)
                open_with_photo(page, origin, photo)
                for v in ["fp32", *variants]:
                    single, batch = page_speed(page, v, a.singles, a.frames)
                    psnr = "" if v == "fp32" else f"{r.psnr[v]:.1f}"
                    rows.append(
                        f"| {name} | {size} | {v} | {r.sizes[v] / 1e6:.2f} | {psnr} "
                        f"| {single:.1f} | {batch:.1f} | {r.seconds:.1f} |"
                    )
                    print(rows[-1], flush=True)
                if a.screenshot and name == a.names[0]:
                    use_variant(page, "fp32")
                    page.evaluate("window.affinegan.frame(1)")
                    page.screenshot(path=a.screenshot, full_page=True)
                page.close()
                if blocked or errors:
                    raise SystemExit(f"outside requests {blocked}, page errors {errors}")
        browser.close()
    print(
        "\n| run | px | weights | MB (encode + decode) | PSNR vs fp32 dB | ms/frame, single "
        f"| ms/frame, {a.frames} per call | export s (all variants) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""What a run shows while it trains: loss_log.txt, metrics.jsonl, sample images, TensorBoard."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from affinegan import layout
from affinegan.checkpoint import Progress
from affinegan.core.networks import Generator
from affinegan.core.step import generator_forward
from affinegan.data.images import tensor_to_uint8
from affinegan.generation.html import write_image_table

log = logging.getLogger(__name__)

SWEEP_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SAMPLE_LABELS = ("input_A", "real_B", "fake_B", "rec_B", "alpha")


class RunLogger:
    """Appends losses to ``loss_log.txt`` (original format) and ``metrics.jsonl``; writes
    sample images and ``web/index.html``; mirrors both to TensorBoard when it is installed."""

    def __init__(self, run_dir: Path, html: bool = True, resume_step: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self._forget_after(resume_step)
        self.html = html
        self.rows = self._existing_rows()
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / layout.TENSORBOARD_DIR))
        except ImportError:
            log.debug("tensorboard not installed: no TensorBoard logs")

    def _forget_after(self, step: int) -> None:
        """Drop metrics of steps past the checkpoint being resumed: they will be run again."""
        path = self.run_dir / layout.METRICS_FILE
        if not path.is_file():
            return
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
        if len(kept) != len(lines):
            path.write_text("".join(ln + "\n" for ln in kept))

    def _existing_rows(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Rows of samples already on disk, so a resumed run keeps its history on the page."""
        groups: dict[tuple[int, int], list[tuple[str, str]]] = {}
        for path in sorted(layout.samples_dir(self.run_dir).glob("epoch*_step*_*.png")):
            epoch, step, label = path.stem.split("_", 2)
            key = (int(epoch[5:]), int(step[4:]))
            groups.setdefault(key, []).append((label, f"{layout.IMAGES_DIR}/{path.name}"))
        order = {label.split()[0]: i for i, label in enumerate(SAMPLE_LABELS)}
        return [
            (f"epoch {e}, step {s}", sorted(row, key=lambda item: order.get(item[0], 99)))
            for (e, s), row in sorted(groups.items(), reverse=True)
        ]

    def text(self, line: str) -> None:
        with open(self.run_dir / layout.LOSS_LOG, "a") as f:
            f.write(line + "\n")

    def losses(self, p: Progress, values: dict[str, float], t_comp: float, t_data: float) -> str:
        """Record one loss report; returns the original's console line."""
        body = " ".join(f"{k}: {v:.3f}" for k, v in values.items())
        line = (
            f"(epoch: {p.epoch}, iters: {p.epoch_iter}, time: {t_comp:.3f}, "
            f"data: {t_data:.3f}) {body}"
        )
        self.text(line)
        record = {
            "epoch": p.epoch,
            "step": p.total_steps,
            "time_s": t_comp,
            "data_s": t_data,
            "wall": time.time(),
            **values,
        }
        with open(self.run_dir / layout.METRICS_FILE, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"loss/{k}", v, p.total_steps)
        return line

    @torch.no_grad()
    def samples(self, p: Progress, G: Generator, batch: dict) -> None:
        """Input, target, fake, reconstruction and an alpha sweep of the batch's first clip.

        G runs in eval mode (no noise, no dropout) so sampling never touches the RNG stream
        that training and exact resume depend on.
        """
        was_training = G.training
        G.eval()
        A, B = batch["A"][:1], batch["B"][:1, :1]
        expression = batch["expression"][:1] if G.expressions > 1 else None
        fw = generator_forward(G, A, B, expression)
        enc = G.encode(A, expression=expression)
        sweep = G.decode(enc, 1.0, torch.tensor(SWEEP_ALPHAS, device=A.device))
        G.train(was_training)
        alpha = float(fw.alpha[0, 0])
        images = {
            "input_A": tensor_to_uint8(A[0]),
            "real_B": tensor_to_uint8(B[0, 0]),
            f"fake_B (alpha {alpha:.2f})": tensor_to_uint8(fw.fake[0]),
            "rec_B": tensor_to_uint8(fw.rec[0]),
            "alpha 0..1": np.concatenate(list(tensor_to_uint8(sweep)), axis=1),
        }
        if self.tb is not None:
            for label, img in images.items():
                self.tb.add_image(
                    f"samples/{label.split()[0]}", img, p.total_steps, dataformats="HWC"
                )
        if not self.html:
            return
        folder = layout.samples_dir(self.run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        row = []
        for label, img in images.items():
            name = f"epoch{p.epoch:03d}_step{p.total_steps:07d}_{label.split()[0]}.png"
            Image.fromarray(img).save(folder / name)
            row.append((label, f"{layout.IMAGES_DIR}/{name}"))
        self.rows.insert(0, (f"epoch {p.epoch}, step {p.total_steps}", row))
        write_image_table(
            self.run_dir / layout.WEB_DIR / layout.INDEX,
            f"training samples: {self.run_dir.name}",
            self.rows,
            refresh_s=60,
        )

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

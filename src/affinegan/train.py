"""The training loop: data -> train_step -> logs, samples, checkpoints; resumable exactly."""

from __future__ import annotations

import json
import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import checkpoint as ckpt
from .config import TrainConfig, format_options, from_dict
from .data.dataset import ClipDataset, ResumableSampler, scan_clips
from .errors import AffineGANError
from .logger import RunLogger
from .model import Nets, Optimizers, build_nets, build_optimizers, lr_factor, train_step

log = logging.getLogger(__name__)


def resolve_device(gpu_ids: str) -> torch.device:
    """The original's ``--gpu_ids``: -1 is the CPU; a GPU id falls back to CPU if none exists."""
    try:
        ids = [int(i) for i in str(gpu_ids).split(",") if i.strip() != ""]
    except ValueError:
        raise AffineGANError(f"--gpu_ids {gpu_ids!r}: expected e.g. 0, 0,1 or -1") from None
    ids = [i for i in ids if i >= 0]
    if not ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        log.info("no CUDA device found: running on the CPU (--gpu_ids -1 to say so)")
        return torch.device("cpu")
    if len(ids) > 1:
        log.warning(
            "note: one process uses one GPU (cuda:%d); for several GPUs use torchrun", ids[0]
        )
    return torch.device(f"cuda:{ids[0]}")


def _check_config(cfg: TrainConfig) -> None:
    if cfg.train_imagenum < 1 or cfg.batch_size < 1:
        raise AffineGANError("--train_imagenum and --batch_size must be at least 1")
    if cfg.fineSize > cfg.loadSize:
        raise AffineGANError(f"--fineSize {cfg.fineSize} is larger than --loadSize {cfg.loadSize}")
    from .networks import UNET_DEPTHS, canonical_netg

    try:
        cfg.netG = canonical_netg(cfg.netG)
    except ValueError as err:
        raise AffineGANError(str(err)) from None
    unit = 2 ** UNET_DEPTHS[cfg.netG]
    if cfg.fineSize % unit:
        raise AffineGANError(
            f"--fineSize {cfg.fineSize} does not suit --netG {cfg.netG}: use a multiple of {unit}"
        )


def _move_optimizer(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for st in opt.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(device)


def _restore(cfg: TrainConfig, nets: Nets, opts: Optimizers, device: torch.device) -> ckpt.Progress:
    """Resume from the training state if there is one, else from (original) weight files."""
    state = ckpt.load_state(cfg.run_dir) if cfg.epoch == "latest" else None
    if state is not None:
        for name, net in nets.items():
            net.load_state_dict(state["nets"][name])
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
            _move_optimizer(opt, device)
        ckpt.restore_rng(state)
        progress = ckpt.Progress(**state["progress"])
        log.info(
            "resumed %s at epoch %d, step %d", cfg.run_dir, progress.epoch, progress.total_steps
        )
        return progress
    for name, net in nets.items():
        path = ckpt.weight_path(cfg.run_dir, cfg.epoch, name)
        if name == "G" or path.is_file():
            net.load_state_dict(ckpt.load_weights(path))
        else:
            log.warning("note: %s not found; %s starts from scratch", path, name)
    log.info(
        "loaded %s weights from %s; optimisers start fresh at epoch %d",
        cfg.epoch,
        cfg.run_dir,
        cfg.epoch_count,
    )
    return ckpt.Progress(epoch=cfg.epoch_count)


@contextmanager
def _stop_on_sigint() -> Iterator[dict[str, bool]]:
    """First Ctrl-C asks the loop to stop after the current step; a second one aborts."""
    flag = {"stop": False}
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: object) -> None:
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: no handler, Ctrl-C behaves as usual
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _to_device(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) the run ``cfg.run_dir``; returns the run folder."""
    _check_config(cfg)
    if cfg.continue_train and (state := ckpt.load_state(cfg.run_dir)) is not None:
        saved = from_dict(TrainConfig, state["config"])
        for key in (
            "niter",
            "niter_decay",
            "max_steps",
            "print_freq",
            "display_freq",
            "save_latest_freq",
            "save_epoch_freq",
            "num_threads",
            "gpu_ids",
            "dataroot",
            "checkpoints_dir",
            "verbose",
            "no_html",
        ):
            setattr(saved, key, getattr(cfg, key))
        saved.continue_train = True
        cfg = saved
    device = resolve_device(cfg.gpu_ids)
    clips = scan_clips(
        Path(cfg.dataroot),
        cfg.phase,
        use_patch=cfg.use_patch,
        min_frames=2,
        max_clips=cfg.max_dataset_size or None,
    )
    dataset = ClipDataset(
        clips,
        cfg.loadSize,
        cfg.fineSize,
        cfg.train_imagenum,
        flip=not cfg.no_flip,
        use_patch=cfg.use_patch,
        seed=cfg.seed,
    )
    torch.manual_seed(cfg.seed)
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.to(device).train()
    opts = build_optimizers(nets, cfg)
    progress = (
        _restore(cfg, nets, opts, device)
        if cfg.continue_train
        else ckpt.Progress(epoch=cfg.epoch_count)
    )

    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_text(format_options(cfg, TrainConfig()), run_dir / "opt.txt")
    ckpt.write_config(run_dir, asdict(cfg))
    logger = RunLogger(run_dir, html=not cfg.no_html)
    logger.text(f"================ Training ({time.strftime('%c')}) ================")
    log.info(
        "%d clips from %s; run folder %s; device %s", len(clips), cfg.dataroot, run_dir, device
    )

    sampler = ResumableSampler(len(dataset), seed=cfg.seed, shuffle=not cfg.serial_batches)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_threads,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_threads > 0,
        drop_last=False,
        generator=torch.Generator(),  # keep the global RNG (noise, dropout) untouched
    )

    def save(label: str | None = None) -> None:
        ckpt.save_weights(run_dir, "latest", nets.items())
        if label is not None:
            ckpt.save_weights(run_dir, label, nets.items())
        ckpt.save_state(run_dir, nets.items(), opts.items(), progress, asdict(cfg))

    steps_per_epoch = len(loader)
    with _stop_on_sigint() as stop:
        while progress.epoch <= cfg.last_epoch:
            factor = lr_factor(progress.epoch, cfg)
            for _, opt in opts.items():
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * factor
            dataset.set_epoch(progress.epoch)
            sampler.set_epoch(progress.epoch, start=progress.epoch_iter * cfg.batch_size)
            bar = tqdm(
                total=steps_per_epoch,
                initial=progress.epoch_iter,
                leave=False,
                desc=f"epoch {progress.epoch}/{cfg.last_epoch}",
                dynamic_ncols=True,
                disable=None,  # a bar on a terminal; plain log lines in files and CI
            )
            t_data = time.perf_counter()
            try:
                for batch in loader:
                    t_step = time.perf_counter()
                    batch = _to_device(batch, device)
                    losses = train_step(nets, opts, batch, cfg)
                    progress.epoch_iter += 1
                    progress.total_steps += 1
                    bar.update()
                    step = progress.total_steps
                    if step % cfg.print_freq == 0:
                        values = {k: float(v) for k, v in losses.items()}
                        bar.set_postfix({k: f"{values[k]:.3f}" for k in ("G", "D", "D_alpha")})
                        line = logger.losses(
                            progress, values, time.perf_counter() - t_step, t_step - t_data
                        )
                        if bar.disable:  # no terminal: print the original's loss line
                            log.info(line)
                    if step % cfg.display_freq == 0:
                        logger.samples(progress, nets.G, batch)
                    if step % cfg.save_latest_freq == 0:
                        save()
                    if stop["stop"] or (cfg.max_steps and step >= cfg.max_steps):
                        break
                    t_data = time.perf_counter()
            except RuntimeError:
                if not stop["stop"]:  # a worker killed by Ctrl-C ends the epoch early
                    raise
            finally:
                bar.close()
            if stop["stop"] or (cfg.max_steps and progress.total_steps >= cfg.max_steps):
                save()
                logger.close()
                if stop["stop"]:
                    log.warning(
                        "interrupted: saved %s at epoch %d, step %d; resume with --continue_train",
                        run_dir,
                        progress.epoch,
                        progress.total_steps,
                    )
                    raise KeyboardInterrupt
                return run_dir
            finished = progress.epoch
            progress.epoch += 1
            progress.epoch_iter = 0
            save(str(finished) if finished % cfg.save_epoch_freq == 0 else None)
            log.info("end of epoch %d / %d, lr %.7f", finished, cfg.last_epoch, cfg.lr * factor)
    logger.close()
    return run_dir


def read_losses(run_dir: Path) -> list[dict]:
    """The run's metrics.jsonl as a list of records (for tests and comparisons)."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

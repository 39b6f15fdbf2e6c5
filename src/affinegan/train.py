"""The training loop: data -> train_step -> logs, samples, checkpoints; resumable exactly."""

from __future__ import annotations

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
from . import distributed as dist
from . import runtime
from .config import TrainConfig, format_options, from_dict, validate
from .data.dataset import ClipDataset, ResumableSampler, scan_clips
from .data.images import megapixels
from .errors import AffineGANError
from .logger import RunLogger
from .model import (
    Nets,
    Optimizers,
    StepOptions,
    build_ema,
    build_nets,
    build_optimizers,
    lr_factor,
    train_step,
)
from .networks import INIT_TYPES, NORMS, UNET_DEPTHS, canonical_netg

log = logging.getLogger(__name__)


def _check_config(cfg: TrainConfig) -> None:
    """Reject flag values the networks or the loop cannot use, with the flag's name."""
    validate(cfg)
    if cfg.last_epoch < 1:
        raise AffineGANError(
            f"--niter {cfg.niter} --niter_decay {cfg.niter_decay} leaves no epoch to train; "
            "give --niter 1 or more"
        )
    if cfg.blend and cfg.input_nc != cfg.output_nc:
        raise AffineGANError("--blend needs --input_nc equal to --output_nc")
    if not 0 <= cfg.ema < 1:
        raise AffineGANError(f"--ema {cfg.ema}: expected a decay in [0, 1), e.g. 0.999")
    if cfg.warp and not cfg.blend:
        raise AffineGANError("--warp needs --blend: the mask chooses warped or drawn pixels")
    if cfg.fineSize > cfg.loadSize:
        raise AffineGANError(f"--fineSize {cfg.fineSize} is larger than --loadSize {cfg.loadSize}")
    choices = {"norm": NORMS, "init_type": INIT_TYPES, "netD": ("basic", "n_layers")}
    for flag, allowed in choices.items():
        if getattr(cfg, flag) not in allowed:
            raise AffineGANError(
                f"--{flag} {getattr(cfg, flag)!r}: choose one of {', '.join(allowed)}"
            )
    try:
        cfg.netG = canonical_netg(cfg.netG)
    except ValueError as err:
        raise AffineGANError(str(err)) from None
    unit = 2 ** UNET_DEPTHS[cfg.netG]
    if cfg.fineSize % unit:
        raise AffineGANError(
            f"--fineSize {cfg.fineSize} does not suit --netG {cfg.netG}: use a multiple of {unit}"
        )


def _load(net: torch.nn.Module, state_dict: dict, source: Path | str) -> None:
    try:
        net.load_state_dict(state_dict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise AffineGANError(
            f"{source}: weights do not fit this model ({first}); pass the --netG/--ngf/--ndf/"
            "--train_imagenum/--blend/--warp/--preset it was trained with"
        ) from None


def _restore(
    cfg: TrainConfig, nets: Nets, opts: Optimizers, so: StepOptions, world: dist.World
) -> ckpt.Progress:
    """Resume from the training state if there is one, else from (original) weight files."""
    state = ckpt.load_state(cfg.run_dir) if cfg.epoch == "latest" else None
    if state is not None:
        source = cfg.run_dir / ckpt.STATE_FILE
        for name, net in nets.items():
            _load(net, state["nets"][name], source)
        for name, opt in opts.items():
            opt.load_state_dict(state["optimizers"][name])
        if so.scaler is not None and state.get("scaler"):
            so.scaler.load_state_dict(state["scaler"])
        if nets.G_ema is not None:
            if state.get("ema"):
                _load(nets.G_ema, state["ema"], source)
            else:
                log.warning("note: %s holds no --ema average; it starts from G now", source)
        if not ckpt.restore_rng(state, world.rank):
            log.warning(
                "note: the run was saved with fewer processes; rank %d reseeded", world.rank
            )
        progress = ckpt.Progress(**state["progress"])
        log.info(
            "resumed %s at epoch %d, step %d", cfg.run_dir, progress.epoch, progress.total_steps
        )
        return progress
    for name, net in nets.items():
        path = ckpt.weight_path(cfg.run_dir, cfg.epoch, name)
        if name == "G" or path.is_file():
            _load(net, ckpt.load_weights(path), path)
        else:
            log.warning("note: %s not found; %s starts from scratch", path, name)
    ema_path = ckpt.weight_path(cfg.run_dir, cfg.epoch, "G_ema")
    if nets.G_ema is not None and ema_path.is_file():
        _load(nets.G_ema.module, ckpt.load_weights(ema_path), ema_path)
        nets.G_ema.n_averaged.fill_(1)  # go on averaging from the saved average
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


def _to_device(batch: dict, device: torch.device, channels_last: bool) -> dict:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = {}
    for k, v in batch.items():
        if torch.is_tensor(v):
            v = v.to(device, non_blocking=True)
            if v.ndim == 4:
                v = v.contiguous(memory_format=fmt)
        out[k] = v
    return out


def _step_options(cfg: TrainConfig, device: torch.device, world: dist.World) -> StepOptions:
    """Mixed precision (``--amp``) and gradient averaging over ranks (torchrun)."""
    amp = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp, "bad")
    if amp == "bad":
        raise AffineGANError(f"--amp {cfg.amp!r}: choose bf16 or fp16 (or leave it out)")
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None
    sync = (lambda net: dist.average_gradients(world, net)) if world.active else None
    return StepOptions(amp=amp, scaler=scaler, sync=sync)


def _resolve_resume(cfg: TrainConfig) -> TrainConfig:
    """With --continue_train, the run's saved options win except for how long and how to run.

    Only a resume from the latest state does this; ``--epoch N`` loads those weight files and
    starts fresh optimisers at ``--epoch_count``, as the original did.
    """
    state = ckpt.load_state(cfg.run_dir) if cfg.continue_train and cfg.epoch == "latest" else None
    if state is None:
        return cfg
    saved = from_dict(TrainConfig, state["config"])
    for key in RUNTIME_OPTIONS:
        setattr(saved, key, getattr(cfg, key))
    saved.continue_train = True
    default = TrainConfig()
    ignored = [
        f"--{key} {getattr(cfg, key)} (the run has {getattr(saved, key)})"
        for key in asdict(cfg)
        if getattr(cfg, key) != getattr(saved, key) and getattr(cfg, key) != getattr(default, key)
    ]
    if ignored:
        log.warning(
            "note: --continue_train keeps the run's saved options; ignored: %s", ", ".join(ignored)
        )
    return saved


# Options a resumed run takes from the new command line rather than from its checkpoint.
RUNTIME_OPTIONS = (
    "name",
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
    "compile",
    "channels_last",
    "amp",
    "torch_threads",
)


def _quiet_worker(worker_id: int) -> None:
    """Data workers ignore Ctrl-C: the main process finishes its step, saves, and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) the run ``cfg.run_dir``; returns the run folder.

    Under ``torchrun`` every rank trains on its share of the clips and averages gradients;
    rank 0 alone logs and writes checkpoints.
    """
    cfg = _resolve_resume(cfg)
    _check_config(cfg)
    with runtime.process(cfg.gpu_ids) as rt:
        return _train(cfg, rt.device, rt.world)


def _train(cfg: TrainConfig, device: torch.device, world: dist.World) -> Path:
    clips = scan_clips(
        Path(cfg.dataroot),
        cfg.phase,
        use_patch=cfg.use_patch,
        min_frames=2,
        max_clips=cfg.max_dataset_size or None,
        max_pixels=megapixels(cfg.max_megapixels),
    )
    dataset = ClipDataset(
        clips,
        cfg.loadSize,
        cfg.fineSize,
        cfg.train_imagenum,
        flip=not cfg.no_flip,
        use_patch=cfg.use_patch,
        seed=cfg.seed,
        max_pixels=megapixels(cfg.max_megapixels),
    )
    per_rank = -(-len(clips) // world.size)
    if cfg.batch_size > per_rank and world.main:
        log.warning(
            "note: --batch_size %d is more than the %d clip(s) per process: each step trains on "
            "all %d",
            cfg.batch_size,
            per_rank,
            per_rank,
        )
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    nets = build_nets(cfg)
    for _, net in nets.items():
        net.to(device).train()
        if cfg.channels_last:
            net.to(memory_format=torch.channels_last)
    if cfg.ema > 0:
        nets.G_ema = build_ema(nets.G, cfg.ema)
    opts = build_optimizers(nets, cfg)
    so = _step_options(cfg, device, world)
    torch.manual_seed(cfg.seed * world.size + world.rank + 1)  # each rank its own noise stream
    progress = (
        _restore(cfg, nets, opts, so, world)
        if cfg.continue_train
        else ckpt.Progress(epoch=cfg.epoch_count)
    )
    dist.broadcast_modules(world, [net for _, net in nets.items()])
    if cfg.compile:
        for _, net in nets.items():
            net.forward = torch.compile(net.forward)
        for name in ("encode", "encode_pair", "decode_parts"):  # what train_step calls
            setattr(nets.G, name, torch.compile(getattr(nets.G, name)))

    run_dir = cfg.run_dir
    logger = None
    if world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.remove_stale_temps(run_dir)
        ckpt.atomic_text(format_options(cfg, TrainConfig()), run_dir / "opt.txt")
        ckpt.write_config(run_dir, asdict(cfg))
        logger = RunLogger(run_dir, html=not cfg.no_html, resume_step=progress.total_steps)
        logger.text(f"================ Training ({time.strftime('%c')}) ================")
        log.info(
            "%d clips from %s; run folder %s; device %s; %d process(es)",
            len(clips),
            cfg.dataroot,
            run_dir,
            device,
            world.size,
        )

    sampler = ResumableSampler(
        len(dataset),
        seed=cfg.seed,
        shuffle=not cfg.serial_batches,
        rank=world.rank,
        world_size=world.size,
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_threads,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.num_threads > 0,
        generator=torch.Generator(),  # keep the global RNG (noise, dropout) untouched
        worker_init_fn=_quiet_worker,
    )

    saved_at = progress.total_steps

    def save(label: str | None = None) -> None:
        nonlocal saved_at
        rng = dist.gather_objects(world, ckpt.rng_state())
        if world.main:
            # the average first: a reader that dates the weights by G's file never pairs a new
            # G with an old average
            ema = [("G_ema", nets.G_ema.module)] if nets.G_ema is not None else []
            weights = ema + nets.items()
            ckpt.save_weights(run_dir, "latest", weights)
            if label is not None:
                ckpt.save_weights(run_dir, label, weights)
            extra = {"scaler": so.scaler.state_dict()} if so.scaler is not None else {}
            if nets.G_ema is not None:
                extra["ema"] = nets.G_ema.state_dict()
            ckpt.save_state(run_dir, nets.items(), opts.items(), progress, asdict(cfg), rng, extra)
        dist.barrier(world)
        saved_at = progress.total_steps

    def finished() -> bool:
        return bool(cfg.max_steps) and progress.total_steps >= cfg.max_steps

    steps_per_epoch = len(loader)
    stop = False
    with _stop_on_sigint() as sigint:
        while progress.epoch <= cfg.last_epoch and not (stop or finished()):
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
                disable=None if world.main else True,
            )
            t_data = time.perf_counter()
            for batch in loader:
                t_step = time.perf_counter()
                batch = _to_device(batch, device, cfg.channels_last)
                losses = train_step(nets, opts, batch, cfg, so)
                progress.epoch_iter += 1
                progress.total_steps += 1
                bar.update()
                step = progress.total_steps
                if logger is not None and step % cfg.print_freq == 0:
                    values = {k: float(v) for k, v in losses.items()}
                    bar.set_postfix({k: f"{values[k]:.3f}" for k in ("G", "D", "D_alpha")})
                    line = logger.losses(
                        progress, values, time.perf_counter() - t_step, t_step - t_data
                    )
                    if bar.disable:  # no terminal: print the original's loss line
                        log.info(line)
                if logger is not None and step % cfg.display_freq == 0:
                    logger.samples(progress, nets.G_eval, batch)
                if step % cfg.save_latest_freq == 0:
                    save()
                stop = dist.any_rank(world, sigint["stop"], device)
                if stop or finished():
                    break
                t_data = time.perf_counter()
            bar.close()
            if progress.epoch_iter >= steps_per_epoch:  # the epoch is complete
                done = progress.epoch
                progress.epoch += 1
                progress.epoch_iter = 0
                log.info("end of epoch %d / %d, lr %.7f", done, cfg.last_epoch, cfg.lr * factor)
                if done % cfg.save_epoch_freq == 0:
                    save(str(done))
    if saved_at != progress.total_steps:
        save()
    _check_ranks_agree(world, nets)
    if logger is not None:
        logger.close()
    if stop:
        log.warning(
            "interrupted: saved %s at epoch %d, step %d; resume with --continue_train",
            run_dir,
            progress.epoch,
            progress.total_steps,
        )
        raise KeyboardInterrupt
    return run_dir


def _check_ranks_agree(world: dist.World, nets: Nets) -> None:
    """Fail loudly if data-parallel ranks ended with different weights (they never should)."""
    if not world.active:
        return
    sums = dist.gather_objects(world, [dist.checksum(net) for _, net in nets.items()])
    if any(s != sums[0] for s in sums):
        raise RuntimeError(f"data-parallel ranks diverged: weight checksums {sums}")
    if world.main:
        log.info("weights identical on all %d ranks", world.size)

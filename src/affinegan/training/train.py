"""The training loop: data -> train_step -> logs, samples, checkpoints; resumable exactly."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from affinegan import checkpoint as ckpt
from affinegan import layout, runtime
from affinegan.config import TrainConfig, canonical_netg
from affinegan.core.build import Nets, Optimizers, build_ema, build_nets, build_optimizers
from affinegan.core.schedule import budget_schedule, lr_factor
from affinegan.core.step import StepOptions, train_step
from affinegan.data.dataset import ClipDataset, ResumableSampler, scan_expressions
from affinegan.data.images import megapixels
from affinegan.files import atomic_text
from affinegan.options import format_options, validate
from affinegan.training import distributed as dist
from affinegan.training import resume
from affinegan.training.logger import RunLogger

log = logging.getLogger(__name__)

StepFn = Callable[[Nets, Optimizers, dict, TrainConfig, StepOptions], dict[str, torch.Tensor]]


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
    amp = {"": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None
    sync = (lambda net: dist.average_gradients(world, net)) if world.active else None
    return StepOptions(amp=amp, scaler=scaler, sync=sync)


def _quiet_worker(worker_id: int) -> None:
    """Data workers ignore Ctrl-C: the main process finishes its step, saves, and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def train(
    cfg: TrainConfig,
    build: Callable[[TrainConfig], Nets] = build_nets,
    step: StepFn | None = None,
) -> Path:
    """Train (or resume) the run ``cfg.run_dir``; returns the run folder.

    Under ``torchrun`` every rank trains on its share of the clips and averages gradients;
    rank 0 alone logs and writes checkpoints. ``build`` makes the networks from the config (the
    RNG seeded) and ``step`` is one iteration (default ``core.step.train_step``, looked up when the
    run starts): benchmarks pass variants (another set-up, the original code's call pattern) to
    measure them in the same loop. Another step must do what
    ``core.step.train_step`` does besides the losses where the run needs it: update ``G_ema``
    (``--ema``), the loss scaler (``--amp fp16``) and sync gradients (``so.sync``, torchrun).
    """
    cfg = resume.resolve_resume(cfg)
    validate(cfg)  # TrainConfig.check: the rules every caller meets, not just the CLI
    cfg = replace(cfg, netG=canonical_netg(cfg.netG))
    with runtime.process(cfg.gpu_ids) as rt:
        return _train(cfg, rt.device, rt.world, build, step or train_step)


@dataclass
class Data:
    """The clips and the order this rank reads them in; ``steps_per_epoch`` counts a whole
    epoch's batches (the sampler's length shrinks while a resumed epoch is under way)."""

    dataset: ClipDataset
    sampler: ResumableSampler
    loader: DataLoader
    steps_per_epoch: int
    expressions: list[str]  # of a multi-expression root, in index order; [] for one


@dataclass
class Run:
    """What the loop carries from step to step: the networks, where the run stands, its log."""

    cfg: TrainConfig
    device: torch.device
    world: dist.World
    nets: Nets
    opts: Optimizers
    so: StepOptions
    progress: ckpt.Progress
    saved_at: int  # the step of the last checkpoint, so the end saves only what is new
    step: StepFn  # one iteration: core.step.train_step unless a benchmark passes another
    logger: RunLogger | None = None

    def finished(self) -> bool:
        """Whether ``--max_steps`` is spent."""
        return bool(self.cfg.max_steps) and self.progress.total_steps >= self.cfg.max_steps


def _train(
    cfg: TrainConfig,
    device: torch.device,
    world: dist.World,
    build: Callable[[TrainConfig], Nets],
    step: StepFn,
) -> Path:
    """Set up, then train epoch by epoch until the schedule, ``--max_steps`` or Ctrl-C ends."""
    data = _data(cfg, device, world)
    cfg = replace(cfg, expressions=",".join(data.expressions))  # stored with the run
    if cfg.decay_fraction and not cfg.max_steps and world.main:
        log.warning(
            "note: --decay_fraction (set, or from --preset) needs --max_steps; the schedule "
            "stays --niter %d --niter_decay %d",
            cfg.niter,
            cfg.niter_decay,
        )
    cfg = budget_schedule(cfg, data.steps_per_epoch)
    run = _setup(cfg, device, world, build, step)
    run.logger = _open_log(run, len(data.dataset))
    stop = False
    with _stop_on_sigint() as sigint:
        while run.progress.epoch <= cfg.last_epoch and not (stop or run.finished()):
            stop = _train_epoch(run, data, sigint)
    if run.saved_at != run.progress.total_steps:
        _save(run)
    _check_ranks_agree(world, run.nets)
    if run.logger is not None:
        run.logger.close()
    if stop:
        log.warning(
            "interrupted: saved %s at epoch %d, step %d; resume with --continue_train",
            cfg.run_dir,
            run.progress.epoch,
            run.progress.total_steps,
        )
        raise KeyboardInterrupt
    return cfg.run_dir


def _data(cfg: TrainConfig, device: torch.device, world: dist.World) -> Data:
    """The training clips, checked, and a loader over this rank's share of them."""
    names, clips = scan_expressions(
        Path(cfg.dataroot),
        cfg.phase,
        cfg.expression_names,
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
    if cfg.train_imagenum > 1 and all(len(c.frames) == 2 for c in clips) and world.main:
        log.warning(
            "note: every clip is a neutral + peak pair, so the K = %d targets of a step are the "
            "same frame; --train_imagenum 1 does the same work faster",
            cfg.train_imagenum,
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
    return Data(dataset, sampler, loader, len(loader), names)


def _setup(
    cfg: TrainConfig,
    device: torch.device,
    world: dist.World,
    build: Callable[[TrainConfig], Nets],
    step: StepFn,
) -> Run:
    """Networks, optimisers and progress: fresh, or restored to where the run stopped."""
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    nets = build(cfg)
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
        resume.restore(cfg, nets, opts, so, world)
        if cfg.continue_train
        else ckpt.Progress(epoch=cfg.epoch_count)
    )
    dist.broadcast_modules(world, [net for _, net in nets.items()])
    if cfg.compile:
        for _, net in nets.items():
            net.forward = torch.compile(net.forward)
        for name in ("encode", "encode_pair", "decode_parts"):  # what train_step calls
            setattr(nets.G, name, torch.compile(getattr(nets.G, name)))
    return Run(cfg, device, world, nets, opts, so, progress, progress.total_steps, step)


def _open_log(run: Run, n_clips: int) -> RunLogger | None:
    """On rank 0: the run folder, its options files and the loss log; other ranks log nothing."""
    cfg = run.cfg
    if not run.world.main:
        return None
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    ckpt.remove_stale_temps(cfg.run_dir)
    atomic_text(format_options(cfg, TrainConfig()), cfg.run_dir / layout.OPTIONS_FILE)
    ckpt.write_config(cfg.run_dir, asdict(cfg))
    logger = RunLogger(cfg.run_dir, html=not cfg.no_html, resume_step=run.progress.total_steps)
    logger.text(f"================ Training ({time.strftime('%c')}) ================")
    log.info(
        "%d clips from %s; run folder %s; device %s; %d process(es)",
        n_clips,
        cfg.dataroot,
        cfg.run_dir,
        run.device,
        run.world.size,
    )
    return logger


def _train_epoch(run: Run, data: Data, sigint: dict[str, bool]) -> bool:
    """Train the rest of the current epoch (all of it unless resumed mid-epoch, or stopped);
    returns whether Ctrl-C asked to stop."""
    cfg, progress = run.cfg, run.progress
    lr = cfg.lr * lr_factor(progress.epoch, cfg)
    for _, opt in run.opts.items():
        for group in opt.param_groups:
            group["lr"] = lr
    data.dataset.set_epoch(progress.epoch)
    data.sampler.set_epoch(progress.epoch, start=progress.epoch_iter * cfg.batch_size)
    bar = tqdm(
        total=data.steps_per_epoch,
        initial=progress.epoch_iter,
        leave=False,
        desc=f"epoch {progress.epoch}/{cfg.last_epoch}",
        dynamic_ncols=True,
        disable=None if run.world.main else True,
    )
    stop = False
    t_data = time.perf_counter()
    for batch in data.loader:
        t_step = time.perf_counter()
        batch = _to_device(batch, run.device, cfg.channels_last)
        losses = run.step(run.nets, run.opts, batch, cfg, run.so)
        progress.epoch_iter += 1
        progress.total_steps += 1
        bar.update()
        _report(run, bar, losses, batch, (t_step, t_data))
        if progress.total_steps % cfg.save_latest_freq == 0:
            _save(run)
        stop = dist.any_rank(run.world, sigint["stop"], run.device)
        if stop or run.finished():
            break
        t_data = time.perf_counter()
    bar.close()
    if progress.epoch_iter >= data.steps_per_epoch:
        _end_epoch(run, lr)
    return stop


def _report(
    run: Run, bar: tqdm, losses: dict[str, torch.Tensor], batch: dict, times: tuple[float, float]
) -> None:
    """Every ``--print_freq`` steps the loss line, every ``--display_freq`` the samples (rank 0).

    ``times``: when the step and, before it, the wait for its batch began."""
    step, logger = run.progress.total_steps, run.logger
    if logger is None:
        return
    if step % run.cfg.print_freq == 0:
        t_step, t_data = times
        values = {k: float(v) for k, v in losses.items()}
        bar.set_postfix({k: f"{values[k]:.3f}" for k in ("G", "D", "D_alpha")})
        line = logger.losses(run.progress, values, time.perf_counter() - t_step, t_step - t_data)
        if bar.disable:  # no terminal: print the original's loss line
            log.info(line)
    if step % run.cfg.display_freq == 0:
        logger.samples(run.progress, run.nets.G_eval, batch)


def _end_epoch(run: Run, lr: float) -> None:
    """Count the epoch complete; every ``--save_epoch_freq`` epochs keep its weights."""
    done = run.progress.epoch
    run.progress.epoch += 1
    run.progress.epoch_iter = 0
    log.info("end of epoch %d / %d, lr %.7f", done, run.cfg.last_epoch, lr)
    if done % run.cfg.save_epoch_freq == 0:
        _save(run, str(done))


def _save(run: Run, label: str | None = None) -> None:
    """Checkpoint as ``latest`` (and ``label``): weights, then the state that resumes exactly.

    Every rank takes part (its RNG state is gathered); rank 0 writes."""
    nets, so = run.nets, run.so
    rng = dist.gather_objects(run.world, ckpt.rng_state())
    if run.world.main:
        # the average first: a reader that dates the weights by G's file never pairs a new
        # G with an old average
        ema = [("G_ema", nets.G_ema.module)] if nets.G_ema is not None else []
        weights = ema + nets.items()
        ckpt.save_weights(run.cfg.run_dir, "latest", weights)
        if label is not None:
            ckpt.save_weights(run.cfg.run_dir, label, weights)
        extra = {"scaler": so.scaler.state_dict()} if so.scaler is not None else {}
        if nets.G_ema is not None:
            extra["ema"] = nets.G_ema.state_dict()
        ckpt.save_state(
            run.cfg.run_dir,
            nets.items(),
            run.opts.items(),
            run.progress,
            asdict(run.cfg),
            rng,
            extra,
        )
    dist.barrier(run.world)
    run.saved_at = run.progress.total_steps


def _check_ranks_agree(world: dist.World, nets: Nets) -> None:
    """Fail loudly if data-parallel ranks ended with different weights (they never should)."""
    if not world.active:
        return
    sums = dist.gather_objects(world, [dist.checksum(net) for _, net in nets.items()])
    if any(s != sums[0] for s in sums):
        raise RuntimeError(f"data-parallel ranks diverged: weight checksums {sums}")
    if world.main:
        log.info("weights identical on all %d ranks", world.size)

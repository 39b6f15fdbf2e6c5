"""Command configurations: one dataclass per command, parsed with the original's flag names.

The original assembled options in several files and mutated them after parsing; here a parser
fills a frozen-in-spirit dataclass once, which round-trips to JSON and travels in checkpoints.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from affinegan.errors import AffineGANError
from affinegan.options import (
    Options,
    _opt,
    opt_checkpoints_dir,
    opt_chunk,
    opt_epoch,
    opt_fps,
    opt_gpu_ids,
    opt_max_megapixels,
    opt_results_dir,
    opt_run_name,
    opt_verbose,
)

# The networks' vocabulary, here so that a config is checked without importing torch.
UNET_DEPTHS = {"unet_64": 6, "unet_128": 7, "unet_256": 8}
NORMS = ("instance", "batch")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
NET_DS = ("basic", "n_layers")


def canonical_netg(name: str) -> str:
    """Accept the original's spellings (``unet256`` was its parser default)."""
    key = name.lower().replace("-", "_")
    if key.startswith("unet") and not key.startswith("unet_"):
        key = "unet_" + key[4:]
    if key not in UNET_DEPTHS:
        raise ValueError(f"unknown --netG {name!r}; choose one of {', '.join(UNET_DEPTHS)}")
    return key


log = logging.getLogger(__name__)

# Every intensity a user gives (--peak, --alphas, a --mix peak, the demo's peak and mix) lies in
# [0, MAX_INTENSITY]: 0 is the neutral input, 1 the trained peak, and the demo's slider stops at
# 2; far beyond, frames only degrade, and past float32's range they are black.
MAX_INTENSITY = 2.0


def check_intensity(value: object, what: str) -> float:
    """``value`` as an intensity in [0, MAX_INTENSITY], else one line naming ``what`` (the flag
    or setting): the one check every backend and the demo share."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= MAX_INTENSITY:  # NaN fails too
        raise AffineGANError(
            f"{what} {value}: expected an intensity from 0 to {MAX_INTENSITY:g} "
            "(0 is the neutral face, 1 the trained peak)"
        )
    return number


@dataclass
class ModelOptions(Options):
    """Options that define the networks; shared by training and generation."""

    original_flags: ClassVar[bool] = True  # the original's commands: its unused flags get a note

    netG: str = _opt("unet_256", "generator: unet_64 | unet_128 | unet_256 (input 64/128/256 px)")
    ngf: int = _opt(64, "generator filters in the first conv layer", min=1)
    ndf: int = _opt(64, "discriminator filters in the first conv layer", min=1)
    netD: str = _opt("basic", "discriminator: basic (3 layers) | n_layers")
    n_layers_D: int = _opt(3, "discriminator depth when --netD n_layers", min=1)
    norm: str = _opt(
        "instance",
        "instance | batch normalisation (batch: statistics pooled over the K targets of a step, "
        "which the original, one image per call, normalised one by one)",
    )
    no_dropout: bool = _opt(False, "no dropout in the generator")
    init_type: str = _opt("normal", "weight init: normal | xavier | kaiming | orthogonal")
    init_gain: float = _opt(0.02, "std / gain of the weight init", min=0)
    input_nc: int = _opt(3, "image channels in", min=1)
    output_nc: int = _opt(3, "image channels out", min=1)
    noise_std: float = _opt(
        0.01, "std of the Gaussian noise added to mixed features in training", min=0
    )
    blend: bool = _opt(
        False,
        "output a mask too and blend the generated image with the input "
        "(not in the original; off by default; docs/results.md)",
    )

    warp: bool = _opt(
        False,
        "with --blend, also output a flow field and blend with the input moved by it "
        "(not in the original; off by default; docs/experiments.md)",
    )
    expressions: str = _opt(
        "",
        "expression names of a multi-expression run, comma-separated: which expression folders "
        "of <dataroot>/<expression>/train/img to train (default: all; stored with the run)",
    )

    @property
    def expression_names(self) -> list[str]:
        """The run's expressions in index order ([] for a single-expression run)."""
        return [n for n in (p.strip() for p in self.expressions.split(",")) if n]

    def generator_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``networks.Generator`` (stored in checkpoints)."""
        return {
            "netG": self.netG,
            "ngf": self.ngf,
            "input_nc": self.input_nc,
            "output_nc": self.output_nc,
            "norm": self.norm,
            "dropout": not self.no_dropout,
            "noise_std": self.noise_std,
            "blend": self.blend,
            "warp": self.warp,
            "expressions": max(1, len(self.expression_names)),
        }


TORCH_THREADS_HELP = (
    "CPU threads for torch (0: OMP_NUM_THREADS if set, else the cores idle at start; "
    "docs/performance.md)"
)


@dataclass
class ProcessOptions(Options):
    """How the command's process computes; shared by every command that trains or generates."""

    torch_threads: int = _opt(0, TORCH_THREADS_HELP, min=0)


@dataclass
class TrainConfig(ProcessOptions, ModelOptions):
    """Everything a training run depends on; written to opt.txt, train_opt.json and the state."""

    dataroot: str = _opt("", "dataset root holding train/img/<clip>/<frames>", required=True)
    name: str = opt_run_name()
    checkpoints_dir: str = opt_checkpoints_dir()
    gpu_ids: str = opt_gpu_ids()
    batch_size: int = _opt(1, "clips per step (alpha is inferred per clip)", min=1)
    loadSize: int = _opt(286, "resize frames to this size", min=1)
    fineSize: int = _opt(256, "then random-crop to this size", min=1)
    max_megapixels: float = opt_max_megapixels("dataset frames")
    no_flip: bool = _opt(False, "no random horizontal flip")
    no_patch: bool = _opt(False, "train without mouth masks (no local patch discriminator)")
    niter: int = _opt(10000, "epochs at the starting learning rate", min=0)
    niter_decay: int = _opt(100, "epochs to decay the learning rate linearly to zero", min=0)
    decay_fraction: float = _opt(
        0.0,
        "with --max_steps: decay the learning rate linearly towards zero over this last share of "
        "the run's epochs, in place of --niter/--niter_decay (not in the original; 0 = off), "
        "e.g. 0.5",
        min=0,
        max=1,
    )
    lr: float = _opt(0.0002, "Adam learning rate", positive=True)
    beta1: float = _opt(0.5, "Adam beta1", min=0)
    no_lsgan: bool = _opt(True, "vanilla GAN loss (BCE); the original default")
    lsgan: bool = _opt(False, "least-squares GAN loss instead of BCE")
    lambda_L1: float = _opt(100.0, "weight of L1(fake, real)", min=0)
    lambda_A: float = _opt(100.0, "weight of the alpha-adversarial loss", min=0)
    lambda_rec: float = _opt(
        10.0, "weight of L1(reconstruction, real) (hard-coded 10 in original)", min=0
    )
    lambda_order: float = _opt(
        0.0,
        "weight of a hinge that asks later frames of a clip for larger alphas "
        "(not in the original; 0 = off; docs/results.md)",
        min=0,
    )
    order_margin: float = _opt(0.02, "margin of the --lambda_order hinge", min=0)
    lambda_position: float = _opt(
        0.0,
        "weight of an L1 loss pulling each target's inferred alpha to its place in its clip (0 "
        "the neutral first frame, 1 the last): on neutral + peak photo pairs the peak's alpha is "
        "then 1, so alpha 1 draws the real expression's strength (not in the original; 0 = off; "
        "the shipped smile model uses 100, docs/results.md)",
        min=0,
    )
    alpha_grad: bool = _opt(
        False,
        "let the image losses back-propagate through the inferred alphas, so that the encoders "
        "learn the intensity that draws each target best (the original detaches them; "
        "docs/results.md)",
    )
    lambda_region: float = _opt(
        0.0,
        "weight of an L1 loss over the expression region only: the pixels where a target leaves "
        "the range of the input's values nearby (a moved head does not) by more than "
        "--region_threshold (not in the original; 0 = off)",
        min=0,
    )
    lambda_keep: float = _opt(
        0.0,
        "weight of an L1 loss to the input outside the expression region: what the expression "
        "leaves alone is copied, not redrawn (not in the original; 0 = off)",
        min=0,
    )
    region_threshold: float = _opt(
        20.0,
        "grey levels (0-255) a target pixel must leave the input's nearby values by to be in "
        "the region",
        min=0,
    )
    ema: float = _opt(
        0.0,
        "decay of an exponential moving average of G's weights, which samples, generation, "
        "evaluation and serving then use (not in the original; 0 = off), e.g. 0.999",
        min=0,
    )
    preset: str = _opt(
        "",
        "a named recipe of the options beyond the paper, flags given explicitly win (on-only "
        "flags like --blend stay on): 'expressive' = --blend --lambda_order 10 --lambda_region "
        "100 --ema 0.999 --decay_fraction 0.5 --alpha_grad --lr 4e-4, and below --fineSize 128 "
        "also --lambda_keep 30 (docs/results.md); empty = the paper's method",
    )
    train_imagenum: int = _opt(5, "K: target frames drawn per clip per step", min=1)
    continue_train: bool = _opt(False, "resume the run from its latest checkpoint")
    epoch_count: int = _opt(1, "starting epoch (resuming original weights)", min=1)
    epoch: str = _opt("latest", "which weights to load with --continue_train")
    save_latest_freq: int = _opt(1000, "steps between 'latest' checkpoints", min=1)
    save_epoch_freq: int = _opt(200, "epochs between numbered checkpoints", min=1)
    print_freq: int = _opt(50, "steps between loss reports", min=1)
    display_freq: int = _opt(100, "steps between sample images (web/ and TensorBoard)", min=1)
    no_html: bool = _opt(False, "do not write sample images and web/index.html")
    serial_batches: bool = _opt(False, "take clips in order instead of shuffled")
    num_threads: int = _opt(1, "data loading worker processes (0: in the main process)", min=0)
    max_dataset_size: int = _opt(0, "use at most this many clips (0: all)", min=0)
    phase: str = _opt("train", "dataset split to train on")
    suffix: str = _opt("", "appended to --name, e.g. {netG}_size{fineSize}")
    verbose: bool = opt_verbose()
    seed: int = _opt(0, "seed for initialisation, sampling and noise")
    max_steps: int = _opt(0, "stop (saving) after this many steps in total (0: no limit)", min=0)
    amp: str = _opt("", "mixed precision: bf16 or fp16 (fp16 with loss scaling); off by default")
    compile: bool = _opt(False, "torch.compile the networks (slow first steps, faster after)")
    channels_last: bool = _opt(False, "NHWC memory layout for the convolutions")

    @property
    def use_patch(self) -> bool:
        return not self.no_patch

    @property
    def last_epoch(self) -> int:
        return self.niter + self.niter_decay

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints_dir) / self.name

    def complete(self, explicit: set[str]) -> TrainConfig:
        """The preset's values for the options the user did not set."""
        return apply_preset(self, explicit)

    def check(self) -> None:
        """Refuse, with the flag's name, values the networks or the loop cannot use: one place
        for the command line, tests, benchmarks and resume (``options.validate`` calls it)."""
        names = self.expression_names
        if len(set(names)) != len(names):
            raise AffineGANError(
                f"--expressions {self.expressions!r}: name each expression once, e.g. smile,blink"
            )
        if self.last_epoch < 1:
            raise AffineGANError(
                f"--niter {self.niter} --niter_decay {self.niter_decay} leaves no epoch to "
                "train; give --niter 1 or more"
            )
        if self.blend and self.input_nc != self.output_nc:
            raise AffineGANError("--blend needs --input_nc equal to --output_nc")
        if self.warp and not self.blend:
            raise AffineGANError("--warp needs --blend: the mask chooses warped or drawn pixels")
        if not 0 <= self.ema < 1:
            raise AffineGANError(f"--ema {self.ema}: expected a decay in [0, 1), e.g. 0.999")
        if self.amp not in AMP_DTYPES:
            raise AffineGANError(f"--amp {self.amp!r}: choose bf16 or fp16 (or leave it out)")
        if self.fineSize > self.loadSize:
            raise AffineGANError(
                f"--fineSize {self.fineSize} is larger than --loadSize {self.loadSize}"
            )
        for flag, allowed in (("norm", NORMS), ("init_type", INIT_TYPES), ("netD", NET_DS)):
            if getattr(self, flag) not in allowed:
                raise AffineGANError(
                    f"--{flag} {getattr(self, flag)!r}: choose one of {', '.join(allowed)}"
                )
        try:
            netg = canonical_netg(self.netG)
        except ValueError as err:
            raise AffineGANError(str(err)) from None
        unit = 2 ** UNET_DEPTHS[netg]
        if self.fineSize % unit:
            raise AffineGANError(
                f"--fineSize {self.fineSize} does not suit --netG {netg}: use a multiple of {unit}"
            )


# --amp's values: the autocast dtype's name (training maps it to the torch dtype).
AMP_DTYPES = ("", "bf16", "fp16")

# Named recipes: the measured options beyond the paper that make the expression read
# (docs/results.md has the ablation). Explicit flags override a preset's values.
PRESETS: dict[str, dict[str, Any]] = {
    "expressive": {
        "blend": True,
        "lambda_order": 10.0,
        "lambda_region": 100.0,
        "ema": 0.999,
        "decay_fraction": 0.5,
        "alpha_grad": True,
        "lr": 4e-4,
    },
}

# What a preset adds below a training size (fineSize): at 64 px intensities trained by the
# image losses cost surprise's identity, which a light keep loss holds (docs/experiments.md, "The
# 128 px additions at 64 px"; at 128 px it gained little identity and cost smile's strength).
PRESETS_BELOW_SIZE: dict[str, tuple[int, dict[str, Any]]] = {
    "expressive": (128, {"lambda_keep": 30.0}),
}

# A preset's option that yields when the user sets any of these (their schedule wins).
YIELDS_TO = {"decay_fraction": ("niter", "niter_decay")}


def preset_values(name: str, size: int) -> dict[str, Any]:
    """The options preset ``name`` sets for a run trained at ``size`` pixels."""
    if name not in PRESETS:
        raise AffineGANError(f"--preset {name!r}: choose one of {', '.join(PRESETS)}")
    below, smaller = PRESETS_BELOW_SIZE.get(name, (0, {}))
    return {**PRESETS[name], **(smaller if size < below else {})}


def apply_preset(cfg: TrainConfig, explicit: Collection[str] = ()) -> TrainConfig:
    """``cfg`` with its preset's values for its size filled in, except for the options named in
    ``explicit`` (those the user set). No preset: ``cfg`` unchanged, the paper's method."""
    if not cfg.preset:
        return cfg
    values = {
        k: v
        for k, v in preset_values(cfg.preset, cfg.fineSize).items()
        if k not in explicit and not set(YIELDS_TO.get(k, ())) & set(explicit)
    }
    return replace(cfg, **values)


# Options of the experiments of 2026-11, measured and not adopted (docs/experiments.md), with
# the value that meant "off": a run saved with another value is refused, not silently changed.
REMOVED_OPTIONS: dict[str, Any] = {
    "lambda_mask": 0.0,
    "lambda_mask_in": 0.0,
    "lambda_draw": 0.0,
    "lambda_still": 0.0,
    "still_shift": 0.02,
    "color_jitter": 0.0,
    "lambda_gan": 1.0,
    "alpha_levels": "bottleneck",
    "shared_d_alpha": False,
}
EXPERIMENTS_TAG = "experiments-2026-11"


def refuse_removed_options(saved: dict[str, Any], source: Path) -> None:
    """One line naming a removed option that the saved config ``source`` turned on, and the
    tag of the code that still has it; its "off" value loads as before."""
    for name, off in REMOVED_OPTIONS.items():
        if name in saved and saved[name] != off:
            raise AffineGANError(
                f"{source}: the run was trained with --{name} {saved[name]}, an option removed "
                f"after the tag {EXPERIMENTS_TAG}; use that tag's code for this run"
            )


@dataclass
class GenerateConfig(ProcessOptions, ModelOptions):
    """Options of generation; model options default to what the run saved."""

    dataroot: str = _opt("", "dataset root; inputs are the first frames of <phase>/img/<clip>")
    input: list[str] = _opt(None, "photo(s) to animate instead of a dataset", nargs="+")
    model: str = _opt(
        "",
        "a shipped model's name (`affinegan models` lists them, e.g. smile) or a run folder, "
        "in place of --checkpoints_dir/--name",
    )
    no_paste_back: bool = _opt(
        False,
        "write model-size frames (of the whole photo resized, or with --align of its face crop): "
        "by default an --input photo larger than the model is animated in place at its own "
        "size, which needs the face tools (affinegan[face])",
    )
    face_index: int | None = _opt(
        None, "which face of a photo with several, counted from 0 left to right", min=0
    )
    align: bool = _opt(False, "crop each input to its face first, like `affinegan prepare`")
    name: str = opt_run_name()
    checkpoints_dir: str = opt_checkpoints_dir()
    results_dir: str = opt_results_dir()
    gpu_ids: str = opt_gpu_ids()
    epoch: str = opt_epoch()
    phase: str = _opt("test", "dataset split to read inputs from")
    eval: bool = _opt(False, "eval mode: dropout off (deterministic output)")
    dropout: bool = _opt(False, "keep dropout on at test time (the original without --eval)")
    no_ema: bool = _opt(False, "use G's last weights, not the --ema average the run saved")
    expression: str = _opt("", "a multi-expression model's expression to animate (default: first)")
    mix: str = _opt(
        "",
        "mix a multi-expression model's expressions, e.g. smile=1,blink=0.6: each rises on the "
        "intensity curve to its own peak (blink=0.6@there-and-back: on a curve of its own)",
    )
    interval: float = _opt(0.05, "alpha step of the original: frames alpha = 0, interval, ... < 1")
    num_frames: int = _opt(0, "frames with alpha = linspace(0, peak, N), peak included", min=0)
    alphas: str = _opt("", "explicit comma-separated alphas, e.g. 0,0.3,1")
    peak: float = _opt(1.0, "largest alpha for --num_frames")
    curve: str = _opt(
        "linear", "intensity curve for --num_frames: linear | ease-in-out | there-and-back"
    )
    num_test: int = _opt(100, "at most this many inputs", min=1)
    format: str = _opt("png", "outputs: any of png,gif,mp4 (comma-separated)")
    fps: float = opt_fps()
    chunk: int = opt_chunk()
    fineSize: int = _opt(0, "input size (0: the size the model was trained at)", min=0)
    max_megapixels: float = opt_max_megapixels("input photos")
    loadSize: int = _opt(0, "accepted for compatibility; generation resizes to --fineSize")
    batch_size: int = _opt(1, "accepted for compatibility")
    num_threads: int = _opt(1, "accepted for compatibility")
    serial_batches: bool = _opt(False, "accepted for compatibility")
    no_flip: bool = _opt(False, "accepted for compatibility")
    no_patch: bool = _opt(False, "accepted for compatibility")
    max_dataset_size: int = _opt(0, "accepted for compatibility")
    suffix: str = _opt("", "appended to --name")
    verbose: bool = opt_verbose()

    def complete(self, explicit: set[str]) -> GenerateConfig:
        """Refuse ``--expressions`` (training's; ``--expression`` / ``--mix`` choose here) and
        note the other model options, which generation reads from the run, not the flags."""
        if "expressions" in explicit:
            raise AffineGANError(
                "--expressions is a training option: animate one expression with --expression "
                "NAME, several with --mix NAME=PEAK,NAME=PEAK"
            )
        ignored = sorted(explicit & set(ModelOptions.__dataclass_fields__) - {"no_dropout"})
        if ignored:
            log.warning(
                "note: %s not used: generation builds the model from the run's saved options "
                "and weights",
                ", ".join(f"--{name}" for name in ignored),
            )
        return self


def parse_alphas(text: str) -> list[float]:
    """``"0,0.3,1"`` -> [0.0, 0.3, 1.0]; a clear error for anything else."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise AffineGANError(f"--alphas {text!r}: expected numbers like 0,0.3,1") from None
    if not values:
        raise AffineGANError(f"--alphas {text!r}: expected numbers like 0,0.3,1")
    return [check_intensity(v, "--alphas") for v in values]

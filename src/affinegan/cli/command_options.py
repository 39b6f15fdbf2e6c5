"""The options of every command but training and generation (``config.py``, whose configs
travel with runs): one dataclass each, parsed by ``options.parse`` with the flags, help,
defaults and bounds its fields declare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from affinegan import layout
from affinegan import options as shared  # the flags several commands declare alike
from affinegan.config import GenerateConfig, ProcessOptions, TrainConfig, apply_preset
from affinegan.core.region import REGION_THRESHOLD
from affinegan.data.cartoon import MAX_ZOOM
from affinegan.errors import AffineGANError
from affinegan.options import Options, _opt, validate

SPLITS = ("train", "test")  # the parts of a dataset
# The demo's framing of its synthetic faces, which the web demo's example faces share.
DEMO_ZOOM = 1.5
CROP_MARGIN = 1.9  # crop side / face-box side: the framing of the original's phone-camera clips


@dataclass
class GenerateCommand(GenerateConfig):
    """``affinegan generate``: generation's options plus the backend that runs the model."""

    backend: str = _opt(
        "pytorch",
        "onnxruntime: the graphs `affinegan export` wrote (--onnx_dir), without PyTorch",
        choices=("pytorch", "onnxruntime"),
    )
    onnx_dir: str = _opt(
        "", "folder of model.json and the graphs for --backend onnxruntime; empty: <run>/onnx"
    )


@dataclass
class EvalConfig(ProcessOptions):
    """Options of ``affinegan evaluate`` (flag names follow ``affinegan generate``)."""

    original_flags: ClassVar[bool] = True

    dataroot: str = _opt("", "dataset root with <phase>/img/<clip>/ (frame 1 input)", required=True)
    name: str = shared.opt_run_name()
    checkpoints_dir: str = shared.opt_checkpoints_dir()
    results_dir: str = _opt("./results/", "frames already generated are read from here")
    epoch: str = shared.opt_epoch()
    phase: str = _opt("test", "split whose clips are evaluated (train: a sanity check)")
    gpu_ids: str = shared.opt_gpu_ids()
    out: str = _opt("", "JSON to write (default <results_dir>/<name>/eval_<phase>_<epoch>.json)")
    fineSize: int = _opt(0, "evaluation size (0: the size the model was trained at)", min=0)
    expression: str = _opt("", "a multi-expression model's expression these clips show")
    max_clips: int = _opt(0, "evaluate at most this many clips (0: all)", min=0)
    chunk: int = shared.opt_chunk()
    regenerate: bool = _opt(False, "ignore frames already in --results_dir")
    no_ema: bool = _opt(
        False,
        "score G's last weights, not the --ema average the run saved (frames already in "
        "--results_dir are then ignored: they may come from either)",
    )
    no_faces: bool = _opt(False, "skip the face-embedding metrics (ACD; needs dlib)")
    region_threshold: float = _opt(
        REGION_THRESHOLD,
        "levels (0-255) a truth pixel must change to be expression",
        min=0,
        max=255,
    )
    verbose: bool = shared.opt_verbose()

    @property
    def run_dir(self) -> Path:
        return Path(self.checkpoints_dir) / self.name

    @property
    def json_path(self) -> Path:
        if self.out:
            return Path(self.out)
        return layout.eval_json(self.results_dir, self.name, self.phase, self.epoch)


@dataclass
class CompareOptions(Options):
    """``affinegan compare``: two evaluation JSONs side by side."""

    run_a: str = _opt("", "evaluation JSON of the first run", positional=True)
    run_b: str = _opt("", "evaluation JSON of the second run", positional=True)
    out: str = _opt("", "also write the table to this Markdown file")


@dataclass
class ExportOptions(ProcessOptions):
    """``affinegan export``: a run's generator as ONNX graphs (+ a static web page)."""

    name: str = shared.opt_run_name()
    checkpoints_dir: str = shared.opt_checkpoints_dir()
    model: str = _opt(
        "", "a shipped model's name (`affinegan models`) or a run folder, in place of --name"
    )
    epoch: str = shared.opt_epoch()
    out: str = _opt(
        "", f"output folder; empty: <run>/{layout.EXPORT_DIR}, for a shipped model ./<name>_onnx"
    )
    face: str = _opt(
        "", "photo to check the graphs on; empty: the run's first test face, else a synthetic one"
    )
    variants: str = _opt("", "also write these variants, comma-separated (fp16, int8)")
    expressions: str = _opt("", "expression names, comma-separated; empty: the run name")
    web: str = _opt("", "also write the static web page to this folder")
    node_modules: str = _opt("", "where onnxruntime-web and gifenc are; empty: web/node_modules")
    verbose: bool = shared.opt_verbose()

    @property
    def run_dir(self) -> Path:
        from affinegan.shipped import run_folder

        return run_folder(self.model, self.checkpoints_dir, self.name)

    @property
    def out_dir(self) -> Path:
        """Where the export goes: never inside the installed package's shipped models."""
        if self.out:
            return Path(self.out)
        return Path(f"{self.run_dir.name}_onnx") if self.model else self.run_dir / layout.EXPORT_DIR


@dataclass
class ServeOptions(ProcessOptions):
    """``affinegan serve``: the browser demo and what one request may ask of it."""

    checkpoints_dir: str = _opt("./checkpoints", "folder of trained runs")
    host: str = _opt("127.0.0.1", "address to bind (0.0.0.0: the network)")
    port: int = _opt(7860, "port to listen on", min=1, max=65535)
    max_upload_mb: float = _opt(10.0, "largest photo accepted, in MB", positive=True)
    # Lower than the commands' 50: a server takes photos from anyone who reaches it.
    max_megapixels: float = shared.opt_max_megapixels("uploaded photos", 16.0)
    max_frames: int = _opt(120, "longest clip a request may ask", min=1)
    gpu_ids: str = shared.opt_gpu_ids()
    verbose: bool = shared.opt_verbose()


@dataclass
class SynthOptions(Options):
    """``affinegan synth``: the procedural synthetic dataset."""

    out: str = _opt("", "dataset root to write", required=True)
    expression: str = _opt(
        "smile",
        "smile | surprise | anger | blink; several, comma-separated (or all): a multi-expression "
        "root, one dataset per expression in <out>/<expression>/",
    )
    mix: bool = _opt(
        False,
        "instead: test clips of the listed expressions rising together (each frame's "
        "intensities in test/meta), to measure a multi-expression model's mixes",
    )
    clips: int = _opt(12, "training clips", min=1)
    test_clips: int = _opt(2, "test clips (held-out identities)", min=0)
    size: int = _opt(64, "frame size in pixels", min=1)
    seed: int = _opt(0, "seed of identities and expressions", min=0)
    min_frames: int = _opt(8, "fewest frames per clip (the neutral one plus expression)", min=2)
    max_frames: int = _opt(30, "most frames per clip", min=2)
    zoom: float = _opt(
        1.0,
        "frame close-ups: the face this many times larger, the frame's centre kept",
        min=1,
        max=MAX_ZOOM,
    )

    def check(self) -> None:
        if self.max_frames < self.min_frames:
            raise AffineGANError(
                f"--max_frames {self.max_frames}: must be at least --min_frames {self.min_frames}"
            )


@dataclass
class DemoOptions(ProcessOptions):
    """``affinegan demo``: synthetic data, a small model trained here, its videos."""

    out: str = _opt("demo_out", "folder for data, model and results")
    shipped_only: bool = _opt(
        False, "only animate the example photos with the shipped smile model (seconds)"
    )
    expression: str = _opt(
        "surprise",
        "smile | surprise | anger | blink (surprise is the one a 64 px model draws visibly "
        "within the demo's minutes; docs/results.md)",
    )
    steps: int = _opt(1500, "training steps", min=1)
    size: int = _opt(64, "64 (unet_64), 128 (unet_128) or 256 (unet_256)", choices=(64, 128, 256))
    ngf: int = _opt(16, "generator and discriminator filters in the first layer", min=1)
    clips: int = _opt(24, "training clips", min=1)
    zoom: float = _opt(
        DEMO_ZOOM,
        "close-ups: the synthetic faces this many times larger than `affinegan synth` frames "
        "them, so brows, eyes and mouth span more pixels (docs/results.md)",
        min=1,
        max=MAX_ZOOM,
    )
    lr: float = _opt(
        0.0006,
        "learning rate: a short run's, 1.5x the preset's (docs/results.md)",
        positive=True,
    )
    seed: int = _opt(0, "seed of the data and the training", min=0)
    gpu_ids: str = shared.opt_gpu_ids()
    preset: str = _opt(
        "expressive", "training recipe (docs/results.md); --preset '' trains the paper's method"
    )

    def check(self) -> None:
        apply_preset(TrainConfig(preset=self.preset))  # an unknown preset fails before any work


@dataclass
class GifOptions(Options):
    """The original's ``img2gif.py``: generated frames -> one GIF (and MP4) per test clip."""

    lenient: ClassVar[bool] = True  # the original's scripts passed it generation's flags too

    exp_names: str = _opt("", "comma-separated experiment names", required=True)
    dataroot: str = _opt("", "dataset root holding test/img/<clip>/", required=True)
    results_dir: str = _opt("./results/", "where generate.py wrote")
    epoch: str = _opt("latest", "which epoch's results to use")
    phase: str = _opt("test", "which phase's results to use")
    interval: float = _opt(0.05, "alpha step; frames per clip = 1/interval", positive=True, max=1)
    fps: float = shared.opt_fps()
    mp4: bool = _opt(False, "also write an H.264 .mp4 beside each gif")


@dataclass
class ModelsOptions(Options):
    """``affinegan models``: the models shipped with the package."""

    verbose: bool = shared.opt_verbose()


@dataclass
class CheckOptions(Options):
    """``affinegan check``: a dataset's problems, each with its fix."""

    root: str = _opt("", "dataset root holding train/ and/or test/", positional=True)
    no_patch: bool = _opt(False, "do not require mouth masks")
    max_megapixels: float = shared.opt_max_megapixels("frames larger than training accepts")
    verbose: bool = shared.opt_verbose()


@dataclass
class PrepareOptions(Options):
    """``affinegan prepare``; checked on creation so bad values fail before any work."""

    src: tuple[str, ...] = _opt(
        (),
        "videos (mp4, mov, avi, webm, mkv), folders of frames, or folders holding those; "
        "each video or frame folder is one clip named after it",
        positional=True,
        nargs="+",
    )
    out: str = _opt("", "dataset root to write into", required=True)
    split: str = _opt("train", "the part of the dataset", choices=SPLITS, required=True)
    size: int = _opt(256, "frame side in pixels", min=16)
    masks: bool = _opt(
        False,
        "also write mouth masks from face landmarks (train only; frames and masks are then PNG "
        "files with the same names)",
    )
    fps: float | None = _opt(None, "resample videos to this many frames per second", positive=True)
    max_frames: int | None = _opt(None, "keep at most this many frames, evenly spread", min=1)
    trim: bool = _opt(False, "keep only the most neutral frame up to the peak")
    margin: float = _opt(CROP_MARGIN, "crop side / face size", min=1.0, max=4.0)
    overwrite: bool = _opt(False, "replace clips that already exist")
    verbose: bool = shared.opt_verbose()

    def __post_init__(self) -> None:
        validate(self)

    def check(self) -> None:
        if self.split not in SPLITS:
            raise AffineGANError(f"--split {self.split!r}: use one of {', '.join(SPLITS)}")
        if self.masks and self.split != "train":
            raise AffineGANError("--masks only applies to --split train (test clips use none)")
        if self.max_frames is not None and self.max_frames < self.min_frames:
            raise AffineGANError(  # spelled as the flag was before it took underscores
                f"--max-frames {self.max_frames}: a {self.split} clip needs at least "
                f"{self.min_frames} frame(s)"
            )

    @property
    def min_frames(self) -> int:
        """Training needs the neutral frame plus at least one expression frame."""
        return 2 if self.split == "train" else 1

    @property
    def suffix(self) -> str:
        return ".png" if self.masks else ".jpg"

"""The one argument-parsing mechanism: a command's options are a dataclass whose fields declare
their flag (help, default, bounds), so flags, ``--help``, defaults and validation cannot drift.

Every flag is spelled with the original's underscores (``--max_upload_mb``); the hyphenated
spelling (``--max-upload-mb``) is accepted too. Bad input of any kind, a malformed flag included,
is one line (``AffineGANError``), never a usage dump or a traceback.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, NoReturn, TypeVar

from affinegan.errors import AffineGANError

log = logging.getLogger(__name__)

# A 50-megapixel frame already costs about 150 MB decoded; larger images are refused (the flag
# --max_megapixels raises the limit) instead of silently costing gigabytes.
DEFAULT_MAX_MEGAPIXELS = 50.0

# Accepted so the original's scripts keep running; each gets a one-line note when given.
IGNORED_OPTIONS: dict[str, str] = {
    "display_id": "visdom is not used; samples go to web/ and TensorBoard",
    "display_winsize": "samples are saved at the training size",
    "display_ncols": "visdom is not used; samples go to web/ and TensorBoard",
    "display_server": "visdom is not used; samples go to web/ and TensorBoard",
    "display_env": "visdom is not used; samples go to web/ and TensorBoard",
    "display_port": "visdom is not used; samples go to web/ and TensorBoard",
    "update_html_freq": "the web page is updated with every sample (--display_freq)",
    "lr_policy": "only the original default schedule (constant, then linear decay) exists",
    "lr_decay_iters": "only the original default schedule (constant, then linear decay) exists",
    "w_pa": "unused by the original too",
    "w_la": "unused by the original too",
    "w_co": "unused by the original too",
    "dataset_mode": "AffineGAN has a single dataset mode",
    "model": "AffineGAN has a single model",
    "resize_or_crop": "the method always resizes to --loadSize then crops to --fineSize",
    "pool_size": "AffineGAN uses no image pool",
    "ntest": "use --num_test",
    "aspect_ratio": "frames are written at the model's square size",
}

# Field metadata that describes a value rather than configuring argparse (see ``validate``).
BOUNDS = ("min", "max", "positive")
_NOT_ARGPARSE = (*BOUNDS, "positional")

OptionsT = TypeVar("OptionsT", bound="Options")


def _opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field that also describes its command-line flag: ``min=``, ``max=`` or
    ``positive=True`` bound a number (checked by ``validate``), ``positional=True`` makes it
    an argument without a flag; other keywords (``choices``, ``nargs``, ``required``) go to
    argparse."""
    return field(default=default, metadata={"help": help, **kw})


# Options several commands share, declared once so their flag, help and default agree.
def opt_gpu_ids() -> Any:
    return _opt("0", "GPU id, e.g. 0; -1 for the CPU (the CPU is used when no GPU exists)")


def opt_chunk() -> Any:
    return _opt(32, "frames decoded per batch (bounds memory for long videos)", min=1)


def opt_max_megapixels(what: str = "images", default: float = DEFAULT_MAX_MEGAPIXELS) -> Any:
    return _opt(default, f"refuse {what} with more pixels than this", positive=True)


def opt_checkpoints_dir() -> Any:
    return _opt("./checkpoints", "where runs are saved")


def opt_run_name() -> Any:
    return _opt("experiment_name", "run name: its folder is <checkpoints_dir>/<name>")


def opt_epoch() -> Any:
    return _opt("latest", "which weights: latest or an epoch number")


def opt_results_dir() -> Any:
    return _opt("./results/", "results go to <results_dir>/<name>/<phase>_<epoch>")


def opt_fps(default: float = 10.0) -> Any:
    return _opt(default, "frames per second of GIF/MP4", positive=True)


def opt_verbose() -> Any:
    return _opt(False, "more log output")


@dataclass
class Options:
    """Base of every command's options. ``check`` holds a command's rules across options (the
    bounds of one number are its field's metadata); ``complete`` fills in derived values."""

    original_flags: ClassVar[bool] = False  # accept the original's IGNORED_OPTIONS with a note
    lenient: ClassVar[bool] = False  # note and ignore unknown flags (the original's img2gif.py)

    def check(self) -> None:
        """Refuse a combination of options; called by ``validate``."""

    def complete(self: OptionsT, explicit: set[str]) -> OptionsT:
        """This config with derived values filled in; ``explicit``: the options the user set."""
        return self


class _Parser(argparse.ArgumentParser):
    """argparse, but a malformed command line is one line naming the flag, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise AffineGANError(f"{message} (see {self.prog} --help)")


def _kind(annotation: Any) -> type:
    """The argparse type of a field from its (string) annotation: int, float, else str."""
    text = str(annotation).replace(" | None", "").replace("list[", "").rstrip("]")
    return {"int": int, "float": float}.get(text, str)


def build_parser(
    cls: type, prog: str, description: str, defaults: Mapping[str, Any] | None = None
) -> argparse.ArgumentParser:
    """An argparse parser whose flags are the dataclass fields, defaults shown; ``defaults``
    overrides some of the dataclass's own (a command that differs from the original script)."""
    parser = _Parser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for f in fields(cls):
        meta = {k: v for k, v in f.metadata.items() if k not in _NOT_ARGPARSE}
        if f.metadata.get("positional"):
            parser.add_argument(f.name, type=_kind(f.type), default=argparse.SUPPRESS, **meta)
            continue
        flags = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        if f.type in ("bool", bool):
            # flags that are on by default (--no_lsgan) stay accepted no-ops
            parser.add_argument(*flags, action="store_true", default=f.default, **meta)
        else:  # a required flag shows no default
            default = argparse.SUPPRESS if meta.get("required") else f.default
            parser.add_argument(*flags, type=_kind(f.type), default=default, **meta)
    if getattr(cls, "original_flags", False):
        for name in IGNORED_OPTIONS.keys() - {f.name for f in fields(cls)}:
            parser.add_argument(f"--{name}", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(**(defaults or {}))
    return parser


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The options a command line set, as ``parser`` reads it (abbreviations included): the
    keys of a parse in which no option has a default."""
    quiet = copy.deepcopy(parser)
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
    return set(vars(quiet.parse_known_args(argv)[0]))


def from_args(
    cls: type[OptionsT], parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> OptionsT:
    """Parse argv into ``cls``: note ignored options, complete, apply ``--suffix``, validate."""
    if getattr(cls, "lenient", False):
        space, unknown = parser.parse_known_args(argv)
        if unknown:
            log.warning("note: ignoring unrecognised arguments: %s", " ".join(unknown))
    else:
        space = parser.parse_args(argv)
    ns = vars(space)
    for name in IGNORED_OPTIONS.keys() - set(cls.__dataclass_fields__):
        if name in ns:
            log.warning(
                "note: --%s is accepted for compatibility and not used (%s)",
                name,
                IGNORED_OPTIONS[name],
            )
            del ns[name]
    cfg = cls(**ns).complete(explicit_flags(parser, argv))
    if "suffix" in cfg.__dataclass_fields__ and cfg.suffix:
        try:
            cfg.name = f"{cfg.name}_{cfg.suffix.format(**asdict(cfg))}"
        except (KeyError, IndexError, ValueError) as err:
            raise AffineGANError(
                f"--suffix {cfg.suffix!r} names an unknown option ({err})"
            ) from None
    validate(cfg)
    return cfg


def parse(
    cls: type[OptionsT],
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    defaults: Mapping[str, Any] | None = None,
) -> OptionsT:
    """``argv`` as a validated ``cls``: what every command's entry point does first."""
    return from_args(cls, build_parser(cls, prog, description, defaults), argv)


def validate(cfg: Any) -> None:
    """Refuse, in one line naming the flag, a number outside its field's bounds (metadata
    ``min`` / ``max`` / ``positive``) or not finite, then the command's own rules (``check``),
    before any command does work with it."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            raise AffineGANError(f"--{f.name} {value}: expected a finite number")
        if f.metadata.get("positive") and not value > 0:
            raise AffineGANError(f"--{f.name} {value}: must be greater than 0")
        low, high = f.metadata.get("min"), f.metadata.get("max")
        if low is not None and value < low:
            raise AffineGANError(f"--{f.name} {value}: must be at least {low}")
        if high is not None and value > high:
            raise AffineGANError(f"--{f.name} {value}: must be at most {high}")
    if isinstance(cfg, Options):
        cfg.check()


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config from a stored dict, ignoring keys this version does not know."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def format_options(cfg: Any, defaults: Any) -> str:
    """The original's opt.txt table: every option, with the default where it differs."""
    lines = ["----------------- Options ---------------"]
    base = asdict(defaults)
    for key, value in sorted(asdict(cfg).items()):
        note = "" if base.get(key) == value else f"\t[default: {base.get(key)}]"
        lines.append(f"{key:>25}: {str(value):<30}{note}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"

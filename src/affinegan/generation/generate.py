"""The inference road: photo -> encode once -> decode many alphas -> PNG, GIF, MP4, HTML."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from affinegan import checkpoint as ckpt
from affinegan import layout
from affinegan.config import UNET_DEPTHS, GenerateConfig, ModelOptions, canonical_netg
from affinegan.core.networks import Encoding, Generator
from affinegan.data.dataset import scan_clips
from affinegan.data.images import (
    image_to_tensor,
    load_input_image,
    megapixels,
    open_image,
    tensor_to_uint8,
)
from affinegan.errors import AffineGANError
from affinegan.files import writable_folder
from affinegan.generation import expressions, pasteback
from affinegan.generation.html import write_image_table
from affinegan.generation.results import (
    GIF_MAX_WIDTH,
    input_photos,
    resolve_alphas,
    write_face,
)
from affinegan.generation.video import parse_formats
from affinegan.layout import INDEX, results_folder
from affinegan.runtime import resolve_device
from affinegan.shipped import run_folder

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    G: Generator
    size: int  # the square input size the generator was trained at
    expressions: list[str] = field(default_factory=list)  # names, [] for one expression
    weights: str = "G"  # which weights were loaded: "G" (the last) or "G_ema" (the average)

    def select(self, name: str) -> None:
        """Make ``name`` the expression ``G.encode`` animates (the first one by default)."""
        self.G.expression = expressions.expression_index(self.expressions, name)


def load_generator(
    run_dir: Path,
    epoch: str = "latest",
    opts: ModelOptions | None = None,
    size: int = 0,
    ema: bool = True,
) -> LoadedModel:
    """Rebuild G from a run folder: the saved config if any, else the weights' own shapes.

    Works for runs of this project and for the original code's ``<epoch>_net_G.pth``. A run
    trained with ``--ema`` (its saved config says so) also saved ``<epoch>_net_G_ema.pth``, the
    averaged weights, which are used unless ``ema=False``; a file left by an earlier run in the
    same folder is not.
    """
    run_dir = Path(run_dir)
    saved = ckpt.read_config(run_dir) or {}
    label = "G"
    if ema and saved.get("ema", 0) > 0 and layout.weight_path(run_dir, epoch, "G_ema").is_file():
        label = "G_ema"
    path = ckpt.generator_weights(run_dir, epoch, label)
    sd = ckpt.load_weights(path)
    opts_saved = ModelOptions(
        **{k: saved[k] for k in ModelOptions.__dataclass_fields__ if k in saved}
    )
    kwargs = opts_saved.generator_kwargs()
    kwargs.update(ckpt.infer_generator_options(sd))  # the weights are the truth for shapes
    names = opts_saved.expression_names
    if kwargs["expressions"] > 1 and len(names) != kwargs["expressions"]:
        names = [f"expression{i}" for i in range(kwargs["expressions"])]  # no config: unnamed
    if opts is not None and not saved:
        kwargs["dropout"] = not opts.no_dropout
    try:
        G = Generator(**kwargs)
    except ValueError as err:  # a saved config edited by hand, e.g. an unknown --netG
        where = run_dir / layout.CONFIG_FILE if saved else path
        raise AffineGANError(f"{where}: {err}; fix or delete it") from None
    try:
        G.load_state_dict(sd)
    except RuntimeError as err:
        raise AffineGANError(f"{path}: weights do not fit the generator ({err})") from None
    unit = 2 ** UNET_DEPTHS[canonical_netg(kwargs["netG"])]
    where = "--fineSize" if size else f"{run_dir / ckpt.CONFIG_FILE}: fineSize"  # who set it
    size = size or ckpt.training_size(saved, kwargs["netG"])
    if size % unit:
        raise AffineGANError(
            f"{where} {size} does not suit {kwargs['netG']}: use a multiple of {unit}"
        )
    return LoadedModel(G, size, names, label)


def set_mode(G: Generator, dropout: bool) -> None:
    """Eval mode (no noise); without ``--eval`` the original kept dropout active at test time."""
    G.eval()
    if dropout:
        for m in G.modules():
            if isinstance(m, torch.nn.Dropout):
                m.train()


@torch.inference_mode()
def decode_frames(
    G: Generator, enc: Encoding, alphas: list[float] | np.ndarray, chunk: int = 32
) -> np.ndarray:
    """One face's encoding -> frames (N,H,W,3) uint8, decoded ``chunk`` alphas at a time so a
    long video never holds all its activations at once. ``alphas``: one per frame, or a
    (frames, E) table for an ``encode_mix`` encoding of E expressions."""
    t = torch.tensor(np.asarray(alphas), dtype=enc.bottom_base.dtype, device=enc.bottom_base.device)
    parts = [tensor_to_uint8(G.decode(enc, 1.0, t[i : i + chunk])) for i in range(0, len(t), chunk)]
    return np.concatenate(parts)


@torch.inference_mode()
def animate(G: Generator, x: torch.Tensor, alphas: list[float], chunk: int = 32) -> np.ndarray:
    """One face (3,H,W) in [-1,1] -> frames (N,H,W,3) uint8: encoded once, decoded in chunks."""
    return decode_frames(G, G.encode(x[None]), alphas, chunk)


def encode_all(G: Generator, x: torch.Tensor) -> Encoding:
    """Codes that decode any intensity of any expression: both streams, the residual stream
    once per expression (E rows per face) in a multi-expression generator, which then decodes
    (frames, E) intensity tables (exports, the web demo)."""
    return G.encode(x) if G.expressions == 1 else G.encode_mix(x, range(G.expressions))


@torch.inference_mode()
def animate_plan(
    G: Generator, x: torch.Tensor, plan: expressions.Plan, chunk: int = 32
) -> np.ndarray:
    """``animate`` for ``--expression`` / ``--mix``: one expression decodes exactly as
    ``animate``; several decode ``z_b + sum_e alpha_e z_r,e`` from one ``encode_mix``."""
    if len(plan.expressions) == 1:
        G.expression = plan.expressions[0]
        return animate(G, x, plan.weights[:, 0].tolist(), chunk)
    return decode_frames(G, G.encode_mix(x[None], plan.expressions), plan.weights, chunk)


def _load_face(
    path: Path, size: int, align: bool, max_pixels: int, face_index: int | None = None
) -> torch.Tensor:
    """The generator's input: the photo resized, or first cropped around its face."""
    if not align:
        return load_input_image(path, size, max_pixels)
    from affinegan.data.align import crop_to_face

    return image_to_tensor(crop_to_face(open_image(path, max_pixels), size, index=face_index))


def _in_place(
    cfg: GenerateConfig, model: LoadedModel, path: Path, video: expressions.Plan
) -> tuple[np.ndarray, np.ndarray] | None:
    """With paste-back (an ``--input`` photo larger than the model, no ``--no_paste_back``):
    the photo and its frames at the photo's size; else None."""
    if not cfg.input or cfg.no_paste_back:
        return None
    photo = np.asarray(open_image(path, megapixels(cfg.max_megapixels)).convert("RGB"))
    if max(photo.shape[:2]) <= model.size:
        return None
    if cfg.dropout or not cfg.eval:  # the still frame and the others must share one network
        log.info("%s: pasted back with dropout off, so its first frame is the photo", path)
        set_mode(model.G, dropout=False)
    try:
        frames, _ = animate_photo(model, photo, video, True, str(path), cfg.face_index, cfg.chunk)
        return photo, np.stack(list(frames))
    finally:
        set_mode(model.G, dropout=cfg.dropout or not cfg.eval)


def animate_photo(
    model: LoadedModel,
    photo: np.ndarray,
    video: expressions.Plan,
    paste_back: bool = True,
    name: str = "the photo",
    face_index: int | None = None,
    chunk: int = 32,
) -> tuple[Iterator[np.ndarray] | np.ndarray, np.ndarray]:
    """Frames of the face in ``photo`` (HWC uint8) along ``video``, encoded once.

    Returns the frames (photo-sized and produced one at a time with ``paste_back``, else the
    model-size crops) and the crop the generator saw.
    """
    placement = pasteback.place(photo, model.size, name, face_index)
    device = next(model.G.parameters()).device
    x = image_to_tensor(Image.fromarray(placement.crop)).to(device)
    frames = animate_plan(model.G, x, pasteback.with_still(video), chunk)
    if not paste_back:
        return frames[:-1], placement.crop
    return (pasteback.paste(placement, f, frames[-1]) for f in frames[:-1]), placement.crop


def _first_frames(root: Path, phase: str) -> list[tuple[str, Path]]:
    clips = scan_clips(root, phase, use_patch=False, min_frames=1)
    return [(c.name, c.frames[0]) for c in clips]


def generate(cfg: GenerateConfig) -> Path:
    """Write ``<results_dir>/<name>/<phase>_<epoch>/``: images/, index.html, GIF/MP4 per input."""
    formats = parse_formats(cfg.format)
    alphas = resolve_alphas(cfg)
    if cfg.chunk < 1:
        raise AffineGANError("--chunk must be at least 1")
    inputs = input_photos(cfg, _first_frames)
    device = resolve_device(cfg.gpu_ids)
    run_dir = run_folder(cfg.model, cfg.checkpoints_dir, cfg.name)
    model = load_generator(run_dir, cfg.epoch, cfg, cfg.fineSize, ema=not cfg.no_ema)
    G = model.G.to(device)
    set_mode(G, dropout=cfg.dropout or not cfg.eval)
    video = expressions.plan(model.expressions, cfg.expression, cfg.mix, alphas)
    name = cfg.name if run_dir == Path(cfg.checkpoints_dir) / cfg.name else run_dir.name
    out_dir = writable_folder(
        results_folder(cfg.results_dir, name, cfg.phase, cfg.epoch), "--results_dir"
    )
    rows, said_gif = [], False
    for clip, path in tqdm(inputs, desc="generating", unit="face", leave=False):
        placed = _in_place(cfg, model, path, video)
        if placed is not None:
            face, frames = placed
        else:
            pixels = megapixels(cfg.max_megapixels)
            x = _load_face(path, model.size, cfg.align, pixels, cfg.face_index).to(device)
            frames = animate_plan(G, x, video, cfg.chunk)
            face = tensor_to_uint8(x.cpu())
        if "gif" in formats and frames.shape[2] > GIF_MAX_WIDTH and not said_gif:
            log.info("GIFs are downscaled to %d px wide; the MP4/PNGs keep the photo's size",
                     GIF_MAX_WIDTH)  # fmt: skip
            said_gif = True
        rows.append((clip, write_face(out_dir, clip, face, frames, alphas, formats, cfg.fps)))
    write_image_table(out_dir / INDEX, f"{name}: {cfg.phase}_{cfg.epoch}", rows)
    log.info("wrote %d videos of %d frames to %s", len(inputs), len(alphas), out_dir)
    return out_dir

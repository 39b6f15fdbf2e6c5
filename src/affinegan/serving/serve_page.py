"""``affinegan serve``'s page: Gradio on an ``Animator`` (``serve.py``), and the server that runs
it. Everything the server writes (uploads, Gradio's cache, results, the example faces) lives in
one temporary folder that is deleted when it stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from affinegan.cli.command_options import ServeOptions
from affinegan.errors import AffineGANError
from affinegan.generation.curves import CURVES
from affinegan.runtime import resolve_device
from affinegan.serving.serve import (
    DEFAULT_LIMITS,
    TRAIN_HINT,
    Animation,
    Animator,
    Limits,
    crop_available,
    write_examples,
)

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

# Models work at 64-256 px: show results large and sharp rather than small or blurred.
_CSS = """
#gif img, #mp4 video, #strip img {image-rendering: pixelated}
#gif .image-frame, #gif img {width: 100%; height: 100%; object-fit: contain}
"""
_INTRO = (
    "# AffineGAN: one photo to an expression video\n"
    "Upload a neutral, frontal face photo (or pick a synthetic example), choose an "
    "expression model and press **Animate**. The photo is encoded once; each frame "
    "decodes `z_b + alpha * z_r` for one intensity alpha along the chosen curve."
)


def _import_gradio() -> Any:
    """Import Gradio offline: no telemetry, no Hugging Face Hub calls."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import gradio
    except ImportError:
        raise AffineGANError("the web demo needs Gradio: pip install 'affinegan[web]'") from None
    return gradio


def _status(anim: Animation, model: str) -> str:
    cache = "encoding reused (cache hit)" if anim.encoding_reused else "photo encoded"
    return f"{len(anim.frames)} frames from **{model}** in {anim.seconds:.2f} s; {cache}."


def _reject(gr: Any, message: str) -> NoReturn:
    """Refuse a request: one line in the server's log (not Gradio's traceback), the message
    on the page."""
    log.info("rejected a request: %s", message)
    raise gr.Error(message, print_exception=False)


def _controls(gr: Any, animator: Animator, examples: Sequence[Path]) -> dict[str, Any]:
    """The left column: photo, model, settings and the two buttons, by name."""
    models = animator.models
    can_crop = crop_available()
    c: dict[str, Any] = {}
    c["photo"] = gr.Image(
        label="Neutral face photo",
        type="filepath",
        sources=["upload", "clipboard"],
        elem_id="photo",
        height=300,
    )
    if examples:
        gr.Examples(
            [[str(p)] for p in examples],
            inputs=[c["photo"]],
            label="Example faces (synthetic)",
            cache_examples=False,
        )
    c["model"] = gr.Dropdown(
        choices=[(m.label, m.name) for m in models],
        value=models[0].name if models else None,
        label="Expression model",
        elem_id="model",
    )
    c["refresh"] = gr.Button("Refresh model list", size="sm")
    c["frames"] = gr.Slider(
        2, animator.limits.max_frames, value=16, step=1, label="Frames", elem_id="frames"
    )
    c["peak"] = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Peak intensity (alpha)")
    c["curve"] = gr.Radio(list(CURVES), value="linear", label="Intensity curve")
    c["auto_crop"] = gr.Checkbox(
        value=False,
        label="Auto-crop to the face",
        interactive=can_crop,
        info=None if can_crop else "unavailable: pip install 'affinegan[face]'",
    )
    c["fps"] = gr.Slider(1, 50, value=10, step=1, label="Frames per second")
    c["mix"] = gr.Textbox(
        value="",  # a default, so API clients that predate the mix need not send one
        label="Mix (multi-expression models)",
        placeholder="smile=1,blink=0.6",
        info="each expression rises on the curve to its own peak; empty: the model's first",
        elem_id="mix",
    )
    c["go"] = gr.Button("Animate", variant="primary", elem_id="animate")
    return c


def _results(gr: Any) -> list[Any]:
    """The right column: status, GIF, MP4, the frame strip and the downloads, in that order."""
    status = gr.Markdown(label="Status", elem_id="status")
    with gr.Row():
        gif = gr.Image(
            label="Animated GIF", type="filepath", interactive=False, height=320, elem_id="gif"
        )
        video = gr.Video(label="MP4", interactive=False, height=320, elem_id="mp4")
    strip = gr.Gallery(label="Frames", columns=8, height=250, format="png", elem_id="strip")
    downloads = gr.File(
        label="Downloads", file_count="multiple", interactive=False, elem_id="files"
    )
    return [gif, video, strip, downloads, status]


def _wire(gr: Any, animator: Animator, c: dict[str, Any], outputs: list[Any], notice: Any) -> None:
    """The two events, which are also the API endpoints ``/animate`` and ``/refresh``."""

    def on_animate(
        photo: dict | None,
        model: str | None,
        frames: float,
        peak: float,
        curve: str,
        auto_crop: bool,
        fps: float,
        mix: str = "",
    ) -> tuple[str, str, list[tuple[np.ndarray, str]], list[str], str]:
        """Gets the raw upload (``preprocess=False``): ``gr.Image`` would open it with PIL and
        fail on a non-image with a bare traceback, while ``Animator`` says what is wrong.
        Gradio has already checked that the path lies in its upload folder."""
        try:
            settings = (
                int(frames),
                float(peak),
                str(curve),
                bool(auto_crop),
                float(fps),
                str(mix or ""),
            )
        except (TypeError, ValueError) as err:
            _reject(gr, f"invalid settings ({err})")
        try:
            anim = animator.animate(photo.get("path") if photo else None, model, *settings)
        except AffineGANError as err:
            _reject(gr, str(err))
        strip = [(f, f"alpha {a:.2f}") for f, a in zip(anim.frames, anim.alphas, strict=True)]
        files = [str(anim.gif), str(anim.mp4)]
        return str(anim.gif), str(anim.mp4), strip, files, _status(anim, model)

    def on_refresh(current: str | None) -> tuple[gr.Dropdown, gr.Markdown]:
        models = animator.refresh()
        names = [m.name for m in models]
        value = current if current in names else (names[0] if names else None)
        return (
            gr.Dropdown(choices=[(m.label, m.name) for m in models], value=value),
            gr.Markdown(visible=not models),
        )

    settings = ("photo", "model", "frames", "peak", "curve", "auto_crop", "fps", "mix")
    c["go"].click(
        on_animate,
        inputs=[c[k] for k in settings],
        outputs=outputs,
        api_name="animate",
        preprocess=False,
    )
    c["refresh"].click(
        on_refresh,
        inputs=[c["model"]],
        outputs=[c["model"], notice],
        api_name="refresh",
        preprocess=False,  # a model deleted since the page loaded is no error here
    )


def build_app(animator: Animator, examples: Sequence[Path] = ()) -> gr.Blocks:
    """The Gradio page on ``animator``.

    ``GRADIO_TEMP_DIR`` must already point at the server's temp folder (see ``serving``):
    Gradio's components read it when they are built.
    """
    gr = _import_gradio()
    with gr.Blocks(title="AffineGAN: photo to expression video") as app:
        gr.Markdown(_INTRO)
        where = animator.checkpoints_dir
        notice = gr.Markdown(
            f"**No trained model found under `{where}`**: "
            f"{TRAIN_HINT.format(checkpoints_dir=where)}.",
            visible=not animator.models,
            elem_id="no-models",
        )
        with gr.Row():
            with gr.Column(scale=1):
                controls = _controls(gr, animator, examples)
            with gr.Column(scale=3):
                outputs = _results(gr)
        _wire(gr, animator, controls, outputs, notice)
    app.queue(default_concurrency_limit=1, max_size=32)  # CPU-bound: wait in line, bounded
    return app


_SERVER_FOLDER: Path | None = None


def _server_folder() -> Path:
    """A private temp folder for this process's server, the same one every time.

    Gradio reads ``GRADIO_TEMP_DIR`` partly when it is imported, so the folder must exist, and
    be named there, before Gradio's first import (hence Gradio is imported only by this module,
    after that), and it must stay the same folder for later servers of the same process.
    """
    global _SERVER_FOLDER
    if _SERVER_FOLDER is None:
        _SERVER_FOLDER = Path(tempfile.mkdtemp(prefix="affinegan-serve-"))
    else:
        _SERVER_FOLDER.mkdir(mode=0o700)  # the previous server removed it
    return _SERVER_FOLDER


def _launch(app: gr.Blocks, host: str, port: int, limits: Limits, work_dir: Path) -> str:
    """Start the page in a background thread, local only, serving files of ``work_dir`` only."""
    try:
        _, url, _ = app.launch(
            server_name=host,
            server_port=port,
            prevent_thread_lock=True,
            quiet=True,
            share=False,
            ssr_mode=False,
            mcp_server=False,
            pwa=False,
            run_history=False,
            enable_monitoring=False,
            max_file_size=limits.max_bytes,
            allowed_paths=[str(work_dir)],
            footer_links=["api", "settings"],
            css=_CSS,
        )
    except OSError as err:
        raise AffineGANError(f"cannot serve on {host}:{port} ({err}); try another --port") from None
    return url


@contextmanager
def serving(
    checkpoints_dir: Path,
    host: str = ServeOptions.host,
    port: int = ServeOptions.port,
    limits: Limits = DEFAULT_LIMITS,
    gpu_ids: str = ServeOptions.gpu_ids,
) -> Iterator[str]:
    """Run the demo in a background thread; yield its URL; then stop it and delete its files.

    Uploads, Gradio's cache, results and examples all go to the process's server folder
    (``GRADIO_TEMP_DIR`` points inside it while serving), which is removed on the way out.
    One server at a time per process.
    """
    work_dir = _server_folder()
    previous = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")
    try:
        animator = Animator(checkpoints_dir, work_dir / "results", limits, resolve_device(gpu_ids))
        app = build_app(animator, write_examples(work_dir / "examples"))
        url = _launch(app, host, port, limits, work_dir)
        try:
            yield url
        finally:
            app.close()
    finally:
        if previous is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = previous
        shutil.rmtree(work_dir, ignore_errors=True)

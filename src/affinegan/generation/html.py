"""Self-contained HTML image tables for test results and training samples.

The page has no external assets, so it can be copied or opened offline next to its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from urllib.parse import quote

from affinegan.files import atomic_output

_STYLE = """
body { font-family: sans-serif; margin: 1em; background: #fafafa; }
h1 { font-size: 1.4em; }
h2 { font-size: 1.1em; margin: 1.2em 0 0.4em; }
.row { display: flex; flex-wrap: wrap; gap: 8px; }
figure { margin: 0; text-align: center; }
figure img, figure video { display: block; max-width: 256px; }
figcaption { font-size: 0.85em; color: #333; max-width: 256px; overflow-wrap: anywhere; }
""".strip()


def _media_tag(src: str, caption: str) -> str:
    """Video tag for MP4 (browsers do not animate it in <img>), <img> for everything else."""
    url = escape(quote(src.replace("\\", "/"), safe="/"), quote=True)
    if src.lower().endswith(".mp4"):
        return f'<video src="{url}" controls loop autoplay muted playsinline></video>'
    return f'<img src="{url}" alt="{escape(caption, quote=True)}" loading="lazy">'


def write_image_table(
    path: Path,
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    refresh_s: int | None = None,
) -> Path:
    """Write a page of headed rows of captioned images/videos to ``path`` atomically.

    ``rows`` is ``[(heading, [(caption, src), ...]), ...]`` with each ``src`` relative to the
    HTML file. ``refresh_s`` adds a meta refresh so a page watched during training updates.
    """
    if refresh_s is not None and refresh_s <= 0:
        raise ValueError(f"refresh_s must be a positive number of seconds, got {refresh_s}")
    head = ['<meta charset="utf-8">', f"<title>{escape(title)}</title>"]
    if refresh_s is not None:
        head.append(f'<meta http-equiv="refresh" content="{int(refresh_s)}">')
    head.append(f"<style>\n{_STYLE}\n</style>")
    body = [f"<h1>{escape(title)}</h1>"]
    for heading, items in rows:
        body.append(f"<h2>{escape(heading)}</h2>")
        body.append('<div class="row">')
        for caption, src in items:
            body.append(
                f"<figure>{_media_tag(src, caption)}"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        body.append("</div>")
    page = "\n".join(
        ["<!DOCTYPE html>", '<html lang="en">', "<head>", *head, "</head>", "<body>", *body]
        + ["</body>", "</html>", ""]
    )
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return Path(path)

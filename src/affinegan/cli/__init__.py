"""``affinegan <command>``: the command's options parsed (``options.py``), then its body
(``commands.COMMANDS``) called. Nothing else happens here."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from affinegan.cli.commands import COMMANDS, SCRIPTS
from affinegan.errors import AffineGANError
from affinegan.options import parse as parse_options


def invoke(name: str, argv: list[str] | None = None, script: str = "") -> int:
    """Parse ``argv`` into command ``name``'s options and run it; errors propagate."""
    command = COMMANDS[name]
    prog, defaults = (script, {}) if script else (f"affinegan {name}", command.defaults)
    opts = parse_options(command.options, argv, prog, command.summary, defaults)
    return command.body(opts)


def _entry(name: str) -> Callable[[list[str] | None], int]:
    def entry(argv: list[str] | None = None) -> int:
        return invoke(name, argv)

    entry.__doc__ = COMMANDS[name].summary
    return entry


# Importable entry points (errors propagate; ``run`` and ``main`` turn them into one line).
train_main, generate_main, gif_main, synth_main, demo_main = map(
    _entry, ("train", "generate", "gif", "synth", "demo")
)
evaluate_main, compare_main, prepare_main, check_main, serve_main, export_main = map(
    _entry, ("evaluate", "compare", "prepare", "check", "serve", "export")
)


def _setup_logging(argv: list[str]) -> None:
    level = logging.DEBUG if "--verbose" in argv else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def run(name: str, argv: list[str], script: str = "") -> int:
    """Run a command: user errors become one line on stderr (exit 2), Ctrl-C exit 130."""
    _setup_logging(argv)
    try:
        return invoke(name, argv, script)
    except AffineGANError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def script_main(script: str, argv: list[str] | None = None) -> int:
    """The original's ``train.py``, ``generate.py`` or ``img2gif.py`` (repository root)."""
    return run(SCRIPTS[script], list(sys.argv[1:] if argv is None else argv), script)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<9} {cmd.summary}" for name, cmd in COMMANDS.items()]
        print(
            "usage: affinegan COMMAND [options]   (affinegan COMMAND --help)\n\ncommands:\n"
            + "\n".join(lines)
        )
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return run(argv[0], argv[1:])

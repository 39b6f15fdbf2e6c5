"""The ``affinegan`` command's entry: process settings that must precede torch, then the CLI."""

from __future__ import annotations

from .runtime import wait_passively


def main() -> int:
    """Run ``affinegan COMMAND ...`` with OpenMP set to wait passively (see ``runtime``)."""
    wait_passively()
    from .cli import main as cli_main

    return cli_main()

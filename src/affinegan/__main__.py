"""``python -m affinegan``: the same as the ``affinegan`` command."""

from .cli import main

raise SystemExit(main())

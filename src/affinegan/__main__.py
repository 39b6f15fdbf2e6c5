"""``python -m affinegan``: the same as the ``affinegan`` command."""

from .console import main

raise SystemExit(main())

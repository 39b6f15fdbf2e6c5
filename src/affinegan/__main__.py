"""``python -m affinegan``: the same as the ``affinegan`` command."""

from affinegan.cli import main

raise SystemExit(main())

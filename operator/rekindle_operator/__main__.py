"""``python -m rekindle_operator``: the ``rekindle`` command without its console script."""

from rekindle_operator.cli import main

raise SystemExit(main())

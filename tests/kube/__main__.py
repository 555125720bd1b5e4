"""``python -m tests.kube serve``: see :mod:`tests.kube.serve`."""

from tests.kube.serve import main

raise SystemExit(main())

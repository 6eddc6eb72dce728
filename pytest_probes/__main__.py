"""``python -m pytest_probes``: the same as the ``pytest-probes`` command."""

from pytest_probes.cli import main

raise SystemExit(main())

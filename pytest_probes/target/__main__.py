"""Entry point: ``python3 -m pytest_probes.target`` (configured by environment variables)."""

from pytest_probes.target.server import main

raise SystemExit(main())

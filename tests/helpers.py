"""Helpers shared by the live and integration tests."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def readme_probe_example() -> str:
    """The README's example probe test: its first Python block marked ``@pytest.mark.probes``."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README, re.S)
    return next(b for b in blocks if "@pytest.mark.probes" in b)

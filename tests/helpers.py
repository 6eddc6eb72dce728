"""Helpers shared by the tests."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path
from types import ModuleType

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def readme_probe_example() -> str:
    """The README's example probe test: its first Python block marked ``@pytest.mark.probes``."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README, re.S)
    return next(b for b in blocks if "@pytest.mark.probes" in b)


def load_script(path: Path) -> ModuleType:
    """Import one of ``scripts/`` (files without ``.py``) as a module, for its functions."""
    name = path.name.replace("-", "_") + "_script"
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module

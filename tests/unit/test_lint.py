"""The package type-checks under mypy --strict and passes the linter (Google docstrings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_mypy_strict_on_the_package() -> None:
    done = run("mypy")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_ruff_on_package_and_tests() -> None:
    done = run("ruff", "check", "pytest_probes", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout[-3000:]

"""``examples/downstream``: a project of its own runs its tests with pytest-probes from a wheel.

The wheel is built from this checkout, installed with the example's dependencies into a fresh
virtual environment (not editable, no access to this checkout's code), and the example's three
tests run there with pytest-xdist. On the local provider the example gets a cluster of its own,
not running before: its pytest's controller brings it up and loads the target image before any
worker starts, and takes it down at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from pytest_probes.providers.local import LocalCluster

pytestmark = pytest.mark.selftest

CACHE_DIR = default_cache_dir()
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "downstream"


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900,
                          **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n" \
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_the_downstream_example_passes_from_a_wheel(
    tmp_path: Path, probes_cluster: Cluster
) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    (wheel,) = dist.glob("pytest_probes-*.whl")
    project = tmp_path / "downstream"
    shutil.copytree(EXAMPLE, project)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel), str(project)])
    # This run's own pytest and xdist state stays behind; PYTEST_PROBES_* (the kind binary) not.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT", "PYTEST_ADDOPTS", "PYTHONPATH",
                                "VIRTUAL_ENV"))}
    env["XDG_CACHE_HOME"] = str(CACHE_DIR.parent)
    located = _run([str(python), "-c", "import pytest_probes; print(pytest_probes.__file__)"],
                   env=env, cwd=project)
    assert str(env_dir) in located.stdout  # the installed wheel, not this checkout
    name = probes_cluster.name
    if probes_cluster.provider == "local":  # a second kind node would cost a minute more
        name = f"{probes_cluster.name}-downstream"[:40]
        LocalCluster(name, CACHE_DIR).down(lambda line: None)
    try:
        done = _run([str(python), "-m", "pytest", "-m", "probes", "-n", "3",
                     "-p", "no:cacheprovider", "--probes-provider", probes_cluster.provider,
                     "--probes-cluster-name", name], env=env, cwd=project)
    finally:
        if name != probes_cluster.name:
            LocalCluster(name, CACHE_DIR).down(lambda line: None)
    assert "3 passed" in done.stdout, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    readied = next(i for i, line in enumerate(lines) if "before the workers start" in line)
    ready = next(i for i, line in enumerate(lines) if "the workers start now" in line)
    workers = next(i for i, line in enumerate(lines) if line.startswith("created: 3/3 workers"))
    assert readied < ready < workers, "\n".join(lines[:40])
    if name != probes_cluster.name:
        assert any(f"deleting cluster {name}" in line for line in lines[workers:]), done.stdout

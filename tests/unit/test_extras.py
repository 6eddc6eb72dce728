"""The extras: a part used without its extra names the extra to install, not an ImportError."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pytest_probes import _extras
from pytest_probes.cluster import ClusterConfig
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import LocalProvider, node

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
INSTALL_LOCAL = "pip install 'pytest-probes[local]'"


def _metadata_requires() -> list[str]:
    """``Requires-Dist`` as the build backend writes it from pyproject.toml."""
    lines = list(PROJECT["dependencies"])
    for extra, requirements in PROJECT["optional-dependencies"].items():
        lines += [f'{requirement}; extra == "{extra}"' for requirement in requirements]
    return lines


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The installed package's metadata as this checkout declares it; returns the absent set."""
    absent: set[str] = set()

    def requires(name: str) -> list[str]:
        assert name == "pytest-probes"
        return _metadata_requires()

    real = importlib.metadata.distribution

    def distribution(name: str) -> importlib.metadata.Distribution:
        if name in absent:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "requires", requires)
    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    return absent


def test_the_local_extra_holds_what_only_the_local_provider_imports(metadata: set[str]) -> None:
    assert _extras.requirements("local") == ["cryptography", "tomli-w"]
    assert _extras.requirements("xdist") == ["pytest-xdist"]
    core = {line.split(">")[0].lower() for line in PROJECT["dependencies"]}
    assert core == {"pytest", "kubernetes", "tenacity", "pyyaml"}


def test_a_missing_extra_is_named_with_the_command_that_installs_it(metadata: set[str]) -> None:
    _extras.require("local", needed_by="the local provider")  # all installed here
    metadata.add("tomli-w")
    with pytest.raises(ClusterError) as raised:
        _extras.require("local", needed_by="the local provider", provider="local")
    assert str(raised.value) == (
        "the local provider needs tomli-w, which is not installed: install pytest-probes with its "
        f"'local' extra, `{INSTALL_LOCAL}`")
    assert raised.value.provider == "local"
    metadata.add("cryptography")
    with pytest.raises(ClusterError, match="needs cryptography and tomli-w, which are not"):
        _extras.require("local", needed_by="the local provider")


def test_the_local_provider_says_so_before_it_builds_anything(
    metadata: set[str], tmp_path: Path
) -> None:
    metadata.add("cryptography")
    config = ClusterConfig(name="probes", cache_dir=tmp_path / "cache")
    with pytest.raises(ClusterError, match=r"pip install 'pytest-probes\[local\]'"):
        LocalProvider().up(config)
    assert not (tmp_path / "cache").exists()


def test_the_certificates_module_without_cryptography_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    monkeypatch.delitem(sys.modules, "pytest_probes.providers.local.pki", raising=False)
    with pytest.raises(ClusterError) as raised:
        importlib.import_module("pytest_probes.providers.local.pki")
    assert str(raised.value) == (
        "the local provider (its cluster's certificates) needs cryptography, which is not "
        f"installed: install pytest-probes with its 'local' extra, `{INSTALL_LOCAL}`")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


def test_the_containerd_config_without_tomli_w_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tomli_w", None)
    with pytest.raises(ClusterError, match=r"containerd config\) needs tomli_w, .*\[local\]"):
        node.render_containerd_config(
            root=tmp_path, state=tmp_path, socket=tmp_path / "s", cni_conf_dir=tmp_path,
            sandbox_image="pause", snapshotter="native", cni_bin_dir=tmp_path,
            runc=tmp_path / "runc", shim_sockets=tmp_path)


def test_kind_existing_and_the_plugin_need_no_local_extra() -> None:
    # A fresh interpreter in which the local extra's modules cannot be imported.
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = sys.modules['tomli_w'] = None\n"
        "import pytest_probes.plugin, pytest_probes.cli, pytest_probes.fixtures\n"
        "from pytest_probes.cluster import get_provider\n"
        "for name in ('kind', 'existing', 'local'):\n"
        "    get_provider(name)\n"
        "import pytest_probes.providers.kind_node_image, pytest_probes.providers.local.leftovers\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]

"""The cache directory holds binaries run as root: it must be the user's and nobody else's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pytest_probes.cluster import trusted_cache_dir
from pytest_probes.errors import ClusterError


def test_a_new_cache_directory_is_made_private(tmp_path: Path) -> None:
    cache = tmp_path / "a" / "pytest-probes"
    assert trusted_cache_dir(cache) == cache
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


def test_a_cache_directory_others_can_write_is_refused_with_the_fix(tmp_path: Path) -> None:
    cache = tmp_path / "pytest-probes"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(ClusterError, match=rf"{cache} is writable by others .*chmod go-w {cache}"):
        trusted_cache_dir(cache)
    cache.chmod(0o755)  # readable by others is not a way in
    assert trusted_cache_dir(cache) == cache


def test_a_cache_under_a_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ClusterError, match=rf"{shared} is writable by others"):
        trusted_cache_dir(shared / "pytest-probes")
    shared.chmod(0o1777)  # sticky, as /tmp: nobody can replace what is ours in it
    assert trusted_cache_dir(shared / "pytest-probes")


def test_a_cache_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory away")
    cache = tmp_path / "theirs"
    cache.mkdir(mode=0o700)
    os.chown(cache, 4242, 4242)
    with pytest.raises(ClusterError, match=r"owned by uid 4242.*use a cache directory of your own"):
        trusted_cache_dir(cache)

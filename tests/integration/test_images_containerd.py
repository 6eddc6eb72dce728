"""The pause and target images, imported into a private containerd and run for real.

A containerd of its own (root, state and socket in a temporary directory, CRI disabled) is
started for this module and stopped at the end, with every container it ran: the one the local
provider builds from pinned sources (pytest_probes.binaries.runtime), so it needs root and
Go; the target image build needs debootstrap and Debian's mirror the first time (it is cached in
the user cache directory after that).
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_probes import images
from pytest_probes.binaries import runtime
from pytest_probes.cluster import default_cache_dir
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import image_import

log = logging.getLogger(__name__)

NAMESPACE = "k8s.io"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("go") is None,
    reason="needs root, and Go to build containerd, ctr and runc",
)

BINS = runtime.runtime_bins(default_cache_dir())
CTR = str(BINS.ctr)


@dataclass(frozen=True)
class Containerd:
    address: str
    root: Path
    log: Path

    def ctr(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        command = [CTR, "--address", self.address, "--namespace", NAMESPACE, *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()}\n"
                f"containerd log tail:\n{tail(self.log)}"
            )
        return done.stdout


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def mounts_below(path: Path) -> list[str]:
    root = os.path.realpath(path)
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    return [point for point in points if point == root or point.startswith(root + "/")]


def shims_of(address: str) -> list[int]:
    """PIDs of containerd shims started by the containerd listening on ``address``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
            found.append(int(entry.name))
    return found


def remove_all_containers(daemon: Containerd) -> None:
    for container in daemon.ctr("containers", "list", "--quiet", check=False).split():
        daemon.ctr("tasks", "kill", "--signal", "SIGKILL", container, check=False)
        daemon.ctr("tasks", "delete", "--force", container, check=False)
        daemon.ctr("containers", "delete", container, check=False)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    base = tmp_path_factory.mktemp("ctrd")
    root, state = base / "root", base / "state"
    address = str(base / "containerd.sock")
    config = base / "config.toml"
    runtime.ensure_runtime(default_cache_dir(), log.info)
    config.write_text(
        "version = 4\n"
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", '
        '"io.containerd.cri.v1.images", "io.containerd.nri.v1.nri"]\n'
        "[plugins.'io.containerd.internal.v1.opt']\n"
        f'  path = "{base / "opt"}"\n'
    )
    log_file = base / "containerd.log"
    env = {**os.environ, "PATH": f"{BINS.search_path}{os.pathsep}{os.environ['PATH']}"}
    with open(log_file, "wb") as out:
        process = subprocess.Popen(
            [
                str(BINS.containerd),
                "--config",
                str(config),
                "--root",
                str(root),
                "--state",
                str(state),
                "--address",
                address,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    daemon = Containerd(address=address, root=root, log=log_file)
    try:
        deadline = time.monotonic() + 30
        # ctr 2.x prints its own version before it finds no server: ask for the exit code.
        while subprocess.run([CTR, "--address", address, "version"], capture_output=True,
                             timeout=10, check=False).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start:\n{tail(log_file)}")
            time.sleep(0.1)
        yield daemon
    finally:
        try:
            if process.poll() is None:
                remove_all_containers(daemon)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for pid in shims_of(address):
                os.kill(pid, signal.SIGKILL)
            leftover = mounts_below(base)
            for point in sorted(leftover, key=len, reverse=True):
                subprocess.run(["umount", "--lazy", point], check=False)
    assert leftover == [], f"containerd left mounts behind: {leftover}"


@pytest.fixture(scope="module")
def pause_image() -> images.BuiltImage:
    return images.build_pause_image(default_cache_dir(), progress=log.info)


@pytest.fixture(scope="module")
def target_image() -> images.BuiltImage:
    return images.build_target_image(default_cache_dir(), progress=log.info)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str, timeout: float = 2) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_pause_image_imports_runs_and_stops_on_sigterm(
    containerd: Containerd, pause_image: images.BuiltImage
) -> None:
    assert not image_import.image_present(images.PAUSE_REF, address=containerd.address, ctr=CTR)
    refs = image_import.import_archive(pause_image.archive, address=containerd.address, ctr=CTR)
    assert refs == [images.PAUSE_REF]
    assert images.PAUSE_REF in containerd.ctr("images", "list", "--quiet").split()
    assert image_import.image_present(images.PAUSE_REF, address=containerd.address, ctr=CTR)
    check = containerd.ctr("images", "check")
    [row] = [line for line in check.splitlines() if line.startswith(images.PAUSE_REF + " ")]
    assert row.split()[-1] == "true", f"not unpacked: {check}"

    out = containerd.ctr("run", "--rm", images.PAUSE_REF, "pause-version", "/pause", "-v")
    assert out == "pytest-probes-pause 3.10\n"

    process = subprocess.Popen(
        [
            CTR,
            "--address",
            containerd.address,
            "--namespace",
            NAMESPACE,
            "run",
            "--rm",
            images.PAUSE_REF,
            "pause-sigterm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "RUNNING" not in containerd.ctr("tasks", "list", check=False):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the pause container did not start"
            time.sleep(0.1)
        containerd.ctr("tasks", "kill", "--signal", "SIGTERM", "pause-sigterm")
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert out == "pause: shutting down\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_target_image_imports_and_has_shell_coreutils_and_python(
    containerd: Containerd, target_image: images.BuiltImage
) -> None:
    assert target_image.ref == images.target_ref()
    started = time.monotonic()
    refs = image_import.import_archive(target_image.archive, address=containerd.address, ctr=CTR)
    log.info("imported %s in %.1f s", target_image.ref, time.monotonic() - started)
    assert refs == [target_image.ref]
    assert target_image.ref in containerd.ctr("images", "list", "--quiet").split()

    out = containerd.ctr(
        "run",
        "--rm",
        target_image.ref,
        "target-shell",
        "sh",
        "-c",
        "cat /etc/os-release && ls /bin/ls",
    )
    assert "VERSION_CODENAME=bookworm" in out
    assert out.rstrip().endswith("/bin/ls")

    out = containerd.ctr(
        "run",
        "--rm",
        target_image.ref,
        "target-python",
        "python3",
        "-c",
        "import http.server, json, threading, urllib.request, signal, random, logging, sys;"
        "import pytest_probes.target as t; print(sys.version_info[:2], t.__file__)",
    )
    assert out == "(3, 11) /opt/probes/pytest_probes/target/__init__.py\n"


def test_target_image_serves_hello_world(
    containerd: Containerd, target_image: images.BuiltImage
) -> None:
    if not image_import.image_present(target_image.ref, address=containerd.address, ctr=CTR):
        image_import.import_archive(target_image.archive, address=containerd.address, ctr=CTR)
    port = free_port()
    command = [
        CTR,
        "--address",
        containerd.address,
        "--namespace",
        NAMESPACE,
        "run",
        "--rm",
        "--net-host",
        "--env",
        f"PORT={port}",
        "--env",
        "BIND_ADDRESS=127.0.0.1",
        target_image.ref,
        "target-http",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        answer: tuple[int, str] | None = None
        while answer is None:
            if process.poll() is not None:
                raise AssertionError(f"the target container exited: {process.communicate()[0]}")
            try:
                answer = get(port, "/")
            except OSError:
                assert time.monotonic() < deadline, "the target app did not answer within 60 s"
                time.sleep(0.2)
        assert answer == (200, "Hello, World!")
    finally:
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", "target-http", check=False)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_import_failure_keeps_command_exit_code_and_stderr(
    tmp_path: Path, pause_image: images.BuiltImage
) -> None:
    address = str(tmp_path / "nobody-listens.sock")
    with pytest.raises(ClusterError) as caught:
        image_import.import_archive(pause_image.archive, address=address, ctr=CTR)
    error = caught.value
    assert error.command is not None and error.command[:2] == [CTR, "--address"]
    assert "import" in error.command and str(pause_image.archive) in error.command
    assert error.returncode not in (None, 0)
    assert error.stderr_tail
    assert address in str(error)

    with pytest.raises(ClusterError, match="does not exist"):
        image_import.import_archive(tmp_path / "missing.tar", address=address, ctr=CTR)

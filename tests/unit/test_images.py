"""OCI image archives written without Docker (no containerd, no network).

The pause-program tests compile ``pause.c`` with the local gcc and run it as a plain process.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from pytest_probes import images
from pytest_probes.errors import ClusterError
from pytest_probes.images import (
    MEDIA_TYPE_CONFIG,
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_LAYER,
    MEDIA_TYPE_LAYER_GZIP,
    MEDIA_TYPE_MANIFEST,
    PAUSE_REF,
    ImageConfig,
    LayerInfo,
    _build,
    app_hash,
    archive_refs,
    build_pause_image,
    describe_layer,
    layer_from_directory,
    target,
    target_ref,
    write_oci_archive,
)

REF = "localhost/pytest-probes/unit:1.0"


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def make_tree(root: Path) -> Path:
    """A small tree with the kinds of entries a root filesystem has."""
    (root / "bin").mkdir(parents=True)
    (root / "etc" / "conf.d").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "etc" / "secret").write_text("s3cret\n")
    (root / "etc" / "secret").chmod(0o600)
    (root / "etc" / "conf.d" / "a.conf").write_text("a=1\n")
    (root / "etc" / "conf.d" / "a.conf").chmod(0o644)
    (root / "bin" / "sticky").mkdir()
    (root / "bin" / "sticky").chmod(0o1777)
    (root / "bin" / "link").symlink_to("tool")
    (root / "bin" / "abs-link").symlink_to("/etc/secret")
    os.link(root / "bin" / "tool", root / "bin" / "tool-hardlink")
    return root


def members(layer: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(layer, "r:*") as tar:
        return tar.getmembers()


def read_archive(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        out: dict[str, bytes] = {}
        for member in tar:
            if member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                out[member.name] = handle.read()
        return out


# ---------------------------------------------------------------------------------------------
# Layers


def test_layer_digest_is_deterministic_and_ignores_times(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    first = layer_from_directory(tree, tmp_path / "one.tar.gz")
    os.utime(tree / "etc" / "secret", (1_700_000_000, 1_700_000_000))
    os.utime(tree / "bin", (1_600_000_000, 1_600_000_000))
    second = layer_from_directory(tree, tmp_path / "two.tar.gz")
    assert first.digest == second.digest
    assert first.diff_id == second.diff_id
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()

    (tree / "etc" / "conf.d" / "a.conf").write_text("a=2\n")
    third = layer_from_directory(tree, tmp_path / "three.tar.gz")
    assert third.digest != first.digest
    assert third.diff_id != first.diff_id


def test_layer_digest_and_diff_id(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    dest = tmp_path / "layer.tar.gz"
    layer = layer_from_directory(tree, dest, created_by="unit")
    raw = dest.read_bytes()
    plain = gzip.decompress(raw)
    assert raw[:2] == b"\x1f\x8b"
    assert layer.path == dest
    assert layer.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert layer.size == len(raw)
    assert layer.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert layer.uncompressed_size == len(plain)
    assert layer.diff_id != layer.digest
    assert layer.media_type == MEDIA_TYPE_LAYER_GZIP
    assert layer.created_by == "unit"
    # Recomputing from the file alone gives the same facts.
    again = describe_layer(dest, created_by="unit")
    assert again == layer


def test_uncompressed_layer_digest_equals_diff_id(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    layer = layer_from_directory(tree, tmp_path / "layer.tar", compress=False)
    assert layer.media_type == MEDIA_TYPE_LAYER
    assert layer.digest == layer.diff_id == sha256_file(tmp_path / "layer.tar")
    assert describe_layer(tmp_path / "layer.tar") == layer


def test_layer_keeps_modes_links_and_sets_root_owner(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    layer = layer_from_directory(tree, tmp_path / "layer.tar.gz")
    entries = members(layer.path)
    names = [entry.name for entry in entries]
    assert names == [
        "bin",
        "bin/abs-link",
        "bin/link",
        "bin/sticky",
        "bin/tool",
        "bin/tool-hardlink",
        "etc",
        "etc/conf.d",
        "etc/conf.d/a.conf",
        "etc/secret",
    ]
    by_name = {entry.name: entry for entry in entries}
    assert by_name["bin/tool"].isreg() and by_name["bin/tool"].mode == 0o755
    assert by_name["etc/secret"].mode == 0o600
    assert by_name["etc/conf.d/a.conf"].mode == 0o644
    assert by_name["bin/sticky"].isdir() and by_name["bin/sticky"].mode == 0o1777
    assert by_name["bin/link"].issym() and by_name["bin/link"].linkname == "tool"
    assert by_name["bin/abs-link"].issym() and by_name["bin/abs-link"].linkname == "/etc/secret"
    assert by_name["bin/tool-hardlink"].islnk()
    assert by_name["bin/tool-hardlink"].linkname == "bin/tool"
    for entry in entries:
        assert (entry.uid, entry.gid, entry.uname, entry.gname) == (0, 0, "root", "root")
        assert entry.mtime == 0
    with tarfile.open(layer.path, "r:gz") as tar:
        handle = tar.extractfile("bin/tool")
        assert handle is not None
        assert handle.read() == b"#!/bin/sh\necho tool\n"


def test_layer_prefix_and_exclude(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    layer = layer_from_directory(
        tree, tmp_path / "layer.tar.gz", prefix="/opt/app/", exclude=("etc/conf.d", "bin/*link")
    )
    entries = {entry.name: entry for entry in members(layer.path)}
    assert list(entries) == [
        "opt",
        "opt/app",
        "opt/app/bin",
        "opt/app/bin/sticky",
        "opt/app/bin/tool",
        "opt/app/etc",
        "opt/app/etc/secret",
    ]
    assert entries["opt"].isdir() and entries["opt"].mode == 0o755
    assert entries["opt/app"].isdir() and entries["opt/app"].mode == 0o755
    with pytest.raises(ValueError, match=r"without '\.\.'"):
        layer_from_directory(tree, tmp_path / "bad.tar.gz", prefix="opt/../etc")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_layer_can_keep_times_and_owners(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    os.chown(tree / "etc" / "secret", 1234, 5678, follow_symlinks=False)
    os.utime(tree / "etc" / "secret", (1_650_000_000, 1_650_000_000))
    layer = layer_from_directory(tree, tmp_path / "layer.tar.gz", mtime=None, owner=None)
    secret = {entry.name: entry for entry in members(layer.path)}["etc/secret"]
    assert (secret.uid, secret.gid, secret.mtime) == (1234, 5678, 1_650_000_000)

    clamped = layer_from_directory(tree, tmp_path / "clamped.tar.gz", mtime=1_600_000_000)
    entries = {entry.name: entry for entry in members(clamped.path)}
    assert entries["etc/secret"].mtime == 1_600_000_000
    assert (entries["etc/secret"].uid, entries["etc/secret"].gid) == (0, 0)


# ---------------------------------------------------------------------------------------------
# Archives


CONFIG = ImageConfig(
    entrypoint=("python3", "-m", "app"),
    cmd=("--verbose",),
    env=("PATH=/usr/bin:/bin", "PYTHONPATH=/opt/probes"),
    working_dir="/opt/probes",
    exposed_ports=("8080/tcp",),
    labels={"org.example": "yes"},
)


def two_layers(tmp_path: Path) -> list[LayerInfo]:
    base = make_tree(tmp_path / "base")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('hi')\n")
    return [
        layer_from_directory(base, tmp_path / "base.tar.gz", created_by="base"),
        layer_from_directory(app, tmp_path / "app.tar.gz", prefix="opt/probes"),
    ]


def test_archive_structure_and_media_types(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    archive = write_oci_archive(tmp_path / "image.tar", ref=REF, layers=layers, config=CONFIG)
    files = read_archive(archive)

    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1], name

    index = json.loads(files["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == MEDIA_TYPE_INDEX
    [descriptor] = index["manifests"]
    assert descriptor["mediaType"] == MEDIA_TYPE_MANIFEST
    assert descriptor["annotations"] == {
        "io.containerd.image.name": REF,
        "org.opencontainers.image.ref.name": REF,
    }
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest_blob = files["blobs/sha256/" + descriptor["digest"].split(":")[1]]
    assert len(manifest_blob) == descriptor["size"]

    manifest = json.loads(manifest_blob)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == MEDIA_TYPE_MANIFEST
    assert manifest["config"]["mediaType"] == MEDIA_TYPE_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [MEDIA_TYPE_LAYER_GZIP] * 2
    assert [layer["digest"] for layer in manifest["layers"]] == [layer.digest for layer in layers]
    assert [layer["size"] for layer in manifest["layers"]] == [layer.size for layer in layers]
    for layer in layers:
        assert files["blobs/sha256/" + layer.digest.split(":")[1]] == layer.path.read_bytes()

    config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].split(":")[1]])
    assert config["architecture"] == "amd64"
    assert config["os"] == "linux"
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    assert config["config"] == {
        "Entrypoint": ["python3", "-m", "app"],
        "Cmd": ["--verbose"],
        "Env": ["PATH=/usr/bin:/bin", "PYTHONPATH=/opt/probes"],
        "WorkingDir": "/opt/probes",
        "ExposedPorts": {"8080/tcp": {}},
        "Labels": {"org.example": "yes"},
    }
    assert [entry["created_by"] for entry in config["history"]] == ["base", "pytest-probes"]
    # diff_ids are the uncompressed digests, not the blob digests.
    assert set(config["rootfs"]["diff_ids"]).isdisjoint(layer.digest for layer in layers)

    [docker] = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == [REF]
    assert docker["Config"] == "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]
    assert docker["Layers"] == ["blobs/sha256/" + layer.digest.split(":")[1] for layer in layers]

    assert archive_refs(archive) == [REF]


def test_archive_is_byte_identical_for_the_same_inputs(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    one = write_oci_archive(tmp_path / "one.tar", ref=REF, layers=layers, config=CONFIG)
    two = write_oci_archive(tmp_path / "two.tar", ref=REF, layers=layers, config=CONFIG)
    assert one.read_bytes() == two.read_bytes()
    other = write_oci_archive(
        tmp_path / "three.tar", ref="localhost/pytest-probes/unit:2.0", layers=layers, config=CONFIG
    )
    assert other.read_bytes() != one.read_bytes()


def test_archive_from_layer_paths_equals_archive_from_layer_infos(tmp_path: Path) -> None:
    base = layer_from_directory(make_tree(tmp_path / "base"), tmp_path / "base.tar.gz")
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('hi')\n")
    plain = layer_from_directory(app, tmp_path / "app.tar", compress=False)
    from_infos = write_oci_archive(
        tmp_path / "infos.tar", ref=REF, layers=[base, plain], config=CONFIG
    )
    from_paths = write_oci_archive(
        tmp_path / "paths.tar",
        ref=REF,
        layers=[tmp_path / "base.tar.gz", tmp_path / "app.tar"],
        config=CONFIG,
    )
    assert from_paths.read_bytes() == from_infos.read_bytes()
    files = read_archive(from_paths)
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
    assert [(layer["mediaType"], layer["digest"]) for layer in manifest["layers"]] == [
        (MEDIA_TYPE_LAYER_GZIP, base.digest),
        (MEDIA_TYPE_LAYER, plain.digest),
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "localhost/pytest-probes/target",
        "Localhost/pytest-probes/target:1",
        "localhost/pytest-probes/target:",
        "localhost/pytest probes/target:1",
        "localhost/pytest-probes/target:1+local",
    ],
)
def test_bad_reference_is_refused(tmp_path: Path, ref: str) -> None:
    layers = two_layers(tmp_path)
    with pytest.raises(ValueError, match="REPOSITORY:TAG"):
        write_oci_archive(tmp_path / "image.tar", ref=ref, layers=layers, config=CONFIG)
    assert not (tmp_path / "image.tar").exists()


def test_interrupted_archive_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    dest = tmp_path / "out" / "image.tar"
    write_oci_archive(dest, ref=REF, layers=layers, config=CONFIG)
    before = dest.read_bytes()
    # A "layer" that passes the size check but fails when read, after the archive was started.
    directory = tmp_path / "not-a-layer"
    directory.mkdir()
    broken = LayerInfo(
        path=directory,
        digest="sha256:" + "0" * 64,
        size=directory.stat().st_size,
        diff_id="sha256:" + "1" * 64,
        uncompressed_size=1,
    )
    with pytest.raises(IsADirectoryError):
        write_oci_archive(dest, ref=REF, layers=[layers[0], broken], config=CONFIG)
    assert dest.read_bytes() == before
    assert sorted(path.name for path in dest.parent.iterdir()) == ["image.tar"]


def test_interrupted_atomic_write_by_ctrl_c(tmp_path: Path) -> None:
    dest = tmp_path / "entry"
    with pytest.raises(KeyboardInterrupt):
        with _build.atomic_file(dest) as handle:
            handle.write(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_layer_changed_after_describing_is_refused(tmp_path: Path) -> None:
    layers = two_layers(tmp_path)
    with layers[1].path.open("ab") as handle:
        handle.write(b"garbage")
    with pytest.raises(ClusterError, match="changed after it was built"):
        write_oci_archive(tmp_path / "image.tar", ref=REF, layers=layers, config=CONFIG)


def test_archive_refs_reads_docker_archives_and_refuses_nameless(tmp_path: Path) -> None:
    docker = tmp_path / "docker.tar"
    with tarfile.open(docker, "w") as tar:
        data = json.dumps([{"Config": "c.json", "RepoTags": ["example.com/a:1"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert archive_refs(docker) == ["example.com/a:1"]

    nameless = tmp_path / "nameless.tar"
    with tarfile.open(nameless, "w") as tar:
        data = json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:00"}]}).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ClusterError, match="names no image"):
        archive_refs(nameless)


# ---------------------------------------------------------------------------------------------
# The target app's key


def test_app_hash_follows_contents_not_times_or_caches(tmp_path: Path) -> None:
    app = tmp_path / "target"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "__main__.py").write_text("print('Hello, World!')\n")
    first = app_hash(app)
    assert len(first) == 64

    os.utime(app / "__main__.py", (1_000_000, 1_000_000))
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "__main__.cpython-311.pyc").write_bytes(b"\x00" * 16)
    assert app_hash(app) == first

    (app / "__main__.py").write_text("print('Hello, World?')\n")
    changed = app_hash(app)
    assert changed != first

    (app / "__main__.py").write_text("print('Hello, World!')\n")
    assert app_hash(app) == first
    (app / "extra.py").write_text("")
    assert app_hash(app) != first


def test_target_ref_names_version_and_hash(tmp_path: Path) -> None:
    app = tmp_path / "target"
    app.mkdir()
    (app / "__main__.py").write_text("pass\n")
    ref = target_ref(app)
    repository, _, tag = ref.rpartition(":")
    assert repository == "localhost/pytest-probes/target"
    assert tag == f"{images.package_version()}-{app_hash(app)[:12]}"
    assert tag != "latest"
    (app / "__main__.py").write_text("pass  # changed\n")
    assert target_ref(app) != ref


def test_target_ref_of_missing_app_dir_says_so(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="does not exist"):
        target_ref(tmp_path / "nowhere")


def test_staged_app_layout(tmp_path: Path) -> None:
    app = tmp_path / "target"
    (app / "sub").mkdir(parents=True)
    (app / "__main__.py").write_text("pass\n")
    (app / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (app / "sub" / "run.sh").chmod(0o775)
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "x.pyc").write_bytes(b"")
    stage = tmp_path / "stage"
    staged = target._stage_app(app, stage)
    assert app_hash(staged) == app_hash(app)
    layer = layer_from_directory(stage, tmp_path / "app.tar.gz", prefix="opt/probes")
    entries = {entry.name: entry for entry in members(layer.path)}
    assert list(entries) == [
        "opt",
        "opt/probes",
        "opt/probes/pytest_probes",
        "opt/probes/pytest_probes/__init__.py",
        "opt/probes/pytest_probes/target",
        "opt/probes/pytest_probes/target/__main__.py",
        "opt/probes/pytest_probes/target/sub",
        "opt/probes/pytest_probes/target/sub/run.sh",
    ]
    assert entries["opt/probes/pytest_probes/__init__.py"].size == 0
    assert entries["opt/probes/pytest_probes/target/sub/run.sh"].mode == 0o755
    assert entries["opt/probes/pytest_probes/target/__main__.py"].mode == 0o644
    assert entries["opt/probes/pytest_probes/target"].mode == 0o755


def test_target_config_runs_the_app_module() -> None:
    config = images.target_config("localhost/pytest-probes/target:1-abc").to_json([])
    assert config["config"]["Entrypoint"] == ["python3", "-m", "pytest_probes.target"]
    assert "PYTHONPATH=/opt/probes" in config["config"]["Env"]
    assert config["config"]["WorkingDir"] == "/opt/probes"


def test_the_root_filesystem_check_imports_what_the_app_imports() -> None:
    import ast

    import pytest_probes.target
    from pytest_probes.images.target import PYTHON_MODULES_CHECKED

    imported: set[str] = set()
    for source in Path(pytest_probes.target.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module)
    wanted = {m for m in imported if m != "__future__" and not m.startswith("pytest_probes")}
    assert set(PYTHON_MODULES_CHECKED) == wanted
    assert "urllib.request" not in wanted  # its one request is made with http.client


# ---------------------------------------------------------------------------------------------
# Locks, progress, clean-up


def test_build_lock_makes_a_second_builder_wait(tmp_path: Path) -> None:
    lock = tmp_path / "images" / "target.lock"
    waiting = threading.Event()
    got_it = threading.Event()
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        waiting.set()

    def second() -> None:
        with _build.build_lock(lock, progress, "building target image"):
            got_it.set()

    with _build.build_lock(lock, progress, "building target image"):
        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(10), "the second builder did not report that it waits"
        assert not got_it.is_set()
    thread.join(10)
    assert got_it.is_set()
    assert lines == [
        f"building target image: waiting for another run building the same image ({lock})"
    ]


def test_debootstrap_progress_is_grouped_by_phase() -> None:
    lines: list[str] = []
    runner = images.Debootstrap(lines.append, time.monotonic())
    runner.line("I: Retrieving InRelease")
    for package in ("libc6", "bash", "coreutils", "python3.11-minimal"):
        runner.line(f"I: Retrieving {package} 1.0")
        runner.line(f"I: Validating {package} 1.0")
    runner.line("W: something to keep for the error message")
    runner.line("I: Extracting bash...")
    runner.line("I: Extracting coreutils...")
    runner.line("I: Base system installed successfully.")
    assert [line.split(": ", 2)[2].rsplit(" (", 1)[0] for line in lines] == [
        "Retrieving InRelease",
        "Extracting bash...",
        "Base system installed successfully.",
    ]
    assert all(line.startswith("building target image: debootstrap bookworm: ") for line in lines)
    assert "W: something to keep for the error message" in runner.lines


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")
def test_remove_tree_unmounts_instead_of_deleting_through_mounts(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("keep me\n")
    build = tmp_path / "build"
    (build / "rootfs" / "proc").mkdir(parents=True)
    (build / "rootfs" / "mnt").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(build / "rootfs" / "proc")], check=True)
    subprocess.run(["mount", "--bind", str(precious), str(build / "rootfs" / "mnt")], check=True)
    try:
        assert len(_build.mounts_below(build)) == 2
        _build.remove_tree(build)
        assert not build.exists()
        assert (precious / "keep").read_text() == "keep me\n"
    finally:
        for point in _build.mounts_below(tmp_path):
            subprocess.run(["umount", "--lazy", point], check=False)


# ---------------------------------------------------------------------------------------------
# The pause program and image


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


@pytest.fixture(scope="module")
def pause_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[images.BuiltImage, Path]:
    cache = tmp_path_factory.mktemp("cache")
    built = build_pause_image(cache)
    binary = tmp_path_factory.mktemp("pause") / "pause"
    files = read_archive(built.archive)
    manifest = json.loads(files["manifest.json"])[0]
    with tarfile.open(fileobj=io.BytesIO(files[manifest["Layers"][0]]), mode="r:gz") as layer:
        handle = layer.extractfile("pause")
        assert handle is not None
        binary.write_bytes(handle.read())
    binary.chmod(0o755)
    return built, binary


@needs_gcc
def test_pause_image_archive(pause_build: tuple[images.BuiltImage, Path], tmp_path: Path) -> None:
    built, binary = pause_build
    assert built.ref == PAUSE_REF == "localhost/pytest-probes/pause:3.10"
    assert built.archive.parent.name == "images"
    assert not built.cached
    files = read_archive(built.archive)
    manifest = json.loads(files["manifest.json"])[0]
    [layer_name] = manifest["Layers"]
    with tarfile.open(fileobj=io.BytesIO(files[layer_name]), mode="r:gz") as layer:
        [entry] = layer.getmembers()
    assert (entry.name, entry.mode, entry.uid, entry.gid) == ("pause", 0o755, 0, 0)
    config = json.loads(files[manifest["Config"]])
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert config["config"]["User"] == "65535:65535"
    assert not has_program_interpreter(binary), "pause is not statically linked"
    done = subprocess.run([str(binary), "-v"], capture_output=True, text=True, timeout=10)
    assert (done.returncode, done.stdout) == (0, "pytest-probes-pause 3.10\n")

    again = build_pause_image(built.archive.parent.parent)
    assert again.cached and again.archive == built.archive


@needs_gcc
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_pause_exits_0_on_sigterm_and_sigint(
    pause_build: tuple[images.BuiltImage, Path], signo: int
) -> None:
    _, binary = pause_build
    process = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.3)  # It blocks.
        process.send_signal(signo)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        assert process.stdout.read() == "pause: shutting down\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def has_program_interpreter(binary: Path) -> bool:
    """Whether a 64-bit little-endian ELF file asks for a dynamic loader (a PT_INTERP header)."""
    data = binary.read_bytes()
    assert data[:6] == b"\x7fELF\x02\x01"
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    types = [
        int.from_bytes(data[phoff + i * phentsize : phoff + i * phentsize + 4], "little")
        for i in range(phnum)
    ]
    return 3 in types  # PT_INTERP


def children_of(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


@needs_gcc
def test_pause_reaps_children_it_inherits(pause_build: tuple[images.BuiltImage, Path]) -> None:
    _, binary = pause_build
    # The shell starts a child, then becomes pause: the child is now pause's, and must be reaped
    # when it exits (otherwise it stays a zombie child forever).
    process = subprocess.Popen(["/bin/sh", "-c", f"sleep 0.5 & exec {binary}"])
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{process.pid}/exe").resolve() != binary.resolve():
            assert time.monotonic() < deadline, "pause did not start"
            time.sleep(0.01)
        assert len(children_of(process.pid)) == 1
        deadline = time.monotonic() + 10
        while children_of(process.pid):
            assert time.monotonic() < deadline, (
                f"pause left child(ren) {children_of(process.pid)} unreaped"
            )
            time.sleep(0.05)
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


@needs_gcc
def test_pause_build_sweeps_what_a_killed_build_left(tmp_path: Path) -> None:
    directory = tmp_path / "images"
    (directory / ".pause-k1ll3d" / "root").mkdir(parents=True)
    (directory / ".pause-3.10-0123.tar.abcd.tmp").write_bytes(b"half an archive")
    (directory / "unrelated.txt").write_text("kept\n")
    built = build_pause_image(tmp_path)
    assert sorted(path.name for path in directory.iterdir()) == [
        built.archive.name,
        "pause.lock",
        "unrelated.txt",
    ]


def test_pause_source_is_shipped_beside_the_module() -> None:
    source = Path(images.__file__).with_name("pause.c")
    assert source.is_file()
    assert stat.S_ISREG(source.stat().st_mode)

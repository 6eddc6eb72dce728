"""Build a kind node image offline, from pinned sources, as ``kind build node-image`` would.

``kind build node-image`` cannot run without a registry: it fetches etcd, CoreDNS, pause, kindnetd
and the storage images with ``ctr content fetch``. This module follows its steps
(``pkg/build/nodeimage/buildcontext.go`` and ``images/base/Dockerfile`` of the pinned kind
release, read from the Go module cache) with ingredients that all come from Debian's packages and
the Go module proxy:

- a Debian root filesystem (debootstrap) with systemd and what kubeadm and kube-proxy use, and
  kind's base files (``images/base/files``: entrypoint, systemd units, kubelet drop-ins);
- containerd, runc and the CNI plugins of the local provider's runtime build
  (:mod:`pytest_probes.binaries.runtime`), and kubeadm, kubelet and kubectl of its
  Kubernetes build (:mod:`pytest_probes.binaries.k8s`);
- the images kubeadm asks for (``kubeadm config images list``): kube-apiserver,
  kube-controller-manager, kube-scheduler and kube-proxy (the Debian root filesystem plus the
  binary), etcd (the etcd Kubernetes' own module graph requires, which is the version of the tag),
  CoreDNS (``github.com/coredns/coredns`` at the tag's version), and the pause image compiled by
  the local provider as containerd's sandbox image. They are imported into the image's containerd
  store, pinned, exactly as kind's importer does (``--label=io.cri-containerd.pinned=pinned
  --all-platforms --no-unpack --digests``), by the same containerd build run on the host;
- no kindnetd (its source is not on the Go module proxy): the node's CNI config is a static
  ``ptp`` + ``host-local`` + ``portmap`` list for the one node's pod range (kind's default pod
  subnet 10.244.0.0/16, whose first /24 the controller manager gives the first node), and
  ``/kind/manifests/default-cni.yaml`` is a ConfigMap that says so. Single-node clusters only.
- no local-path-provisioner: without ``/kind/manifests/default-storage.yaml`` kind installs its
  host-path StorageClass instead.

The image is ``localhost/pytest-probes/kind-node:v<version>-<recipe hash>`` in the local Docker
engine; a cold build takes 15-20 minutes on 2 cores (most of it compiling), a warm one is a lookup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tenacity import wait_fixed

from pytest_probes import images
from pytest_probes._command import run_command
from pytest_probes._locks import file_lock
from pytest_probes._poll import poll
from pytest_probes.binaries import k8s, runtime
from pytest_probes.cluster import Progress, _no_progress
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)

NODE_REPOSITORY = "localhost/pytest-probes/kind-node"
"""The repository of the node images built here."""

KIND_MODULE = "sigs.k8s.io/kind"

NODE_PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "iptables", "iproute2", "conntrack", "kmod",
    "libseccomp2", "procps", "ca-certificates", "ethtool", "socat", "util-linux", "mount",
    "jq",
)  # fmt: skip
"""Debian packages of the node beside ``minbase``: kind's base list (``images/base/Dockerfile``)
less what only storage tests, fuse-overlayfs (rootless) and image pulls use. jq runs in every
container's createContainer hook (``/kind/bin/mount-product-files.sh``)."""

POD_RANGE = "10.244.0.0/24"
"""The first node's pod range under kind's default pod subnet 10.244.0.0/16."""

COREDNS_MODULE = "github.com/coredns/coredns"

RECIPE = "pytest-probes-kind-node-1"
"""Changes whenever what goes into the node image changes, so older images are not reused."""

BUILD_TIMEOUT = 3600.0
"""Seconds the whole build may take (compiling included)."""


def recipe_key(version: str, kind_release: str) -> str:
    """A short hash of everything the image is made of, for its tag."""
    recipe = {
        "recipe": RECIPE,
        "kubernetes": version,
        "kind": kind_release,
        "runtime": [f"{c.name}@{c.version}" for c in runtime.RUNTIME],
        "packages": sorted(NODE_PACKAGES),
        "suite": images.DEBIAN_SUITE,
        "pod_range": POD_RANGE,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def node_image_ref(version: str, kind_release: str) -> str:
    """The reference of the node image for a Kubernetes version (``1.37.2``)."""
    return f"{NODE_REPOSITORY}:v{version}-{recipe_key(version, kind_release)}"


def cni_conflist() -> dict[str, object]:
    """The node's static CNI network: ptp veths, host-local on :data:`POD_RANGE`, hostPorts."""
    return {
        "cniVersion": "1.0.0",
        "name": "pytest-probes",
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "dataDir": "/run/cni-ipam-state",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": POD_RANGE}]],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


DEFAULT_CNI_MANIFEST = f"""\
# pytest-probes' kind node image: kindnetd is not on the Go module proxy, so the node's CNI
# config is static (/etc/cni/net.d/10-pytest-probes.conflist: ptp, host-local on {POD_RANGE},
# portmap). This ConfigMap is what kind applies in its place; it only documents that.
apiVersion: v1
kind: ConfigMap
metadata:
  name: pytest-probes-cni
  namespace: kube-system
data:
  cni: static ptp + host-local {POD_RANGE} + portmap, one node
"""


def containerd_config(sandbox_image: str) -> str:
    """Return the node's containerd config.

    kind's own (``images/base/files/etc/containerd``) with our pause image as the sandbox image
    and without the fuse-overlayfs proxy (rootless only).
    """
    return f"""\
version = 2

[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
    SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = false
"""


def kind_module_dir(release: str, progress: Progress = _no_progress) -> Path:
    """Return the source of the kind release in the Go module cache (downloading it)."""
    env = k8s.go_install_env()
    with tempfile.TemporaryDirectory() as tmp:
        out = k8s.run_go(["go", "mod", "download", "-json", f"{KIND_MODULE}@{release}"],
                           cwd=Path(tmp), env=env, what=f"downloading kind {release}",
                           progress=progress, timeout=600)
    try:
        return Path(json.loads(out)["Dir"])
    except (ValueError, KeyError) as error:
        raise ClusterError(f"`go mod download {KIND_MODULE}@{release}` named no folder: {out}",
                           provider="kind") from error


def image_exists(docker: str, ref: str) -> bool:
    """Whether the Docker engine has the image ``ref``."""
    done = subprocess.run([docker, "image", "inspect", ref], capture_output=True, timeout=60,
                          check=False)
    return done.returncode == 0


def build_node_image(
    requested_version: str | None,
    cache_dir: Path,
    kind_release: str,
    *,
    docker: str = "docker",
    progress: Progress = _no_progress,
) -> str:
    """Build (or find) the offline node image for a Kubernetes version and return its reference.

    Args:
        requested_version: A minor (``1.37``) or pinned version, ``None`` for the default.
        cache_dir: The pytest-probes cache directory.
        kind_release: The kind release whose base files and build steps to follow.
        docker: The docker command.
        progress: Receives progress lines.

    Raises:
        ClusterError: A build step failed; the message names it and keeps the command's stderr.
    """
    version = k8s.resolve_version(requested_version)
    ref = node_image_ref(version, kind_release)
    if image_exists(docker, ref):
        return ref
    folder = cache_dir / "kind-node"
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".build.lock", timeout=BUILD_TIMEOUT, progress=progress,
                   waiting=lambda waited: f"waiting for another node image build "
                   f"({k8s.elapsed(waited)})",
                   held_too_long="another process has been building a node image for over "
                   f"{BUILD_TIMEOUT:.0f} s", interval=k8s.PROGRESS_INTERVAL, poll=1.0):
        if image_exists(docker, ref):
            return ref
        started = time.monotonic()
        _Builder(version, cache_dir, kind_release, docker, progress, folder).build(ref)
        took = time.monotonic() - started
        log.info("built kind node image %s in %.1f s", ref, took)
        progress(f"built kind node image {ref} in {k8s.elapsed(took)}")
    return ref


class _Builder:
    """The steps of one node image build, in a scratch folder removed afterwards."""

    def __init__(self, version: str, cache_dir: Path, kind_release: str, docker: str,
                 progress: Progress, folder: Path) -> None:
        self.version = version
        self.cache_dir = cache_dir
        self.kind_release = kind_release
        self.docker = docker
        self.progress = progress
        self.folder = folder
        self.started = time.monotonic()

    def say(self, what: str) -> None:
        self.progress(f"building kind node image v{self.version}: {what} "
                      f"({k8s.elapsed(time.monotonic() - self.started)})")

    def build(self, ref: str) -> None:
        bins = k8s.ensure_binaries(self.version, self.cache_dir, self.progress,
                                     names=k8s.NODE_IMAGE_BINARIES)
        engine = runtime.ensure_runtime(self.cache_dir, self.progress)
        pause = images.build_pause_image(self.cache_dir, self.progress)
        kind_dir = kind_module_dir(self.kind_release, self.progress)
        work = Path(tempfile.mkdtemp(prefix=".work-", dir=self.folder))
        try:
            rootfs = work / "rootfs"
            self.say("debootstrap of the node's root filesystem")
            images.Debootstrap(self.progress, self.started, what="building kind node image",
                               packages=NODE_PACKAGES).run(rootfs, 1800)
            self.say("writing the base layer of the control-plane images")
            base = images.layer_from_directory(
                rootfs, work / "base.tar.gz", exclude=images.ROOTFS_EXCLUDE, mtime=None,
                owner=None, created_by=f"debootstrap {images.DEBIAN_SUITE} (pytest-probes)")
            archives = self._component_images(bins, base, work)
            archives.append(pause.archive)
            self._install_node(rootfs, kind_dir, bins, engine, pause.ref)
            self._import_images(rootfs, engine, archives, work)
            self._docker_import(rootfs, ref)
        finally:
            self.say("removing the scratch folder")
            shutil.rmtree(work, ignore_errors=True)

    # ---------------------------------------------------------------- images in the node

    def _wanted_images(self, bins: Path) -> list[str]:
        done = run_command([str(bins / "kubeadm"), "config", "images", "list",
                            "--kubernetes-version", f"v{self.version}"],
                           what="asking kubeadm which images it needs", provider="kind",
                           timeout=120, missing="is not built")
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]

    def _component_images(self, bins: Path, base: images.LayerInfo, work: Path) -> list[Path]:
        out: list[Path] = []
        for ref in self._wanted_images(bins):
            name = ref.rpartition("/")[2].partition(":")[0]
            if name == "pause":
                continue  # containerd's sandbox image is the local provider's pause image
            stage = work / f"stage-{name}"
            if name == "coredns":
                binary = self._coredns(ref.rpartition(":")[2], work)
                layers = [self._binary_layer(binary, stage, "coredns", "")]
                config = images.ImageConfig(entrypoint=["/coredns"],
                                            architecture=images.host_architecture())
            else:
                source = bins / name
                if not source.is_file():
                    raise ClusterError(f"kubeadm wants {ref}, but {source} was not built",
                                       provider="kind")
                layers = [base, self._binary_layer(source, stage, name, "usr/local/bin")]
                config = images.ImageConfig(
                    env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                    architecture=images.host_architecture())
            self.say(f"writing {ref}")
            archive = work / f"{name}.tar"
            images.write_oci_archive(archive, ref=ref, layers=layers, config=config)
            out.append(archive)
        return out

    def _binary_layer(self, source: Path, stage: Path, name: str, prefix: str
                      ) -> images.LayerInfo:
        target = stage / "tree"
        target.mkdir(parents=True)
        shutil.copy2(source, target / name)
        (target / name).chmod(0o755)
        return images.layer_from_directory(target, stage / "layer.tar.gz", prefix=prefix,
                                           created_by=f"pytest-probes: {name}")

    def _coredns(self, tag: str, work: Path) -> Path:
        out = self.cache_dir / "kind-node" / "coredns" / tag
        binary = out / "coredns"
        if os.access(binary, os.X_OK):
            return binary
        self.say(f"building CoreDNS {tag} from the Go module proxy")
        env = k8s.go_install_env()
        env["CGO_ENABLED"] = "0"
        env["GOBIN"] = str(work / "gobin")
        k8s.run_go(["go", "install", "-trimpath", "-ldflags", "-s -w",
                      f"{COREDNS_MODULE}@{tag}"], cwd=work, env=env,
                     what=f"compiling CoreDNS {tag}", progress=self.progress,
                     timeout=BUILD_TIMEOUT)
        out.mkdir(parents=True, exist_ok=True)
        os.replace(work / "gobin" / "coredns", binary)
        return binary

    # ---------------------------------------------------------------- the node's files

    def _install_node(self, rootfs: Path, kind_dir: Path, bins: Path,
                      engine: runtime.RuntimeBins, pause_ref: str) -> None:
        self.say("installing kind's base files, the runtime and Kubernetes")
        files = kind_dir / "images" / "base" / "files"
        shutil.copytree(files, rootfs, dirs_exist_ok=True, copy_function=shutil.copyfile)
        # The module cache is read-only, and copytree copies its folders' modes: make them
        # 0755 as kind's Dockerfile has them.
        for walked, _dirs, _files in os.walk(files):
            (rootfs / Path(walked).relative_to(files)).chmod(0o755)
        for script in [*(rootfs / "usr/local/bin").iterdir(), *(rootfs / "kind/bin").iterdir()]:
            script.chmod(0o755)
        for folder in (rootfs / "kind", rootfs / "kind/bin"):
            folder.chmod(0o755)
        _systemd_like_kind(rootfs)
        copies: Mapping[Path, Sequence[Path]] = {
            rootfs / "usr/local/bin": [engine.containerd, engine.ctr,
                                       engine.containerd_dir / "containerd-shim-runc-v2"],
            rootfs / "usr/local/sbin": [engine.runc],
            rootfs / "opt/cni/bin": [engine.cni_dir / p for p in
                                     ("host-local", "loopback", "ptp", "portmap", "bridge")],
            rootfs / "usr/bin": [bins / "kubeadm", bins / "kubelet", bins / "kubectl"],
        }
        for folder, sources in copies.items():
            folder.mkdir(parents=True, exist_ok=True)
            for source in sources:
                shutil.copy2(source, folder / source.name)
        (rootfs / "etc/containerd/config.toml").write_text(containerd_config(pause_ref))
        (rootfs / "etc/containerd/cri-base.json").write_text(
            json.dumps(_cri_base_spec(engine.ctr), indent=2))
        (rootfs / "etc/cni/net.d").mkdir(parents=True, exist_ok=True)
        (rootfs / "etc/cni/net.d/10-pytest-probes.conflist").write_text(
            json.dumps(cni_conflist(), indent=2))
        (rootfs / "etc/kubernetes/manifests").mkdir(parents=True, exist_ok=True)
        (rootfs / "kind/version").write_text(f"v{self.version}")
        (rootfs / "kind/manifests").mkdir(parents=True, exist_ok=True)
        (rootfs / "kind/manifests/default-cni.yaml").write_text(DEFAULT_CNI_MANIFEST)
        for host_file in ("etc/resolv.conf", "etc/hostname"):
            (rootfs / host_file).unlink(missing_ok=True)

    def _import_images(self, rootfs: Path, engine: runtime.RuntimeBins,
                       archives: Sequence[Path], work: Path) -> None:
        """Import the archives into the node's containerd store with the same containerd."""
        self.say("importing the images into the node's containerd store")
        socket = work / "c.sock"
        config = work / "containerd.toml"
        config.write_text(
            "version = 4\n"
            f'root = "{rootfs / "var/lib/containerd"}"\n'
            f'state = "{work / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", '
            '"io.containerd.cri.v1.images", "io.containerd.nri.v1.nri"]\n'
            "[plugins.'io.containerd.server.v1.grpc']\n"
            f'  address = "{socket}"\n'
            "[plugins.'io.containerd.server.v1.ttrpc']\n"
            f'  address = "{socket}.ttrpc"\n'
        )
        with open(work / "containerd.log", "wb") as out:
            daemon = subprocess.Popen([str(engine.containerd), "--config", str(config)],
                                      stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)

        def answers() -> bool:
            return subprocess.run([str(engine.ctr), "--address", str(socket), "version"],
                                  capture_output=True, check=False).returncode == 0

        try:
            if not poll(answers, until=lambda up: up or daemon.poll() is not None, timeout=60,
                        wait=wait_fixed(0.2)):
                raise ClusterError(
                    f"containerd for the image import did not start: "
                    f"{(work / 'containerd.log').read_text(errors='replace')[-2000:]}",
                    provider="kind")
            for archive in archives:
                run_command([str(engine.ctr), "--address", str(socket), "--namespace", "k8s.io",
                             "images", "import", "--label=io.cri-containerd.pinned=pinned",
                             "--all-platforms", "--no-unpack", "--digests", str(archive)],
                            what=f"importing {archive.name} into the node image",
                            provider="kind", timeout=600)
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()

    def _docker_import(self, rootfs: Path, ref: str) -> None:
        self.say(f"docker import as {ref}")
        changes = ['ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
                   "ENV container=docker"]
        tar = subprocess.Popen(["tar", "--numeric-owner", "--exclude=./dev/*",
                                "--exclude=./proc/*", "--exclude=./sys/*", "-C", str(rootfs),
                                "-cf", "-", "."], stdout=subprocess.PIPE)
        argv = [self.docker, "import"]
        for change in changes:
            argv += ["--change", change]
        argv += ["-", ref]
        try:
            done = subprocess.run(argv, stdin=tar.stdout, capture_output=True, text=True,
                                  timeout=1800, check=False)
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait()
        if done.returncode != 0 or tar.returncode != 0:
            raise ClusterError(
                f"`{' '.join(argv)}` failed (exit {done.returncode}, tar {tar.returncode}): "
                f"{done.stderr.strip()[-2000:]}", provider="kind", command=argv,
                returncode=done.returncode, stderr_tail=done.stderr.strip()[-2000:])


def _systemd_like_kind(rootfs: Path) -> None:
    """Do to systemd what kind's base Dockerfile does.

    No units a container must not run; kubelet, containerd and undo-mount-hacks enabled; binfmt
    masked; no kernel log in the journal.
    """
    lib = rootfs / "lib/systemd/system"
    (lib / "sysinit.target.wants/systemd-tmpfiles-setup.service").unlink(missing_ok=True)
    for pattern in ("multi-user.target.wants/*", "local-fs.target.wants/*",
                    "sockets.target.wants/*udev*", "sockets.target.wants/*initctl*",
                    "basic.target.wants/*"):
        for path in lib.glob(pattern):
            path.unlink(missing_ok=True)
    for path in (rootfs / "etc/systemd/system").glob("*.wants/*"):
        path.unlink(missing_ok=True)
    with open(rootfs / "etc/systemd/journald.conf", "a", encoding="utf-8") as conf:
        conf.write("ReadKMsg=no\n")
    wants = rootfs / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit in ("kubelet.service", "containerd.service", "undo-mount-hacks.service"):
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    masked = rootfs / "etc/systemd/system/systemd-binfmt.service"
    masked.unlink(missing_ok=True)
    masked.symlink_to("/dev/null")
    init = rootfs / "sbin/init"
    if not init.exists() and not init.is_symlink():
        init.symlink_to("/usr/lib/systemd/systemd")


def _cri_base_spec(ctr: Path) -> dict[str, object]:
    """Kind's ``cri-base.json``: ``ctr oci spec`` with its product-files hook and no rlimits."""
    done = run_command([str(ctr), "oci", "spec"], what="writing the base OCI spec",
                       provider="kind", timeout=60, missing="is not built")
    spec: dict[str, object] = json.loads(done.stdout)
    hooks = spec.setdefault("hooks", {})
    assert isinstance(hooks, dict)
    hooks.setdefault("createContainer", []).append({"path": "/kind/bin/mount-product-files.sh"})
    process = spec.get("process")
    if isinstance(process, dict):
        process.pop("rlimits", None)
    return spec

"""The ``kind`` provider: a Kubernetes-in-Docker cluster made by the ``kind`` binary.

pytest-probes drives ``kind`` directly instead of going through pytest-kind (the ``pytest_kind``
module of the ``pytest-kind`` and ``pytest-kind-ng`` distributions): both default to kind v0.17.0,
which cannot create current Kubernetes, download kind and kubectl at run time, and register
unprefixed options (``--cluster-name``, ``--keep-cluster``, ``--kubeconfig``). Driving the binary
costs a few subprocess calls and keeps the pins here.

The kind release and, per Kubernetes minor, the ``kindest/node`` image by digest are pinned as
published in that release's notes (kind supports a node image only with the release that built
it). A kind binary on ``PATH``, or the one named by ``$PYTEST_PROBES_KIND``, is used as is; when
it is another release whose images are listed here, those images are used.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_probes import images
from pytest_probes._command import run_command
from pytest_probes.binaries import k8s
from pytest_probes.cluster import (
    KIND_ENV,
    Cluster,
    ClusterConfig,
    Progress,
    _no_progress,
    node_runtime,
    trusted_cache_dir,
    version_key,
)
from pytest_probes.cluster_settings import ClusterSettings, refused_gates
from pytest_probes.errors import ClusterError, UnsupportedSettings
from pytest_probes.providers.kind_ready import wait_until_serving

log = logging.getLogger(__name__)

DOCKER_ENV = "PYTEST_PROBES_DOCKER"
"""Environment variable naming the docker binary to use instead of ``docker`` on ``PATH``."""

PINNED_KIND = "v0.33.0"
"""The kind release the provider is tested with; the CI installs exactly this one."""

NODE_IMAGES: Mapping[str, Mapping[str, str]] = {
    # https://github.com/kubernetes-sigs/kind/releases/tag/v0.32.0 ("Images pre-built for this
    # release"): the newest release with a 1.33 image.
    "v0.32.0": {
        "1.33": "kindest/node:v1.33.12@sha256:"
        "3f5c8443c620245e4d355cfe09e96a91ead32ceaa569d3f1ca9edf0cb2fe2ff4",
        "1.34": "kindest/node:v1.34.8@sha256:"
        "02722c2dedddcfc00febf5d27fbeb9b7b2c14294c82109ff4a85d89ac9ba3256",
        "1.35": "kindest/node:v1.35.5@sha256:"
        "ce977ae6d65918d0b58a5f8b5e940429c2ce42fa3a5619ec2bbc60b949c0ac95",
        "1.36": "kindest/node:v1.36.1@sha256:"
        "3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
    },
    # https://github.com/kubernetes-sigs/kind/releases/tag/v0.33.0: no 1.33 image any more. Its
    # default (pkg/apis/config/defaults/image.go in the v0.33.0 module) is the 1.37 one.
    "v0.33.0": {
        "1.34": "kindest/node:v1.34.11@sha256:"
        "44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
        "1.35": "kindest/node:v1.35.8@sha256:"
        "07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        "1.36": "kindest/node:v1.36.4@sha256:"
        "099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "1.37": "kindest/node:v1.37.0@sha256:"
        "a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    },
}
"""kind release → Kubernetes minor → node image by digest, as in that release's notes."""

KIND_RELEASE_FOR: Mapping[str, str] = {
    **{minor: PINNED_KIND for minor in NODE_IMAGES[PINNED_KIND]},
    # kind v0.33.0 publishes no 1.33 image: 1.33 runs with kind v0.32.0 and its image, as kind's
    # release notes pair them (a node image is built for the kind release that lists it).
    "1.33": "v0.32.0",
}
"""Kubernetes minor → the kind release the workflow runs it with."""

SUPPORTED_MINORS: tuple[str, ...] = tuple(sorted(KIND_RELEASE_FOR, key=version_key))
"""The Kubernetes minors some tested kind release has an image for, oldest first."""

DEFAULT_MINOR = SUPPORTED_MINORS[-1]

INSTALL_HINT = (
    f"install kind {PINNED_KIND}: `curl -Lo /usr/local/bin/kind "
    f"https://kind.sigs.k8s.io/dl/{PINNED_KIND}/kind-linux-amd64 && chmod +x /usr/local/bin/kind` "
    f"(or `go install sigs.k8s.io/kind@{PINNED_KIND}`), or name a kind binary in ${KIND_ENV}"
)

CREATE_TIMEOUT = 600.0
"""Seconds ``kind create cluster`` may take (it pulls the node image on first use)."""

COMMAND_TIMEOUT = 120.0
"""Seconds any other kind or docker command may take."""

BUILD_TIMEOUT = 900.0
"""Seconds ``docker build`` of the target image may take."""

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
_KIND_VERSION_RE = re.compile(r"\bv(\d+\.\d+\.\d+)")


def node_image(requested: str | None, kind_release: str = PINNED_KIND) -> str:
    """Return the pinned node image (by digest) for a requested Kubernetes version.

    Args:
        requested: ``None`` for the newest supported minor, a minor (``1.34``) or the exact
            patch version of the pinned image (``1.34.8``).
        kind_release: The kind release whose images to choose from.

    Raises:
        ClusterError: The version has no image for that kind release; the message lists the
            known ones.
    """
    images = NODE_IMAGES.get(kind_release, NODE_IMAGES[PINNED_KIND])
    if requested is None or not requested.strip():
        newest = max(images, key=version_key)
        return images[newest]
    text = requested.strip()
    match = _VERSION_RE.match(text)
    if match is not None:
        image = images.get(f"{match.group(1)}.{match.group(2)}")
        if image is not None and (match.group(3) is None or image_version(image) ==
                                  text.lstrip("v")):
            return image
    known = ", ".join(f"{minor} (= {image_version(image)})"
                      for minor, image in sorted(images.items(), key=lambda i: version_key(i[0])))
    other = ""
    if match is not None:
        minor = f"{match.group(1)}.{match.group(2)}"
        release = KIND_RELEASE_FOR.get(minor)
        if release is not None and release != kind_release:
            other = f"; for {minor} install kind {release}, whose notes list an image for it"
    raise ClusterError(
        f"kind {kind_release} has no node image for Kubernetes {requested!r}: the known versions "
        f"are {known}. Pass one of those as --probes-k8s-version{other}",
        provider="kind",
    )


def image_version(image: str) -> str:
    """Return the Kubernetes version in a node image reference (``1.34.8``)."""
    tag = image.partition("@")[0].rpartition(":")[2]
    return tag.lstrip("v")


def target_image_ref() -> str:
    """Return the target image reference on kind: tagged with the package version."""
    return f"{images.TARGET_REPOSITORY}:{images.package_version()}"


@dataclass(frozen=True)
class Tools:
    """The kind and docker executables, and the kind release."""

    kind: str
    docker: str
    release: str

    @classmethod
    def find(cls) -> Tools:
        """Locate kind (``$PYTEST_PROBES_KIND`` or ``PATH``) and docker, and ask kind its release.

        Raises:
            ClusterError: kind is not installed (the message gives the install command).
        """
        kind = kind_binary()
        docker = docker_binary()
        done = run([kind, "version"], what="asking kind its version")
        found = _KIND_VERSION_RE.search(done.stdout)
        release = f"v{found.group(1)}" if found else "unknown"
        return cls(kind=kind, docker=docker, release=release)

    @property
    def images_release(self) -> str:
        """The kind release whose node images are used: kind's own if known, else the pin."""
        return self.release if self.release in NODE_IMAGES else PINNED_KIND


def kind_binary() -> str:
    """Locate kind: ``$PYTEST_PROBES_KIND`` or ``kind`` on ``PATH``.

    Raises:
        ClusterError: kind is not installed (the message gives the install command).
    """
    named = os.environ.get(KIND_ENV)
    kind = shutil.which(named) if named else shutil.which("kind")
    if kind is None:
        where = f"${KIND_ENV}={named} is not an executable" if named else "kind is not on PATH"
        raise ClusterError(f"the kind provider needs kind: {where}; {INSTALL_HINT}",
                           provider="kind")
    return kind


def docker_binary() -> str:
    """Locate docker: ``$PYTEST_PROBES_DOCKER`` or ``docker`` on ``PATH`` (else ``docker``)."""
    return shutil.which(os.environ.get(DOCKER_ENV) or "docker") or "docker"


def run(
    command: Sequence[str], *, what: str, timeout: float = COMMAND_TIMEOUT, hint: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run a command; raise a :class:`ClusterError` keeping command, exit code and stderr tail."""
    return run_command(command, what=what, timeout=timeout, hint=hint, provider="kind",
                       missing="is not installed")


DEAD_INSTANCES_KEPT = 2
"""Exited instances the kubelet keeps per container, as the local provider's kubelet does
(``providers/local/node/kubelet.py`` ``DEAD_INSTANCES_KEPT``: with the default 1 its container GC
can skip a crash-loop back-off step)."""

OFFLINE = "offline"
"""The ``--probes-kind-node-image`` value that builds the node image here, from pinned sources."""


def host_is_cgroup_v1(root: Path = Path("/sys/fs/cgroup")) -> bool:
    """Whether the host runs cgroup v1 (no unified hierarchy at the cgroup mount)."""
    return not (root / "cgroup.controllers").exists()


# kind's own patch for nodes before 1.24 (``pkg/build/nodeimage/containerd.go`` in kind v0.33.0),
# in the config version 2 form of kind's node images.
CONTAINERD_CGROUPFS_PATCH = """\
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler.options]
  SystemdCgroup = false
"""


def kind_config(user: Mapping[str, Any] | None, *, cgroup_v1: bool,
                settings: ClusterSettings | None = None) -> dict[str, Any]:
    """The kind cluster config: the user's, with ours merged over it.

    A configured cluster's ``settings`` (a test's ``probes_cluster`` marker) go where kind takes
    them: the feature gates into kind's ``featureGates`` (kind sets them on the kubelet and the
    control plane's components), the kubelet settings as a ``KubeletConfiguration`` kubeadm
    patch after ours.

    Ours adds kubeadm patches: the kubelet keeps :data:`DEAD_INSTANCES_KEPT` exited instances per
    container (a kubelet flag: a ``kubeletExtraArgs`` entry, a map in kubeadm's v1beta3 that kind
    uses before 1.36, a list of name/value pairs in v1beta4), and on a cgroup v1 host
    ``failCgroupV1: false`` (kubelets from 1.35 refuse cgroup v1 otherwise; kind does not set it)
    and the cgroupfs driver for the kubelet and containerd, which kind itself uses before 1.24
    (``kubeadm/config.go``; ``nodeimage/containerd.go`` for the containerd patch). On cgroup v1,
    runc's systemd driver freezes the container's cgroup to apply its device rules at every start
    (``opencontainers/cgroups`` ``systemd/devices.go``, ``freezeBeforeSet``); under load the
    freezer stays FREEZING and the start fails with ``unable to freeze``, a StartError that the
    kubelet answers with a back-off (seen in CI with 16 workers on 2 cores). The cgroupfs driver
    writes device rules without freezing.
    The user's patches come first, so ours win where both set a field; the user's other keys
    (feature gates, networking, nodes, containerd patches) stay.

    Args:
        user: The user's config (``kind: Cluster``), or ``None``.
        cgroup_v1: Whether the host runs cgroup v1.
        settings: A configured cluster's feature gates and kubelet settings, or ``None``.

    Raises:
        ClusterError: The user's config is not a kind Cluster config.
    """
    config: dict[str, Any] = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4"}
    if user is not None:
        if user.get("kind", "Cluster") != "Cluster":
            raise ClusterError(
                f"the kind config given with --probes-kind-config has kind {user.get('kind')!r}; "
                "expected kind: Cluster (apiVersion kind.x-k8s.io/v1alpha4)",
                provider="kind",
            )
        config.update({k: v for k, v in user.items() if k not in ("kind", "apiVersion")})
    flag = {"name": "maximum-dead-containers-per-container", "value": str(DEAD_INSTANCES_KEPT)}
    ours = [
        yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": kind_name,
                        "nodeRegistration": {"kubeletExtraArgs": {flag["name"]: flag["value"]}}})
        for kind_name in ("InitConfiguration", "JoinConfiguration")
    ] + [
        yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": kind_name,
                        "nodeRegistration": {"kubeletExtraArgs": [flag]}})
        for kind_name in ("InitConfiguration", "JoinConfiguration")
    ]
    if cgroup_v1:
        ours.append(yaml.safe_dump({"kind": "KubeletConfiguration", "failCgroupV1": False,
                                    "cgroupDriver": "cgroupfs"}))
        config["containerdConfigPatches"] = [*list(config.get("containerdConfigPatches") or []),
                                             CONTAINERD_CGROUPFS_PATCH]
    if settings is not None and settings.feature_gates:
        config["featureGates"] = {**dict(config.get("featureGates") or {}), **settings.gates}
    if settings is not None and settings.kubelet_json:
        ours.append(yaml.safe_dump({"kind": "KubeletConfiguration", **settings.kubelet_config}))
    config["kubeadmConfigPatches"] = [*list(config.get("kubeadmConfigPatches") or []), *ours]
    return config


def check_gates(config: ClusterConfig, version: str) -> None:
    """Refuse a configuration whose feature gates the node image's Kubernetes does not have.

    Asks that version's ``kube-scheduler`` (:func:`k8s.feature_gate_problem`) when the cache has
    it (an offline node image is built from those binaries); without it the check is left to
    ``kind create``, whose failure names the gate.

    Raises:
        UnsupportedSettings: A gate does not exist in this version, or is locked.
    """
    bins = k8s.bin_dir(config.cache_dir, version)
    if not config.settings.feature_gates or not (bins / "kube-scheduler").is_file():
        return
    problem = k8s.feature_gate_problem(bins, config.settings.gates)
    if problem is not None:
        raise UnsupportedSettings(refused_gates(problem, version), provider="kind")


def read_kind_config(path: Path) -> dict[str, Any]:
    """Read a user's kind config file.

    Raises:
        ClusterError: The file cannot be read or is not a YAML mapping.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ClusterError(f"cannot read the kind config {path}: {error}",
                           provider="kind") from error
    if not isinstance(data, dict):
        raise ClusterError(f"the kind config {path} is not a YAML mapping (kind: Cluster ...)",
                           provider="kind")
    return data


def running_node_image(docker: str, cluster: str) -> str:
    """The image the control-plane node of a running kind cluster was created from, or ``""``."""
    try:
        done = subprocess.run([docker, "inspect", "--format", "{{.Config.Image}}",
                               f"{cluster}-control-plane"], capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def node_has_image(docker: str, cluster: str, ref: str) -> bool:
    """Whether the control-plane node of kind cluster ``cluster`` holds the image ``ref``."""
    try:
        done = subprocess.run([docker, "exec", f"{cluster}-control-plane", "ctr", "--namespace",
                               "k8s.io", "images", "list", "--quiet"], capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and ref in done.stdout.split()


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, mode 0600 from the start.

    Every xdist worker writes the kubeconfig while the others may be reading it: a file truncated
    in place reads as empty for a moment ("Invalid kube-config ... file is empty").
    """
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates it 0600
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def kubeconfig_path(cache_dir: Path, name: str) -> Path:
    """Where the kubeconfig of kind cluster ``name`` is written (never ``~/.kube/config``)."""
    return cache_dir / "kind" / name / "kubeconfig"


class KindProvider:
    """Creates or reuses a kind cluster by name (see the module docstring)."""

    name = "kind"

    def up(self, config: ClusterConfig, progress: Progress = _no_progress) -> Cluster:
        """Reuse the kind cluster ``config.name`` if it exists, or create it from a pinned image.

        Raises:
            UnsupportedSettings: The node image's version refuses a feature gate of
                ``config.settings`` (checked when its binaries are in the cache, as for an
                offline node image; otherwise ``kind create`` says so).
            ClusterError: kind is missing, the version has no pinned image, creation failed, or
                a running cluster of that name has another Kubernetes minor.
        """
        trusted_cache_dir(config.cache_dir)
        tools = Tools.find()
        if tools.release != PINNED_KIND:
            progress(f"kind {tools.release} at {tools.kind} is not the pinned {PINNED_KIND}; "
                     f"using the node images of kind {tools.images_release}")
        image = self._image(config, tools, progress)
        check_gates(config, image_version(image))
        kubeconfig = kubeconfig_path(config.cache_dir, config.name)
        kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        existing = run([tools.kind, "get", "clusters"], what="listing kind clusters").stdout
        created = config.name not in existing.split()
        start = time.monotonic()
        if created:
            user = read_kind_config(config.kind_config) if config.kind_config else None
            cluster_config = kubeconfig.parent / "kind-config.yaml"
            cluster_config.write_text(
                yaml.safe_dump(kind_config(user, cgroup_v1=host_is_cgroup_v1(),
                                           settings=config.settings)))
            progress(f"creating kind cluster {config.name} from {image}")
            try:
                run([tools.kind, "create", "cluster", "--name", config.name, "--image", image,
                     "--config", str(cluster_config), "--kubeconfig", str(kubeconfig),
                     "--wait", "120s"],
                    what=f"creating kind cluster {config.name}", timeout=CREATE_TIMEOUT,
                    hint="See `kind create cluster --help`; is the Docker engine running?")
            except ClusterError:
                # kind removes the node containers of a failed create; the config is ours.
                shutil.rmtree(kubeconfig.parent, ignore_errors=True)
                raise
            log.info("created kind cluster %s in %.1f s", config.name, time.monotonic() - start)
        if not created:
            # The image of the cluster that runs, whatever this run would have chosen.
            image = running_node_image(tools.docker, config.name) or image
        text = run([tools.kind, "get", "kubeconfig", "--name", config.name],
                   what=f"reading the kubeconfig of kind cluster {config.name}").stdout
        _write_private(kubeconfig, text)
        if not created:
            # Its containers may have just been started again by the Docker engine.
            wait_until_serving(tools.docker, config.name, kubeconfig, progress)
        cluster = Cluster(
            name=config.name, provider=self.name, kubeconfig=kubeconfig,
            k8s_version=_server_version(kubeconfig, config.name), created=created,
            image_loader=ArchiveLoader(tools.kind, config.name), node_image=image,
            settings=config.settings,
        )
        cluster = dataclasses.replace(cluster, runtime=node_runtime(cluster))
        if not created and config.k8s_version is not None:
            wanted = image_version(image).rpartition(".")[0]
            running = cluster.k8s_version.lstrip("v").rpartition(".")[0]
            if running != wanted:
                raise ClusterError(
                    f"kind cluster {config.name} runs Kubernetes {cluster.k8s_version}, not "
                    f"{config.k8s_version}: delete it (`kind delete cluster --name "
                    f"{config.name}`) or pick another --probes-cluster-name",
                    provider=self.name,
                )
        return cluster

    def _image(self, config: ClusterConfig, tools: Tools, progress: Progress) -> str:
        """The node image: pinned by digest, given by the user, or built here (offline)."""
        if config.kind_node_image is None:
            return node_image(config.k8s_version, tools.images_release)
        if config.kind_node_image == OFFLINE:
            from pytest_probes.providers.kind_node_image import build_node_image

            return build_node_image(config.k8s_version, config.cache_dir, PINNED_KIND,
                                    docker=tools.docker, progress=progress)
        image = config.kind_node_image
        version = run([tools.docker, "run", "--rm", "--entrypoint", "cat", image,
                       "/kind/version"], what=f"reading the Kubernetes version of {image}",
                      hint="Is it a kind node image, present in the Docker engine?").stdout
        progress(f"node image {image} given as is (Kubernetes {version.strip()}): the pinned "
                 "digests are not used")
        return image

    def ensure_target_image(self, cluster: Cluster, progress: Progress = _no_progress) -> str:
        """Build the target image with ``docker build`` and load it into the cluster's nodes.

        The image is tagged with the package version; ``kind load docker-image`` skips nodes
        that already hold the same image ID.

        Raises:
            ClusterError: The build or the load failed.
        """
        kind = kind_binary()
        from pytest_probes.providers.kind_node_image import NODE_REPOSITORY

        node = cluster.node_image or running_node_image(docker_binary(), cluster.name)
        if node.startswith(NODE_REPOSITORY + ":"):
            # Built offline: no base image to `docker build` from either. The local provider's
            # target image archive (a Debian root filesystem made with debootstrap) is loaded.
            built = images.build_target_image(cluster.kubeconfig.parent.parent.parent, progress)
            if not node_has_image(docker_binary(), cluster.name, built.ref):
                progress(f"loading {built.ref} into kind cluster {cluster.name}")
                ArchiveLoader(kind, cluster.name)(built.archive)
            return built.ref
        docker = docker_binary()
        ref = target_image_ref()
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="probes-target-") as tmp:
            dockerfile = stage_target_context(Path(tmp))
            progress(f"building target image {ref} with docker build")
            run([docker, "build", "-f", str(dockerfile), "-t", ref, tmp],
                what=f"building {ref}", timeout=BUILD_TIMEOUT,
                hint="Is the Docker engine running (`docker info`)?")
        progress(f"loading {ref} into kind cluster {cluster.name}")
        run([kind, "load", "docker-image", ref, "--name", cluster.name],
            what=f"loading {ref} into kind cluster {cluster.name}", timeout=BUILD_TIMEOUT)
        log.info("target image %s ready on kind cluster %s in %.1f s", ref, cluster.name,
                 time.monotonic() - start)
        return ref

    def down(self, cluster: Cluster, progress: Progress = _no_progress) -> None:
        """Delete the kind cluster (only called for a cluster this run created, unless kept).

        Raises:
            ClusterError: ``kind delete cluster`` failed.
        """
        run([kind_binary(), "delete", "cluster", "--name", cluster.name, "--kubeconfig",
             str(cluster.kubeconfig)], what=f"deleting kind cluster {cluster.name}",
            timeout=CREATE_TIMEOUT)
        if cluster.kubeconfig.parent.parent.name == "kind":  # ours, not a user's file
            shutil.rmtree(cluster.kubeconfig.parent, ignore_errors=True)
        progress(f"deleted kind cluster {cluster.name}")


def stage_target_context(directory: Path) -> Path:
    """Copy the target app and its Dockerfile into a small build context; return the Dockerfile.

    The context holds only ``pytest_probes/target``, so an installed package builds as well as a
    checkout does.
    """
    app = images.default_app_dir()
    dest = directory / "pytest_probes" / "target"
    shutil.copytree(app, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest / "Dockerfile"


@dataclass(frozen=True)
class ArchiveLoader:
    """``Cluster.load_image`` on kind: ``kind load image-archive ARCHIVE --name NAME``."""

    kind: str
    cluster: str

    def __call__(self, archive: Path) -> list[str]:
        """Load the archive into every node; return the image references it carried."""
        refs = images.archive_refs(archive)
        run([self.kind, "load", "image-archive", str(archive), "--name", self.cluster],
            what=f"loading {archive} into kind cluster {self.cluster}", timeout=BUILD_TIMEOUT)
        return refs


def _server_version(kubeconfig: Path, name: str) -> str:
    from kubernetes import client, config

    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), persist_config=False)
    try:
        info = client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as err:
        raise ClusterError(
            f"kind cluster {name} is up but its API server does not answer /version ({err}); "
            f"check `kind get clusters` and `docker ps`",
            provider="kind",
        ) from err
    finally:
        api.close()
    return str(info.git_version)

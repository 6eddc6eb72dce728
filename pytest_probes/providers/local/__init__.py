"""The ``local`` provider: a real single-node Kubernetes run as plain host processes.

Like upstream's ``hack/local-up-cluster.sh``, it runs etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and a kubelet (with its own containerd and a CNI bridge)
directly on the host, with no Docker engine. The Kubernetes binaries and the container runtime are
built once per version from the Go module proxy (:mod:`pytest_probes.binaries`) and cached; the
cluster's processes outlive the run that started them, so the next run reuses the cluster. Needs
root on Linux.

Modules: :mod:`.lifecycle` (up, status, faults, down) puts together :mod:`.config` (the
cluster's directory, state file and configs), :mod:`.components` (starting and stopping its
processes), :mod:`.readiness` (the waits for them) and :mod:`.api` (HTTPS to its API server and
etcd); :mod:`.pki` (certificates), :mod:`.controlplane` and :mod:`.node` (command lines and
configs), :mod:`.supervisor` (processes) and :mod:`.image_import` (the pause and target images of
:mod:`pytest_probes.images`, imported into the node's containerd) serve them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from pytest_probes import images
from pytest_probes._extras import require
from pytest_probes.binaries import k8s, runtime
from pytest_probes.cluster import (
    Cluster,
    ClusterConfig,
    Progress,
    _no_progress,
    trusted_cache_dir,
)
from pytest_probes.cluster_settings import refused_gates
from pytest_probes.errors import ClusterError, UnsupportedSettings
from pytest_probes.providers.local import image_import
from pytest_probes.providers.local.config import STATE_FILE, ClusterPaths, clusters_dir
from pytest_probes.providers.local.lifecycle import KubeletRestart, LocalCluster

__all__ = ["KubeletRestart", "LocalCluster", "LocalProvider", "image_loader"]

log = logging.getLogger(__name__)


def _image_loader(socket: str, snapshotter: str, ctr: Path) -> Callable[[Path], list[str]]:
    def load(archive: Path) -> list[str]:
        return image_import.import_archive(
            archive, address=socket, namespace="k8s.io", snapshotter=snapshotter, ctr=str(ctr)
        )

    return load


def image_loader(cache_dir: Path, name: str) -> Callable[[Path], list[str]]:
    """Return the image loader of the running local cluster ``name``.

    Raises:
        ClusterError: The cluster has no readable state file.
    """
    local = LocalCluster(name, cache_dir)
    state = local.read_state()
    if state is None:
        raise ClusterError(
            f"local cluster {name} has no state under {local.paths.root}; run `pytest-probes "
            "cluster up` first",
            provider="local",
        )
    return _image_loader(state.socket, state.snapshotter, runtime.runtime_bins(cache_dir).ctr)


class LocalProvider:
    """Runs a single-node cluster as host processes (see the module docstring)."""

    name = "local"

    def up(self, config: ClusterConfig, progress: Progress = _no_progress) -> Cluster:
        """Reuse the running local cluster of ``config.name``, or create it.

        A running cluster is reused when its version is the one asked for (any version when
        ``config.k8s_version`` is ``None``) and its settings are ``config.settings``; another
        version or other settings under the same name are an error.

        Raises:
            UnsupportedSettings: The version's components refuse a feature gate of
                ``config.settings`` (it does not exist in this version, or is locked).
            ClusterError: The local extra is not installed (said before anything is built), or
                the cluster could not be built, started or reused.
        """
        require("local", needed_by="the local provider", provider=self.name)
        trusted_cache_dir(config.cache_dir)
        self.check_settings(config, progress)
        local = LocalCluster(config.name, config.cache_dir)
        state, created = local.up(config.k8s_version, progress, settings=config.settings)
        version = local.server_version(state)
        if not version:
            raise ClusterError(
                f"local cluster {config.name} is up but its API server does not answer /version",
                provider=self.name,
            )
        ctr = runtime.runtime_bins(config.cache_dir).ctr
        load = _image_loader(state.socket, state.snapshotter, ctr)
        return Cluster(
            name=config.name,
            provider=self.name,
            kubeconfig=local.paths.kubeconfig,
            k8s_version=version,
            created=created,
            image_loader=load,
            runtime=state.runtime,
            settings=state.settings,
        )

    def check_settings(self, config: ClusterConfig, progress: Progress = _no_progress) -> None:
        """Check that the version's components accept ``config.settings``' feature gates.

        Asks the version's binaries (built if missing; :func:`k8s.feature_gate_problem`), so a
        gate the version does not know is found before any process starts.

        Raises:
            UnsupportedSettings: A gate does not exist in this version, or is locked.
        """
        if not config.settings.feature_gates:
            return
        version = k8s.resolve_version(config.k8s_version)
        bins = k8s.ensure_binaries(version, config.cache_dir, progress)
        problem = k8s.feature_gate_problem(bins, config.settings.gates)
        if problem is not None:
            raise UnsupportedSettings(refused_gates(problem, version), provider=self.name)

    def ensure_target_image(self, cluster: Cluster, progress: Progress = _no_progress) -> str:
        """Build the target image (cached) and import it into the node if it is not there yet.

        Returns:
            The target image reference.

        Raises:
            ClusterError: The image could not be built or imported.
        """
        state = _state_of(cluster)
        cache_dir = Path(str(state["cache_dir"]))
        built = images.build_target_image(cache_dir, progress)
        socket = str(state["socket"])
        ctr = str(runtime.runtime_bins(cache_dir).ctr)
        if not image_import.image_present(
            built.ref, address=socket, namespace="k8s.io", ctr=ctr
        ):
            progress(f"importing {built.ref} into cluster {cluster.name}")
            image_import.import_archive(
                built.archive,
                address=socket,
                namespace="k8s.io",
                snapshotter=str(state.get("snapshotter", "overlayfs")),
                ctr=ctr,
            )
        return built.ref

    def down(self, cluster: Cluster, progress: Progress = _no_progress) -> None:
        """Stop the cluster's processes and remove every trace of it.

        A cluster that is already gone is left alone.

        Raises:
            ClusterError: Something could not be removed.
        """
        # The kubeconfig is <cache_dir>/clusters/<name>/kubeconfig.
        LocalCluster(cluster.name, cluster.kubeconfig.parent.parent.parent).down(progress)

    # What the existing provider asks of a local cluster it was pointed at.

    def cluster_at_port(self, port: int | None, cache_dir: Path) -> str | None:
        """Return the name of the local cluster whose API server has ``port``, if any.

        Read from the state files of the clusters under ``cache_dir``.
        """
        for state_file in sorted(clusters_dir(cache_dir).glob(f"*/{STATE_FILE}")):
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(state, dict) and state.get("ports", {}).get("apiserver") == port:
                return str(state.get("name") or state_file.parent.name)
        return None

    def handle(self, name: str, cache_dir: Path, *, k8s_version: str) -> Cluster:
        """Return a handle on the local cluster ``name`` of ``cache_dir`` (its admin kubeconfig).

        The handle has no image loader: :meth:`image_loader` reads the running cluster's state.
        """
        return Cluster(name=name, provider=self.name,
                       kubeconfig=ClusterPaths(clusters_dir(cache_dir) / name).kubeconfig,
                       k8s_version=k8s_version)

    def image_loader(self, cache_dir: Path, name: str) -> Callable[[Path], list[str]]:
        """Return the image loader of the running local cluster ``name`` (:func:`image_loader`).

        Raises:
            ClusterError: The cluster has no readable state file.
        """
        return image_loader(cache_dir, name)


def _state_of(cluster: Cluster) -> dict[str, object]:
    state_file = cluster.kubeconfig.parent / STATE_FILE
    try:
        data = json.loads(state_file.read_text())
    except (OSError, ValueError) as error:
        raise ClusterError(
            f"local cluster {cluster.name} has no readable state file {state_file} ({error}); "
            "was it deleted? Run `pytest-probes cluster up` again",
            provider="local",
        ) from error
    if not isinstance(data, dict):
        raise ClusterError(f"{state_file} is not a cluster state", provider="local")
    return data

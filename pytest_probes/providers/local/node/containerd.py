"""The node's containerd: its config, its command line, its shims and the state it keeps.

containerd's config, root, state and socket live inside the cluster directory; only the shims'
socket folder cannot (:func:`shim_socket_dir`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_probes._extras import missing_extra
from pytest_probes.providers.local import supervisor

SHIM_SOCKETS_ROOT = Path("/run/pytest-probes")
"""Where the clusters' shim socket folders are: containerd allows at most 42 characters."""


def shim_socket_dir(cluster_dir: Path) -> Path:
    """Return the folder of a cluster's shim sockets, named by a hash of the cluster directory.

    containerd's default is ``/run/containerd/s``, shared with every other containerd on the host
    (Docker's among them); ``socket_dir`` must be short (``core/runtime/v2/shim_manager.go``:
    at most 42 characters), so it cannot live inside the cluster directory.
    """
    digest = hashlib.sha256(str(cluster_dir).encode()).hexdigest()[:12]
    return SHIM_SOCKETS_ROOT / f"shims-{digest}"


def render_containerd_config(
    *,
    root: Path,
    state: Path,
    socket: Path,
    cni_conf_dir: Path,
    sandbox_image: str,
    snapshotter: str,
    cni_bin_dir: Path,
    runc: Path,
    shim_sockets: Path,
) -> str:
    """Render containerd 2.x's config (TOML) for one cluster.

    Written in config version 4, containerd 2.3's own (``version.ConfigVersion``), so it is read
    as it is instead of migrated at every start. Versions 3 and 4 split the CRI plugin of
    version 2 in three: images (``io.containerd.cri.v1.images``: snapshotter, the pinned sandbox
    image), runtime (``io.containerd.cri.v1.runtime``: runtimes, CNI, OOM score and netns
    settings) and the server (``io.containerd.grpc.v1.cri``: the streaming server); version 4
    moves the gRPC, ttrpc, debug and metrics listeners into ``io.containerd.server.v1.*``
    plugins. Everything host-wide that containerd 2.x would otherwise use is kept inside the
    cluster or switched off: config ``imports`` only from inside the cluster (the default reads
    ``/etc/containerd/conf.d``), shim sockets in :func:`shim_socket_dir`, NRI (its socket is
    ``/var/run/nri/nri.sock``), the image verifier (it reads ``/opt/containerd``) and the tracing
    processors disabled.

    Args:
        root: containerd's persistent root (images, snapshots, metadata).
        state: containerd's state directory (tasks, mounts, network namespaces).
        socket: The gRPC socket path.
        cni_conf_dir: The directory with the cluster's CNI network config.
        sandbox_image: The pause image reference (must be imported beforehand: no registry).
        snapshotter: ``overlayfs`` or ``native``.
        cni_bin_dir: Where the CNI plugins are.
        runc: The runc binary the shim starts containers with.
        shim_sockets: The folder of the shims' sockets (see :func:`shim_socket_dir`).

    Returns:
        The TOML text.
    """
    config: dict[str, Any] = {
        "version": 4,
        "root": str(root),
        "state": str(state),
        "temp": str(state / "tmp"),
        # An empty list would keep the default, /etc/containerd/conf.d/*.toml: a glob inside
        # the cluster that matches nothing replaces it.
        "imports": [str(root / "conf.d" / "*.toml")],
        "oom_score": 0,
        "disabled_plugins": [
            "io.containerd.nri.v1.nri",
            "io.containerd.image-verifier.v1.bindir",
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing",
        ],
        "debug": {"level": "info"},
        "plugins": {
            "io.containerd.server.v1.grpc": {"address": str(socket)},
            "io.containerd.server.v1.ttrpc": {"address": f"{socket}.ttrpc"},
            "io.containerd.server.v1.debug": {"address": ""},
            "io.containerd.server.v1.metrics": {"address": ""},
            "io.containerd.shim.v1.manager": {"socket_dir": str(shim_sockets)},
            "io.containerd.internal.v1.opt": {"path": str(root / "opt")},
            "io.containerd.cri.v1.images": {
                "snapshotter": snapshotter,
                "discard_unpacked_layers": False,
                "pinned_images": {"sandbox": sandbox_image},
            },
            "io.containerd.cri.v1.runtime": {
                "enable_selinux": False,
                "disable_apparmor": True,
                # The host lacks CAP_SYS_RESOURCE in some VMs: runc may then not lower a
                # sandbox's oom_score_adj below its parent's.
                "restrict_oom_score_adj": True,
                "disable_hugetlb_controller": True,
                "tolerate_missing_hugetlb_controller": True,
                "netns_mounts_under_state_dir": True,
                "max_container_log_line_size": 16384,
                "containerd": {
                    "default_runtime_name": "runc",
                    "runtimes": {
                        "runc": {
                            "runtime_type": "io.containerd.runc.v2",
                            "options": {"BinaryName": str(runc), "SystemdCgroup": False},
                        }
                    },
                },
                "cni": {
                    "bin_dirs": [str(cni_bin_dir)],
                    "conf_dir": str(cni_conf_dir),
                    "max_conf_num": 1,
                },
            },
            "io.containerd.grpc.v1.cri": {
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
            },
        },
    }
    # Imported here, not at the top: the local provider's other modules serve the kind and
    # existing providers too, whose users need not install the local extra.
    try:
        import tomli_w
    except ModuleNotFoundError as err:
        raise missing_extra("local", [err.name or "tomli_w"], provider="local",
                            needed_by="the local provider (its containerd config)") from err
    return tomli_w.dumps(config)


def containerd_command(containerd: str, *, config: Path) -> list[str]:
    """Return containerd's command line."""
    return [containerd, "--config", str(config)]


def shim_pids(socket: Path) -> list[int]:
    """Return the pids of containerd shims serving the containerd at ``socket``."""
    pids = []
    for pid, argv in supervisor.iter_processes():
        if argv and "containerd-shim" in Path(argv[0]).name and str(socket) in argv:
            pids.append(pid)
    return pids


def sandbox_netns_paths(state_dir: Path) -> list[Path]:
    """Return the network namespace files named by the container bundles in ``state_dir``.

    containerd writes each task's OCI spec to ``<state>/io.containerd.runtime.v2.task/<ns>/<id>/
    config.json``; a pod sandbox's names its network namespace.
    """
    found: set[Path] = set()
    tasks = state_dir / "io.containerd.runtime.v2.task"
    for spec in tasks.glob("*/*/config.json"):
        try:
            namespaces = json.loads(spec.read_text()).get("linux", {}).get("namespaces", [])
        except (OSError, ValueError):
            continue
        for namespace in namespaces:
            if namespace.get("type") == "network" and namespace.get("path"):
                found.add(Path(namespace["path"]))
    return sorted(found)


def container_ids(state_dir: Path) -> set[str]:
    """Return the ids of the sandboxes and containers with state in ``state_dir``."""
    ids: set[str] = set()
    for pattern in ("io.containerd.runtime.v2.task/*/*", "io.containerd.grpc.v1.cri/sandboxes/*"):
        ids.update(path.name for path in state_dir.glob(pattern) if path.is_dir())
    return ids

"""The ``pytest-probes`` command: manage the local provider's clusters outside pytest.

::

    pytest-probes cluster up     [--name NAME] [--k8s-version V] [--cache-dir DIR]
    pytest-probes cluster status [--name NAME] [--cache-dir DIR]
    pytest-probes cluster down   [--name NAME | --all] [--cache-dir DIR]
    pytest-probes kind build-node-image [--k8s-version V] [--cache-dir DIR]

``up`` prints a progress line per step with the elapsed time, and the kubeconfig to use.
``down --all`` brings down every cluster in the cache directory (CI starts from a clean machine
with it). ``kind build-node-image`` builds a kind node image offline from pinned sources (see
:mod:`pytest_probes.providers.kind_node_image`) into the local Docker engine and prints its
reference, for ``kind create cluster --image`` or ``--probes-kind-node-image``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_probes.cluster import (
    ClusterConfig,
    check_cluster_name,
    default_cache_dir,
    trusted_cache_dir,
)
from pytest_probes.errors import ProbesError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-probes",
        description="Manage the local single-node Kubernetes clusters of pytest-probes.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    groups = parser.add_subparsers(dest="group", required=True)
    cluster = groups.add_parser("cluster", help="local clusters (the `local` provider)")
    actions = cluster.add_subparsers(dest="action", required=True)
    for action, text in (
        ("up", "create the cluster, or check the running one"),
        ("status", "show the cluster's processes and server version"),
        ("down", "stop the cluster and remove every trace of it"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--name", default="probes", help="cluster name (default: probes)")
        sub.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help=f"cache directory (default: {default_cache_dir()})",
        )
        if action == "down":
            sub.add_argument(
                "--all",
                action="store_true",
                help="bring down every local cluster in the cache directory",
            )
        if action == "up":
            sub.add_argument(
                "--k8s-version",
                default=None,
                help="Kubernetes version, e.g. 1.34 or 1.34.4 (default: the newest supported)",
            )
    kind = groups.add_parser("kind", help="kind node images built here (the `kind` provider)")
    kind_actions = kind.add_subparsers(dest="action", required=True)
    image = kind_actions.add_parser(
        "build-node-image", help="build a kind node image offline from pinned sources")
    image.add_argument("--k8s-version", default=None,
                       help="Kubernetes version, e.g. 1.37 (default: the newest supported)")
    image.add_argument("--cache-dir", type=Path, default=None,
                       help=f"cache directory (default: {default_cache_dir()})")
    return parser


def _cluster_names(cache_dir: Path) -> list[str]:
    from pytest_probes.providers.local.lifecycle import clusters_dir

    directory = clusters_dir(cache_dir)
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from pytest_probes.leases import Lease
    from pytest_probes.providers.local import LocalCluster, LocalProvider

    cache_dir = args.cache_dir or default_cache_dir()
    started = time.monotonic()

    def progress(line: str) -> None:
        print(line, flush=True)

    try:
        if args.group == "cluster" and not getattr(args, "all", False):
            check_cluster_name(args.name)
        cache_dir = trusted_cache_dir(cache_dir)
        if args.group == "kind":
            from pytest_probes.providers.kind import PINNED_KIND, docker_binary
            from pytest_probes.providers.kind_node_image import build_node_image

            ref = build_node_image(args.k8s_version, cache_dir, PINNED_KIND,
                                   docker=docker_binary(), progress=progress)
            print(f"node image: {ref}\ntotal {time.monotonic() - started:.1f}s", flush=True)
        elif args.action == "up":
            config = ClusterConfig(
                name=args.name, k8s_version=args.k8s_version, cache_dir=cache_dir
            )
            lease = Lease(cache_dir, "local", args.name)
            lease.acquire(progress)  # waits while a run takes the cluster down
            try:
                cluster = LocalProvider().up(config, progress)
                if cluster.created:
                    lease.mark_created(None)  # made by hand: kept until `cluster down`
            finally:
                lease.release()
            verb = "created" if cluster.created else "reused"
            print(
                f"cluster {cluster.name} {verb}: Kubernetes {cluster.k8s_version}, "
                f"total {time.monotonic() - started:.1f}s\nkubeconfig: {cluster.kubeconfig}",
                flush=True,
            )
        elif args.action == "status":
            status = LocalCluster(args.name, cache_dir).status()
            print(status.render(), flush=True)
            return 0 if status.running or not status.exists else 1
        else:
            names = _cluster_names(cache_dir) if args.all else [args.name]
            for name in names:
                LocalCluster(name, cache_dir).down(progress)
            if args.all:
                print(f"{len(names)} cluster(s) brought down: {', '.join(names) or 'none'}")
            print(f"total {time.monotonic() - started:.1f}s", flush=True)
    except ProbesError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0

"""The ``pytest-probes`` command: manage the local provider's clusters outside pytest.

::

    pytest-probes cluster up     [--name NAME] [--k8s-version V] [--cache-dir DIR]
    pytest-probes cluster status [--name NAME] [--cache-dir DIR]
    pytest-probes cluster down   [--name NAME | --all] [--cache-dir DIR]
    pytest-probes kind build-node-image [--k8s-version V] [--cache-dir DIR]
    pytest-probes explain MANIFEST... [--format text|markdown|json] [--strict] [--emit-test F]
    pytest-probes record --kubeconfig K [--context C] -n NS -o RUN.jsonl [--for DURATION]
    pytest-probes chart RUN.jsonl -o OUT.svg|OUT.html
    pytest-probes cleanup [--kubeconfig K [--context C] | --name NAME]
    pytest-probes durations REPORT.json... -o DURATIONS.json

``up`` prints a progress line per step with the elapsed time, and the kubeconfig to use.
``down --all`` brings down every cluster in the cache directory (CI starts from a clean machine
with it). ``kind build-node-image`` builds a kind node image offline from pinned sources (see
:mod:`pytest_probes.providers.kind_node_image`) into the local Docker engine and prints its
reference, for ``kind create cluster --image`` or ``--probes-kind-node-image``.

``explain`` prints what the probe specs in some manifests promise, from the timing math alone
(:mod:`pytest_probes.explain`); with ``--strict`` it exits 1 when it has findings. ``record``
records a namespace of any cluster (list and watch rights suffice) into the raw format
:func:`pytest_probes.importers.replay_raw` reads, until ``--for`` runs out or Ctrl-C / SIGTERM;
``chart`` draws such a recording as SVG, or as HTML with the table. ``durations`` writes the
passed probe tests' wall times of some ``--probes-report`` files into the durations file
``probes_durations_file`` names (merged over what it held), for ordering runs without a cache.
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
    explain = groups.add_parser(
        "explain", help="what the probe specs in manifests promise, from the kubelet's rules")
    explain.add_argument("manifests", nargs="+", metavar="MANIFEST",
                         help="files, directories, or - for standard input (Helm, kustomize)")
    explain.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    explain.add_argument("--strict", action="store_true", help="exit 1 when there are findings")
    explain.add_argument("--emit-test", type=Path, default=None, metavar="FILE",
                         help="also write a pytest file that checks the windows live")
    record = groups.add_parser("record", help="record a namespace into a raw JSON Lines file")
    record.add_argument("--kubeconfig", type=Path, required=True)
    record.add_argument("--context", default=None)
    record.add_argument("-n", "--namespace", required=True)
    record.add_argument("-o", "--output", type=Path, required=True)
    record.add_argument("--for", dest="duration", type=_duration, default=None,
                        help="how long, e.g. 90s, 10m, 1h (default: until Ctrl-C or SIGTERM)")
    cleanup = groups.add_parser(
        "cleanup", help="delete the namespaces kept for inspection, and those of killed runs")
    cleanup.add_argument("--kubeconfig", type=Path, default=None,
                         help="the cluster's kubeconfig (default: the local cluster --name)")
    cleanup.add_argument("--context", default=None)
    cleanup.add_argument("--name", default="probes", help="local cluster name (default: probes)")
    chart = groups.add_parser("chart", help="draw a recording as SVG or HTML")
    chart.add_argument("recording", type=Path)
    chart.add_argument("-o", "--output", type=Path, required=True,
                       help="OUT.svg, or OUT.html (the chart and the table)")
    durations = groups.add_parser(
        "durations", help="keep the passed tests' wall times of --probes-report files, for "
        "probes_durations_file")
    durations.add_argument("reports", type=Path, nargs="+", metavar="REPORT")
    durations.add_argument("-o", "--output", type=Path, required=True,
                           help="the durations file to write (merged over what it holds)")
    return parser


def _duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m`` or ``1h`` (argparse type)."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write e.g. 90s, 10m or 1h") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be above 0 and finite")
    return value


def _cluster_names(cache_dir: Path) -> list[str]:
    from pytest_probes.providers.local.config import clusters_dir

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
    if args.group in ("explain", "record", "chart", "cleanup", "durations"):
        return _observe(args)
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


def _observe(args: argparse.Namespace) -> int:
    """``explain``, ``record`` and ``chart``: no cache directory, no cluster of ours."""
    try:
        if args.group == "explain":
            from pytest_probes.deploy import load_manifest_paths
            from pytest_probes.explain import explain, render

            if args.emit_test is not None and "-" in args.manifests:
                raise ProbesError("--emit-test needs manifest files (the tests deploy them); "
                                  "save standard input to a file first")
            if args.emit_test is not None and args.emit_test.exists():
                raise ProbesError(f"{args.emit_test} exists already; remove it to write it again")
            objects = load_manifest_paths(args.manifests)
            found = explain(objects)
            sys.stdout.write(render(found, args.format))
            if args.emit_test is not None:
                from pytest_probes.emit import emit_tests

                args.emit_test.write_text(emit_tests(objects, args.manifests), encoding="utf-8")
                print(f"wrote {args.emit_test}", file=sys.stderr)
            return 1 if args.strict and found.findings else 0
        if args.group == "durations":
            return _write_durations(args.reports, args.output)
        from pytest_probes import observe

        if args.group == "cleanup":
            from pytest_probes.namespaces import delete_kept_namespaces, delete_orphaned_namespaces

            kubeconfig = args.kubeconfig
            if kubeconfig is None:
                from pytest_probes.providers.local import LocalCluster

                check_cluster_name(args.name)
                kubeconfig = LocalCluster(args.name, default_cache_dir()).paths.kubeconfig
            api = observe.api_client_for(kubeconfig, args.context)
            with api:
                kept = delete_kept_namespaces(api)
                orphans = delete_orphaned_namespaces(api)
            print(f"deleted {len(kept)} kept namespace(s) {' '.join(kept)}".rstrip()
                  + f", {len(orphans)} of killed runs {' '.join(orphans)}".rstrip())
        elif args.group == "record":
            api = observe.api_client_for(args.kubeconfig, args.context)
            with api:
                observe.record(api, args.namespace, args.output, duration=args.duration,
                               progress=lambda line: print(line, flush=True))
        else:
            timeline = observe.chart(args.recording, args.output)
            print(f"{args.output}: {len(timeline)} records of namespace {timeline.namespace}")
    except ProbesError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


def _write_durations(reports: Sequence[Path], output: Path) -> int:
    """``durations``: merge the reports' passed wall times over ``output``'s and write it."""
    import json

    from pytest_probes._schedule import (
        durations_from_report,
        merge_durations,
        read_durations_file,
    )

    finished: dict[str, float] = {}
    for report in reports:
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
            tests = data["tests"]
            if not isinstance(tests, list):
                raise TypeError
            finished.update(durations_from_report(tests))
        except OSError as err:
            raise ProbesError(f"{report}: cannot read it ({err.strerror})") from None
        except (ValueError, KeyError, TypeError):
            raise ProbesError(f"{report}: not a --probes-report (a JSON object with a 'tests' "
                              "list); write one with pytest --probes-report PATH") from None
    if not finished:
        raise ProbesError(f"no passed probe test in {', '.join(map(str, reports))}; "
                          f"{output} is left as it was")
    try:
        previous = read_durations_file(output) if output.exists() else {}
    except ValueError as error:
        raise ProbesError(str(error)) from None
    merged = merge_durations(previous, finished)
    output.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n",
                      encoding="utf-8")
    print(f"{output}: {len(finished)} duration(s) written, {len(merged)} in all")
    return 0

"""Run the live suite on each supported Kubernetes minor and write one comparison table.

For every version it runs ``pytest -m probes --probes-k8s-version V --probes-report ...``
(concurrently with pytest-xdist, each version on its own cluster, one version after another),
then writes a Markdown table, scenario × version, with the key observed timing (seconds from the
moment the probe spec counts from to the observed event) and the outcome of each test. A second
table, behaviour × version, has what each version did where a test recorded it: a test whose
behaviour differs by version records what it saw with pytest's ``record_property`` (e.g.
``record_property("kubelet restart", "Ready stays")``), and each such property is a row.

Usage::

    python benchmarks/matrix.py [--versions 1.33,1.36] [--out matrix.md] [--providers local,kind]
    python benchmarks/matrix.py --from-reports reports/*.json   # only build the table

Versions default to the providers' pinned lists. On kind the node image is built here from pinned
sources (``--probes-kind-node-image offline``) and ``scripts/docker-host run`` has a Docker engine
and kind ready. The table is printed and written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_WORKERS = 12  # the Makefile's PROBES_WORKERS
ROOT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"(\d+ (?:passed|failed|skipped|errors?|deselected)\b.* in [\d.]+s)")
"""pytest's closing summary line ("94 passed, 5 skipped in 315.20s")."""


def supported_versions(provider: str) -> list[str]:
    """The minors the provider runs: on kind too those the local build pins, since the node
    images are built here from the same Kubernetes build."""
    del provider
    from pytest_probes.binaries.k8s import PINNED_VERSIONS
    from pytest_probes.cluster import version_key

    return sorted(PINNED_VERSIONS, key=version_key)


def run_version(version: str, out_dir: Path, provider: str, workers: int,
                extra: list[str]) -> Path:
    """Run the live suite on one version; return its report path."""
    report = out_dir / f"report-{provider}-{version}.json"
    command = [sys.executable, "-m", "pytest", "-m", "probes", "-p", "no:cacheprovider", "-q",
               "-n", str(workers), "--probes-provider", provider, "--probes-k8s-version",
               version, "--probes-cluster-name", f"matrix-{provider}-{version.replace('.', '-')}",
               f"--probes-report={report}", *extra]
    # As `make test` runs: the cluster and the image ready before the workers start.
    command = [sys.executable, str(ROOT / "scripts" / "live"), *command]
    if provider == "kind":
        command = [sys.executable, str(ROOT / "scripts" / "docker-host"), "run", "--", *command,
                   "--probes-kind-node-image", "offline"]
    print(f"\n=== {provider}: Kubernetes {version}\n$ {' '.join(command)}", flush=True)
    start = time.monotonic()
    summary = ""
    # Passed through line by line; pytest's last summary line is kept for the table (the report
    # has only the tests that recorded a timeline, not those that skipped).
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            found = SUMMARY.search(line)
            if found:
                summary = found.group(1)
    print(f"=== {provider}: Kubernetes {version}: pytest exited {proc.returncode} after "
          f"{time.monotonic() - start:.0f} s", flush=True)
    if summary:
        summary_path(report).write_text(summary + "\n", encoding="utf-8")
    return report


def summary_path(report: Path) -> Path:
    """Where :func:`run_version` keeps pytest's summary line of the run behind ``report``."""
    return report.with_name(report.name.replace("report-", "summary-", 1)).with_suffix(".txt")


def _row(test: dict[str, Any]) -> str:
    """A test's row: its scenario, with the parameter set when the node id has one (each
    parametrized case a row of its own, so none hides another's outcome)."""
    nodeid = str(test["nodeid"])
    name = str(test.get("scenario") or nodeid)
    params = nodeid[nodeid.index("["):] if nodeid.endswith("]") and "[" in nodeid else ""
    return name if name.endswith(params) else name + params


def _cell(test: dict[str, Any]) -> str:
    outcome = test.get("outcome", "?")
    event = test.get("event_s")
    timing = f"{event:.0f} s" if isinstance(event, int | float) else ""
    mark = "✓" if outcome == "passed" else "✗ " + outcome
    extra = ", ".join(f"{k}={v}" for k, v in sorted(test.get("properties", {}).items()))
    return f"{mark} {timing}".strip() + (f" ({extra})" if extra else "")


def _column(path: Path, data: dict[str, Any]) -> str:
    """A report's column: its provider and Kubernetes version."""
    cluster = data.get("cluster", {})
    version = str(cluster.get("k8s_version") or path.stem)
    return f"{cluster['provider']} {version}" if cluster.get("provider") else version


def build_table(reports: list[Path]) -> str:
    """The scenario × version table from ``--probes-report`` files.

    Reports of one provider and version share a column (a test run again alone, say): a later
    report's cells replace an earlier's, and the *pytest* cell lists each run's summary.
    """
    columns: list[str] = []
    runtimes: dict[str, str] = {}
    summaries: dict[str, list[str]] = {}
    cells: dict[str, dict[str, str]] = {}
    for path in reports:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = _column(path, data)
        if version not in columns:
            columns.append(version)
        summary = summary_path(path)
        summaries.setdefault(version, []).append(
            summary.read_text(encoding="utf-8").strip() if summary.exists() else "?")
        runtimes.setdefault(version, str(data.get("cluster", {}).get("runtime") or "?"))
        for test in data.get("tests", []):
            cells.setdefault(_row(test), {})[version] = _cell(test)
    counts = [sum(1 for row in cells.values() if row.get(v, "").startswith("✓"))
              for v in columns]
    lines = ["| scenario | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns),
             "| *runtime* | " + " | ".join(runtimes[v] for v in columns) + " |",
             "| *passed* | " + " | ".join(f"{n}/{sum(1 for r in cells.values() if v in r)}"
                                          for n, v in zip(counts, columns, strict=True)) + " |",
             "| *pytest* | " + " | ".join(" + ".join(summaries[v]) for v in columns) + " |"]
    for name in sorted(cells):
        lines.append(f"| {name} | " + " | ".join(cells[name].get(v, "—") for v in columns)
                     + " |")
    return "\n".join(lines) + "\n\n✓ passed, ✗ failed; seconds: the key observed event after " \
        "the moment its window counts from (container start or injected fault). *passed*: of " \
        "the tests that recorded a timeline (the rows); *pytest*: the run's own count, with " \
        "the tests skipped as not applicable to the version.\n"


def build_behaviour_table(reports: list[Path]) -> str:
    """The behaviour × version table: each property a test recorded, per version.

    A cell is the recorded value (with the outcome when the test did not pass), or ``—`` where
    the version did not run the test or the test recorded nothing there (skipped as not
    applicable, or failed before it could tell).
    """
    columns: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for path in reports:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = _column(path, data)
        if version not in columns:
            columns.append(version)
        for test in data.get("tests", []):
            outcome = test.get("outcome", "?")
            for key, value in sorted(test.get("properties", {}).items()):
                row = f"{_row(test)}: {key}"
                text = str(value) if outcome == "passed" else f"✗ {outcome}: {value}"
                cells.setdefault(row, {})[version] = text
    if not cells:
        return ""
    lines = ["| behaviour | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for row in sorted(cells):
        lines.append(f"| {row} | " + " | ".join(cells[row].get(v, "—") for v in columns) + " |")
    return "\n".join(lines) + "\n\n— : not run on that version, or not applicable there " \
        "(the test skipped, saying why).\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", help="comma-separated minors (default: all supported)")
    parser.add_argument("--providers", default="local",
                        help="comma-separated providers: local, kind (default local)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--out", type=Path, default=Path("matrix.md"))
    parser.add_argument("--reports-dir", type=Path, default=Path("matrix-reports"))
    parser.add_argument("--from-reports", type=Path, nargs="+",
                        help="only build the table from these report files")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    if args.from_reports:
        reports = list(args.from_reports)
    else:
        providers = [p.strip() for p in args.providers.split(",") if p.strip()]
        unknown = sorted(set(providers) - {"local", "kind"})
        if unknown:
            parser.error(f"--providers: {', '.join(unknown)} is not local or kind")
        args.reports_dir.mkdir(parents=True, exist_ok=True)
        reports = []
        for provider in providers:
            versions = (args.versions.split(",") if args.versions
                        else supported_versions(provider))
            reports += [run_version(v, args.reports_dir, provider, args.workers,
                                    args.pytest_args) for v in versions]
        reports = [r for r in reports if r.exists()]
    table = build_table(reports)
    behaviours = build_behaviour_table(reports)
    if behaviours:
        table = "## Behaviours by version\n\n" + behaviours + "\n## Scenarios by version\n\n" \
            + table
    args.out.write_text(table, encoding="utf-8")
    print("\n" + table + f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

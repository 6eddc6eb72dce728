"""Every kind of bad input the tool answers with a clear error: how fast, and with what message.

Each case feeds one bad input to the public API, the pytest plugin or the command line, and
prints a Markdown row: the kind of input, the error type and the start of its message, and how
long the answer took (the plugin and command-line cases include starting an interpreter). No
cluster is involved: the API-server cases use a loopback server that answers HTTP 403 and a
closed loopback port. The table in docs/reliability.md is this script's output.

Usage::

    python benchmarks/bad_inputs.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STREAM = ROOT / "tests" / "data" / "streams" / "liveness-restart.jsonl"
POD = "web-77f9f5cf79-65npl"

DUPLICATE_KEY = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    image: x
    livenessProbe: {httpGet: {path: /a, port: 8080}}
    livenessProbe: {httpGet: {path: /b, port: 8080}}
"""
BAD_INDENT = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n   labels: {}\n"


class Forbidden(BaseHTTPRequestHandler):
    """Answers every request as an API server whose RBAC refuses it (HTTP 403, a Status)."""

    def _refuse(self) -> None:
        body = json.dumps({"kind": "Status", "code": 403, "reason": "Forbidden"}).encode()
        self.send_response(403, "Forbidden")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = do_POST = _refuse

    def log_message(self, *_args: object) -> None:
        return None


def _api(host: str) -> Any:
    from kubernetes import client

    config = client.Configuration()
    config.host = host
    return client.ApiClient(config)


class CommandFailed(Exception):
    """A command-line case: the command's exit status and its last line of output."""


def _command(*args: str, cwd: Path | None = None) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              timeout=120, check=False, cwd=cwd)
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        message = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
        raise CommandFailed(f"exit {done.returncode}: {message.strip()}")
    return run


def cases(work: Path) -> list[tuple[str, Callable[[], object]]]:
    """The bad inputs, each as (kind, a call that must raise)."""
    from pytest_probes import (
        assert_endpoint_kept_for,
        assert_event_within,
        assert_never_ready_for,
        assert_no_restarts_for,
    )
    from pytest_probes.cluster import check_cluster_name, trusted_cache_dir
    from pytest_probes.deploy import load_manifests
    from pytest_probes.importers import replay_raw
    from pytest_probes.namespaces import delete_orphaned_namespaces, leftover_namespaces
    from pytest_probes.providers.kind import kind_config

    tl = replay_raw(STREAM)
    dup = work / "duplicate-key.yaml"
    dup.write_text(DUPLICATE_KEY)
    indent = work / "bad-indent.yaml"
    indent.write_text(BAD_INDENT)
    open_cache = work / "open-cache"
    open_cache.mkdir()
    open_cache.chmod(0o777)
    (work / "t").mkdir()
    (work / "t" / "test_x.py").write_text("def test_x():\n    pass\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidden)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    forbidden = _api(f"http://127.0.0.1:{server.server_address[1]}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gone = _api(f"http://127.0.0.1:{sock.getsockname()[1]}")

    def plugin(*args: str) -> Callable[[], None]:
        return _command("-m", "pytest", "-p", "no:cacheprovider", "-q", *args, "test_x.py",
                        cwd=work / "t")

    return [
        ("negative duration", lambda: assert_no_restarts_for(tl, POD, duration=-10)),
        ("zero duration", lambda: assert_never_ready_for(tl, POD, duration=0)),
        ("NaN duration", lambda: assert_endpoint_kept_for(tl, POD, duration=float("nan"))),
        ("infinite duration", lambda: assert_no_restarts_for(tl, POD, duration=float("inf"))),
        ("duration of another type", lambda: assert_no_restarts_for(tl, POD, duration="10")),
        ("window with a NaN end", lambda: assert_event_within(tl, POD, "Killing",
                                                              within=float("nan"))),
        ("window ending before it starts", lambda: assert_event_within(tl, POD, "Killing",
                                                                       within=(5, 1))),
        ("window ending before since=", lambda: assert_event_within(tl, POD, "Killing",
                                                                    within=-3)),
        ("window of another type", lambda: assert_event_within(tl, POD, "Killing",
                                                                within="soon")),
        ("since= of another type", lambda: assert_no_restarts_for(tl, POD, duration=5,
                                                                  since=object())),
        ("since= text that is no time", lambda: assert_no_restarts_for(tl, POD, duration=5,
                                                                       since="yesterday")),
        ("since= epoch that is no time", lambda: assert_no_restarts_for(tl, POD, duration=5,
                                                                        since=float("nan"))),
        ("YAML with a duplicate key", lambda: load_manifests(dup)),
        ("YAML badly indented", lambda: load_manifests(indent)),
        ("manifest path that is a directory", lambda: load_manifests(str(work))),
        ("manifest path with ':' that does not exist", lambda: load_manifests("x:y.yaml")),
        ("manifest that does not exist", lambda: load_manifests("no-such.yaml")),
        ("a dict that is no object", lambda: load_manifests({"kind": "Pod"})),
        ("cluster name with capitals", lambda: check_cluster_name("Probes")),
        ("cluster name not ASCII", lambda: check_cluster_name("über")),
        ("cluster name '-'", lambda: check_cluster_name("-")),
        ("cache directory others can write", lambda: trusted_cache_dir(open_cache)),
        ("kind config of another kind", lambda: kind_config({"kind": "Pod"}, cgroup_v1=False)),
        ("HTTP 403 listing namespaces", lambda: delete_orphaned_namespaces(forbidden)),
        ("API server gone after up", lambda: leftover_namespaces(gone)),
        ("--probes-timeout-scale inf", plugin("--probes-timeout-scale", "inf")),
        ("--probes-timeout-scale 1e12", plugin("--probes-timeout-scale", "1e12")),
        ("--probes-cluster-name Probes", plugin("--probes-cluster-name", "Probes")),
        ("--probes-provider minikube", plugin("--probes-provider", "minikube")),
        ("cluster down of a name never used", _command(
            "-m", "pytest_probes", "cluster", "down", "--name", "never-used",
            "--cache-dir", str(work / "cache"))),
    ]


def main() -> int:
    """Run every case; print the table. Exit 1 if a case did not answer with an error."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)
        rows = ["| bad input | answer | time |", "|---|---|---|"]
        quiet = []
        for kind, call in cases(Path(tmp)):
            started = time.perf_counter()
            try:
                call()
            except Exception as error:
                took = time.perf_counter() - started
                text = str(error).splitlines()[0]
                text = text if len(text) <= 160 else text[:157] + "..."
                name = "" if isinstance(error, CommandFailed) else f"{type(error).__name__}: "
                rows.append(f"| {kind} | {name}{text.replace('|', '/')} | {took:.3f} s |")
            else:
                quiet.append(kind)
        print("\n".join(rows))
        print(f"\n{len(rows) - 2} kinds of bad input answered with an error", flush=True)
    if quiet:
        print(f"no error for: {', '.join(quiet)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

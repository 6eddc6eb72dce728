"""pytest glue: options, the ``probes`` marker, the report header and report hooks.

The fixtures live in :mod:`pytest_probes.fixtures` (everything they call is plain library code),
the hooks for pytest-xdist in :mod:`pytest_probes._xdist`, and what the hooks and the fixtures
share about a run (its id, its progress lines) in :mod:`pytest_probes._run`.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import zlib
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pytest_probes import _setup
from pytest_probes._pool import (
    cluster_objects_journal,
    finish_workers_clusters,
    take_down_orphans,
)
from pytest_probes._report import (
    TIMELINE_SECTION,
    artifact_folder,
    entry_without_timeline,
    finish_entry,
    junit_properties,
    note_phase,
    save_timeline_artifacts,
    scenario_fields,
    timeline_chart,
    write_html,
)
from pytest_probes._run import new_run_id, progress_writer
from pytest_probes._schedule import read_durations_file
from pytest_probes._stash import (
    CLUSTER_REQUEST_KEY,
    FAILED_KEY,
    KEPT_KEY,
    STATE_KEY,
    TIMELINE_KEY,
    ProbesState,
    report_entry,
)
from pytest_probes._xdist import RUN_ID_KEY, RUN_OWNER_KEY, XdistHooks, save_durations
from pytest_probes.artifacts import collect_namespace
from pytest_probes.cluster import (
    PROVIDERS,
    ClusterConfig,
    check_cluster_name,
    default_cache_dir,
    resolve_provider_name,
)
from pytest_probes.cluster_objects import delete_journaled
from pytest_probes.cluster_settings import MARKER, MARKER_HELP, cluster_request
from pytest_probes.errors import ClusterError, ProbesError
from pytest_probes.fixtures import (
    _probes_api,
    _probes_cluster_objects,
    _probes_pool,
    probes_cluster,
    probes_deploy,
    probes_faults,
    probes_namespace,
    probes_target_image,
    probes_timeline,
)
from pytest_probes.namespaces import owner

__all__ = [
    "_probes_api",
    "_probes_cluster_objects",
    "_probes_pool",
    "probes_cluster",
    "probes_deploy",
    "probes_faults",
    "probes_namespace",
    "probes_target_image",
    "probes_timeline",
]

log = logging.getLogger(__name__)

TIMELINE_MODES = ("never", "failure", "always")
KEEP_NAMESPACE_MODES = ("never", "failed", "always")
ORDER_MODES = ("durations", "none")


MAX_TIMEOUT_SCALE = 100.0
"""The largest ``--probes-timeout-scale``: the crash-loop back-off cap (300 s) stretched 100 times
is over 8 hours, longer than any CI job; beyond it (``inf``, ``1e12``) the deadlines overflow."""


def _add_option_ini(
    parser: pytest.Parser,
    group: pytest.OptionGroup,
    noun: str,
    *,
    help: str,
    default: Any = None,
    type: str | None = None,
    action: str = "store",
    metavar: str | None = None,
) -> None:
    # The CLI option wins, then the ini key, then the default (pytest's logging.py does the same).
    name = f"probes_{noun.replace('-', '_')}"
    kwargs: dict[str, Any] = {"dest": name, "default": None, "help": help}
    if action == "store":
        kwargs["metavar"] = metavar or noun.split("-")[-1].upper()
    group.addoption(f"--probes-{noun}", action=action, **kwargs)
    parser.addini(name, default=default, type=type, help=help)  # type: ignore[arg-type]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--probes-*`` options and their ini keys."""
    group = parser.getgroup("probes", "pytest-probes: Kubernetes probe behaviour tests")
    _add_option_ini(parser, group, "provider", default="auto",
                    help=f"cluster provider: {', '.join(PROVIDERS)} (default auto: kind where a "
                    "Docker engine answers, else local)")
    _add_option_ini(parser, group, "k8s-version", default="", metavar="VERSION",
                    help="Kubernetes version, e.g. 1.34 or 1.34.4 (default: the provider's newest)")
    _add_option_ini(parser, group, "kubeconfig", default="", metavar="PATH",
                    help="kubeconfig of an existing cluster (provider existing); never implied")
    _add_option_ini(parser, group, "context", default="", metavar="NAME",
                    help="kubeconfig context to use with --probes-kubeconfig")
    _add_option_ini(parser, group, "cluster-name", default="probes", metavar="NAME",
                    help="name of the cluster to create or reuse (default probes)")
    _add_option_ini(parser, group, "keep-cluster", default=False, type="bool",
                    action="store_true",
                    help="keep a cluster this run created instead of deleting it at the end")
    _add_option_ini(parser, group, "timeout-scale", default="1.0", metavar="FACTOR",
                    help="stretch the upper end of every timing window by this factor (> 0; "
                    "default 1.0)")
    _add_option_ini(parser, group, "artifacts-dir", default="", metavar="DIR",
                    help="write each failed test's timeline, pods and container logs under DIR")
    _add_option_ini(parser, group, "report", default="", metavar="PATH",
                    help="write a JSON report of the probe tests to PATH")
    _add_option_ini(parser, group, "html", default="", metavar="PATH",
                    help="write one self-contained HTML report of the probe tests (outcome, key "
                    "measurement, timeline chart with the expected window) to PATH")
    _add_option_ini(parser, group, "timeline", default="failure", metavar="WHEN",
                    help=f"show the timeline table in the report: {', '.join(TIMELINE_MODES)} "
                    "(default failure)")
    _add_option_ini(parser, group, "keep-namespace", default="never", metavar="WHEN",
                    help=f"keep a test's namespace for inspection: "
                    f"{', '.join(KEEP_NAMESPACE_MODES)} (default never); `pytest-probes cleanup` "
                    "deletes kept ones")
    _add_option_ini(parser, group, "order", default=ORDER_MODES[0], metavar="HOW",
                    help="under pytest-xdist, start the probe tests that took longest in earlier "
                    "runs first (durations, the default), or keep pytest's order (none)")
    _add_option_ini(parser, group, "durations-file", default="", metavar="PATH",
                    help="a JSON file of the probe tests' durations (node id -> seconds) to order "
                    "by where pytest's cache has none, e.g. on a fresh clone; written by "
                    "`pytest-probes durations` (an ini path is relative to the ini file)")
    _add_option_ini(parser, group, "kind-node-image", default="", metavar="IMAGE",
                    help="kind node image to use as given (its version read from the image, no "
                    "digest pin), or 'offline' to build one from pinned sources")
    _add_option_ini(parser, group, "kind-config", default="", metavar="FILE",
                    help="a kind cluster config (YAML) of yours, merged under pytest-probes' own")
    _add_option_ini(parser, group, "allow-existing-cluster", default=False, type="bool",
                    action="store_true",
                    help="allow provider existing on a cluster that does not look like a local "
                    "test cluster")


def _value(config: pytest.Config, noun: str) -> Any:
    name = f"probes_{noun.replace('-', '_')}"
    cli = config.getoption(name)
    if cli is not None:
        return cli
    return config.getini(name)


def _settings(config: pytest.Config) -> ProbesState:
    provider = str(_value(config, "provider") or "auto")
    if provider not in PROVIDERS:
        raise pytest.UsageError(
            f"--probes-provider / probes_provider: {provider!r} is not a provider; choose one "
            f"of {', '.join(PROVIDERS)}"
        )
    raw_scale = str(_value(config, "timeout-scale") or "1.0")
    try:
        scale = float(raw_scale)
    except ValueError:
        scale = -1.0
    if not 0 < scale <= MAX_TIMEOUT_SCALE:
        raise pytest.UsageError(
            f"--probes-timeout-scale / probes_timeout_scale: {raw_scale!r} is not a number above "
            f"0 and at most {MAX_TIMEOUT_SCALE:g}; use e.g. 1.5 to allow 50% longer windows"
        )
    mode = _choice(config, "timeline", TIMELINE_MODES, "failure")
    keep_namespace = _choice(config, "keep-namespace", KEEP_NAMESPACE_MODES, "never")
    order = _choice(config, "order", ORDER_MODES, "durations")
    durations = _durations_file(config) if order == "durations" else {}
    version = str(_value(config, "k8s-version") or "").strip().removeprefix("v") or None
    if version is not None and not _looks_like_version(version):
        raise pytest.UsageError(
            f"--probes-k8s-version / probes_k8s_version: {version!r} is not a Kubernetes "
            "version; use MAJOR.MINOR or MAJOR.MINOR.PATCH, e.g. 1.34 or 1.34.4"
        )
    node_image = str(_value(config, "kind-node-image") or "").strip() or None
    if provider == "kind" and version is not None and node_image is None:
        _check_kind_version(version)
    kind_config = str(_value(config, "kind-config") or "").strip() or None
    if kind_config is not None and not Path(kind_config).expanduser().is_file():
        raise pytest.UsageError(
            f"--probes-kind-config / probes_kind_config: {kind_config!r} is not a file; name a "
            "kind cluster config (YAML, kind: Cluster)"
        )
    name = str(_value(config, "cluster-name") or "probes")
    try:
        check_cluster_name(name)
    except ClusterError as error:
        raise pytest.UsageError(f"--probes-cluster-name / probes_cluster_name: {error}") from None
    kubeconfig = str(_value(config, "kubeconfig") or "") or None
    if provider == "existing" and kubeconfig is None:
        raise pytest.UsageError(
            "--probes-provider existing needs --probes-kubeconfig PATH (the current kubectl "
            "context is never used implicitly)"
        )
    artifacts = str(_value(config, "artifacts-dir") or "") or None
    report = str(_value(config, "report") or "") or None
    html = str(_value(config, "html") or "") or None
    return ProbesState(
        provider=provider,
        cluster=ClusterConfig(
            name=name,
            k8s_version=version,
            kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None,
            context=str(_value(config, "context") or "") or None,
            keep=bool(_value(config, "keep-cluster")),
            allow_existing=bool(_value(config, "allow-existing-cluster")),
            cache_dir=default_cache_dir(),
            kind_node_image=node_image,
            kind_config=Path(kind_config).expanduser() if kind_config else None,
        ),
        timeout_scale=scale,
        artifacts_dir=Path(artifacts) if artifacts else None,
        report_path=Path(report) if report else None,
        html_path=Path(html) if html else None,
        timeline_mode=mode,
        keep_namespace=keep_namespace,
        order=order,
        durations_seed=durations,
    )


def _durations_file(config: pytest.Config) -> dict[str, float]:
    """The durations of ``--probes-durations-file`` / ``probes_durations_file``, if one is set."""
    cli = config.getoption("probes_durations_file")
    text = str(cli if cli is not None else config.getini("probes_durations_file") or "").strip()
    if not text:
        return {}
    path = Path(text).expanduser()
    if cli is None and not path.is_absolute():
        path = (config.inipath.parent if config.inipath else config.rootpath) / path
    try:
        return read_durations_file(path)
    except ValueError as error:
        raise pytest.UsageError(
            f"--probes-durations-file / probes_durations_file: {error}") from None


def _choice(config: pytest.Config, name: str, modes: tuple[str, ...], default: str) -> str:
    """The value of ``--probes-NAME`` (or its ini key), one of ``modes``."""
    value = str(_value(config, name) or default)
    if value not in modes:
        raise pytest.UsageError(
            f"--probes-{name} / probes_{name.replace('-', '_')}: {value!r} is not a mode; choose "
            f"one of {', '.join(modes)}"
        )
    return value


def _check_kind_version(version: str) -> None:
    from pytest_probes.errors import ClusterError
    from pytest_probes.providers.kind import node_image

    try:
        node_image(version)
    except ClusterError as err:
        raise pytest.UsageError(f"--probes-k8s-version / probes_k8s_version: {err}") from None


def _looks_like_version(text: str) -> bool:
    parts = text.split(".")
    return 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and validate the options."""
    config.addinivalue_line(
        "markers",
        "probes: the test needs a Kubernetes cluster (select with -m probes); takes no arguments",
    )
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[STATE_KEY] = state = _settings(config)
    # One run id for the controller and its xdist workers (handed over in pytest_configure_node);
    # a pytest started inside a test is a run of its own.
    workerinput = getattr(config, "workerinput", None)
    state.run_id = (workerinput or {}).get(RUN_ID_KEY) or new_run_id()
    state.run_owner = (workerinput or {}).get(RUN_OWNER_KEY) or owner()
    _stop_on_sigterm(config)
    config.pluginmanager.register(_ReportCollector(state), "probes-report-collector")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(state, config), "probes-xdist")


SIGTERM_KEY = pytest.StashKey[Any]()


def _stop_on_sigterm(config: pytest.Config) -> None:
    """Make SIGTERM stop the run as Ctrl-C does: CI systems send it when a job is cancelled.

    The first SIGTERM raises ``KeyboardInterrupt``, so pytest tears the fixtures down (namespaces
    deleted, a cluster the run created taken down unless kept); later ones, which a process
    group's second signal or a runner that forwards one would bring, are ignored so they cannot
    break that clean-up. A handler someone else installed is left alone.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        return
    received: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        if received:
            return
        received.append(signum)
        raise KeyboardInterrupt("SIGTERM")

    config.stash[SIGTERM_KEY] = signal.signal(signal.SIGTERM, on_sigterm)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put back the SIGTERM disposition :func:`_stop_on_sigterm` replaced."""
    previous = config.stash.get(SIGTERM_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def pytest_report_header(config: pytest.Config) -> str:
    """One line: provider, cluster, Kubernetes version, container runtime."""
    state = config.stash[STATE_KEY]
    version = state.cluster.k8s_version or "provider default"
    provider = state.provider
    if provider == "auto":
        try:
            provider = resolve_provider_name(provider)
        except ClusterError:
            provider = "auto"
    if provider == "local":
        from pytest_probes.binaries import runtime

        engine = runtime.describe()
    else:
        engine = "as the node reports"
    node = state.cluster.kind_node_image
    if provider == "kind" and node is not None:
        node = ("built offline from pinned sources" if node == "offline"
                else f"{node} as given, no digest pin")
        engine += f", node image {node}"
    return (
        f"probes: provider {state.provider}, cluster {state.cluster.name}, Kubernetes {version}, "
        f"runtime {engine}"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the markers: ``probes`` takes no arguments, ``probes_cluster`` only its keywords.

    A ``probes_cluster`` marker's request is kept in the item's stash for the ``probes_cluster``
    fixture; the closest marker wins (a test's own over its class's or module's).
    """
    for item in items:
        mark = item.get_closest_marker(MARKER)
        if mark is not None:
            try:
                item.stash[CLUSTER_REQUEST_KEY] = cluster_request(mark.args, mark.kwargs)
            except (TypeError, ValueError) as error:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.{MARKER}: {error}. Use "
                    f"@pytest.mark.{MARKER}(feature_gates={{'Gate': True}}, "
                    "kubelet_config={'crashLoopBackOff': {'maxContainerRestartPeriod': '10s'}}, "
                    "min_version='1.35'), each keyword optional"
                ) from None
        for mark in item.iter_markers("probes"):
            if mark.args or mark.kwargs:
                given = ", ".join([repr(a) for a in mark.args] +
                                  [f"{k}={v!r}" for k, v in mark.kwargs.items()])
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.probes takes no arguments (got {given}); "
                    "use the fixtures' keyword arguments or --probes-* options instead"
                )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the timeline to the report of a failed (or, on request, every) probe test.

    The teardown report carries the test's entry for ``--probes-report`` in its
    ``user_properties``, so the entries reach the controller under pytest-xdist too.
    """
    report = yield
    _without_traceback(item.config, call, report)
    if report.failed and report.when in ("setup", "call"):
        item.stash[FAILED_KEY] = True
    if report.when == "teardown" and KEPT_KEY in item.stash:
        report.pytest_probes_kept = item.stash[KEPT_KEY]  # type: ignore[attr-defined]
    state = item.config.stash.get(STATE_KEY, None)
    timeline = item.stash.get(TIMELINE_KEY, None)
    if state is None:
        return report
    if timeline is None:
        if item.get_closest_marker("probes") is not None:
            entry_without_timeline(item, report, state)
        return report
    entry = report_entry(item)
    if note_phase(entry, report):
        show = state.timeline_mode == "always" or (
            state.timeline_mode == "failure" and report.failed
        )
        if show:
            report.sections.append((TIMELINE_SECTION, timeline.to_markdown(limit=200)))
        deployer = getattr(item, "funcargs", {}).get("probes_deploy")
        entry["deploy_s"] = round(sum(getattr(deployer, "durations", [])), 3)
        if report.failed and state.artifacts_dir is not None:
            folder = artifact_folder(state.artifacts_dir, item.nodeid)
            save_timeline_artifacts(timeline, folder, title=item.nodeid)
            funcargs = getattr(item, "funcargs", {})
            if "_probes_api" in funcargs and "probes_namespace" in funcargs:
                collect_namespace(funcargs["_probes_api"], funcargs["probes_namespace"], folder)
            entry["artifacts"] = str(folder)
    if report.when == "teardown":
        finish_entry(entry, scenario_fields(item, timeline), state)
        # Set-up per test: its namespace, its recorder and deploying until the pods run (the
        # session's cluster and image, paid once per worker, are in fixtures_s only).
        entry["setup_s"] = round(sum(entry.get(k, 0.0) for k in
                                     ("namespace_s", "recorder_s", "deploy_s")), 3)
        # An attribute of the report (xdist carries it to the controller) rather than a user
        # property, which --junitxml would print as a Python repr; JUnit gets the key
        # measurement as properties of its own.
        report.pytest_probes_entry = entry  # type: ignore[attr-defined]
        report.user_properties.extend(junit_properties(entry))
        if state.html_path is not None:  # drawn here: only the worker has the timeline
            # Titled by its namespace: the page shows the node id above the chart.
            chart = timeline_chart(timeline, title="",
                           pattern_id=f"gap-{zlib.crc32(item.nodeid.encode()):08x}")
            report.pytest_probes_chart = chart or ""  # type: ignore[attr-defined]
    return report


class _ReportCollector:
    """Collects the report entries, in-process or on the xdist controller from the workers."""

    def __init__(self, state: ProbesState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.state.html_path is not None:
            self._for_html(report)
        if report.when != "teardown":
            return
        entry = getattr(report, "pytest_probes_entry", None)
        if isinstance(entry, dict):
            self.state.report.append(entry)
        kept = getattr(report, "pytest_probes_kept", None)
        if isinstance(kept, list | tuple) and len(kept) == 2:
            self.state.kept_namespaces.append((report.nodeid, *kept))

    def _for_html(self, report: pytest.TestReport) -> None:
        """Keep the test's outcome, failure text and chart for the HTML report.

        A failure in the call makes it ``failed``, one in set-up or teardown ``error``.
        """
        test = self.state.html_tests.setdefault(report.nodeid, {"outcome": "passed"})
        if report.failed:
            if test["outcome"] not in ("failed", "error"):
                test["outcome"] = "failed" if report.when == "call" else "error"
            text = report.longreprtext
            test["failure"] = f"{test['failure']}\n\n{text}" if test.get("failure") else text
        elif report.skipped and test["outcome"] == "passed":
            test["outcome"] = "skipped"
        chart = getattr(report, "pytest_probes_chart", None)
        if isinstance(chart, str) and chart:
            test["chart"] = chart


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the kept namespaces, and (``--probes-timeline always``) passing tests' timelines."""
    state = config.stash.get(STATE_KEY, None)
    if state is None:
        return
    if state.kept_namespaces:
        terminalreporter.write_sep("=", "probes: namespaces kept for inspection")
        for nodeid, namespace, kubeconfig in state.kept_namespaces:
            terminalreporter.write_line(
                f"{nodeid}: kubectl --kubeconfig {kubeconfig} -n {namespace} get all,events")
        terminalreporter.write_line("delete them with: pytest-probes cleanup --kubeconfig "
                                    f"{state.kept_namespaces[0][2]}")
    if state.timeline_mode != "always":
        return
    shown = False
    for report in terminalreporter.stats.get("passed", []):
        if getattr(report, "when", "") != "call":
            continue
        for title, text in report.sections:
            if title != TIMELINE_SECTION:
                continue
            if not shown:
                terminalreporter.write_sep("=", "probes timelines (passed)")
                shown = True
            terminalreporter.write_sep("-", report.nodeid)
            terminalreporter.write_line(text)


def _without_traceback(
    config: pytest.Config, call: pytest.CallInfo[None], report: pytest.TestReport
) -> None:
    """Show a :class:`ProbesError` (bad input, cluster trouble) as its message, not a traceback.

    Its message already says what, where and what to do; ``--tb=long`` or ``--full-trace``
    bring the traceback back.
    """
    error = call.excinfo.value if call.excinfo is not None else None
    if (
        report.failed
        and isinstance(error, ProbesError)
        and not isinstance(error, AssertionError)
        and config.getoption("tbstyle", "auto") != "long"
        and not config.getoption("fulltrace", False)
    ):
        report.longrepr = f"{type(error).__name__}: {error}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Under pytest-xdist, ready the cluster and the target image before the workers start.

    See :mod:`pytest_probes._setup`; xdist starts its workers in its own (later) sessionstart.
    """
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    try:
        state.controller = _setup.set_up(session.config, state, progress_writer(session.config))
    except ProbesError as err:
        pytest.exit(f"{type(err).__name__}: {err}", returncode=pytest.ExitCode.TESTS_FAILED)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Delete a cluster an xdist worker created; write the JSON report if asked for."""
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    if not hasattr(session.config, "workerinput"):
        # Under xdist only: a run in one process removed its objects with its pool.
        journal = cluster_objects_journal(state.cluster.cache_dir, state.run_id)
        if journal.is_file():  # the workers' cluster-scoped objects, before their cluster
            removed = delete_journaled(journal)
            progress_writer(session.config)(
                f"removed {len(removed)} cluster-scoped objects this run created: "
                f"{', '.join(removed)}")
        # The controller's cluster is taken down while the workers' clusters are (each in a
        # thread); a worker's note of that same cluster waits for the controller's lease to end:
        # holding it, the controller would keep itself from the last word.
        progress = progress_writer(session.config)
        with ThreadPoolExecutor(1, thread_name_prefix="probes-down") as pool:
            controller = pool.submit(_setup.finish, state.controller, state.run_owner, progress)
            after = {} if state.controller is None else {
                state.controller.cluster.name: controller}
            used = finish_workers_clusters(state.cluster.cache_dir, state.run_id,
                                           me=state.run_owner, progress=progress, after=after)
            controller.result()
        for provider in sorted(used):
            take_down_orphans(state.cluster.cache_dir, provider, state.cluster.name,
                              me=state.run_owner, progress=progress)
    if hasattr(session.config, "workerinput"):
        return
    save_durations(session.config, state)
    cluster = state.cluster_info or {  # under xdist the workers had the cluster
        key: next((e.get(key) for e in state.report if e.get(key)), None)
        for key in ("k8s_version", "runtime", "provider")
    }
    if state.report_path is not None:
        state.report_path.parent.mkdir(parents=True, exist_ok=True)
        state.report_path.write_text(
            json.dumps({"cluster": cluster, "tests": state.report}, indent=2) + "\n",
            encoding="utf-8",
        )
    if state.html_path is not None:
        write_html(state, cluster)

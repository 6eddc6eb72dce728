"""What a probe spec promises, from the timing math alone: ``pytest-probes explain``.

For each container of each workload in some manifests, the windows the kubelet's rules
(:mod:`pytest_probes.timing`) give: after the app stops answering in steady state, when the first
liveness kill comes, when the container is running again, and when the pod leaves the Service's
endpoints (how long it keeps receiving traffic); after a start, when it can be Ready and how long
the startup probe waits; and the restart schedule of a container that crashes at once. Then the
findings, each with the reason and the fix. Nothing here talks to a cluster.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_probes.deploy import ManifestObject
from pytest_probes.deploy import pod_templates as deploy_pod_templates
from pytest_probes.errors import DeployError
from pytest_probes.timing import ContainerTiming, ProbeSpec, TimingError, Window, endpoints_follow

STEADY = 10_000.0
"""A moment (seconds after the container start) long past every initial delay and the startup
probe: a failure then meets the probes in their steady rhythm."""

CRASH_LOOP_RESTARTS = 6
"""How many restarts of a container that crashes at once the schedule shows."""

@dataclass(frozen=True)
class Finding:
    """Something in a probe spec that will not behave as its author probably meant."""

    code: str
    where: str
    reason: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """The finding as JSON."""
        return {"code": self.code, "where": self.where, "reason": self.reason, "fix": self.fix}


@dataclass
class ContainerReport:
    """The windows of one container (seconds; see the module docstring)."""

    workload: str
    source: str
    container: str
    probes: dict[str, str] = field(default_factory=dict)
    windows: dict[str, Window | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    crash_loop: list[Window] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (a window as ``[earliest, latest]``, ``null`` if it never comes)."""
        return {
            "workload": self.workload, "source": self.source, "container": self.container,
            "probes": self.probes,
            "windows": {k: None if w is None else [round(w.earliest, 3), round(w.latest, 3)]
                        for k, w in self.windows.items()},
            "notes": self.notes,
            "crash_loop_restarts": [[round(w.earliest, 3), round(w.latest, 3)]
                                    for w in self.crash_loop],
        }


@dataclass
class Explanation:
    """Everything ``explain`` found in a set of manifests."""

    containers: list[ContainerReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The explanation as JSON."""
        return {"containers": [c.to_json() for c in self.containers],
                "findings": [f.to_json() for f in self.findings]}


WINDOW_LABELS = {
    "liveness_kill": "stops answering -> first liveness kill (Killing)",
    "restart": "stops answering -> running again (Started)",
    "endpoint_removed": "stops answering -> out of the Service's endpoints",
    "ready_after_start": "start -> Ready (app answering at once)",
    "startup_budget": "start -> killed if the startup probe never passes",
}


def pod_templates(obj: ManifestObject) -> list[Mapping[str, Any]]:
    """The pod template (``metadata`` and ``spec``) of a workload; a Pod is its own."""
    return [template for template, _path in deploy_pod_templates(obj.doc)]


def explain(objects: Sequence[ManifestObject]) -> Explanation:
    """Explain every container of every workload in ``objects``.

    Raises:
        DeployError: A probe or a pod spec is invalid (naming the object and field).
    """
    out = Explanation()
    services = [o for o in objects if o.kind == "Service"]
    for obj in objects:
        for template in pod_templates(obj):
            spec = template.get("spec") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            workload = f"{obj.kind}/{obj.name or '(unnamed)'}"
            containers = [c for c in spec.get("containers") or [] if isinstance(c, Mapping)]
            sidecars = [c for c in spec.get("initContainers") or []
                        if isinstance(c, Mapping) and c.get("restartPolicy") == "Always"]
            for container in containers + sidecars:
                name = str(container.get("name") or "")
                try:
                    timing = ContainerTiming.from_pod_spec(spec, name)
                except (DeployError, TimingError) as err:
                    raise obj.error(f"container {name}: {err}") from err
                report = _report(workload, obj.where, timing)
                out.containers.append(report)
                out.findings += _container_findings(f"{workload} container {name}", container,
                                                    timing, spec)
            if containers and not any(c.get("readinessProbe") for c in containers):
                out.findings += [
                    Finding("service-without-readiness", f"{svc.kind}/{svc.name}",
                            f"it selects the pods of {workload}, none of whose containers has a "
                            "readinessProbe: they get traffic from the moment they start, before "
                            "the app may answer, and keep it while they hang",
                            f"add a readinessProbe to {workload}'s serving container")
                    for svc in services if _selects(svc, labels)]
    return out


def _selects(service: ManifestObject, labels: Mapping[str, Any]) -> bool:
    selector = (service.doc.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _from_failure(w: Window) -> Window:
    return w.shifted(-STEADY)


def _report(workload: str, source: str, timing: ContainerTiming) -> ContainerReport:
    report = ContainerReport(workload=workload, source=source, container=timing.name)
    for kind in ("liveness", "readiness", "startup"):
        probe: ProbeSpec | None = getattr(timing, kind)
        if probe is not None:
            report.probes[kind] = (
                f"{probe.handler or 'no handler'}, delay {probe.initial_delay:g} s, period "
                f"{probe.period:g} s, timeout {probe.timeout:g} s, failure threshold "
                f"{probe.failure_threshold}, success threshold {probe.success_threshold}")
    w = report.windows
    kill = None
    if timing.liveness is not None:
        kill = _from_failure(timing.first_liveness_kill(fail_from=STEADY))
        w["liveness_kill"] = kill
        # The first restart has no back-off; the app may exit on SIGTERM at once, or hang until
        # the grace period's SIGKILL.
        fast = timing.restart_after_kill(exits_on_sigterm_after=0.0)
        slow = timing.restart_after_kill(exits_on_sigterm_after=None)
        w["restart"] = kill + fast.hull(slow)
    else:
        w["liveness_kill"] = w["restart"] = None
        report.notes["liveness_kill"] = "never: no liveness probe"
        report.notes["restart"] = "never: no liveness probe restarts a hung app"
    if timing.readiness is not None:
        w["endpoint_removed"] = endpoints_follow(
            _from_failure(timing.readiness_loss(fail_from=STEADY)))
        w["ready_after_start"] = timing.readiness_gain()
    else:
        w["ready_after_start"] = timing.startup_success()
        report.notes["ready_after_start"] = "no readiness probe: Ready once started"
        if kill is not None:
            # Ready until the killed container has exited (then the pod is not Ready).
            down = timing.kill_duration(exits_on_sigterm_after=0.0).hull(
                timing.kill_duration(exits_on_sigterm_after=None))
            w["endpoint_removed"] = endpoints_follow(kill + down + Window(0.0, timing.status_lag))
            report.notes["endpoint_removed"] = "no readiness probe: only the liveness kill ends it"
        else:
            w["endpoint_removed"] = None
            report.notes["endpoint_removed"] = ("never: with neither readiness nor liveness "
                                                "probe a hung pod keeps its traffic")
    w["startup_budget"] = timing.startup_give_up() if timing.startup is not None else None
    if timing.startup is None:
        report.notes["startup_budget"] = "no startup probe"
    report.crash_loop = list(timing.restart_schedule(CRASH_LOOP_RESTARTS, crash=True,
                                                     run_until_kill=0.0))
    return report


def _handler(probe: Mapping[str, Any] | None) -> Any:
    if not isinstance(probe, Mapping):
        return None
    return next(((k, probe[k]) for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe),
                None)


def _pre_stop_seconds(container: Mapping[str, Any]) -> float | None:
    """Seconds a ``preStop`` hook sleeps, where it says (``sleep`` action or a sleep command)."""
    hook = ((container.get("lifecycle") or {}).get("preStop") or {})
    if isinstance(hook.get("sleep"), Mapping):
        return float(hook["sleep"].get("seconds") or 0)
    command = (hook.get("exec") or {}).get("command") or []
    words: list[str] = []
    for part in command:
        words += shlex.split(str(part)) if " " in str(part) else [str(part)]
    for i, word in enumerate(words[:-1]):
        if word.rsplit("/", 1)[-1] == "sleep":
            try:
                return float(words[i + 1])
            except ValueError:
                return None
    return None


def _container_findings(where: str, container: Mapping[str, Any], timing: ContainerTiming,
                        spec: Mapping[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    live, ready, startup = timing.liveness, timing.readiness, timing.startup
    for kind, probe in (("liveness", live), ("readiness", ready), ("startup", startup)):
        if probe is not None and probe.timeout >= probe.period:
            found.append(Finding(
                "timeout-not-below-period", f"{where} {kind}Probe",
                f"timeoutSeconds {probe.timeout:g} >= periodSeconds {probe.period:g}: a slow "
                "probe holds the worker past its next tick, which is then skipped, so failures "
                "are counted more slowly than the spec suggests",
                "make timeoutSeconds smaller than periodSeconds"))
    if live is not None and ready is not None and startup is None:
        kill = timing.first_liveness_kill(fail_from=0.0)
        gain = timing.readiness_gain()
        if kill.earliest < ready.initial_delay or kill.earliest < gain.earliest:
            found.append(Finding(
                "liveness-before-readiness", f"{where} livenessProbe",
                f"an app that does not answer from its start is killed from {kill.earliest:g} s "
                f"on, before its readiness probe could pass (from {gain.earliest:g} s, "
                f"initialDelaySeconds {ready.initial_delay:g}): a slow start is a restart loop",
                "add a startupProbe that covers the start-up, or give liveness a longer "
                "initialDelaySeconds than readiness"))
    if startup is not None:
        budget = timing.startup_give_up()
        for kind, probe in (("liveness", live), ("readiness", ready)):
            if probe is not None and probe.initial_delay > budget.earliest:
                found.append(Finding(
                    "startup-budget-short", f"{where} startupProbe",
                    f"{kind}Probe.initialDelaySeconds {probe.initial_delay:g} suggests the app "
                    f"needs that long to start, but the startup probe kills it from "
                    f"{budget.earliest:g} s on (failureThreshold {startup.failure_threshold} x "
                    f"periodSeconds {startup.period:g})",
                    f"raise the startupProbe's failureThreshold so that failureThreshold x "
                    f"periodSeconds >= {probe.initial_delay:g}, and drop the {kind} delay (the "
                    "startup probe already holds it back)"))
    live_check, ready_check = (_handler(container.get(k))
                               for k in ("livenessProbe", "readinessProbe"))
    if live_check is not None and live_check == ready_check:
        found.append(Finding(
            "identical-liveness-and-readiness", f"{where} livenessProbe",
            f"liveness and readiness run the same check ({live_check[0]} "
            f"{json.dumps(live_check[1], sort_keys=True)}): an app that is only overloaded is "
            "killed instead of being taken out of the endpoints until it recovers",
            "let liveness check only that the process is alive (a lighter endpoint), or give it "
            "a higher failureThreshold than readiness"))
    found += _port_findings(where, container)
    pre_stop = _pre_stop_seconds(container)
    grace = float(spec.get("terminationGracePeriodSeconds", 30) or 0)
    if pre_stop is not None and pre_stop >= grace:
        found.append(Finding(
            "grace-shorter-than-prestop", f"{where} lifecycle.preStop",
            f"the preStop hook sleeps {pre_stop:g} s but terminationGracePeriodSeconds is "
            f"{grace:g}: the hook is cut short and the app gets only the kubelet's minimum of "
            "2 s after SIGTERM",
            f"set terminationGracePeriodSeconds above {pre_stop:g} plus the app's shutdown time"))
    return found


def _port_findings(where: str, container: Mapping[str, Any]) -> list[Finding]:
    declared = [p for p in container.get("ports") or [] if isinstance(p, Mapping)]
    numbers = {p.get("containerPort") for p in declared}
    names = {p.get("name") for p in declared if p.get("name")}
    found = []
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        check = _handler(container.get(kind))
        if check is None or check[0] == "exec" or not isinstance(check[1], Mapping):
            continue
        port = check[1].get("port")
        if isinstance(port, str) and not port.isdigit():
            if port not in names:
                found.append(Finding(
                    "undeclared-probe-port", f"{where} {kind}",
                    f"the probe uses the named port {port!r}, which the container does not "
                    "declare: the kubelet cannot resolve it and every probe fails",
                    f"declare a port named {port!r} in the container's ports, or use a number"))
        elif port is not None and int(port) not in numbers:
            found.append(Finding(
                "undeclared-probe-port", f"{where} {kind}",
                f"the probe checks port {port}, which the container does not declare (it "
                f"declares {sorted(n for n in numbers if n is not None) or 'none'}): often a "
                "typo, and the probe then fails or checks another process",
                f"declare containerPort {port} or point the probe at a declared port"))
    return found


# --------------------------------------------------------------------------- rendering


def _window_text(w: Window | None, note: str | None) -> str:
    if w is None:
        return note or "never"
    return f"{w}" + (f" ({note})" if note else "")


def render_text(explanation: Explanation) -> str:
    """The explanation as plain text, for a terminal."""
    lines: list[str] = []
    for c in explanation.containers:
        lines.append(f"{c.workload} container {c.container}  ({c.source})")
        for kind, text in c.probes.items():
            lines.append(f"  {kind}: {text}")
        for key, label in WINDOW_LABELS.items():
            lines.append(f"  {label}: {_window_text(c.windows.get(key), c.notes.get(key))}")
        lines.append("  crash at start -> restarts at: "
                     + ", ".join(str(w) for w in c.crash_loop))
        lines.append("")
    lines += _findings_lines(explanation.findings, bullet="- ")
    return "\n".join(lines).rstrip() + "\n"


def render_markdown(explanation: Explanation) -> str:
    """The explanation as Markdown: a table per container, then the findings."""
    lines: list[str] = []
    for c in explanation.containers:
        lines += [f"### {c.workload} container `{c.container}`", "", f"From `{c.source}`.", ""]
        lines += [f"- {kind}: {text}" for kind, text in c.probes.items()]
        lines += ["", "| what | window |", "|---|---|"]
        lines += [f"| {label} | {_window_text(c.windows.get(key), c.notes.get(key))} |"
                  for key, label in WINDOW_LABELS.items()]
        lines.append("| crash at start -> restarts at | "
                     + ", ".join(str(w) for w in c.crash_loop) + " |")
        lines.append("")
    lines += ["### Findings", "", *_findings_lines(explanation.findings, bullet="- ")]
    return "\n".join(lines).rstrip() + "\n"


def _findings_lines(findings: Iterable[Finding], *, bullet: str) -> list[str]:
    findings = list(findings)
    if not findings:
        return ["No findings."]
    return [f"{len(findings)} finding(s):"] + [
        f"{bullet}[{f.code}] {f.where}: {f.reason}. Fix: {f.fix}." for f in findings]


def render(explanation: Explanation, fmt: str) -> str:
    """Render as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(explanation.to_json(), indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(explanation)
    return render_text(explanation)

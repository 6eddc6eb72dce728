"""Probe specs: a container's probes read from a manifest, with the API server's defaults.

:meth:`ProbeSpec.from_k8s` applies ``SetDefaults_Probe`` (``pkg/apis/core/v1/defaults.go``) and
rejects what the API server rejects; :func:`_pod_spec_of` finds the pod spec in a Pod, a workload
or a CronJob manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_probes.errors import DeployError
from pytest_probes.timing.window import TimingError

_PROBE_DEFAULTS = {
    "periodSeconds": 10,
    "timeoutSeconds": 1,
    "successThreshold": 1,
    "failureThreshold": 3,
}
_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


def _int_field(
    obj: Mapping[str, Any], key: str, *, where: str, default: int | None, minimum: int
) -> int | None:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeployError(
            f"{where}.{key}: expected a whole number of seconds or a count, got {value!r}; "
            "write it as an integer (e.g. 5)"
        )
    if value == 0 and default is not None:
        # The API server's SetDefaults_Probe treats 0 as unset.
        return default
    if value < minimum:
        raise DeployError(f"{where}.{key}: must be >= {minimum}, got {value}; the API server "
                          "rejects this spec")
    return value


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container, with the API defaults applied.

    Attributes:
        initial_delay: ``initialDelaySeconds``.
        period: ``periodSeconds``.
        timeout: ``timeoutSeconds``.
        success_threshold: ``successThreshold``.
        failure_threshold: ``failureThreshold``.
        termination_grace_period: The probe-level ``terminationGracePeriodSeconds``, or ``None``.
        handler: ``httpGet``, ``tcpSocket``, ``exec`` or ``grpc`` (``""`` when not given).
    """

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: float | None = None
    handler: str = ""

    def __post_init__(self) -> None:
        if self.period < 1 or self.timeout < 1 or self.initial_delay < 0:
            raise TimingError(
                f"probe needs period >= 1, timeout >= 1, initial delay >= 0; got period "
                f"{self.period:g}, timeout {self.timeout:g}, initial delay {self.initial_delay:g}"
            )
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise TimingError(
                f"probe thresholds must be >= 1; got success {self.success_threshold}, "
                f"failure {self.failure_threshold}"
            )

    @classmethod
    def from_k8s(cls, probe: Mapping[str, Any], *, where: str = "probe") -> ProbeSpec:
        """Read a probe in Kubernetes API camelCase, applying the API defaults.

        Defaults (``pkg/apis/core/v1/defaults.go``, ``SetDefaults_Probe``): period 10 s, timeout
        1 s, success threshold 1, failure threshold 3; a zero means unset.

        Args:
            probe: The probe mapping, e.g. ``{"httpGet": {...}, "periodSeconds": 5}``.
            where: Where the probe sits, for error messages.

        Returns:
            The probe spec.

        Raises:
            DeployError: A field is not an integer or is out of the API's range.
        """
        if not isinstance(probe, Mapping):
            raise DeployError(f"{where}: expected a mapping, got {type(probe).__name__}")
        values = {
            key: _int_field(probe, key, where=where, default=default, minimum=1)
            for key, default in _PROBE_DEFAULTS.items()
        }
        delay = _int_field(probe, "initialDelaySeconds", where=where, default=None, minimum=0)
        grace = _int_field(probe, "terminationGracePeriodSeconds", where=where, default=None,
                           minimum=1)
        handler = next((h for h in _HANDLERS if h in probe), "")
        return cls(
            initial_delay=float(delay or 0),
            period=float(values["periodSeconds"] or 10),
            timeout=float(values["timeoutSeconds"] or 1),
            success_threshold=int(values["successThreshold"] or 1),
            failure_threshold=int(values["failureThreshold"] or 3),
            termination_grace_period=None if grace is None else float(grace),
            handler=handler,
        )


def _pod_spec_of(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """Find the pod spec in a pod spec, a Pod, a workload or a CronJob manifest."""
    if "containers" in manifest:
        return manifest
    spec = manifest.get("spec")
    kind = manifest.get("kind", "<no kind>")
    if isinstance(spec, Mapping):
        if "containers" in spec:
            return spec
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, Mapping):
            spec = job_template.get("spec", {})
        template = spec.get("template") if isinstance(spec, Mapping) else None
        if isinstance(template, Mapping):
            inner = template.get("spec")
            if isinstance(inner, Mapping) and "containers" in inner:
                return inner
    raise DeployError(
        f"no pod spec found in a {kind} manifest: expected .containers, .spec.containers, "
        ".spec.template.spec.containers or .spec.jobTemplate.spec.template.spec.containers",
        kind=str(kind),
        name=_name_of(manifest),
    )


def _name_of(manifest: Mapping[str, Any]) -> str | None:
    meta = manifest.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return str(name) if name else None

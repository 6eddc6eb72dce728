"""A cluster configured for a test: feature gates, kubelet settings, the version it needs.

A test asks with ``@pytest.mark.probes_cluster(feature_gates=..., kubelet_config=...,
min_version=...)``; :func:`cluster_request` reads those keywords into a :class:`ClusterRequest`.
Its :class:`ClusterSettings` are what a provider sets up; every distinct configuration gets a
cluster of its own, named from it (:meth:`ClusterSettings.cluster_name`: the run's cluster name
and a short hash of the configuration), and the default configuration is the run's shared
cluster. ``min_version`` and the feature gates a version does not know make a test not applicable
to the running version (:func:`not_applicable`): it is skipped with the reason, never passed.

Pure: no pytest, no I/O. The plugin turns a :class:`ValueError` or :class:`TypeError` of
:func:`cluster_request` into a usage error naming the test.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MARKER = "probes_cluster"
"""The marker's name: ``@pytest.mark.probes_cluster(...)``."""

KEYWORDS = ("feature_gates", "kubelet_config", "min_version")
"""The marker's keywords, all optional."""

MARKER_HELP = (
    f"{MARKER}(feature_gates={{'Gate': True}}, kubelet_config={{...}}, min_version='1.35'): run "
    "the test on a cluster with these kubelet and control-plane feature gates and this "
    "KubeletConfiguration merged in (one cluster per distinct configuration, shared by the tests "
    "that ask for it), and skip it on Kubernetes older than min_version or without the gates"
)
"""The marker's line in ``pytest --markers``."""

_GATE = re.compile(r"[A-Z][A-Za-z0-9]*")
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
_FORBIDDEN_KUBELET_KEYS = ("apiVersion", "kind", "featureGates")
DIGEST_LENGTH = 6
"""Hex digits of the configuration's hash in a configured cluster's name."""


def merge_config(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into ``base`` as YAML documents merge: mappings key by key, deeply.

    A mapping in both is merged; anything else in ``overlay`` (a scalar, a list) replaces the
    value in ``base``. Neither argument is changed.
    """
    out = dict(base)
    for key, value in overlay.items():
        below = out.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            out[key] = merge_config(below, value)
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """A copy of ``value`` made of dicts and lists only (for JSON and comparisons)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class ClusterSettings:
    """What a configured cluster sets up beyond the default: feature gates and kubelet settings.

    Build it with :meth:`of`. Hashable and comparable, so it keys a cache of clusters.

    Attributes:
        feature_gates: ``(name, enabled)`` pairs, sorted by name. They go to the kubelet's
            ``featureGates`` and to ``--feature-gates`` of the API server, controller manager and
            scheduler (each knows every gate of its version).
        kubelet_json: The KubeletConfiguration fragment merged into the provider's, as canonical
            JSON (``""``: none).
    """

    feature_gates: tuple[tuple[str, bool], ...] = ()
    kubelet_json: str = ""

    @classmethod
    def of(
        cls,
        feature_gates: Mapping[str, bool] | None = None,
        kubelet_config: Mapping[str, Any] | None = None,
    ) -> ClusterSettings:
        """Check and freeze a configuration.

        Raises:
            TypeError: ``feature_gates`` is not a mapping of names to booleans, or
                ``kubelet_config`` is not a mapping with string keys.
            ValueError: A gate name is not a Kubernetes feature gate name (``CamelCase``), or
                ``kubelet_config`` sets ``apiVersion``, ``kind`` or ``featureGates``.
        """
        gates = _check_gates(feature_gates)
        if kubelet_config is None:
            kubelet_config = {}
        if not isinstance(kubelet_config, Mapping):
            raise TypeError(
                f"kubelet_config must be a mapping (the KubeletConfiguration fields to merge, as "
                f"YAML: {{'crashLoopBackOff': {{'maxContainerRestartPeriod': '10s'}}}}), got "
                f"{type(kubelet_config).__name__} {kubelet_config!r}"
            )
        _check_keys(kubelet_config, "kubelet_config")
        for key in _FORBIDDEN_KUBELET_KEYS:
            if key in kubelet_config:
                fix = "pass feature gates as feature_gates=" if key == "featureGates" else (
                    "the provider sets it")
                raise ValueError(f"kubelet_config must not set {key!r}: {fix}")
        text = json.dumps(_plain(kubelet_config), sort_keys=True) if kubelet_config else ""
        return cls(tuple(sorted(gates.items())), text)

    @property
    def gates(self) -> dict[str, bool]:
        """The feature gates as a dict."""
        return dict(self.feature_gates)

    @property
    def kubelet_config(self) -> dict[str, Any]:
        """The KubeletConfiguration fragment as a dict (empty when there is none)."""
        return json.loads(self.kubelet_json) if self.kubelet_json else {}

    @property
    def is_default(self) -> bool:
        """Whether nothing is configured: the run's shared cluster."""
        return not self.feature_gates and not self.kubelet_json

    @property
    def digest(self) -> str:
        """A short hash of the configuration (stable across runs and machines)."""
        canonical = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_LENGTH]

    def cluster_name(self, base: str) -> str:
        """The name of the cluster with this configuration: ``base``, or ``base-<digest>``.

        ``base`` is cut so that the name stays within :data:`CLUSTER_NAME_MAX` characters.
        """
        from pytest_probes.cluster import CLUSTER_NAME_MAX  # cluster imports this module

        if self.is_default:
            return base
        keep = CLUSTER_NAME_MAX - DIGEST_LENGTH - 1
        return f"{base[:keep].rstrip('-')}-{self.digest}"

    def describe(self) -> str:
        """One line for progress and reasons: ``feature gates A=true; kubelet {...}``."""
        parts = []
        if self.feature_gates:
            parts.append("feature gates " + ", ".join(
                f"{name}={str(on).lower()}" for name, on in self.feature_gates))
        if self.kubelet_json:
            parts.append(f"kubelet {self.kubelet_json}")
        return "; ".join(parts) or "the default configuration"

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON (for a cluster's state file)."""
        return {"feature_gates": self.gates, "kubelet_config": self.kubelet_config}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ClusterSettings:
        """Read :meth:`to_json`'s output (``None`` or ``{}``: the default configuration)."""
        data = data or {}
        return cls.of(data.get("feature_gates") or None, data.get("kubelet_config") or None)


def _check_gates(feature_gates: Mapping[str, bool] | None) -> dict[str, bool]:
    if feature_gates is None:
        return {}
    if not isinstance(feature_gates, Mapping):
        raise TypeError(
            f"feature_gates must be a mapping of gate names to True/False, e.g. "
            f"{{'KubeletCrashLoopBackOffMax': True}}, got {type(feature_gates).__name__} "
            f"{feature_gates!r}"
        )
    out = {}
    for name, enabled in feature_gates.items():
        if not isinstance(name, str) or not _GATE.fullmatch(name):
            raise ValueError(
                f"feature_gates: {name!r} is not a feature gate name; gates are CamelCase, as in "
                "kube_features.go (e.g. ReduceDefaultCrashLoopBackOffDecay)"
            )
        if not isinstance(enabled, bool):
            raise TypeError(
                f"feature_gates[{name!r}] must be True or False, got {enabled!r}"
            )
        out[name] = enabled
    return out


def _check_keys(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, below in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string; KubeletConfiguration "
                                "fields are strings such as 'crashLoopBackOff'")
            _check_keys(below, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, below in enumerate(value):
            _check_keys(below, f"{where}[{i}]")


def parse_version(text: str) -> tuple[int, ...]:
    """``1.35``, ``v1.35.2`` or ``v1.35.2-rc.0+abc`` as ``(1, 35)`` or ``(1, 35, 2)``.

    Raises:
        ValueError: The text does not start with ``MAJOR.MINOR``.
    """
    match = _VERSION.match(str(text).strip())
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes version such as 1.35 or 1.35.2")
    return tuple(int(g) for g in match.groups() if g is not None)


@dataclass(frozen=True)
class ClusterRequest:
    """What one test's marker asks for.

    Attributes:
        settings: The configuration of the cluster the test runs on.
        min_version: The oldest Kubernetes version that has what the test needs
            (``1.35`` or ``1.35.2``), or ``None``.
    """

    settings: ClusterSettings = field(default_factory=ClusterSettings)
    min_version: str | None = None


def cluster_request(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> ClusterRequest:
    """Read the marker's arguments.

    Raises:
        TypeError: Positional arguments, an unknown keyword, or a value of the wrong type.
        ValueError: A value of the right type that is not valid (the message says the fix).
    """
    if args:
        raise TypeError(f"takes keywords only ({', '.join(KEYWORDS)}), got positional "
                        f"{', '.join(repr(a) for a in args)}")
    unknown = sorted(set(kwargs) - set(KEYWORDS))
    if unknown:
        raise TypeError(f"unknown keyword {', '.join(unknown)}; it takes {', '.join(KEYWORDS)}")
    min_version = kwargs.get("min_version")
    if min_version is not None:
        if not isinstance(min_version, str):
            raise TypeError(f"min_version must be a string such as '1.35', got {min_version!r}")
        parse_version(min_version)
        if not re.fullmatch(r"v?\d+\.\d+(\.\d+)?", min_version.strip()):
            raise ValueError(f"min_version {min_version!r} is not MAJOR.MINOR[.PATCH], e.g. 1.35")
        min_version = min_version.strip().removeprefix("v")
    settings = ClusterSettings.of(kwargs.get("feature_gates"), kwargs.get("kubelet_config"))
    return ClusterRequest(settings, min_version)


def too_old(min_version: str | None, running: str) -> str | None:
    """Why a test that needs ``min_version`` does not apply to ``running``, or ``None``.

    Args:
        min_version: ``1.35`` or ``1.35.2``, or ``None``.
        running: The cluster's version (``v1.33.13`` or ``1.33.13``).
    """
    if min_version is None:
        return None
    needed = parse_version(min_version)
    have = parse_version(running)
    if have[:len(needed)] >= needed:
        return None
    return f"needs Kubernetes ≥ {min_version} (running {running.lstrip('v')})"


def refused_gates(problem: str, running: str) -> str:
    """The reason a version's components refused the gates of a configuration, for a skip.

    Args:
        problem: What the component said (:func:`pytest_probes.binaries.k8s.feature_gate_problem`:
            ``unrecognized feature gate: Foo``, or ``cannot set feature gate X to false, feature
            is locked to true``).
        running: The version, for the message.
    """
    version = running.lstrip("v")
    unknown = re.findall(r"unrecognized feature gate: ([A-Za-z0-9]+)", problem)
    if unknown:
        return f"feature gate {', '.join(unknown)} does not exist in Kubernetes {version}"
    return f"Kubernetes {version} refuses the feature gates: {problem}"

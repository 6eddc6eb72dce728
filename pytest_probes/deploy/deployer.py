"""Apply manifests into a test's namespace with server-side apply, and wait for their pods.

:class:`Deployer` reads and prepares a manifest (:mod:`~pytest_probes.deploy.manifests`,
:mod:`~pytest_probes.deploy.preparation`), applies its namespaced objects with server-side apply
and its cluster-scoped ones once per run through :mod:`pytest_probes.cluster_objects`, then
watches the pods until they exist, run or are ready. A wait ends early with a diagnosis
(:func:`~pytest_probes.deploy.pods.pod_problem`) when a pod can never get there (the image cannot
be pulled, the pod cannot be scheduled, ...), instead of running out its timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from pytest_probes._poll import poll
from pytest_probes.cluster_objects import CRD_KIND, ClusterObjects
from pytest_probes.deploy.manifests import ManifestObject, ManifestSource, load_manifests
from pytest_probes.deploy.pods import (
    WAIT_CHOICES,
    WaitFor,
    WorkloadState,
    _meta,
    pod_problem,
    pod_reached,
    workload_state,
)
from pytest_probes.deploy.preparation import crd_names, prepare
from pytest_probes.errors import ClusterError, DeployError, ProbesTimeoutError
from pytest_probes.errors import api_message as _api_message

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
"""The label :class:`Deployer` puts on every object and pod template it applies."""

DEFAULT_LABELS: Mapping[str, str] = MappingProxyType({MANAGED_BY_LABEL: "pytest-probes"})

# Kinds whose pods Deployer.wait() waits for (a CronJob's pods come on its schedule, not on apply).
_POD_OWNING_KINDS = frozenset(
    {"Pod", "Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job"}
)

_WATCH_SLICE_SECONDS = 5.0
"""A pod watch ends after this long so workload status without pod events is seen too."""


class Deployer:
    """Apply manifests into one namespace with server-side apply and wait for their pods.

    Args:
        api_client: A ``kubernetes.client.ApiClient`` for the cluster.
        namespace: The namespace to deploy into (it must exist).
        target_image: The reference of the target image on the cluster's node.
        base_dirs: Extra directories to search for relative manifest paths.
        field_manager: The field manager name for server-side apply.
        labels: Labels put on every object and pod template (default
            ``app.kubernetes.io/managed-by=pytest-probes``).
        clock: A monotonic clock in seconds, for deadlines.
        progress: Called with a line whenever what a wait sees changes.
        cluster_objects: The run's cluster-scoped objects (CRDs, ClusterRoles, ...): a manifest's
            cluster-scoped objects are applied through it, once per run. By default each
            Deployer has its own; ``deployer.cluster_objects.delete_created(api_client)`` removes
            what it created.
    """

    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        *,
        target_image: str,
        base_dirs: Sequence[Path | str] = (),
        field_manager: str = "pytest-probes",
        labels: Mapping[str, str] = DEFAULT_LABELS,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] | None = None,
        cluster_objects: ClusterObjects | None = None,
    ) -> None:
        self.api_client = api_client
        self.cluster_objects = cluster_objects or ClusterObjects(f"library-{os.getpid()}")
        self.namespace = namespace
        self.target_image = target_image
        self.base_dirs = tuple(Path(d) for d in base_dirs)
        self.field_manager = field_manager
        self.labels = dict(labels)
        self._clock = clock
        self._progress = progress
        self.durations: list[float] = []
        """Seconds each :meth:`apply` took, waiting included (the report's set-up time)."""
        self._dynamic: Any = None
        self._cache_dir: str | None = None

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def dynamic(self) -> Any:
        """The ``kubernetes.dynamic.DynamicClient``, created on first use.

        Its discovery cache lives in a private temporary directory, so a cluster recreated at the
        same address with another Kubernetes version never sees a stale cache.
        """
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient

            self._cache_dir = tempfile.mkdtemp(prefix="pytest-probes-discovery-")
            try:
                self._dynamic = DynamicClient(  # type: ignore[no-untyped-call]
                    self.api_client, cache_file=os.path.join(self._cache_dir, "discovery.json")
                )
            except Exception as err:
                raise ClusterError(
                    f"cannot read the API server's discovery documents "
                    f"({self.api_client.configuration.host}): {_api_message(err)}. Check that "
                    "the cluster is up and the kubeconfig points at it"
                ) from err
        return self._dynamic

    def close(self) -> None:
        """Drop the API discovery cache. The deployed objects are left alone."""
        if self._cache_dir is not None:
            shutil.rmtree(self._cache_dir, ignore_errors=True)
            self._cache_dir = None
        self._dynamic = None

    def __enter__(self) -> Deployer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except (ResourceNotFoundError, ResourceNotUniqueError):
            return None

    def _get_json(self, resource: Any, **kwargs: Any) -> dict[str, Any]:
        response = self.dynamic.get(resource, namespace=self.namespace, serialize=False, **kwargs)
        return cast(dict[str, Any], json.loads(response.data))

    def _list(self, api_version: str, kind: str) -> list[dict[str, Any]]:
        resource = self._resource(api_version, kind)
        if resource is None:
            return []
        return list(self._get_json(resource).get("items") or [])

    # -- apply ---------------------------------------------------------------------------------

    def apply(
        self,
        source: ManifestSource,
        *,
        wait: WaitFor = "running",
        timeout: float = 120,
        substitutions: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Apply a manifest into the namespace and wait for its pods.

        Uses server-side apply with ``force``, so applying a changed manifest again updates the
        objects (a Pod's spec, however, is mostly immutable: the server refuses such a change).

        Args:
            source: The manifest, as :func:`load_manifests` accepts it.
            wait: ``none``; ``exist``: the pods exist; ``running``: they run (phase Running);
                ``ready``: they are Ready.
            timeout: Seconds to wait for the pods.
            substitutions: Values for ``${VAR}`` placeholders in the manifest.

        Returns:
            The applied objects as the server returned them.

        Raises:
            DeployError: The manifest cannot be read or prepared, the cluster does not serve a
                kind, the server refused an object, or a pod can never reach ``wait`` (the message
                names the pod, container, reason and what to do).
            ProbesTimeoutError: The pods did not reach ``wait`` within ``timeout``.
            ClusterError: The API server could not be reached.
        """
        _check_wait(wait)
        began = self._clock()
        objects = prepare(
            load_manifests(source, base_dirs=self.base_dirs),
            namespace=self.namespace,
            target_image=self.target_image,
            labels=self.labels,
            substitutions=substitutions or {},
        )
        # Definitions first: their kinds are served only once they are established.
        objects.sort(key=lambda obj: obj.kind != CRD_KIND)
        defined = {crd_names(obj.doc)[1] for obj in objects} - {""}
        applied = []
        for obj in objects:
            resource = self._resource_for(obj, defined_here=obj.kind in defined)
            if resource.namespaced:
                applied.append(self._apply_one(obj, resource))
                continue
            obj.doc["metadata"].pop("namespace", None)  # a kind prepare() could not know
            applied.append(self.cluster_objects.ensure(
                self.dynamic, resource, obj.doc, describe=obj.describe(),
                field_manager=self.field_manager,
            ))
        if wait != "none":
            self.wait(applied, until=wait, timeout=timeout)
        self.durations.append(self._clock() - began)
        return applied

    __call__ = apply  # the probes_deploy fixture is a Deployer: calling it applies

    def _resource_for(self, obj: ManifestObject, *, defined_here: bool = False) -> Any:
        resource = self._resource(obj.api_version, obj.kind)
        if resource is None and defined_here:
            # Its CRD was just established; discovery serves the kind a moment later.
            resource = poll(lambda: self._resource(obj.api_version, obj.kind),
                            until=lambda found: found is not None, timeout=30)
        if resource is None:
            raise obj.error(
                f"kind {obj.kind} ({obj.api_version}) is not served by this cluster; check "
                "apiVersion/kind or install its CRD"
            )
        return resource

    def _apply_one(self, obj: ManifestObject, resource: Any) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        started = self._clock()
        try:
            response = self.dynamic.server_side_apply(
                resource,
                body=obj.doc,
                namespace=self.namespace,
                field_manager=self.field_manager,
                force_conflicts=True,
                serialize=False,
            )
        except ApiException as err:
            raise obj.error(self._refusal(obj, err)) from err
        except OSError as err:  # urllib3 wraps connection failures in OSError subclasses
            raise ClusterError(
                f"{obj.describe()}: cannot reach the API server: {err}. Check that the cluster "
                "is up"
            ) from err
        result = cast(dict[str, Any], json.loads(response.data))
        log.info(
            "applied %s %s/%s from %s in %.2f s",
            obj.kind,
            self.namespace,
            obj.name,
            obj.where,
            self._clock() - started,
        )
        return result

    def _refusal(self, obj: ManifestObject, err: Any) -> str:
        message = _api_message(err)
        status = getattr(err, "status", None)
        text = f"the server refused it ({status} {getattr(err, 'reason', '')}): {message}."
        if status == 404 and "namespace" in message.lower():
            return f"{text} Create the namespace {self.namespace} first (probes_namespace does)"
        if status == 403:
            return f"{text} The kubeconfig's user may not apply {obj.kind} in {self.namespace}"
        if obj.kind == "Pod" and status == 422 and "may not change fields" in message:
            return (
                f"{text} A Pod's spec cannot be changed in place: delete the pod first, or use "
                "a Deployment"
            )
        return f"{text} Fix the field the message names in the manifest"

    # -- wait ----------------------------------------------------------------------------------

    def wait(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        until: WaitFor = "running",
        timeout: float = 120,
    ) -> list[dict[str, Any]]:
        """Wait until the pods of applied objects reach a state.

        The pods are listed once and then watched; every change is checked at once. Objects
        without pods (Services, ConfigMaps, CronJobs, ...) are ignored.

        Args:
            objects: Objects as :meth:`apply` returned them.
            until: ``exist``, ``running`` or ``ready`` (``none`` returns at once).
            timeout: Seconds to wait.

        Returns:
            The pods, as last seen.

        Raises:
            DeployError: A pod can never reach ``until`` without someone intervening.
            ProbesTimeoutError: ``timeout`` ran out; the message says what was seen last.
        """
        _check_wait(until)
        targets = [o for o in objects if o.get("kind") in _POD_OWNING_KINDS]
        if until == "none" or not targets:
            return []
        import urllib3
        from kubernetes.client.exceptions import ApiException

        started = self._clock()
        deadline = started + timeout
        what = ", ".join(f"{o.get('kind')} {_meta(o).get('name')}" for o in targets)
        log.info("waiting up to %g s for %s in %s to be %s", timeout, what, self.namespace, until)
        pods_resource = self._resource("v1", "Pod")
        watch = _PodWatch(self, targets, until, started)
        # Hand-written: it waits on the watch's events, not by sleeping, and lists again on 410.
        while True:
            listing = self._get_json(pods_resource)
            pods = {_meta(p).get("uid"): p for p in listing.get("items") or []}
            version = _meta(listing).get("resourceVersion")
            if watch.check(pods):
                return watch.result()
            try:
                while self._clock() < deadline:
                    seconds = min(deadline - self._clock(), _WATCH_SLICE_SECONDS)
                    events = _pod_events(self, pods_resource, version, seconds)
                    with contextlib.closing(events):
                        for kind, pod in events:
                            version = _meta(pod).get("resourceVersion", version)
                            if kind == "DELETED":
                                pods.pop(_meta(pod).get("uid"), None)
                            else:
                                pods[_meta(pod).get("uid")] = pod
                            if watch.check(pods):
                                return watch.result()
                            if self._clock() >= deadline:
                                break
                    # The slice ended: workload status can change without any pod event.
                    if watch.check(pods):
                        return watch.result()
            except ApiException as err:
                if err.status != 410:
                    raise
                log.debug("pod watch expired (410 Gone); listing again")
                continue  # our resourceVersion is too old: list again
            except urllib3.exceptions.HTTPError as err:
                log.debug("pod watch broke off (%s); listing again", err)
                continue
            raise ProbesTimeoutError(
                f"namespace {self.namespace}: waited {timeout:g} s for {what} to be {until}; "
                f"last seen: {watch.seen()}. See the pods' events "
                f"(kubectl -n {self.namespace} describe pod)",
                what=f"{what} {until}",
                timeout=timeout,
            )

    def _states(
        self, targets: Sequence[Mapping[str, Any]], pods: Iterable[dict[str, Any]], until: WaitFor
    ) -> list[WorkloadState]:
        pod_list = list(pods)
        replica_sets = (
            self._list("apps/v1", "ReplicaSet")
            if any(t.get("kind") == "Deployment" for t in targets)
            else []
        )
        states = []
        for target in targets:
            live = self._live(target) if target.get("kind") != "Pod" else target
            state = workload_state(live, pod_list, replica_sets, until)
            for pod in state.pods:
                problem = pod_problem(pod, until)
                if problem:
                    raise DeployError(
                        problem if target.get("kind") == "Pod" else f"{state.label}: {problem}",
                        kind=str(target.get("kind")),
                        name=str(_meta(target).get("name")),
                    )
            states.append(state)
        return states

    def _live(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        kind, name = str(obj.get("kind")), str(_meta(obj).get("name"))
        resource = self._resource(str(obj.get("apiVersion")), kind)
        try:
            return self._get_json(resource, name=name)
        except ApiException as err:
            if err.status != 404:
                raise
            raise DeployError(
                f"{kind} {self.namespace}/{name} no longer exists; something deleted it after it "
                "was applied (the test, or its namespace being deleted)",
                kind=kind,
                name=name,
            ) from err

    def pods(self, source_objects: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Return the current pods of applied objects (terminating pods left out).

        For a Deployment these are the pods of its newest ReplicaSet.

        Args:
            source_objects: Objects as :meth:`apply` returned them.
        """
        targets = [o for o in source_objects if o.get("kind") in _POD_OWNING_KINDS]
        if not targets:
            return []
        pods = self._list("v1", "Pod")
        replica_sets = (
            self._list("apps/v1", "ReplicaSet")
            if any(t.get("kind") == "Deployment" for t in targets)
            else []
        )
        found: list[dict[str, Any]] = []
        for target in targets:
            live = self._live(target) if target.get("kind") != "Pod" else target
            found += workload_state(live, pods, replica_sets, "exist").pods
        return found


class _PodWatch:
    """The bookkeeping of one :meth:`Deployer.wait`: the latest states and progress lines."""

    def __init__(
        self,
        deployer: Deployer,
        targets: Sequence[Mapping[str, Any]],
        until: WaitFor,
        started: float,
    ) -> None:
        self.deployer = deployer
        self.targets = targets
        self.until = until
        self.started = started
        self.states: list[WorkloadState] = []
        self._last = ""

    def check(self, pods: Mapping[Any, dict[str, Any]]) -> bool:
        """Re-evaluate every target against ``pods``; return whether all are done.

        Raises:
            DeployError: A pod can never reach the state.
        """
        self.states = self.deployer._states(self.targets, pods.values(), self.until)
        counts = "; ".join(
            f"{s.label} {sum(pod_reached(p, self.until) for p in s.pods)}/"
            f"{'?' if s.expected is None else s.expected} {self.until}"
            for s in self.states
        )
        if counts != self._last:
            self._last = counts
            elapsed = self.deployer._clock() - self.started
            log.info("%s (%.0f s)", counts, elapsed)
            if self.deployer._progress is not None:
                self.deployer._progress(f"waiting: {counts} ({elapsed:.0f} s)")
        log.debug("seen: %s", self.seen())
        return all(s.done for s in self.states)

    def seen(self) -> str:
        """Describe what was seen last."""
        return " | ".join(s.seen() for s in self.states) or "nothing yet"

    def result(self) -> list[dict[str, Any]]:
        """Log the success and return the pods of every target."""
        log.info(
            "%s in %s %s after %.1f s",
            ", ".join(s.label for s in self.states),
            self.deployer.namespace,
            self.until,
            self.deployer._clock() - self.started,
        )
        return [p for s in self.states for p in s.pods]


def _pod_events(
    deployer: Deployer, resource: Any, version: str | None, seconds: float
) -> Generator[tuple[str, dict[str, Any]], None, None]:
    """Yield ``(type, pod)`` for pod changes in the namespace after ``version``, for ``seconds``.

    The stream is closed when the caller stops iterating.
    """
    from kubernetes import watch

    watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
    stream: Iterator[dict[str, Any]] = deployer.dynamic.watch(
        resource,
        namespace=deployer.namespace,
        resource_version=version,
        timeout=max(1, math.ceil(seconds)),
        watcher=watcher,
        allow_watch_bookmarks=True,
    )
    try:
        for event in stream:
            kind, raw = str(event.get("type")), event.get("raw_object")
            if kind in ("ADDED", "MODIFIED", "DELETED") and isinstance(raw, dict):
                log.debug("pod %s %s", kind, _meta(raw).get("name"))
                yield kind, raw
    finally:
        watcher.stop()
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _check_wait(wait: str) -> None:
    if wait not in WAIT_CHOICES:
        raise ValueError(f"wait must be one of {', '.join(WAIT_CHOICES)}, not {wait!r}")

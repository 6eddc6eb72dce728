"""Test namespaces: created labelled as ours, deleted only when the label says they are ours."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_probes._proc import start_ticks
from pytest_probes.errors import ClusterError, ProbesTimeoutError

log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "pytest-probes"
RUN_LABEL = "pytest-probes.io/run"
KEPT_LABEL = "pytest-probes.io/kept"
"""On a namespace kept for inspection (``--probes-keep-namespace``): the orphan cleanup leaves it
alone; ``pytest-probes cleanup`` deletes it."""
OWNER_ANNOTATION = "pytest-probes.io/owner"
"""``<host>:<pid>:<start ticks>:<boot id>:<pid namespace>`` of the process that created the
namespace, so a later run can tell the namespaces of a run that was killed (SIGKILL, a timeout's
``os._exit``) from live ones. A pid names a process only within one boot of one kernel and one
pid namespace: containers that share a hostname (and a cluster) have pids of their own."""

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # pid:[4026531836]
    except OSError:
        return ""


def owner() -> str:
    """This process as :data:`OWNER_ANNOTATION` records it."""
    return ":".join([socket.gethostname(), str(os.getpid()), str(start_ticks(os.getpid())),
                     _boot_id(), _pid_namespace()])


def owner_gone(record: str) -> bool:
    """Tell whether the process an owner record names is certainly gone.

    Only a record made on this host, in this boot and in this pid namespace can be judged: there
    the pid is gone or belongs to a process started at another time. Anything else (another
    machine or container, an earlier format without boot id) is left alone.
    """
    parts = record.split(":", 4)  # the pid namespace ("pid:[N]") keeps its colon
    if len(parts) != 5 or not parts[1].isdigit():
        return False  # an earlier format, or not a record of ours
    host, pid, ticks, boot, pidns = parts
    if (host, boot, pidns) != (socket.gethostname(), _boot_id(), _pid_namespace()):
        return False  # another machine, boot or container: not ours to judge
    return str(start_ticks(int(pid))) != ticks


@contextmanager
def api_errors(
    api_client: Any, doing: str, rule: str, *, passes: tuple[int, ...] = ()
) -> Iterator[None]:
    """Turn the client's errors for one API call into a :class:`ClusterError` that says why.

    Args:
        api_client: The client (its configured host is named in the message).
        doing: What the call was for, e.g. ``"listing namespaces for the orphan cleanup"``.
        rule: The RBAC rule the call needs, e.g. ``"list namespaces"``.
        passes: HTTP statuses the caller handles itself (raised as the client's exception).

    Raises:
        ClusterError: HTTP 401/403 (naming the rule to grant), another HTTP error, or an API
            server that does not answer (naming the server).
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    host = getattr(getattr(api_client, "configuration", None), "host", "?")
    try:
        yield
    except ApiException as err:
        if err.status in passes:
            raise
        if err.status in (401, 403):
            verb, _, resource = rule.partition(" ")
            raise ClusterError(
                f"{doing}: the API server at {host} answered HTTP {err.status} {err.reason}: the "
                f"kubeconfig's user may not {rule}. Grant it (an RBAC rule with verbs: [{verb}] "
                f"on resources: [{resource}]) or use a kubeconfig with those rights"
            ) from None
        raise ClusterError(f"{doing}: the API server at {host} answered HTTP {err.status} "
                           f"{err.reason}") from None
    except (HTTPError, OSError) as err:
        raise ClusterError(
            f"{doing}: the API server at {host} does not answer ({type(err).__name__}); is the "
            "cluster still up? (`pytest-probes cluster status` for the local provider)"
        ) from None


def namespace_name(test_name: str) -> str:
    """A fresh, valid namespace name derived from a test name: ``probes-<test>-<random>``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")
    slug = re.sub(r"-{2,}", "-", slug)[:40].strip("-") or "test"
    return f"probes-{slug}-{secrets.token_hex(3)}"


def create_namespace(
    api_client: Any,
    name: str,
    *,
    run_id: str,
    timeout: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create a namespace labelled as ours and wait until pods can be created in it.

    Pods need the namespace's ``default`` ServiceAccount, which the controller-manager creates a
    moment after the namespace; this waits for it (watching, not polling).

    Raises:
        ClusterError: The apiserver refused the namespace.
        ProbesTimeoutError: The ServiceAccount did not appear within ``timeout`` seconds.
    """
    from kubernetes import client, watch

    core: Any = client.CoreV1Api(api_client)
    body = {
        "metadata": {
            "name": name,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RUN_LABEL: run_id},
            "annotations": {OWNER_ANNOTATION: owner()},
        }
    }
    with api_errors(api_client, f"creating namespace {name}", "create namespaces"):
        created = core.create_namespace(body)
    start = clock()
    with api_errors(api_client, f"namespace {name}: waiting for its default ServiceAccount",
                    "list serviceaccounts"):
        accounts = core.list_namespaced_service_account(
            name, field_selector="metadata.name=default")
    if not accounts.items:
        stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
        remaining = max(1, int(timeout))
        for event in stream.stream(
            core.list_namespaced_service_account,
            name,
            field_selector="metadata.name=default",
            resource_version=accounts.metadata.resource_version,
            timeout_seconds=remaining,
        ):
            if event["type"] in ("ADDED", "MODIFIED"):
                stream.stop()
                break
        else:
            raise ProbesTimeoutError(
                f"namespace {name}: the default ServiceAccount did not appear within "
                f"{timeout:.0f} s; is kube-controller-manager running?",
                what="default ServiceAccount",
                timeout=timeout,
            )
    log.debug("namespace %s ready in %.2f s", name, clock() - start)
    result: dict[str, Any] = api_client.sanitize_for_serialization(created)
    return result


def delete_namespace(api_client: Any, name: str, *, force_pods: bool = True) -> bool:
    """Delete a namespace if, and only if, it carries our label.

    Pods are deleted first with a zero grace period, so a test whose container ignores SIGTERM
    does not hold its namespace for the full grace period.

    Returns:
        Whether a deletion was issued (``False`` if it was gone already).

    Raises:
        ClusterError: The namespace exists but is not labelled as created by pytest-probes.
    """
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core: Any = client.CoreV1Api(api_client)
    try:
        with api_errors(api_client, f"reading namespace {name} to delete it", "get namespaces",
                        passes=(404,)):
            ns = core.read_namespace(name)
    except ApiException:  # 404: gone already
        return False
    labels = ns.metadata.labels or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        raise ClusterError(
            f"refusing to delete namespace {name}: it is not labelled "
            f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}, so pytest-probes did not create it"
        )
    if force_pods:
        try:
            core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
        except ApiException as err:
            log.debug("deleting pods of %s: HTTP %s", name, err.status)
    try:
        with api_errors(api_client, f"deleting namespace {name}", "delete namespaces",
                        passes=(404,)):
            core.delete_namespace(name, propagation_policy="Background")
    except ApiException:  # 404: gone meanwhile
        return False
    log.info("deleted namespace %s", name)
    return True


def keep_namespace(api_client: Any, name: str, *, reason: str) -> None:
    """Label our namespace ``name`` as kept for inspection (see :data:`KEPT_LABEL`)."""
    from kubernetes import client

    with api_errors(api_client, f"labelling namespace {name} as kept", "patch namespaces"):
        client.CoreV1Api(api_client).patch_namespace(
            name, {"metadata": {"labels": {KEPT_LABEL: "true"},
                                "annotations": {"pytest-probes.io/kept-because": reason}}})
    log.info("kept namespace %s (%s)", name, reason)


def delete_kept_namespaces(api_client: Any) -> list[str]:
    """Delete the namespaces kept for inspection; return their names."""
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{KEPT_LABEL}=true"
    with api_errors(api_client, "listing kept namespaces", "list namespaces"):
        items = core.list_namespace(label_selector=selector).items
    deleted = [str(ns.metadata.name) for ns in items if ns.status.phase != "Terminating"]
    for name in deleted:
        delete_namespace(api_client, name)
    return deleted


def leftover_namespaces(api_client: Any, *, run_id: str | None = None) -> list[str]:
    """Names of namespaces labelled as ours (of one run, if given) that are not being deleted."""
    from kubernetes import client

    selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
    if run_id is not None:
        selector += f",{RUN_LABEL}={run_id}"
    core: Any = client.CoreV1Api(api_client)
    with api_errors(api_client, "listing this run's namespaces", "list namespaces"):
        items = core.list_namespace(label_selector=selector).items
    return [str(ns.metadata.name) for ns in items if ns.metadata.deletion_timestamp is None]


def delete_orphaned_namespaces(api_client: Any) -> list[str]:
    """Delete our namespaces whose creating process, on this host, no longer runs.

    A run killed outright (SIGKILL, pytest-timeout's thread method) cannot delete its
    namespaces; the next run on the cluster does, here. Namespaces of live runs and of other
    hosts are left alone, and so are those kept for inspection (:data:`KEPT_LABEL`).

    Returns:
        The names of the namespaces it deleted.
    """
    from kubernetes import client

    core: Any = client.CoreV1Api(api_client)
    with api_errors(api_client, "listing namespaces for the orphan cleanup", "list namespaces"):
        items = core.list_namespace(
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}").items
    deleted = []
    for ns in items:
        record = (ns.metadata.annotations or {}).get(OWNER_ANNOTATION)
        kept = (ns.metadata.labels or {}).get(KEPT_LABEL) == "true"
        if ns.status.phase == "Terminating" or kept or not record or not owner_gone(record):
            continue
        log.info("deleting namespace %s of a run that no longer exists (%s)",
                 ns.metadata.name, record)
        delete_namespace(api_client, ns.metadata.name)
        deleted.append(ns.metadata.name)
    return deleted

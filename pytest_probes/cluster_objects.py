"""Cluster-scoped objects a manifest brings (CRDs, ClusterRoles, PriorityClasses, ...).

A test deploys into its own namespace, but an operator's manifests also hold objects outside any
namespace. They are shared by every test of a run, so they are applied once per run and removed
only by the run that created them:

* missing: created with server-side apply, labelled as ours (:data:`~pytest_probes.namespaces.
  MANAGED_BY_LABEL`, :data:`~pytest_probes.namespaces.RUN_LABEL`) with the creating process as
  owner (:data:`~pytest_probes.namespaces.OWNER_ANNOTATION`), and written down for removal;
* labelled with this run: already applied, left as it is;
* labelled as ours by a run whose process is gone (killed outright): taken over by this run;
* anything else (the cluster's own, another live run's): used as it is, never changed or removed.

A CustomResourceDefinition is waited for until its ``Established`` condition is ``True``: only
then does the API server serve its kind (`apiextensions-apiserver`'s establishing controller).
Under pytest-xdist every worker writes the objects it created into one journal per run, and the
controller removes them when the whole run ends (:func:`delete_journaled`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pytest_probes._poll import poll
from pytest_probes.errors import ClusterError, DeployError, ProbesTimeoutError, api_message
from pytest_probes.namespaces import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_ANNOTATION,
    RUN_LABEL,
    owner,
    owner_gone,
)

log = logging.getLogger(__name__)

CRD_KIND = "CustomResourceDefinition"
ESTABLISHED_TIMEOUT = 60.0
"""Seconds to wait for a new CRD's ``Established`` condition (it takes well under a second)."""


@dataclass(frozen=True)
class CreatedObject:
    """A cluster-scoped object a run created, as the journal keeps it."""

    api_version: str
    kind: str
    name: str
    run_id: str
    kubeconfig: str = ""
    context: str | None = None

    def describe(self) -> str:
        """``Kind name`` for messages."""
        return f"{self.kind} {self.name}"


class ClusterObjects:
    """The cluster-scoped objects of one run, in one process.

    Args:
        run_id: The run's id (the :data:`RUN_LABEL` value).
        journal: A JSON Lines file each created object is appended to, for the process that
            removes them at the end of the run; ``None`` keeps them in memory only.
        kubeconfig: Written into the journal, so that process can reach the cluster.
        context: The kubeconfig context, likewise.
        clock: A monotonic clock, for the ``Established`` deadline.
    """

    def __init__(
        self,
        run_id: str,
        *,
        journal: Path | None = None,
        kubeconfig: str = "",
        context: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self.journal = journal
        self.kubeconfig = kubeconfig
        self.context = context
        self._clock = clock
        self.created: list[CreatedObject] = []

    def labels(self) -> dict[str, str]:
        """The labels a created object carries."""
        return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, RUN_LABEL: self.run_id}

    def ensure(
        self,
        dynamic: Any,
        resource: Any,
        doc: Mapping[str, Any],
        *,
        describe: str,
        field_manager: str,
        timeout: float = ESTABLISHED_TIMEOUT,
    ) -> dict[str, Any]:
        """Make sure the object exists for this run; return it as the server has it.

        Args:
            dynamic: A ``kubernetes.dynamic.DynamicClient``.
            resource: The object's resource from discovery (cluster-scoped).
            doc: The prepared object (labels and annotations are added to a copy).
            describe: Where the object came from, for messages (``file document 2: Kind name``).
            field_manager: The server-side apply field manager.
            timeout: Seconds to wait for a CRD to be established.

        Raises:
            DeployError: The server refused the object.
            ProbesTimeoutError: A CRD was not established within ``timeout``.
        """
        meta = doc.get("metadata") or {}
        name = str(meta.get("name"))
        existing = _get(dynamic, resource, name)
        if existing is not None and _deleting(existing):
            # Deleted by the run that made it, a moment ago: wait until it is gone, then create.
            _wait_gone(dynamic, resource, name, timeout=timeout, describe=describe)
            existing = None
        if existing is not None and not self._ours_to_take(existing):
            log.info("%s exists and is not this run's: used as it is", describe)
            return existing
        if existing is not None and _labels(existing).get(RUN_LABEL) == self.run_id:
            return existing  # applied earlier in this run (by this or another worker)
        body = json.loads(json.dumps(doc))  # a copy the labels go into
        body_meta = body.setdefault("metadata", {})
        body_meta.pop("namespace", None)
        body_meta.setdefault("labels", {}).update(self.labels())
        body_meta.setdefault("annotations", {})[OWNER_ANNOTATION] = owner()
        from kubernetes.client.exceptions import ApiException

        try:
            response = dynamic.server_side_apply(
                resource, body=body, field_manager=field_manager, force_conflicts=True,
                serialize=False,
            )
        except ApiException as err:
            raise DeployError(
                f"{describe}: the server refused the cluster-scoped object ({err.status} "
                f"{err.reason}): {api_message(err)}. Fix the field it names, or create the object "
                "outside the test"
            ) from err
        applied = cast(dict[str, Any], json.loads(response.data))
        record = CreatedObject(
            api_version=str(body.get("apiVersion")), kind=str(body.get("kind")), name=name,
            run_id=self.run_id, kubeconfig=self.kubeconfig, context=self.context,
        )
        self._note(record)
        log.info("created %s for this run (%s)", record.describe(), describe)
        if record.kind == CRD_KIND:
            applied = self._wait_established(dynamic, resource, name, timeout, describe)
        return applied

    def _ours_to_take(self, existing: Mapping[str, Any]) -> bool:
        labels = _labels(existing)
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE or RUN_LABEL not in labels:
            return False
        if labels[RUN_LABEL] == self.run_id:
            return True
        record = str(((existing.get("metadata") or {}).get("annotations") or {}).get(
            OWNER_ANNOTATION, ""))
        return owner_gone(record)

    def _note(self, record: CreatedObject) -> None:
        if record not in self.created:
            self.created.append(record)
        if self.journal is None:
            return
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record.__dict__, sort_keys=True) + "\n"
        # One short O_APPEND write per line: lines of concurrent workers never interleave.
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def _wait_established(
        self, dynamic: Any, resource: Any, name: str, timeout: float, describe: str
    ) -> dict[str, Any]:
        began = self._clock()
        # Polled: one object's condition has no watch without a second connection, and it is quick.
        try:
            crd = poll(lambda: _get(dynamic, resource, name) or {},
                       until=_established, timeout=timeout, clock=self._clock)
        except Exception as err:
            raise ClusterError(f"{describe}: cannot read the CRD back: {err}") from err
        if not _established(crd):
            raise ProbesTimeoutError(
                f"{describe}: CustomResourceDefinition {name} was not Established within "
                f"{timeout:.0f} s; its conditions: {_conditions_text(crd)}. Check the CRD's "
                "spec (names, versions, schema)"
            )
        log.info("CRD %s established in %.2f s", name, self._clock() - began)
        # Its kind is served from now on; the dynamic client finds it by rediscovering.
        return crd

    def delete_created(self, api_client: Any) -> list[str]:
        """Remove the objects this process created (checking each still carries our run label).

        Returns:
            ``Kind name`` of each object removed.
        """
        return _delete(api_client, self.created)


def _get(dynamic: Any, resource: Any, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        response = dynamic.get(resource, name=name, serialize=False)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    return cast(dict[str, Any], json.loads(response.data))


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return cast(Mapping[str, str], (obj.get("metadata") or {}).get("labels") or {})


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _established(crd: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in ((crd.get("status") or {}).get("conditions") or [])
    )


def _conditions_text(crd: Mapping[str, Any]) -> str:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return "; ".join(
        f"{c.get('type')}={c.get('status')} ({c.get('reason')}: {c.get('message')})"
        for c in conditions
    ) or "none yet"


def _wait_gone(dynamic: Any, resource: Any, name: str, *, timeout: float, describe: str) -> None:
    if poll(lambda: _get(dynamic, resource, name), until=lambda obj: obj is None,
             timeout=timeout) is not None:
        raise ProbesTimeoutError(
            f"{describe}: {name} is still being deleted after {timeout:.0f} s (finalizers?); "
            "remove it by hand and run again"
        )


def _delete(api_client: Any, records: Sequence[CreatedObject]) -> list[str]:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    if not records:
        return []
    dynamic = DynamicClient(api_client)  # type: ignore[no-untyped-call]
    removed: list[str] = []
    # Custom resources before their definitions, definitions last.
    for record in sorted(set(records), key=lambda r: (r.kind == CRD_KIND, r.kind, r.name)):
        try:
            resource = dynamic.resources.get(api_version=record.api_version, kind=record.kind)
            existing = _get(dynamic, resource, record.name)
            if existing is None or _labels(existing).get(RUN_LABEL) != record.run_id:
                continue  # gone already, or taken over by another run: not ours to remove
            uid = (existing.get("metadata") or {}).get("uid")
            dynamic.delete(resource, name=record.name,  # type: ignore[no-untyped-call]
                           body={"preconditions": {"uid": uid}, "propagationPolicy": "Background"})
        except ApiException as err:
            if err.status in (404, 409):
                continue
            log.warning("cannot remove %s this run created: %s", record.describe(), err)
            continue
        except Exception as err:  # discovery of a kind whose CRD is gone, a dead server
            log.warning("cannot remove %s this run created: %s", record.describe(), err)
            continue
        removed.append(record.describe())
        log.info("removed %s, created by this run", record.describe())
    return removed


def read_journal(path: Path) -> list[CreatedObject]:
    """Return the objects a run's journal lists (unreadable lines are skipped with a warning)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(CreatedObject(**json.loads(line)))
        except (TypeError, ValueError):
            log.warning("%s: unreadable line skipped: %r", path, line[:200])
    return records


def delete_journaled(path: Path) -> list[str]:
    """Remove what a run's journal lists (the xdist controller, at the end of the run).

    The journal is deleted afterwards. Objects are grouped by kubeconfig and context.

    Returns:
        ``Kind name`` of each object removed.
    """
    from kubernetes import config

    records = read_journal(path)
    removed: list[str] = []
    groups: dict[tuple[str, str | None], list[CreatedObject]] = {}
    for record in records:
        groups.setdefault((record.kubeconfig, record.context), []).append(record)
    for (kubeconfig, context), members in groups.items():
        if not kubeconfig or not Path(kubeconfig).is_file():
            log.info("the cluster of %s is gone with its kubeconfig; nothing to remove",
                     ", ".join(m.describe() for m in members))
            continue
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, persist_config=False)
        try:
            removed += _delete(api, members)
        finally:
            api.close()
    path.unlink(missing_ok=True)
    return removed

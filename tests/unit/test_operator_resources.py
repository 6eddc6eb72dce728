"""Operators' resources offline: cluster-scoped objects in manifests, CR conditions, log lines."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_probes.cluster_objects import ClusterObjects, CreatedObject, read_journal
from pytest_probes.deploy import crd_names, load_manifests, prepare
from pytest_probes.errors import DeployError
from pytest_probes.namespaces import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_ANNOTATION,
    RUN_LABEL,
    owner,
)
from pytest_probes.podlogs import log_line_record
from pytest_probes.recorder import _logged_containers
from pytest_probes.reducer import Reducer
from pytest_probes.timeline import parse_time

IMAGE = "docker.io/library/probes-target:0.1.0"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.probes.example.com"},
    "spec": {
        "group": "probes.example.com",
        "scope": "Cluster",
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget"},
        "versions": [{"name": "v1", "served": True, "storage": True}],
    },
}


def test_prepare_keeps_cluster_scoped_objects_out_of_the_namespace() -> None:
    docs = [
        CRD,
        {"apiVersion": "probes.example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "reader"}, "rules": []},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    ]
    crd, gadget, role, config = prepare(
        load_manifests(docs), namespace="probes-t1", target_image=IMAGE,
        labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE},
    )
    for obj in (crd, gadget, role):
        assert "namespace" not in obj.doc["metadata"], obj.kind
        assert obj.doc["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert config.doc["metadata"]["namespace"] == "probes-t1"


def test_a_cluster_scoped_object_naming_a_namespace_is_refused() -> None:
    doc = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": "reader", "namespace": "default"}}
    with pytest.raises(DeployError, match=r"ClusterRole reader: metadata.namespace is 'default', "
                                          r"but ClusterRole is cluster-scoped"):
        prepare(load_manifests(doc), namespace="probes-t1", target_image=IMAGE)


def test_crd_names_reads_group_kind_and_scope() -> None:
    assert crd_names(CRD) == ("probes.example.com", "Gadget", "Cluster")
    assert crd_names({"apiVersion": "v1", "kind": "ConfigMap"}) == ("", "", "")
    assert crd_names({"apiVersion": "apiextensions.k8s.io/v1", "kind": CRD["kind"],
                      "spec": "broken"}) == ("", "", "")


def test_the_journal_keeps_what_each_worker_created(tmp_path: Path) -> None:
    journal = tmp_path / "runs" / "r1.objects.jsonl"
    first = ClusterObjects("r1", journal=journal, kubeconfig="/k", context=None)
    second = ClusterObjects("r1", journal=journal, kubeconfig="/k", context=None)
    crd = CreatedObject("apiextensions.k8s.io/v1", "CustomResourceDefinition", "a.b", "r1", "/k")
    role = CreatedObject("rbac.authorization.k8s.io/v1", "ClusterRole", "reader", "r1", "/k")
    first._note(crd)
    second._note(role)
    first._note(crd)  # an object is kept once per process ...
    assert first.created == [crd]
    journal.write_text(journal.read_text() + "not json\n")
    assert read_journal(journal) == [crd, role, crd]  # ... and the reader dedups on removal
    assert oct(os.stat(journal).st_mode & 0o777) == "0o600"


def _existing(labels: dict[str, str], owner_record: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "labels": labels}
    if owner_record:
        meta["annotations"] = {OWNER_ANNOTATION: owner_record}
    return {"metadata": meta}


def test_only_this_runs_objects_and_orphans_of_ours_are_taken() -> None:
    objects = ClusterObjects("r1")
    ours = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
    assert objects._ours_to_take(_existing({**ours, RUN_LABEL: "r1"}))
    # Another run that is still alive (this very process stands in for it): left alone.
    assert not objects._ours_to_take(_existing({**ours, RUN_LABEL: "r0"}, owner()))
    # A run whose process is gone: an orphan, taken over.
    host, _pid, _ticks, rest = owner().split(":", 3)
    dead = f"{host}:999999999:1:{rest}"
    assert objects._ours_to_take(_existing({**ours, RUN_LABEL: "r0"}, dead))
    # Not ours at all, or ours without a run: never.
    assert not objects._ours_to_take(_existing({}))
    assert not objects._ours_to_take(_existing(ours))


def _widget(conditions: list[dict[str, str]], *, version: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "probes.example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "ns", "uid": "u1", "generation": 2,
                     "resourceVersion": version},
        "status": {"conditions": conditions},
    }


def test_a_custom_resources_condition_changes_become_records() -> None:
    reducer = Reducer("ns")
    progressing = {"type": "Progressing", "status": "True", "reason": "Rolling",
                   "lastTransitionTime": "2026-12-05T12:00:00Z"}
    not_ready = {"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-05T12:00:00Z"}
    ready = {"type": "Ready", "status": "True", "reason": "AllGood",
             "lastTransitionTime": "2026-12-05T12:00:07Z", "observedGeneration": 2}
    first = reducer.feed("custom", "ADDED", _widget([progressing, not_ready]))
    assert [(r.kind, r.pod, r.message) for r in first] == [
        ("Condition", "Widget/w1", "Progressing=True (Rolling)"),
        ("Condition", "Widget/w1", "Ready=False"),
    ]
    again = reducer.feed("custom", "MODIFIED", _widget([progressing, not_ready], version="2"))
    assert again == []  # nothing changed
    (flip,) = reducer.feed("custom", "MODIFIED", _widget([progressing, ready], version="3"))
    assert flip.source == "custom"
    assert flip.time == parse_time("2026-12-05T12:00:07Z")
    assert flip.data["previous"] == "False"
    assert flip.data["observed_generation"] == 2
    assert reducer.feed("custom", "DELETED", _widget([])) == []
    assert Reducer.key("custom", _widget([])) == "u1"


def test_a_log_line_is_dated_by_the_runtime() -> None:
    rec = log_line_record("ns", "web-0", "app", "2026-12-05T12:00:01.123456789Z listening on 80\n")
    assert rec is not None
    assert (rec.source, rec.kind, rec.pod, rec.container) == ("log", "LogLine", "web-0", "app")
    assert rec.message == "listening on 80"
    assert rec.time == parse_time("2026-12-05T12:00:01.123456Z")
    assert log_line_record("ns", "web-0", "app", "no timestamp here") is None
    assert log_line_record("ns", "web-0", "app", "") is None


def test_pods_ask_for_their_logs_by_annotation() -> None:
    def pod(value: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": "p"}
        if value is not None:
            meta["annotations"] = {"pytest-probes.io/logs": value}
        return {"metadata": meta, "spec": {"initContainers": [{"name": "init"}],
                                           "containers": [{"name": "app"}, {"name": "side"}]}}

    assert _logged_containers(pod(None)) == []
    assert _logged_containers(pod("*")) == ["init", "app", "side"]
    assert _logged_containers(pod("app, nope")) == ["app"]

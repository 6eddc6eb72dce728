"""Unit tests of pytest_probes.deploy: loading, preparing, and judging pod state (no cluster)."""

from __future__ import annotations

import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from pytest_probes.deploy import (
    DEFAULT_LABELS,
    MANAGED_BY_LABEL,
    MANIFESTS_DIR,
    TARGET_IMAGE_PLACEHOLDER,
    Deployer,
    ManifestObject,
    describe_pod,
    find_manifest,
    load_manifests,
    pod_problem,
    pod_reached,
    prepare,
    search_dirs,
    workload_state,
)
from pytest_probes.errors import ClusterError, DeployError

DATA = Path(__file__).resolve().parents[1] / "data" / "manifests"
REPO = Path(__file__).resolve().parents[2]

SEED_MANIFESTS = {
    "seed000-app-config.yaml",
    "seed000-app-target.yaml",
    "seed001-readiness.yaml",
    "seed001-liveness.yaml",
    "seed001-startup.yaml",
    "seed001-wrong-readiness-port.yaml",
    "seed001-fixed-readiness-port.yaml",
    "seed001-liveness-readiness-independent.yaml",
    "seed002-degrading-liveness.yaml",
    "seed004-restartpolicy-always.yaml",
    "seed004-restartpolicy-onfailure.yaml",
    "seed004-restartpolicy-never.yaml",
}
SUBSTITUTIONS = {"CONFIG_URL": "http://10.244.0.5:8080/config"}
IMAGE = "docker.io/library/probes-target:0.1.0"


def _roundtrip(doc: dict[str, Any]) -> Any:
    """Deserialize into the client's typed model for the kind and serialize back."""
    client: Any = ApiClient()
    typed = client.deserialize(json.dumps(doc), f"V1{doc['kind']}", "application/json")
    return client.sanitize_for_serialization(typed)


def _load(name: str) -> list[ManifestObject]:
    return load_manifests(DATA / name)


def _seed(name: str) -> dict[str, Any]:
    """The objects of a seed manifest by kind, prepared as a test would deploy them."""
    objs = prepare(
        load_manifests(name),
        namespace="probes-t1",
        target_image=IMAGE,
        labels=DEFAULT_LABELS,
        substitutions=SUBSTITUTIONS,
    )
    return {obj.kind: obj.doc for obj in objs}


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    return spec


def _container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in _pod_spec(doc)["containers"] if c["name"] == name]
    assert len(found) == 1, name
    return found[0]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# ------------------------------------------------------------------------------------------
# The seed manifests


def test_manifests_dir_is_the_repository_manifests_directory() -> None:
    assert MANIFESTS_DIR == REPO / "manifests"
    assert {p.name for p in MANIFESTS_DIR.glob("*.yaml")} == SEED_MANIFESTS


@pytest.mark.parametrize("name", sorted(SEED_MANIFESTS))
def test_seed_manifest_loads_namespace_free_with_the_placeholder_image(name: str) -> None:
    objs = load_manifests(MANIFESTS_DIR / name)
    assert objs
    images = []
    for obj in objs:
        assert "namespace" not in obj.doc["metadata"], obj.describe()
        assert obj.name, obj.describe()
        if obj.kind in ("Pod", "Deployment"):
            spec = _pod_spec(obj.doc)
            images += [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert images, "every seed manifest runs the target app"
    assert set(images) == {TARGET_IMAGE_PLACEHOLDER}


@pytest.mark.parametrize("name", sorted(SEED_MANIFESTS))
def test_seed_manifest_cites_its_seed_and_observations(name: str) -> None:
    header = (MANIFESTS_DIR / name).read_text().split("\napiVersion:")[0]
    seed = name[4:7]
    assert re.search(rf"# Seed {seed} \({seed}_[0-9a-f]{{16}}\.txt\)", header), header
    assert re.search(rf"O{int(seed)}\.\d", header), header


@pytest.mark.parametrize("name", sorted(SEED_MANIFESTS))
def test_seed_manifest_has_only_fields_the_api_knows(name: str) -> None:
    """Round-trip through the client's typed models: a misspelt field would be dropped."""
    for obj in _seed(name).values():
        assert _roundtrip(obj) == obj


def test_the_roundtrip_check_catches_a_misspelt_field() -> None:
    doc = _seed("seed001-readiness.yaml")["Pod"]
    doc["spec"]["containers"][0]["readinessProbe"]["initialDelaySecond"] = 5
    assert _roundtrip(doc) != doc


def test_seed000_app_target_matches_the_seed() -> None:
    objs = _seed("seed000-app-target.yaml")
    deployment, service = objs["Deployment"], objs["Service"]
    assert deployment["metadata"]["name"] == "app-target"
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["metadata"]["labels"]["app"] == "app-target"
    pod = _pod_spec(deployment)
    assert pod["terminationGracePeriodSeconds"] == 30  # O0.2
    app = _container(deployment, "app-target")
    env = _env(app)
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CONFIG_URL"] == SUBSTITUTIONS["CONFIG_URL"]
    assert env["ON_SIGTERM"] == "ignore"
    liveness, readiness = app["livenessProbe"], app["readinessProbe"]
    assert liveness["httpGet"] == {"path": "/livez", "port": 8080}
    assert (liveness["periodSeconds"], liveness["failureThreshold"]) == (5, 3)
    # O0.3: the new container starts just after a liveness tick; a delay in [5, 10) s skips the
    # tick ~5 s after Started and probes at the one ~10 s after it.
    assert 5 <= liveness["initialDelaySeconds"] < 10
    assert readiness["httpGet"] == {"path": "/readyz", "port": 8080}
    assert readiness["periodSeconds"] == 5
    assert service["metadata"]["name"] == "app-target"
    assert service["spec"]["selector"] == {"app": "app-target"}
    assert service["spec"]["ports"][0]["port"] == 80
    assert service["spec"]["ports"][0]["targetPort"] == 8080


def test_seed000_app_target_needs_the_config_url() -> None:
    with pytest.raises(DeployError, match=r"\$\{CONFIG_URL\}, which has no value"):
        prepare(load_manifests("seed000-app-target.yaml"), namespace="n", target_image=IMAGE)


def test_seed000_app_config_keeps_its_file_on_an_empty_dir() -> None:
    pod = _seed("seed000-app-config.yaml")["Pod"]
    app = _container(pod, "app-config")
    env = _env(app)
    assert env["MODE"] == "config"
    (mount,) = app["volumeMounts"]
    assert env["CONFIG_FILE"].startswith(mount["mountPath"] + "/")
    (volume,) = pod["spec"]["volumes"]
    assert volume == {"name": mount["name"], "emptyDir": {}}


@pytest.mark.parametrize(
    ("name", "probe", "sigterm"),
    [
        ("seed001-readiness.yaml", "readinessProbe", None),
        ("seed001-liveness.yaml", "livenessProbe", "exit2"),
    ],
)
def test_seed001_readiness_and_liveness_pods_match_the_seed(
    name: str, probe: str, sigterm: str | None
) -> None:
    objs = _seed(name)
    app = _container(objs["Pod"], "httpserver")
    assert app[probe] == {
        "httpGet": {"path": "/healthz", "port": 8080},
        "initialDelaySeconds": 5,
        "periodSeconds": 5,
    }
    other = "livenessProbe" if probe == "readinessProbe" else "readinessProbe"
    assert other not in app
    assert _env(app).get("FAIL_AFTER") == "10"
    assert _env(app).get("ON_SIGTERM") == sigterm


def test_seed001_readiness_service_selects_the_pod() -> None:
    objs = _seed("seed001-readiness.yaml")
    selector = objs["Service"]["spec"]["selector"]
    labels = objs["Pod"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_seed001_startup_probe_gives_300_s_and_the_app_starts_well_within() -> None:
    app = _container(_seed("seed001-startup.yaml")["Pod"], "httpserver")
    startup = app["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] == 300
    assert 0 < int(_env(app)["START_DELAY"]) <= 60
    assert {"livenessProbe", "readinessProbe"} <= app.keys()


def test_seed001_wrong_and_fixed_readiness_port_differ_only_in_the_readiness_port() -> None:
    wrong = _seed("seed001-wrong-readiness-port.yaml")["Deployment"]
    fixed = _seed("seed001-fixed-readiness-port.yaml")["Deployment"]
    assert wrong["metadata"]["name"] == "hello-server"
    assert wrong["spec"]["replicas"] == 3
    assert [c["name"] for c in _pod_spec(wrong)["containers"]] == ["hello-server", "busybox"]
    assert _container(wrong, "busybox")["command"] == ["sleep", "9999"]
    assert _container(wrong, "hello-server")["readinessProbe"]["httpGet"]["port"] == 8081
    assert _container(wrong, "hello-server")["livenessProbe"]["httpGet"]["port"] == 8080
    assert _container(wrong, "hello-server")["livenessProbe"]["initialDelaySeconds"] == 10
    _container(wrong, "hello-server")["readinessProbe"]["httpGet"]["port"] = 8080
    assert wrong == fixed


def test_seed001_independent_probes_let_liveness_run_before_readiness() -> None:
    app = _container(_seed("seed001-liveness-readiness-independent.yaml")["Pod"], "httpserver")
    liveness, readiness = app["livenessProbe"], app["readinessProbe"]
    assert (
        liveness.get("initialDelaySeconds", 0) + liveness["periodSeconds"]
        < readiness["initialDelaySeconds"]
    )


def test_seed002_failweb_degrades_with_a_one_second_heartbeat() -> None:
    objs = _seed("seed002-degrading-liveness.yaml")
    app = _container(objs["Deployment"], "failweb")
    assert _env(app)["DEGRADE"] == "1"
    liveness = app["livenessProbe"]
    assert liveness["httpGet"]["path"] == "/healthz"
    assert (liveness["periodSeconds"], liveness["failureThreshold"]) == (1, 3)
    assert objs["Service"]["spec"]["selector"] == {"app": "failweb"}


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_seed004_pods_differ_only_in_restart_policy(policy: str) -> None:
    pod = _seed(f"seed004-restartpolicy-{policy.lower()}.yaml")["Pod"]
    assert pod["metadata"]["name"] == "test"
    assert pod["spec"]["restartPolicy"] == policy
    app = _container(pod, "test")
    assert app["livenessProbe"] == {
        "httpGet": {"path": "/livez", "port": 8080},
        "initialDelaySeconds": 5,
        "periodSeconds": 5,
        "timeoutSeconds": 1,
        "successThreshold": 1,
        "failureThreshold": 1,
    }
    env = _env(app)
    assert env["ON_SIGTERM"] == "exit0"
    (mount,) = app["volumeMounts"]
    assert env["FLAG_DIR"] == mount["mountPath"]
    assert pod["spec"]["volumes"] == [{"name": mount["name"], "emptyDir": {}}]
    always = _seed("seed004-restartpolicy-always.yaml")["Pod"]
    pod["spec"]["restartPolicy"] = "Always"
    assert pod == always


def test_only_seed000_sets_a_termination_grace_period() -> None:
    setting = {
        name: any(
            "terminationGracePeriodSeconds" in _pod_spec(d)
            for k, d in _seed(name).items()
            if k in ("Pod", "Deployment")
        )
        for name in SEED_MANIFESTS
    }
    assert {name for name, has in setting.items() if has} == {"seed000-app-target.yaml"}


# ------------------------------------------------------------------------------------------
# load_manifests


def test_multi_document_file_skips_empty_documents_but_counts_them() -> None:
    objs = _load("multi-doc.yaml")
    assert [(o.name, o.index) for o in objs] == [("one", 1), ("three", 3)]
    assert objs[1].where.endswith("multi-doc.yaml document 3")


def test_list_kind_is_flattened_with_item_numbers() -> None:
    objs = _load("list-kind.yaml")
    assert [(o.kind, o.name, o.index, o.item) for o in objs] == [
        ("ConfigMap", "first", 1, 1),
        ("Service", "second", 1, 2),
    ]
    assert objs[1].where.endswith("list-kind.yaml document 1 item 2")


def test_dict_input_is_copied() -> None:
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    (obj,) = load_manifests(doc)
    assert (obj.source, obj.index, obj.name) == ("<dict>", 1, "c")
    obj.doc["metadata"]["name"] = "changed"
    assert doc["metadata"]["name"] == "c"


def test_list_of_dicts_input() -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}},
    ]
    objs = load_manifests(docs)
    assert [(o.source, o.index, o.kind) for o in objs] == [
        ("<list>", 1, "ConfigMap"),
        ("<list>", 2, "Secret"),
    ]


def test_yaml_text_input() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: t\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
    )
    objs = load_manifests(text)
    assert [(o.source, o.index, o.kind, o.name) for o in objs] == [
        ("<text>", 1, "ConfigMap", "t"),
        ("<text>", 2, "Secret", "s"),
    ]


def test_one_line_yaml_text_input() -> None:
    (obj,) = load_manifests("{apiVersion: v1, kind: ConfigMap, metadata: {name: flow}}")
    assert (obj.source, obj.name) == ("<text>", "flow")


def test_path_object_input() -> None:
    objs = load_manifests(DATA / "list-kind.yaml")
    assert len(objs) == 2


def _configmap_file(directory: Path, name: str, marker: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {marker}\n", encoding="utf-8"
    )


def test_relative_paths_resolve_against_cwd_then_base_dirs_then_manifests_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, first, second = tmp_path / "cwd", tmp_path / "first", tmp_path / "second"
    name = "seed001-liveness.yaml"  # also in MANIFESTS_DIR
    for directory in (cwd, first, second):
        _configmap_file(directory, name, directory.name)
    monkeypatch.chdir(cwd)
    assert search_dirs([first, second]) == [cwd, first, second, MANIFESTS_DIR]

    assert load_manifests(name, base_dirs=[first, second])[0].name == "cwd"
    (cwd / name).unlink()
    assert load_manifests(name, base_dirs=[first, second])[0].name == "first"
    (first / name).unlink()
    assert load_manifests(name, base_dirs=[first, second])[0].name == "second"
    (second / name).unlink()
    (obj,) = load_manifests(name, base_dirs=[first, second])
    assert (obj.kind, obj.name, obj.source) == ("Pod", "httpserver-liveness", f"manifests/{name}")


def test_a_name_without_suffix_finds_the_yaml_file() -> None:
    assert find_manifest("seed001-startup") == MANIFESTS_DIR / "seed001-startup.yaml"


def test_missing_file_lists_every_place_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    extra = tmp_path / "extra"
    with pytest.raises(DeployError) as caught:
        load_manifests("no-such.yaml", base_dirs=[extra])
    message = str(caught.value)
    assert "manifest 'no-such.yaml' not found" in message
    for directory in (tmp_path, extra, MANIFESTS_DIR):
        assert str(directory / "no-such.yaml") in message
    assert caught.value.source == "no-such.yaml"


def test_missing_absolute_path(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=re.escape("not found (not a manifest file); looked for "
                                                    + str(tmp_path))):
        load_manifests(tmp_path / "gone.yaml")


def test_bad_yaml_names_file_document_line_and_column() -> None:
    with pytest.raises(DeployError) as caught:
        _load("bad-indent.yaml")
    message = str(caught.value)
    assert "bad-indent.yaml: invalid YAML" in message
    assert "in document 1 at line 9, column 6" in message  # the misindented `ports:`
    assert "indentation" in message
    assert caught.value.index == 1


def test_bad_yaml_in_a_later_document_of_text() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\n---\nmetadata:\n  name: a: b\n"
    with pytest.raises(DeployError) as caught:
        load_manifests(text)
    assert str(caught.value).startswith(
        "<text>: invalid YAML in document 2 at line 5, column 10: mapping values are not allowed"
    )
    assert (caught.value.source, caught.value.index) == ("<text>", 2)


def test_a_document_that_is_not_a_mapping() -> None:
    with pytest.raises(
        DeployError, match=r"not-a-mapping.yaml document 2 is a list, not an object"
    ):
        _load("not-a-mapping.yaml")


def test_a_document_without_kind() -> None:
    with pytest.raises(DeployError, match=r"no-kind.yaml document 1 has no kind"):
        _load("no-kind.yaml")


def test_a_file_without_objects() -> None:
    with pytest.raises(DeployError, match=r"empty.yaml holds no Kubernetes objects"):
        _load("empty.yaml")


def test_an_unsupported_source_type() -> None:
    with pytest.raises(DeployError, match="cannot read manifests from a int"):
        load_manifests(42)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# prepare


def test_prepare_sets_the_namespace_on_copies() -> None:
    objs = _load("list-kind.yaml")
    prepared = prepare(objs, namespace="probes-t1", target_image=IMAGE)
    assert [o.doc["metadata"]["namespace"] for o in prepared] == ["probes-t1", "probes-t1"]
    assert all("namespace" not in o.doc["metadata"] for o in objs)
    assert [(o.source, o.index, o.item) for o in prepared] == [
        (o.source, o.index, o.item) for o in objs
    ]


def test_prepare_refuses_another_namespace_naming_file_document_and_fix() -> None:
    with pytest.raises(DeployError) as caught:
        prepare(_load("other-namespace.yaml"), namespace="probes-t1", target_image=IMAGE)
    err = caught.value
    message = str(err)
    assert "other-namespace.yaml document 2: Deployment web" in message
    assert "'production'" in message and "'probes-t1'" in message
    assert "Remove metadata.namespace" in message
    assert (err.index, err.kind, err.name) == (2, "Deployment", "web")
    assert err.source is not None and err.source.endswith("other-namespace.yaml")


def test_prepare_accepts_the_same_namespace() -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    (obj,) = prepare(load_manifests(doc), namespace="ns", target_image=IMAGE)
    assert obj.doc["metadata"]["namespace"] == "ns"


def test_prepare_refuses_cluster_scoped_kinds() -> None:
    with pytest.raises(DeployError) as caught:
        prepare(_load("cluster-scoped.yaml"), namespace="probes-t1", target_image=IMAGE)
    message = str(caught.value)
    assert "document 1: Namespace probes-extra: Namespace is cluster-scoped" in message
    assert "Remove this object" in message


def test_prepare_refuses_an_object_without_a_name() -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "c-"}}
    with pytest.raises(DeployError, match=r"<dict> document 1: ConfigMap \(unnamed\): metadata"):
        prepare(load_manifests(doc), namespace="ns", target_image=IMAGE)


def test_prepare_substitutes_variables_in_string_values() -> None:
    (obj,) = prepare(
        _load("unknown-variable.yaml"),
        namespace="ns",
        target_image=IMAGE,
        substitutions={"CONFIG_URL": "http://10.0.0.7:8080/config", "TOKEN": "abc"},
    )
    env = _env(obj.doc["spec"]["containers"][0])
    assert env == {
        "CONFIG_URL": "http://10.0.0.7:8080/config",
        "TOKEN": "Bearer abc",
        "LITERAL": "${NOT_A_VARIABLE} and $(KUBE_VAR) and $$",
    }


def test_prepare_names_an_unknown_variable_where_it_is_and_the_known_ones() -> None:
    with pytest.raises(DeployError) as caught:
        prepare(
            _load("unknown-variable.yaml"),
            namespace="ns",
            target_image=IMAGE,
            substitutions={"CONFIG_URL": "x", "OTHER": "y"},
        )
    message = str(caught.value)
    assert "document 1: Pod needs-vars: spec.containers[0].env[1].value uses ${TOKEN}" in message
    assert "known: CONFIG_URL, OTHER" in message
    assert "substitutions={'TOKEN': ...}" in message
    assert "$${TOKEN}" in message


def test_prepare_with_no_substitutions_says_none_are_known() -> None:
    with pytest.raises(DeployError, match=r"\(known: none\)"):
        prepare(_load("unknown-variable.yaml"), namespace="ns", target_image=IMAGE)


def test_prepare_replaces_the_placeholder_image_in_every_workload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pytest_probes.deploy"):
        objs = {
            o.kind: o.doc
            for o in prepare(_load("all-workloads.yaml"), namespace="ns", target_image=IMAGE)
        }
    rs = objs["ReplicaSet"]["spec"]["template"]["spec"]
    assert rs["initContainers"][0] == {
        "name": "init",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["true"],
    }
    assert rs["containers"][0]["image"] == IMAGE
    assert rs["containers"][0]["imagePullPolicy"] == "Never"  # kept when given
    assert rs["containers"][1] == {"name": "other", "image": "registry.example/other:1"}
    assert "registry.example/other:1" in caplog.text
    for kind in ("StatefulSet", "DaemonSet", "Job"):
        assert objs[kind]["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    cron = objs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["containers"][0]["image"] == IMAGE


def test_prepare_without_a_target_image_refuses_the_placeholder() -> None:
    with pytest.raises(DeployError, match=r"containers\[0\] uses the image 'probes-target' but no"):
        prepare(load_manifests("seed001-liveness.yaml"), namespace="ns", target_image="")


def test_prepare_labels_objects_and_pod_templates_but_not_selectors() -> None:
    labels = {MANAGED_BY_LABEL: "pytest-probes", "probes.test/id": "t1"}
    objs = {
        o.kind: o.doc
        for o in prepare(
            _load("all-workloads.yaml"), namespace="ns", target_image=IMAGE, labels=labels
        )
    }
    for kind, doc in objs.items():
        assert labels.items() <= doc["metadata"]["labels"].items(), kind
    for kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
        template_labels = objs[kind]["spec"]["template"]["metadata"]["labels"]
        assert labels.items() <= template_labels.items(), kind
    assert objs["ReplicaSet"]["spec"]["template"]["metadata"]["labels"]["app"] == "rs"
    assert objs["ReplicaSet"]["spec"]["selector"] == {"matchLabels": {"app": "rs"}}
    cron = objs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]
    assert labels.items() <= cron["metadata"]["labels"].items()


def test_prepare_labels_a_pod_once() -> None:
    (pod,) = prepare(
        load_manifests("seed004-restartpolicy-never.yaml"),
        namespace="ns",
        target_image=IMAGE,
        labels=DEFAULT_LABELS,
    )
    assert pod.doc["metadata"]["labels"] == dict(DEFAULT_LABELS)
    assert "labels" not in pod.doc["spec"]


# ------------------------------------------------------------------------------------------
# Pod state


@pytest.fixture(scope="module")
def pods() -> dict[str, dict[str, Any]]:
    return {o.name: o.doc for o in _load("status/pods.yaml")}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "pulling-fails",
            r"pod probes-t1/pulling-fails container app \(image probes-target:missing\): "
            r"ImagePullBackOff: Back-off pulling image .*load the image into the node",
        ),
        (
            "no-node",
            r"pod probes-t1/no-node cannot be scheduled \(Unschedulable\): 0/1 nodes .*taints",
        ),
        (
            "missing-configmap",
            r"container app .*CreateContainerConfigError: configmap \"settings\" "
            r"not found\. .*create it or fix the reference",
        ),
        (
            "failed",
            r"pod probes-t1/failed has finished \(phase Failed\) and will not become running: "
            r"test terminated Error exit 1",
        ),
    ],
)
def test_pod_problem_diagnoses_hopeless_pods(
    pods: dict[str, dict[str, Any]], name: str, expected: str
) -> None:
    problem = pod_problem(pods[name], "running")
    assert problem is not None
    assert re.search(expected, problem), problem


@pytest.mark.parametrize("name", ["creating", "half-ready", "all-ready", "crash-looping"])
@pytest.mark.parametrize("until", ["exist", "running", "ready"])
def test_pod_problem_leaves_pods_that_may_still_get_there(
    pods: dict[str, dict[str, Any]], name: str, until: Any
) -> None:
    assert pod_problem(pods[name], until) is None


def test_a_completed_pod_is_fine_while_waiting_for_running_but_never_gets_ready(
    pods: dict[str, dict[str, Any]],
) -> None:
    assert pod_problem(pods["completed"], "running") is None
    problem = pod_problem(pods["completed"], "ready")
    assert (
        problem is not None
        and "has finished (phase Succeeded) and will not become ready" in problem
    )


@pytest.mark.parametrize(
    ("name", "exist", "running", "ready"),
    [
        ("creating", True, False, False),
        ("half-ready", True, True, False),
        ("all-ready", True, True, True),
        ("crash-looping", True, True, False),
        ("completed", True, True, False),
    ],
)
def test_pod_reached(
    pods: dict[str, dict[str, Any]], name: str, exist: bool, running: bool, ready: bool
) -> None:
    pod = pods[name]
    assert (pod_reached(pod, "exist"), pod_reached(pod, "running"), pod_reached(pod, "ready")) == (
        exist,
        running,
        ready,
    )


def test_describe_pod(pods: dict[str, dict[str, Any]]) -> None:
    assert describe_pod(pods["half-ready"]) == (
        "half-ready: Running, ready 1/2, restarts 0 "
        "(busybox running, ready; hello-server running, not ready)"
    )
    assert describe_pod(pods["crash-looping"]) == (
        "crash-looping: Running, ready 0/1, restarts 4 "
        "(httpserver waiting CrashLoopBackOff, last exit 1 (Error))"
    )


# ------------------------------------------------------------------------------------------
# Which pods belong to what


@pytest.fixture(scope="module")
def rollout() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in _load("status/hello-server-rollout.yaml"):
        by_kind.setdefault(obj.kind, []).append(obj.doc)
    return by_kind


def test_a_deployment_waits_for_its_newest_replica_set_only(
    rollout: dict[str, list[dict[str, Any]]],
) -> None:
    (deployment,) = rollout["Deployment"]
    running = workload_state(deployment, rollout["Pod"], rollout["ReplicaSet"], "running")
    assert sorted(p["metadata"]["name"] for p in running.pods) == [
        "hello-server-64bf989855-5bxzn",
        "hello-server-64bf989855-7nx64",
        "hello-server-64bf989855-sf2t2",
    ]
    assert (running.expected, running.done) == (3, True)
    ready = workload_state(deployment, rollout["Pod"], rollout["ReplicaSet"], "ready")
    assert ready.done is False
    assert ready.seen().startswith("Deployment hello-server: 3/3 pods; hello-server-64bf989855")


def test_a_deployment_whose_controller_lags_is_not_done(
    rollout: dict[str, list[dict[str, Any]]],
) -> None:
    deployment = json.loads(json.dumps(rollout["Deployment"][0]))
    deployment["metadata"]["generation"] = 3
    state = workload_state(deployment, rollout["Pod"], rollout["ReplicaSet"], "exist")
    assert (state.done, state.pods) == (False, [])
    assert state.seen() == (
        "Deployment hello-server: 0/? pods (controller has not yet seen generation 3)"
    )


def test_a_replica_set_owns_its_pods_terminating_ones_left_out(
    rollout: dict[str, list[dict[str, Any]]],
) -> None:
    old = next(rs for rs in rollout["ReplicaSet"] if rs["metadata"]["uid"] == "rs1-uid")
    old = {**old, "spec": {"replicas": 1}}
    state = workload_state(old, rollout["Pod"], [], "running")
    assert [p["metadata"]["name"] for p in state.pods] == ["hello-server-5bc7ccb8dd-7wlh4"]
    assert state.done is True


def test_a_pod_target_is_its_pod(pods: dict[str, dict[str, Any]]) -> None:
    target = {"kind": "Pod", "metadata": {"name": "half-ready"}}
    state = workload_state(target, pods.values(), [], "ready")
    assert [p["metadata"]["name"] for p in state.pods] == ["half-ready"]
    assert (state.expected, state.done) == (1, False)
    assert workload_state(target, pods.values(), [], "running").done is True
    gone = workload_state({"kind": "Pod", "metadata": {"name": "nope"}}, pods.values(), [], "exist")
    assert gone.done is False


# ------------------------------------------------------------------------------------------
# Deployer arguments (no cluster needed: these fail before any request)


def test_apply_rejects_an_unknown_wait_state() -> None:
    deployer = Deployer(ApiClient(), "ns", target_image=IMAGE)
    with pytest.raises(ValueError, match="wait must be one of none, exist, running, ready"):
        deployer.apply("seed001-liveness.yaml", wait="started")  # type: ignore[arg-type]


def test_wait_for_objects_without_pods_returns_at_once() -> None:
    deployer = Deployer(ApiClient(), "ns", target_image=IMAGE)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    assert deployer.wait([service], until="ready", timeout=0) == []


def test_an_unreachable_api_server_is_a_cluster_error() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = Configuration()
    config.host = f"http://127.0.0.1:{port}"
    with Deployer(ApiClient(config), "ns", target_image=IMAGE) as deployer:
        with pytest.raises(ClusterError, match=r"cannot read the API server's discovery"):
            deployer.apply("seed001-liveness.yaml", wait="none")

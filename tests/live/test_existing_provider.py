"""The existing provider, live against the session's cluster through its kubeconfig.

- A ServiceAccount bound with only ``manifests/rbac/pytest-probes-rbac.yaml`` runs the README's
  live probe test through ``--probes-provider existing``: the manifest is sufficient.
- A context that does not look like a local test cluster is refused, and accepted with
  ``--probes-allow-existing-cluster``.
- Only namespaces labelled as ours are deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from pytest_probes import Cluster
from pytest_probes.cluster import default_cache_dir
from pytest_probes.errors import ClusterError
from pytest_probes.namespaces import MANAGED_BY_LABEL, create_namespace, delete_namespace
from pytest_probes.providers.existing import Target, read_target
from tests.helpers import readme_probe_example

ROOT = Path(__file__).resolve().parents[2]
RBAC = ROOT / "manifests" / "rbac" / "pytest-probes-rbac.yaml"
CACHE_DIR = default_cache_dir()  # read before pytester points HOME at a temporary folder


def _admin_kubeconfig(cluster: Cluster) -> tuple[Target, dict[str, Any]]:
    """What the session's kubeconfig selects, and the kubeconfig itself."""
    target = read_target(cluster.kubeconfig, cluster.context)
    return target, yaml.safe_load(cluster.kubeconfig.read_text())


def _kubeconfig(cluster: Cluster, path: Path, *, context: str, user: dict[str, Any]) -> Path:
    """A kubeconfig for the session cluster's server under ``context``, as ``user``."""
    target, admin = _admin_kubeconfig(cluster)
    entry = next(c["cluster"] for c in admin["clusters"] if c["name"] == target.cluster)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": entry}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
        "current-context": context,
    }))
    return path


def _admin_user(cluster: Cluster) -> dict[str, Any]:
    target, admin = _admin_kubeconfig(cluster)
    context = next(c["context"] for c in admin["contexts"] if c["name"] == target.context)
    user: dict[str, Any] = next(u["user"] for u in admin["users"] if u["name"] == context["user"])
    return user


@pytest.fixture
def rbac_objects(_probes_api: Any) -> Iterator[list[dict[str, Any]]]:
    """The RBAC manifest applied as it is; removed again afterwards."""
    objects = [o for o in yaml.safe_load_all(RBAC.read_text()) if o]
    core, rbac = client.CoreV1Api(_probes_api), client.RbacAuthorizationV1Api(_probes_api)
    creators = {
        "Namespace": lambda o: core.create_namespace(o),
        "ServiceAccount": lambda o: core.create_namespaced_service_account(
            o["metadata"]["namespace"], o),
        "ClusterRole": lambda o: rbac.create_cluster_role(o),
        "ClusterRoleBinding": lambda o: rbac.create_cluster_role_binding(o),
    }
    assert sorted(o["kind"] for o in objects) == sorted(creators)
    for obj in objects:
        try:
            creators[obj["kind"]](obj)
        except ApiException as err:
            if err.status != 409:
                raise
    try:
        yield objects
    finally:
        for call in (lambda: rbac.delete_cluster_role_binding("pytest-probes"),
                     lambda: rbac.delete_cluster_role("pytest-probes"),
                     lambda: core.delete_namespace("pytest-probes")):
            try:
                call()
            except ApiException as err:
                if err.status != 404:
                    raise


@pytest.mark.selftest
def test_a_service_account_with_only_the_rbac_manifest_runs_a_live_probe_test(
    pytester: pytest.Pytester, probes_cluster: Cluster, _probes_api: Any,
    rbac_objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    core = client.CoreV1Api(_probes_api)
    token = core.create_namespaced_service_account_token(
        "pytest-probes", "pytest-probes",
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)),
    ).status.token
    # The same context name as the session's kubeconfig, so the safety rule lets it through.
    context = read_target(probes_cluster.kubeconfig, probes_cluster.context).context
    path = _kubeconfig(probes_cluster, tmp_path / "sa.kubeconfig", context=context,
                       user={"token": token})

    # The token really is limited: it cannot read Secrets.
    from kubernetes import config

    limited = config.new_client_from_config(config_file=str(path), persist_config=False)
    try:
        with pytest.raises(ApiException) as denied:
            client.CoreV1Api(limited).list_namespaced_secret("default")
        assert denied.value.status == 403
    finally:
        limited.close()

    pytester.makepyfile(test_example=readme_probe_example())
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    result = pytester.runpytest_inprocess(
        "-m", "probes", "--probes-provider", "existing", "--probes-kubeconfig", str(path),
        "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)


@pytest.mark.selftest
def test_a_renamed_context_is_refused_and_allowed_with_the_option(
    pytester: pytest.Pytester, probes_cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    path = _kubeconfig(probes_cluster, tmp_path / "prod.kubeconfig", context="prod-admin",
                       user=_admin_user(probes_cluster))
    server = read_target(path, None).server
    pytester.makepyfile("""
        import pytest
        from kubernetes import client

        @pytest.mark.probes
        def test_list(probes_cluster):
            assert probes_cluster.provider == "existing" and not probes_cluster.created
            client.CoreV1Api(probes_cluster.api_client()).list_namespace()
    """)
    monkeypatch.setenv("XDG_CACHE_HOME", str(CACHE_DIR.parent))
    args = ("-m", "probes", "--probes-provider", "existing", "--probes-kubeconfig", str(path),
            "-p", "no:cacheprovider")

    refused = pytester.runpytest_inprocess(*args)
    refused.assert_outcomes(errors=1)
    refused.stdout.fnmatch_lines([
        f"*refusing to run against context 'prod-admin' (server {server})*",
    ])
    assert "--probes-allow-existing-cluster" in refused.stdout.str()

    allowed = pytester.runpytest_inprocess(*args, "--probes-allow-existing-cluster")
    allowed.assert_outcomes(passed=1)


@pytest.mark.selftest
def test_only_namespaces_labelled_as_ours_are_deleted(_probes_api: Any) -> None:
    core = client.CoreV1Api(_probes_api)
    foreign = "probes-not-ours-label-check"
    core.create_namespace({"metadata": {"name": foreign, "labels": {"team": "payments"}}})
    try:
        with pytest.raises(ClusterError, match=rf"refusing to delete namespace {foreign}: it is "
                                               rf"not labelled {MANAGED_BY_LABEL}=pytest-probes"):
            delete_namespace(_probes_api, foreign)
        ns = core.read_namespace(foreign)
        assert ns.metadata.deletion_timestamp is None
        ours = "probes-ours-label-check"
        create_namespace(_probes_api, ours, run_id="label-check")
        assert delete_namespace(_probes_api, ours) is True
        try:
            assert core.read_namespace(ours).metadata.deletion_timestamp is not None
        except ApiException as err:
            assert err.status == 404  # already gone
    finally:
        core.delete_namespace(foreign)

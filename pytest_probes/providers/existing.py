"""The ``existing`` provider: a cluster someone else runs, named by an explicit kubeconfig.

It never creates or deletes a cluster, and never reads the user's default kubeconfig: the path
comes from ``--probes-kubeconfig`` and the context from ``--probes-context`` (else that file's
``current-context``). Because the suite creates and deletes namespaces, it refuses a cluster that
does not look like a local test cluster unless ``--probes-allow-existing-cluster`` is given:

- a kind cluster: context ``kind-<name>`` whose server is on the loopback interface, or
- a cluster of the ``local`` provider: context ``probes-<name>`` whose server is the loopback
  address and port of the running local cluster ``<name>`` in the cache directory.

Only namespaces this run created are ever deleted (:func:`pytest_probes.namespaces.delete_namespace`
checks their label first). The RBAC a user needs is in ``manifests/rbac/pytest-probes-rbac.yaml``.

The target image: on a cluster of the local provider it is imported as the local provider does;
on a kind cluster it is built and loaded as the kind provider does; anywhere else the cluster must
pull it from a registry, named by ``$PYTEST_PROBES_TARGET_IMAGE``.

It cannot reconfigure a cluster: a test whose ``probes_cluster`` marker asks for feature gates or
kubelet settings runs only when every node's kubelet already has them, as its ``/configz``
(through the API server's node proxy) shows (:func:`settings_mismatch`); otherwise it is skipped
with what differs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from urllib3.exceptions import LocationParseError
from urllib3.util import Url, parse_url

from pytest_probes.cluster import (
    Cluster,
    ClusterConfig,
    Progress,
    _no_progress,
    default_cache_dir,
    get_provider,
    node_runtime,
)
from pytest_probes.cluster_settings import ClusterSettings
from pytest_probes.errors import ClusterError, UnsupportedSettings

log = logging.getLogger(__name__)

TARGET_IMAGE_ENV = "PYTEST_PROBES_TARGET_IMAGE"
"""Environment variable naming a pullable target image for clusters we cannot load images into."""

REACH_TIMEOUT = 5.0
"""Seconds the API server gets to answer ``/version`` before the cluster counts as unreachable."""


@dataclass(frozen=True)
class Target:
    """What a kubeconfig context points at.

    Attributes:
        context: The context name.
        cluster: The kubeconfig cluster entry's name.
        server: The API server URL.
    """

    context: str
    cluster: str
    server: str

    @property
    def host(self) -> str:
        """The server's host name or address (an IPv6 address without its brackets)."""
        url = _parse_url(self.server)
        return (url.host or "").strip("[]") if url else ""

    @property
    def port(self) -> int | None:
        """The server's port (443 when the URL names none)."""
        url = _parse_url(self.server)
        if url is None:
            return None
        return url.port or (443 if url.scheme == "https" else None)

    @property
    def on_loopback(self) -> bool:
        """Whether the server is on this machine's loopback interface."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _parse_url(server: str) -> Url | None:
    """The kubeconfig's server URL split by urllib3 (the client's HTTP library); ``None`` if bad."""
    try:
        return parse_url(server)
    except LocationParseError:
        return None


def read_target(kubeconfig: Path, context: str | None) -> Target:
    """Read which context, cluster and server a kubeconfig selects.

    Args:
        kubeconfig: The kubeconfig file.
        context: The context to use; ``None`` for the file's ``current-context``.

    Raises:
        ClusterError: The file is missing, unreadable or not a kubeconfig, or the context (or its
            cluster) is not in it.
    """
    import yaml

    try:
        data = yaml.safe_load(kubeconfig.read_text())
    except OSError as err:
        raise ClusterError(
            f"cannot read kubeconfig {kubeconfig}: {err.strerror or err}; pass the path of a "
            "readable kubeconfig with --probes-kubeconfig", provider="existing",
        ) from err
    except yaml.YAMLError as err:
        raise ClusterError(f"kubeconfig {kubeconfig} is not valid YAML: {err}",
                           provider="existing") from err
    if not isinstance(data, dict) or not isinstance(data.get("contexts"), list):
        raise ClusterError(f"{kubeconfig} is not a kubeconfig (no contexts list)",
                           provider="existing")
    contexts = {str(c.get("name")): c.get("context") or {} for c in data["contexts"]
                if isinstance(c, dict)}
    name = context or str(data.get("current-context") or "")
    if not name:
        raise ClusterError(
            f"kubeconfig {kubeconfig} has no current-context; choose one of "
            f"{', '.join(sorted(contexts)) or 'none'} with --probes-context", provider="existing")
    if name not in contexts:
        raise ClusterError(
            f"kubeconfig {kubeconfig} has no context {name!r}; it has "
            f"{', '.join(sorted(contexts)) or 'none'}", provider="existing")
    cluster_name = str(contexts[name].get("cluster") or "")
    clusters = {str(c.get("name")): c.get("cluster") or {}
                for c in data.get("clusters") or [] if isinstance(c, dict)}
    if cluster_name not in clusters:
        raise ClusterError(
            f"context {name!r} of {kubeconfig} names cluster {cluster_name!r}, which the file "
            "does not define", provider="existing")
    return Target(context=name, cluster=cluster_name,
                  server=str(clusters[cluster_name].get("server") or ""))


def local_cluster_at(target: Target, cache_dir: Path) -> str | None:
    """Return the name of the running local-provider cluster whose API server ``target`` is."""
    if not target.on_loopback:
        return None
    return _local_provider().cluster_at_port(target.port, cache_dir)


def kind_cluster_of(target: Target) -> str | None:
    """Return the kind cluster name if ``target`` looks like kind's (``kind-<name>``, loopback)."""
    if target.context.startswith("kind-") and target.on_loopback:
        return target.context.removeprefix("kind-")
    return None


def looks_like_test_cluster(target: Target, cache_dir: Path) -> bool:
    """Whether the context is a local test cluster: kind's, or one of the local provider's."""
    return kind_cluster_of(target) is not None or _is_local_context(
        target, local_cluster_at(target, cache_dir))


def _is_local_context(target: Target, local: str | None) -> bool:
    """Whether ``target`` is the local provider's context of local cluster ``local``."""
    return local is not None and target.context == f"probes-{local}"


def check_safe(target: Target, kubeconfig: Path, config: ClusterConfig, local: str | None) -> None:
    """Refuse a cluster that does not look like a local test cluster, unless allowed.

    Args:
        target: What the kubeconfig context points at.
        kubeconfig: The kubeconfig file, for messages.
        config: The run's cluster configuration.
        local: The local-provider cluster at ``target`` (:func:`local_cluster_at`), if any.

    Raises:
        ClusterError: The cluster is not a local test cluster and ``allow_existing`` is off.
    """
    if kind_cluster_of(target) is not None or _is_local_context(target, local):
        return
    if config.allow_existing:
        log.warning("running against context %s (%s) of %s: allowed by "
                    "--probes-allow-existing-cluster", target.context, target.server, kubeconfig)
        return
    raise ClusterError(
        f"refusing to run against context {target.context!r} (server {target.server}) of "
        f"{kubeconfig}: it does not look like a local test cluster (a kind-<name> context or a "
        "probes-<name> context of the local provider, with the API server on 127.0.0.1). The "
        "suite creates and deletes namespaces there. If that cluster is meant for these tests, "
        "pass --probes-allow-existing-cluster",
        provider="existing",
    )


def server_version(kubeconfig: Path, context: str, server: str,
                   timeout: float = REACH_TIMEOUT) -> str:
    """Return the API server's ``gitVersion``, failing within about ``timeout`` seconds.

    Raises:
        ClusterError: The kubeconfig cannot be loaded or the server did not answer in time.
    """
    from kubernetes import client, config

    configuration: Any = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context, client_configuration=configuration,
            persist_config=False)
    except Exception as err:
        raise ClusterError(f"cannot load context {context!r} of {kubeconfig}: {err}",
                           provider="existing") from err
    configuration.retries = 0
    api = client.ApiClient(configuration)
    try:
        info = client.VersionApi(api).get_code(_request_timeout=timeout)
    except Exception as err:
        reason = getattr(err, "reason", None) or err
        raise ClusterError(
            f"the API server {server} of context {context!r} ({kubeconfig}) did not answer "
            f"/version within {timeout:.0f} s: {reason}. Is the cluster running and reachable "
            "from here?", provider="existing",
        ) from err
    finally:
        api.close()  # type: ignore[no-untyped-call]
    return str(info.git_version)


class ExistingProvider:
    """Uses a cluster named by an explicit kubeconfig (see the module docstring)."""

    name = "existing"

    def up(self, config: ClusterConfig, progress: Progress = _no_progress) -> Cluster:
        """Check the kubeconfig, the safety rule and that the API server answers.

        Raises:
            ClusterError: No kubeconfig was given, it is unusable, the cluster does not look like
                a test cluster (and is not allowed), or the API server does not answer.
        """
        if config.kubeconfig is None:
            raise ClusterError(
                "the existing provider needs --probes-kubeconfig PATH (the current kubectl "
                "context is never used implicitly)", provider=self.name)
        kubeconfig = config.kubeconfig.expanduser().resolve()
        target = read_target(kubeconfig, config.context)
        local = local_cluster_at(target, config.cache_dir)
        check_safe(target, kubeconfig, config, local)
        version = server_version(kubeconfig, target.context, target.server)
        progress(f"using context {target.context} ({target.server}) of {kubeconfig}")
        cluster = Cluster(
            name=target.context, provider=self.name, kubeconfig=kubeconfig, k8s_version=version,
            created=False, context=target.context,
            image_loader=_image_loader(target, config.cache_dir, local),
        )
        if not config.settings.is_default:
            configs = kubelet_configs(cluster)
            problem = settings_mismatch(config.settings, configs)
            if problem is not None:
                raise UnsupportedSettings(
                    f"the existing provider cannot reconfigure context {target.context}: "
                    f"{problem}", provider=self.name)
            cluster = dataclasses.replace(cluster, settings=running_settings(configs))
        return dataclasses.replace(cluster, runtime=node_runtime(cluster))

    def ensure_target_image(self, cluster: Cluster, progress: Progress = _no_progress) -> str:
        """Make the target image available as the cluster's kind allows.

        Raises:
            ClusterError: The image cannot be loaded here and ``$PYTEST_PROBES_TARGET_IMAGE`` is
                not set.
        """
        pulled = os.environ.get(TARGET_IMAGE_ENV)
        if pulled:
            return pulled
        target = read_target(cluster.kubeconfig, cluster.context)
        cache_dir = default_cache_dir()
        local = local_cluster_at(target, cache_dir)
        if local is not None:
            provider = _local_provider()
            as_local = provider.handle(local, cache_dir, k8s_version=cluster.k8s_version)
            return provider.ensure_target_image(as_local, progress)
        kind = kind_cluster_of(target)
        if kind is not None:
            from pytest_probes.providers.kind import KindProvider

            return KindProvider().ensure_target_image(
                Cluster(name=kind, provider="kind", kubeconfig=cluster.kubeconfig,
                        k8s_version=cluster.k8s_version), progress)
        from pytest_probes.providers.kind import target_image_ref

        raise ClusterError(
            f"cannot load the target image into context {target.context!r} ({target.server}): "
            f"build it (`docker build -f pytest_probes/target/Dockerfile -t "
            f"REGISTRY/{target_image_ref().rpartition('/')[2]} .`), push it to a registry the "
            f"cluster pulls from, and name it in ${TARGET_IMAGE_ENV}",
            provider=self.name,
        )

    def down(self, cluster: Cluster, progress: Progress = _no_progress) -> None:
        """Do nothing: the existing provider never deletes a cluster."""
        log.info("leaving existing cluster %s running", cluster.name)


def kubelet_configs(cluster: Cluster) -> dict[str, Any]:
    """Each node's running KubeletConfiguration, by node name, from the kubelet's ``/configz``.

    Read through the API server's node proxy (``nodes/proxy`` rights); a node whose kubelet
    does not answer maps to the error text instead of a mapping.
    """
    import json

    from kubernetes import client

    out: dict[str, Any] = {}
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        for node in core.list_node(_request_timeout=10).items:
            name = str(node.metadata.name if node.metadata is not None else "")
            try:
                raw: Any = core.connect_get_node_proxy_with_path(
                    name, "configz", _preload_content=False, _request_timeout=10)
                out[name] = json.loads(raw.data).get("kubeletconfig", {})
            except Exception as error:
                out[name] = f"its kubelet's /configz did not answer ({error})"
    return out


RUNNING_FIELDS = ("crashLoopBackOff",)
"""The KubeletConfiguration fields a handle's settings carry besides the feature gates: those the
timing math reads (:attr:`pytest_probes.cluster.Cluster.crashloop_backoff`)."""


def running_settings(configs: dict[str, Any]) -> ClusterSettings:
    """The settings the kubelets run with, as far as the timing math reads them.

    All of the running kubelet's feature gates and :data:`RUNNING_FIELDS`, from the first node
    (:func:`settings_mismatch` has checked that every node has what the test asked for); so the
    back-off of a kubelet that also runs a gate the test did not name is its real one.
    """
    first = next(c for _, c in sorted(configs.items()) if isinstance(c, dict))
    fragment = {key: first[key] for key in RUNNING_FIELDS if isinstance(first.get(key), dict)}
    return ClusterSettings.of(dict(first.get("featureGates") or {}) or None, fragment or None)


def settings_mismatch(settings: ClusterSettings, configs: dict[str, Any]) -> str | None:
    """What the running kubelets lack of ``settings``, or ``None`` when every node has them.

    Args:
        settings: The configuration a test asks for.
        configs: Each node's KubeletConfiguration (:func:`kubelet_configs`), or an error text.
    """
    if not configs:
        return "it has no nodes"
    wanted: dict[str, Any] = dict(settings.kubelet_config)
    if settings.feature_gates:
        wanted["featureGates"] = settings.gates
    for node, config in sorted(configs.items()):
        if not isinstance(config, dict):
            return f"node {node}: {config}"
        differs = _differs(wanted, config, "")
        if differs is not None:
            return f"node {node}'s kubelet has {differs}"
    return None


def _differs(wanted: Any, running: Any, path: str) -> str | None:
    """The first field where ``running`` lacks ``wanted`` (a mapping must hold the wanted keys)."""
    if isinstance(wanted, dict):
        if not isinstance(running, dict):
            return f"{path or 'the configuration'} = {running!r}, the test needs {wanted!r}"
        for key, value in wanted.items():
            found = _differs(value, running.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if running != wanted:
        return f"{path} = {running!r}, the test needs {wanted!r}"
    return None


class _LocalClusters(Protocol):
    """What this provider asks of the local provider, which it reaches through the registry."""

    def cluster_at_port(self, port: int | None, cache_dir: Path) -> str | None: ...

    def handle(self, name: str, cache_dir: Path, *, k8s_version: str) -> Cluster: ...

    def image_loader(self, cache_dir: Path, name: str) -> Callable[[Path], list[str]]: ...

    def ensure_target_image(self, cluster: Cluster, progress: Progress = _no_progress) -> str: ...


def _local_provider() -> _LocalClusters:
    return cast(_LocalClusters, get_provider("local"))


def _image_loader(target: Target, cache_dir: Path, local: str | None) -> Any:
    if local is not None:
        return _local_provider().image_loader(cache_dir, local)
    kind = kind_cluster_of(target)
    if kind is not None:
        from pytest_probes.providers.kind import ArchiveLoader, kind_binary

        def load(archive: Path) -> list[str]:
            return ArchiveLoader(kind_binary(), kind)(archive)

        return load
    return None

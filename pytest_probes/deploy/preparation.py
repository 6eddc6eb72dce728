"""Prepare manifest objects for one test: its namespace, the target image, labels, ``${VAR}``.

Manifests write ``image: probes-target`` (:data:`TARGET_IMAGE_PLACEHOLDER`) where the target app
runs; :func:`prepare` swaps in the reference of the image actually loaded into the cluster. It
also tells cluster-scoped objects (:data:`CLUSTER_SCOPED_KINDS`, and the kinds of CRDs in the same
manifest: :func:`crd_names`) from namespaced ones. Pure: it works on copies and does no I/O.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from pytest_probes.cluster_objects import CRD_KIND
from pytest_probes.deploy.manifests import ManifestObject

log = logging.getLogger(__name__)

TARGET_IMAGE_PLACEHOLDER = "probes-target"
"""The image name manifests use for the target app; :func:`prepare` replaces it."""

CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterTrustBundle",
        "ComponentStatus",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IngressClass",
        "IPAddress",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "ResourceSlice",
        "RuntimeClass",
        "ServiceCIDR",
        "StorageClass",
        "StorageVersionMigration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        "VolumeAttributesClass",
    }
)
"""Kinds that live outside any namespace: applied once per run
(:mod:`pytest_probes.cluster_objects`), not into the test's namespace."""

REFUSED_KINDS = frozenset({"Namespace", "Node", "CSINode", "ComponentStatus"})
"""Cluster-scoped kinds a manifest may not bring: the test has its own namespace, and nodes are the
cluster's."""

# Where each workload kind keeps its pod template.
_TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Deployment": ("spec", "template"),
        "ReplicaSet": ("spec", "template"),
        "ReplicationController": ("spec", "template"),
        "StatefulSet": ("spec", "template"),
        "DaemonSet": ("spec", "template"),
        "Job": ("spec", "template"),
        "CronJob": ("spec", "jobTemplate", "spec", "template"),
    }
)

_NO_STRINGS: Mapping[str, str] = MappingProxyType({})

_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def prepare(
    objs: Iterable[ManifestObject],
    *,
    namespace: str,
    target_image: str,
    labels: Mapping[str, str] = _NO_STRINGS,
    substitutions: Mapping[str, str] = _NO_STRINGS,
) -> list[ManifestObject]:
    """Point manifest objects at the test's namespace and the target image.

    Works on deep copies; the given objects are left alone. For each object it

    * replaces ``${VAR}`` in every string value with ``substitutions[VAR]`` (``$${VAR}`` stands for
      a literal ``${VAR}``; Kubernetes' own ``$(VAR)`` is left alone);
    * sets ``metadata.namespace``, except on cluster-scoped objects (those of
      :data:`CLUSTER_SCOPED_KINDS` and of CRDs with ``scope: Cluster`` in the same manifest);
    * replaces every container and init container image equal to
      :data:`TARGET_IMAGE_PLACEHOLDER` in Pods and in the pod templates of workloads with
      ``target_image`` and sets ``imagePullPolicy: IfNotPresent`` where none is given;
    * adds ``labels`` to the object's and its pod template's ``metadata.labels``.

    Args:
        objs: The objects, as :func:`load_manifests` returns them.
        namespace: The namespace to deploy into.
        target_image: The reference of the target image on the cluster's node.
        labels: Labels to add (they win over labels of the same key in the manifest).
        substitutions: Values for ``${VAR}`` placeholders.

    Returns:
        The prepared copies, in the same order.

    Raises:
        DeployError: An object names another namespace, is of a refused kind, has no
            ``metadata.name``, uses an unknown ``${VAR}``, or uses the placeholder image while
            ``target_image`` is empty.
    """
    objs = list(objs)
    cluster_kinds = CLUSTER_SCOPED_KINDS | {
        kind for _group, kind, scope in (crd_names(obj.doc) for obj in objs) if scope == "Cluster"
    }
    prepared: list[ManifestObject] = []
    for obj in objs:
        doc = _substitute(copy.deepcopy(obj.doc), substitutions, obj, "")
        new = ManifestObject(doc, obj.source, obj.index, obj.item)
        if new.kind in REFUSED_KINDS:
            raise new.error(
                f"{new.kind} is cluster-scoped, and a probe test deploys only into its own "
                f"namespace ({namespace}). Remove this object from the manifest and create it "
                "outside the test"
            )
        meta = doc.setdefault("metadata", {})
        if not isinstance(meta.get("name"), str) or not meta["name"]:
            raise new.error(
                "metadata.name is missing; give the object a name (server-side apply cannot use "
                "generateName)"
            )
        declared = meta.get("namespace")
        if new.kind in cluster_kinds:
            if declared not in (None, ""):
                raise new.error(
                    f"metadata.namespace is {declared!r}, but {new.kind} is cluster-scoped. "
                    "Remove metadata.namespace from the manifest"
                )
            if labels:
                _add_labels(meta, labels)
            prepared.append(new)
            continue
        if declared not in (None, "", namespace):
            raise new.error(
                f"metadata.namespace is {declared!r}, but the test deploys into {namespace!r}. "
                "Remove metadata.namespace from the manifest; the test's namespace is set for you"
            )
        meta["namespace"] = namespace
        if labels:
            _add_labels(meta, labels)
        for template, path in pod_templates(doc):
            if labels and template is not doc:
                _add_labels(template.setdefault("metadata", {}), labels)
            _set_images(template.get("spec"), f"{path}.spec", target_image, new)
        prepared.append(new)
    return prepared


def crd_names(doc: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(group, kind, scope)`` a CustomResourceDefinition defines; empty strings for any other."""
    if doc.get("kind") != CRD_KIND or not str(doc.get("apiVersion", "")).startswith(
        "apiextensions.k8s.io/"
    ):
        return "", "", ""
    spec = doc.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    names = spec.get("names")
    names = names if isinstance(names, dict) else {}
    return str(spec.get("group", "")), str(names.get("kind", "")), str(spec.get("scope", ""))


def _substitute(value: Any, subs: Mapping[str, str], obj: ManifestObject, path: str) -> Any:
    if isinstance(value, str):
        return _substitute_string(value, subs, obj, path)
    if isinstance(value, dict):
        return {
            key: _substitute(item, subs, obj, f"{path}.{key}" if path else str(key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_substitute(item, subs, obj, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _substitute_string(text: str, subs: Mapping[str, str], obj: ManifestObject, path: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, variable = match.group(1), match.group(2)
        if escaped:
            return "${" + variable + "}"
        if variable not in subs:
            known = ", ".join(sorted(subs)) or "none"
            raise obj.error(
                f"{path} uses ${{{variable}}}, which has no value (known: {known}). Pass "
                f"substitutions={{{variable!r}: ...}}, or write $${{{variable}}} for a literal "
                f"${{{variable}}}"
            )
        return str(subs[variable])

    return _VARIABLE.sub(replace, text)


def _add_labels(meta: dict[str, Any], labels: Mapping[str, str]) -> None:
    current = meta.get("labels")
    if not isinstance(current, dict):
        current = {}
        meta["labels"] = current
    current.update(labels)


def pod_templates(doc: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Return ``(template, path)`` for the object's pod template; a Pod is its own template."""
    kind = doc.get("kind")
    if kind == "Pod":
        return [(doc, "")]
    path = _TEMPLATE_PATHS.get(str(kind))
    if path is None:
        return []
    node: Any = doc
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return [(node, ".".join(path))] if isinstance(node, dict) else []


def _set_images(spec: Any, path: str, target_image: str, obj: ManifestObject) -> None:
    if not isinstance(spec, dict):
        return
    path = path.lstrip(".")
    for group in ("initContainers", "containers"):
        containers = spec.get(group)
        if not isinstance(containers, list):
            continue
        for i, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            image = container.get("image")
            if image == TARGET_IMAGE_PLACEHOLDER:
                if not target_image:
                    raise obj.error(
                        f"{path}.{group}[{i}] uses the image {TARGET_IMAGE_PLACEHOLDER!r} but no "
                        "target image was given; build and load it first (the probes_cluster "
                        "fixture does) and pass its reference as target_image"
                    )
                container["image"] = target_image
                container.setdefault("imagePullPolicy", "IfNotPresent")
            elif image:
                log.warning(
                    "%s: %s.%s[%d] uses image %r, not %r; a cluster without a registry may not "
                    "have it",
                    obj.describe(),
                    path,
                    group,
                    i,
                    image,
                    TARGET_IMAGE_PLACEHOLDER,
                )

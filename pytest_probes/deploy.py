"""Load, prepare and apply the manifests a probe test deploys, and wait for their pods.

A test names a manifest (a file under ``manifests/``, a path of its own, YAML text or plain dicts);
this module parses it (:func:`load_manifests`), points it at the test's namespace and the target
image (:func:`prepare`), applies it with server-side apply and waits until its pods exist, run or
are ready (:class:`Deployer`). A wait ends early with a diagnosis when a pod can never get there
(the image cannot be pulled, the pod cannot be scheduled, ...), instead of running out its timeout.

Manifests write ``image: probes-target`` (:data:`TARGET_IMAGE_PLACEHOLDER`) where the target app
runs; :func:`prepare` swaps in the reference of the image actually loaded into the cluster.

Every error names the manifest file and the document in it (counted from 1, as a reader counts the
``---`` separators), the object's kind and name, and what to do about it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import yaml

from pytest_probes.cluster_objects import CRD_KIND, ClusterObjects, poll
from pytest_probes.errors import ClusterError, DeployError, ProbesTimeoutError
from pytest_probes.podstate import (
    HOPELESS_WAITING,
    UNSCHEDULABLE_FIX,
    condition,
    container_state,
    container_statuses,
)

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

log = logging.getLogger(__name__)

TARGET_IMAGE_PLACEHOLDER = "probes-target"
"""The image name manifests use for the target app; :func:`prepare` replaces it."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
"""The label :class:`Deployer` puts on every object and pod template it applies."""

DEFAULT_LABELS: Mapping[str, str] = MappingProxyType({MANAGED_BY_LABEL: "pytest-probes"})

_PACKAGE_DIR = Path(__file__).resolve().parent


def _find_manifests_dir() -> Path:
    """Return the directory holding the seed manifests.

    An installed wheel carries them as ``pytest_probes/manifests``; a source checkout keeps them in
    ``manifests/`` at the repository root, beside ``pyproject.toml``.
    """
    packaged = _PACKAGE_DIR / "manifests"
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parent / "manifests"
    if checkout.is_dir() and (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return checkout
    return packaged


MANIFESTS_DIR: Path = _find_manifests_dir()
"""Where the seed manifests live; searched last when a manifest is named by a relative path."""

WaitFor = Literal["none", "exist", "running", "ready"]
WAIT_CHOICES: tuple[str, ...] = get_args(WaitFor)

ManifestSource = str | os.PathLike[str] | Mapping[str, Any] | Sequence[Mapping[str, Any]]
"""What :func:`load_manifests` accepts: a path, YAML text, one object or a list of objects."""

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

# Kinds whose pods Deployer.wait() waits for (a CronJob's pods come on its schedule, not on apply).
_POD_OWNING_KINDS = frozenset(
    {"Pod", "Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "DaemonSet", "Job"}
)

_NO_STRINGS: Mapping[str, str] = MappingProxyType({})

_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")

_REVISION_ANNOTATION = "deployment.kubernetes.io/revision"

_WATCH_SLICE_SECONDS = 5.0
"""A pod watch ends after this long so workload status without pod events is seen too."""


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ManifestObject:
    """One Kubernetes object read from a manifest, with where it came from.

    Attributes:
        doc: The object as a dict (``apiVersion``, ``kind``, ``metadata``, ...).
        source: The file it came from (relative to the working directory where possible), or
            ``<text>``, ``<dict>`` or ``<list>``.
        index: The document number in the source, counted from 1 (empty documents count).
        item: The item number inside a ``kind: List`` document, counted from 1, else ``None``.
    """

    doc: dict[str, Any]
    source: str
    index: int
    item: int | None = None

    @property
    def kind(self) -> str:
        """The object's ``kind``."""
        return str(self.doc.get("kind") or "")

    @property
    def api_version(self) -> str:
        """The object's ``apiVersion``."""
        return str(self.doc.get("apiVersion") or "")

    @property
    def name(self) -> str:
        """The object's ``metadata.name`` (``""`` if it has none)."""
        meta = self.doc.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""

    @property
    def where(self) -> str:
        """Where the object was read, e.g. ``manifests/x.yaml document 2``."""
        place = f"{self.source} document {self.index}"
        return place if self.item is None else f"{place} item {self.item}"

    def describe(self) -> str:
        """Return ``<where>: <kind> <name>`` for messages."""
        return f"{self.where}: {self.kind} {self.name or '(unnamed)'}"

    def error(self, message: str) -> DeployError:
        """Return a :class:`DeployError` about this object, prefixed with :meth:`describe`."""
        return DeployError(
            f"{self.describe()}: {message}",
            source=self.source,
            index=self.index,
            kind=self.kind or None,
            name=self.name or None,
        )


def search_dirs(base_dirs: Sequence[Path | str] = ()) -> list[Path]:
    """Return the directories a relative manifest path is looked up in, in order.

    The working directory comes first, then ``base_dirs``, then :data:`MANIFESTS_DIR`.
    """
    dirs: list[Path] = []
    for candidate in (Path.cwd(), *(Path(d).absolute() for d in base_dirs), MANIFESTS_DIR):
        if candidate not in dirs:
            dirs.append(candidate)
    return dirs


def find_manifest(name: str | os.PathLike[str], *, base_dirs: Sequence[Path | str] = ()) -> Path:
    """Find a manifest file by name.

    An absolute path is used as it is. A relative one is tried against the working directory,
    then each of ``base_dirs``, then :data:`MANIFESTS_DIR`. A name without a suffix also matches
    ``<name>.yaml`` and ``<name>.yml``.

    Args:
        name: The file name or path.
        base_dirs: Extra directories to search after the working directory.

    Returns:
        The path of the file found.

    Raises:
        DeployError: No such file; the message lists every place that was tried.
    """
    found, tried = _search(Path(name), base_dirs)
    if found is not None:
        return found
    folders = [p for p in tried if _is_dir(p)]
    if folders:
        raise DeployError(
            f"manifest {os.fspath(name)!r}: {folders[0]} is a directory, not a manifest file; "
            "name a YAML file in it, or load each of its files",
            source=os.fspath(name),
        )
    raise DeployError(
        f"manifest {os.fspath(name)!r} not found (not a manifest file); looked for "
        + ", ".join(str(p) for p in tried)
        + ". Pass an absolute path, put the file in one of those directories, or add its "
        "directory to base_dirs",
        source=os.fspath(name),
    )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _search(name: Path, base_dirs: Sequence[Path | str]) -> tuple[Path | None, list[Path]]:
    names = [name]
    if not name.suffix:
        names += [name.with_name(name.name + ".yaml"), name.with_name(name.name + ".yml")]
    if name.is_absolute():
        candidates = names
    else:
        candidates = [d / n for d in search_dirs(base_dirs) for n in names]
    for candidate in candidates:
        try:
            if candidate.is_file():
                return candidate, candidates
        except (OSError, ValueError):  # a name too long, or with a NUL byte
            continue
    return None, candidates


def load_manifests(
    source: ManifestSource, *, base_dirs: Sequence[Path | str] = ()
) -> list[ManifestObject]:
    """Read Kubernetes objects from a file, YAML text, a dict or a list of dicts.

    A ``str`` that contains a newline is YAML text; otherwise it is a path looked up as
    :func:`find_manifest` does, unless no such file exists and it contains ``:`` (then it is
    one-line YAML text). Multi-document YAML is split, empty documents are skipped and the items of
    ``kind: List`` documents become objects of their own. The input is never modified: each object
    holds its own copy.

    Args:
        source: The manifest.
        base_dirs: Extra directories to search for a relative path.

    Returns:
        The objects in order.

    Raises:
        DeployError: The file is missing or unreadable, the YAML is invalid (the message gives the
            line and column), a document is not an object with ``apiVersion`` and ``kind``, or the
            source holds no object at all.
    """
    if isinstance(source, Mapping):
        return _objects_from_docs([source], "<dict>")
    if isinstance(source, os.PathLike):
        return _load_file(find_manifest(source, base_dirs=base_dirs))
    if isinstance(source, str):
        if "\n" in source:
            return _objects_from_docs(_parse_yaml(source, "<text>"), "<text>")
        found, _ = _search(Path(source), base_dirs)
        if found is not None:
            return _load_file(found)
        if ":" in source:
            docs = _parse_yaml(source, "<text>")
            # "name: value" is YAML text; "dir/x:y.yaml" (no space) is one string: a path.
            if any(isinstance(doc, Mapping) for doc in docs):
                return _objects_from_docs(docs, "<text>")
        find_manifest(source, base_dirs=base_dirs)  # raises, listing where it looked
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return _objects_from_docs(list(source), "<list>")
    raise DeployError(
        f"cannot read manifests from a {type(source).__name__}; pass a path, YAML text, a dict "
        "or a list of dicts"
    )


def load_manifest_text(text: str, label: str) -> list[ManifestObject]:
    """Read the objects of YAML (or JSON) text, e.g. Helm or kustomize output on standard input.

    Raises:
        DeployError: As :func:`load_manifests`, naming ``label`` as the source.
    """
    return _objects_from_docs(_parse_yaml(text, label), label)


def load_manifest_paths(paths: Sequence[Path | str]) -> list[ManifestObject]:
    """Read every object of files, directories and ``-`` (standard input).

    A directory gives its ``*.yaml``, ``*.yml`` and ``*.json`` files, and those below it, in
    name order.

    Raises:
        DeployError: A path does not exist, a directory holds no manifest, or a file is invalid.
    """
    import sys

    objects: list[ManifestObject] = []
    for given in paths:
        if str(given) == "-":
            objects += load_manifest_text(sys.stdin.read(), "<stdin>")
            continue
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
            if not files:
                raise DeployError(f"{path}: the directory holds no *.yaml, *.yml or *.json file")
            for file in files:
                objects += _load_file(file)
        elif path.is_file():
            objects += _load_file(path)
        else:
            raise DeployError(f"{path}: no such file or directory; give manifest files, "
                              "directories, or - for standard input", source=str(path))
    return objects


def _display_name(path: Path) -> str:
    resolved = path.resolve()
    for root, prefix in ((Path.cwd().resolve(), ""), (MANIFESTS_DIR.resolve(), "manifests/")):
        try:
            return prefix + str(resolved.relative_to(root))
        except ValueError:
            continue
    return str(resolved)


def _load_file(path: Path) -> list[ManifestObject]:
    label = _display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeployError(
            f"{label}: cannot read the manifest ({err}); check the file's permissions and that it "
            "is UTF-8 text",
            source=label,
        ) from err
    return _objects_from_docs(_parse_yaml(text, label), label)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last value silently (a second ``livenessProbe:`` would win unseen); kubectl's
    decoder refuses the file (``mapping key ... already defined``), and so does this.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line)
            except TypeError:
                continue  # an unhashable key: the base class says so
            if first != key_node.start_mark.line:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    f"found duplicate key {key!r} (first at line {first + 1})",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, label: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=_UniqueKeyLoader))  # a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        index = _document_at(text, mark.line) if mark else None
        where = (
            f" in document {index} at line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else ""
        )
        what = err.problem or str(err)
        if err.context:
            context = err.context_mark
            since = f" at line {context.line + 1}, column {context.column + 1}" if context else ""
            what += f" ({err.context}{since})"
        fix = ("Remove one of them (kubectl refuses the file too)" if "duplicate key" in what
               else "Fix the syntax there (indentation, a missing ':' or closing quote, a tab "
               "used for indentation) and separate documents with '---'")
        raise DeployError(
            f"{label}: invalid YAML{where}: {what}. {fix}",
            source=label,
            index=index,
        ) from err
    except yaml.YAMLError as err:
        raise DeployError(
            f"{label}: invalid YAML: {err}. Fix the syntax and separate documents with '---'",
            source=label,
        ) from err


def _document_at(text: str, line: int) -> int:
    """Return the number (from 1) of the YAML document that holds the 0-based ``line``."""
    index = 0
    for current in text.splitlines()[: line + 1]:
        if current.startswith("---"):
            index += 1
        elif index == 0 and current.strip() and not current.lstrip().startswith(("#", "%")):
            index = 1
    return max(index, 1)


def _objects_from_docs(docs: Sequence[Any], label: str) -> list[ManifestObject]:
    objects: list[ManifestObject] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        _check_object(doc, label, index, None)
        items = doc.get("items")
        if str(doc.get("kind")).endswith("List") and isinstance(items, list):
            for item_no, item in enumerate(items, start=1):
                _check_object(item, label, index, item_no)
                objects.append(ManifestObject(copy.deepcopy(dict(item)), label, index, item_no))
        else:
            objects.append(ManifestObject(copy.deepcopy(dict(doc)), label, index))
    if not objects:
        raise DeployError(
            f"{label} holds no Kubernetes objects; give it at least one document with apiVersion "
            "and kind",
            source=label,
        )
    return objects


def _check_object(doc: Any, label: str, index: int, item: int | None) -> None:
    where = f"{label} document {index}" + ("" if item is None else f" item {item}")
    if not isinstance(doc, Mapping):
        raise DeployError(
            f"{where} is a {type(doc).__name__}, not an object; each document must be a mapping "
            "with apiVersion, kind and metadata",
            source=label,
            index=index,
        )
    missing = [key for key in ("apiVersion", "kind") if not doc.get(key)]
    if missing:
        raise DeployError(
            f"{where} has no {' or '.join(missing)}; every Kubernetes object needs both (e.g. "
            "apiVersion: v1, kind: Pod)",
            source=label,
            index=index,
            kind=str(doc.get("kind") or "") or None,
        )
    if "metadata" in doc and not isinstance(doc["metadata"], Mapping):
        raise DeployError(
            f"{where}: metadata must be a mapping (name, labels, ...), not a "
            f"{type(doc['metadata']).__name__}",
            source=label,
            index=index,
            kind=str(doc["kind"]),
        )


# --------------------------------------------------------------------------------------------
# Preparing


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


# --------------------------------------------------------------------------------------------
# Pod state (pure functions over pod dicts as the API server returns them)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def pod_reached(pod: Mapping[str, Any], until: WaitFor) -> bool:
    """Return whether a pod has reached a wait state.

    ``exist`` holds once the pod exists. ``running`` holds when the phase is ``Running`` (the
    kubelet reports it once every container has started at least once) or ``Succeeded``.
    ``ready`` holds when the phase is ``Running`` and the ``Ready`` condition is ``True``.
    """
    phase = _status(pod).get("phase")
    if until in ("none", "exist"):
        return True
    if until == "running":
        return phase in ("Running", "Succeeded")
    return phase == "Running" and (condition(pod, "Ready") or {}).get("status") == "True"


def pod_problem(pod: Mapping[str, Any], until: WaitFor) -> str | None:
    """Return why a pod cannot reach ``until`` without someone intervening, or ``None``.

    Recognised: a container waiting for a reason of
    :data:`~pytest_probes.podstate.HOPELESS_WAITING` (ImagePullBackOff, ErrImagePull,
    ErrImageNeverPull, InvalidImageName, CreateContainerConfigError, CreateContainerError); an
    Unschedulable pod; a pod that has finished (Failed, or Succeeded while waiting for ``ready``).
    """
    ref = f"pod {_meta(pod).get('namespace', '?')}/{_meta(pod).get('name', '?')}"
    scheduled = condition(pod, "PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return (
            f"{ref} cannot be scheduled (Unschedulable): {scheduled.get('message', '')}. "
            f"{_sentence(UNSCHEDULABLE_FIX)}"
        )
    for cs in container_statuses(pod):
        kind, waiting = container_state(cs)
        reason = str(waiting.get("reason") or "") if kind == "waiting" else ""
        if reason in HOPELESS_WAITING:
            image = cs.get("image", "")
            return (
                f"{ref} container {cs.get('name')} (image {image}): {reason}: "
                f"{waiting.get('message', '')}. {_sentence(HOPELESS_WAITING[reason])}"
            )
    phase = _status(pod).get("phase")
    if until == "exist":
        return None
    if phase == "Failed" or (phase == "Succeeded" and until == "ready"):
        return (
            f"{ref} has finished (phase {phase}) and will not become {until}: "
            f"{_containers_summary(pod)}. Check its logs (kubectl logs --previous) and its "
            "restartPolicy"
        )
    return None


def _sentence(clause: str) -> str:
    """A fix clause of :mod:`pytest_probes.podstate` as a sentence of its own."""
    return clause[:1].upper() + clause[1:]


def _container_state(cs: Mapping[str, Any]) -> str:
    kind, fields = container_state(cs)
    if kind == "running":
        text = "running, " + ("ready" if cs.get("ready") else "not ready")
    elif kind == "waiting":
        text = f"waiting {fields.get('reason', '')}".rstrip()
    elif kind == "terminated":
        text = f"terminated {fields.get('reason', '')} exit {fields.get('exitCode')}"
    else:
        text = "unknown"
    last = (cs.get("lastState") or {}).get("terminated")
    if last:
        text += f", last exit {last.get('exitCode')} ({last.get('reason', '')})"
    return text


def _containers_summary(pod: Mapping[str, Any]) -> str:
    parts = [f"{cs.get('name')} {_container_state(cs)}" for cs in container_statuses(pod)]
    return "; ".join(parts) or "no container status yet"


def describe_pod(pod: Mapping[str, Any]) -> str:
    """Summarise a pod in one line: name, phase, ready containers, restarts, container states."""
    statuses = _status(pod).get("containerStatuses") or []
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    phase = _status(pod).get("phase", "Unknown")
    if _is_terminating(pod):
        phase += " (terminating)"
    total = len(_spec(pod).get("containers") or statuses)
    return (
        f"{_meta(pod).get('name')}: {phase}, ready {ready}/{total}, restarts {restarts} "
        f"({_containers_summary(pod)})"
    )


# --------------------------------------------------------------------------------------------
# Which pods belong to which object (pure)


def _controlled_by(pod: Mapping[str, Any], uid: str) -> bool:
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in _meta(pod).get("ownerReferences") or []
    )


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int((_meta(obj).get("annotations") or {}).get(_REVISION_ANNOTATION, 0))
    except (TypeError, ValueError):
        return 0


@dataclass
class WorkloadState:
    """How far one applied object's pods have got.

    Attributes:
        label: ``<Kind> <name>``.
        pods: Its current pods (not terminating; for a Deployment, those of its newest ReplicaSet).
        expected: How many pods it should have, or ``None`` while that is not known yet.
        done: Whether every expected pod has reached the wait state.
        note: Why it is not done yet, when that is not visible from the pods.
    """

    label: str
    pods: list[dict[str, Any]] = field(default_factory=list)
    expected: int | None = None
    done: bool = False
    note: str = ""

    def seen(self) -> str:
        """Describe what was seen, for a timeout message."""
        expected = "?" if self.expected is None else str(self.expected)
        head = f"{self.label}: {len(self.pods)}/{expected} pods"
        if self.note:
            head += f" ({self.note})"
        return "; ".join([head, *(describe_pod(p) for p in self.pods)])


def workload_state(
    obj: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]],
    replica_sets: Iterable[Mapping[str, Any]],
    until: WaitFor,
) -> WorkloadState:
    """Work out which pods belong to an applied object and whether they reached ``until``.

    Args:
        obj: The live object (with ``metadata.uid``, ``metadata.generation`` and ``status``).
        pods: Every pod in the namespace.
        replica_sets: Every ReplicaSet in the namespace (used for Deployments).
        until: The state to reach.

    Returns:
        The object's state.
    """
    kind, name = str(obj.get("kind")), str(_meta(obj).get("name"))
    state = WorkloadState(label=f"{kind} {name}")
    live = [p for p in pods if not _is_terminating(p)]
    uid = _meta(obj).get("uid")
    status, spec = _status(obj), _spec(obj)
    generation = _meta(obj).get("generation")
    observed = status.get("observedGeneration")
    caught_up = kind == "Pod" or generation is None or (observed or 0) >= generation
    if kind == "Pod":
        state.pods = [dict(p) for p in live if _meta(p).get("name") == name]
        state.expected = 1
    elif not caught_up:
        state.note = f"controller has not yet seen generation {generation}"
        return state
    elif kind == "Deployment":
        owned = [rs for rs in replica_sets if uid and _controlled_by(rs, uid)]
        if not owned:
            state.note = "no ReplicaSet yet"
            return state
        newest = max(owned, key=_revision)
        rs_uid = _meta(newest).get("uid", "")
        state.pods = [dict(p) for p in live if _controlled_by(p, rs_uid)]
        state.expected = int(spec.get("replicas", 1))
    else:
        state.pods = [dict(p) for p in live if uid and _controlled_by(p, uid)]
        if kind == "DaemonSet":
            state.expected = int(status.get("desiredNumberScheduled") or 0)
        elif kind == "Job":
            state.expected = 1
            # A finished Job's pods may already be gone; count it as done for exist/running.
            if until != "ready" and int(status.get("succeeded") or 0) >= 1:
                state.done = True
                return state
        else:
            state.expected = int(spec.get("replicas", 1))
        if kind == "StatefulSet" and status.get("updateRevision"):
            revision = status["updateRevision"]
            state.pods = [
                p
                for p in state.pods
                if (_meta(p).get("labels") or {}).get("controller-revision-hash") == revision
            ]
    state.done = len(state.pods) >= state.expected and all(
        pod_reached(p, until) for p in state.pods
    )
    return state


# --------------------------------------------------------------------------------------------
# Applying and waiting


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


def _api_message(err: BaseException) -> str:
    """Return the ``message`` of a Kubernetes API error body, or the error text."""
    body = getattr(err, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        return str(message) if message else body[:500]
    return str(err)

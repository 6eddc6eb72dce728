"""Load, prepare and apply the manifests a probe test deploys, and wait for their pods.

A test names a manifest (a file under ``manifests/``, a path of its own, YAML text or plain dicts);
this package parses it (:func:`load_manifests`), points it at the test's namespace and the target
image (:func:`prepare`), applies it with server-side apply and waits until its pods exist, run or
are ready (:class:`Deployer`). A wait ends early with a diagnosis when a pod can never get there
(the image cannot be pulled, the pod cannot be scheduled, ...), instead of running out its timeout.

Manifests write ``image: probes-target`` (:data:`TARGET_IMAGE_PLACEHOLDER`) where the target app
runs; :func:`prepare` swaps in the reference of the image actually loaded into the cluster.

Every error names the manifest file and the document in it (counted from 1, as a reader counts the
``---`` separators), the object's kind and name, and what to do about it.

The modules, one concern each (the first three pure, the last one doing the I/O):

* :mod:`~pytest_probes.deploy.manifests`: finding manifest files and reading their objects
  (:class:`ManifestObject`);
* :mod:`~pytest_probes.deploy.preparation`: :func:`prepare`: namespace, target image, labels and
  ``${VAR}`` substitutions; which kinds are cluster-scoped;
* :mod:`~pytest_probes.deploy.pods`: which pods belong to an applied object, and whether they
  reached a wait state or never can;
* :mod:`~pytest_probes.deploy.deployer`: :class:`Deployer`: server-side apply, cluster-scoped
  objects (through :mod:`pytest_probes.cluster_objects`) and the waits.
"""

from pytest_probes.deploy.deployer import DEFAULT_LABELS, MANAGED_BY_LABEL, Deployer
from pytest_probes.deploy.manifests import (
    MANIFESTS_DIR,
    ManifestObject,
    ManifestSource,
    find_manifest,
    load_manifest_paths,
    load_manifest_text,
    load_manifests,
    search_dirs,
)
from pytest_probes.deploy.pods import (
    WAIT_CHOICES,
    WaitFor,
    WorkloadState,
    describe_pod,
    pod_problem,
    pod_reached,
    workload_state,
)
from pytest_probes.deploy.preparation import (
    CLUSTER_SCOPED_KINDS,
    REFUSED_KINDS,
    TARGET_IMAGE_PLACEHOLDER,
    crd_names,
    pod_templates,
    prepare,
)

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "DEFAULT_LABELS",
    "MANAGED_BY_LABEL",
    "MANIFESTS_DIR",
    "REFUSED_KINDS",
    "TARGET_IMAGE_PLACEHOLDER",
    "WAIT_CHOICES",
    "Deployer",
    "ManifestObject",
    "ManifestSource",
    "WaitFor",
    "WorkloadState",
    "crd_names",
    "describe_pod",
    "find_manifest",
    "load_manifest_paths",
    "load_manifest_text",
    "load_manifests",
    "pod_problem",
    "pod_reached",
    "pod_templates",
    "prepare",
    "search_dirs",
    "workload_state",
]

"""Cluster providers, one module each, and the registry that names them.

Adding a provider touches this one file beside the provider's own module: an entry in
:data:`REGISTRY`. The ``--probes-provider`` choices (:data:`pytest_probes.cluster.PROVIDERS`),
:func:`pytest_probes.cluster.get_provider` and the providers whose clusters runs hold leases on
all read it, and a provider's module is imported only when that provider is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Registered:
    """A provider as the registry knows it, before its module is imported.

    Attributes:
        module: The module defining the provider.
        cls: The provider class in that module (see :class:`pytest_probes.cluster.Provider`),
            made without arguments.
        creates_clusters: Whether it creates clusters (so runs share them through leases,
            :mod:`pytest_probes.leases`) rather than only using one someone else runs.
    """

    module: str
    cls: str
    creates_clusters: bool


REGISTRY: Mapping[str, Registered] = {
    "local": Registered("pytest_probes.providers.local", "LocalProvider", creates_clusters=True),
    "kind": Registered("pytest_probes.providers.kind", "KindProvider", creates_clusters=True),
    "existing": Registered(
        "pytest_probes.providers.existing", "ExistingProvider", creates_clusters=False
    ),
}
"""Every provider by name, in the order the ``--probes-provider`` help lists them."""

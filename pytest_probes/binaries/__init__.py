"""Binaries built from pinned sources with the Go toolchain, for the local provider and kind.

:mod:`.k8s` builds the Kubernetes and etcd binaries of a pinned patch release; :mod:`.runtime`
builds the container runtime (containerd, runc, the CNI plugins). Both are kept per version under
the pytest-probes cache directory; the local provider runs them on the host and the kind provider
puts them into the node images it builds offline.
"""

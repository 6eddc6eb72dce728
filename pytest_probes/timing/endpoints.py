"""When a Service's endpoints follow a pod's readiness.

``podToEndpoint`` (``staging/src/k8s.io/endpointslice/utils.go``): an endpoint is ready iff the
pod's ``Ready`` condition (as written to the API) is true and the pod is not terminating
(``docs/timing-rules.md``, "Readiness to endpoints").
"""

from __future__ import annotations

from pytest_probes.timing.window import Window

ENDPOINTS_ALLOWANCE = 1.0
"""Seconds the EndpointSlice controller may take to follow a Pod ``Ready`` change (watch, queue,
``syncService``; ``endpointUpdatesBatchPeriod`` is 0 by default). An allowance, not a rule."""


def endpoints_follow(ready_change: Window, *, allowance: float = ENDPOINTS_ALLOWANCE) -> Window:
    """When the EndpointSlice follows a change of the Pod ``Ready`` condition.

    ``podToEndpoint`` (``staging/src/k8s.io/endpointslice/utils.go``) sets the endpoint ready iff
    the API pod is ready and not terminating; the controller reacts to the pod update event.
    """
    return ready_change.widened(allowance)

"""The target app: one HTTP server (gRPC health and h2c if asked), configured by the environment.

Run it with ``python3 -m pytest_probes.target`` (``--help`` prints this text). It uses the standard
library only (grpcio too, only when GRPC_PORT is set; h2 only with H2C_PORT) and imports nothing
else from ``pytest_probes``, so the image needs just this directory, an empty
``pytest_probes/__init__.py``, grpcio and h2. Bad values make it exit 64 at start, naming
the variable and the accepted form. An empty value counts as unset. Times are seconds since the
process started, as plain numbers (``10``, ``0.5``; no unit).

Environment variables:
    PORT: Main listener port (default 8080); 0 picks a free port.
    LIVE_PORT: Optional extra listener (same paths) for a liveness probe on its own port.
    READY_PORT: Optional extra listener (same paths) for a readiness probe on its own port.
    GRPC_PORT: Serve the standard gRPC health service ``grpc.health.v1.Health/Check`` on this
        port (needs grpcio, which the image has; without GRPC_PORT it is never imported). Its
        answer follows the health rules below: SERVING where the path answers 2xx/3xx,
        NOT_SERVING otherwise, held until the deadline where it hangs; service ``""`` or
        ``liveness`` follows ``/livez``, ``readiness`` ``/readyz``, ``startup`` ``/startupz``,
        others answer NOT_FOUND. So flag files and FAIL_AFTER flip it at run time.
    GRPC_TLS_CERT: A PEM certificate (e.g. a mounted ``kubernetes.io/tls`` Secret's
        ``tls.crt``); with GRPC_TLS_KEY, GRPC_PORT serves over TLS only, as for a probe with
        ``grpc.mode: TLS``. Set both or neither.
    GRPC_TLS_KEY: The PEM private key of GRPC_TLS_CERT (e.g. the Secret's ``tls.key``).
    H2C_PORT: Serve HTTP/2 over cleartext with prior knowledge (h2c, as a probe with
        ``httpGet.protocol: HTTP2`` speaks it) on this port: the same paths as PORT, answered
        by the same health rules (needs h2, which the image has; imported only with H2C_PORT).
        PORT itself speaks HTTP/1.1 only and answers an HTTP/2 preface with 505.
    BIND_ADDRESS: Address every listener binds (default 0.0.0.0; ``::`` for IPv6).
    MODE: ``target`` (default) or ``config`` (also serve ``/config``; see CONFIG_FILE).
    POD_NAME: This pod's name, from the downward API (default: the host name).
    FAIL_AFTER: Health paths answer 503 (reason ``fail-after``) from this time on.
    DEGRADE: 1 makes ``/healthz`` count requests and fail with 500 with probability count%.
    DEGRADE_SEED: Integer seed for DEGRADE's random draws (default: unseeded).
    START_DELAY: Slow start: the app counts as started only after this time (default 0), or
        once flag file ``start-now`` exists.
    START_MODE: ``refuse`` (default: no listening socket before START_DELAY) or ``503``.
    HANG_AFTER: Health paths hang (no response) from this time on.
    HANG_MAX: A hung request is answered 503 after this long (default 3600, must be > 0).
    CONFIG_URL: ``http://IP:PORT/config``; liveness answers 500 while POD_NAME is listed there.
    CONFIG_TTL: Cache the CONFIG_URL answer this long (default 0: fetch per liveness request).
    CONFIG_TIMEOUT: Timeout of the CONFIG_URL request (default 0.5, below the kubelet's 1 s).
    LIVE_EXCLUDE: Config mode: pod names (comma separated) served when CONFIG_FILE is missing.
    CONFIG_FILE: Config mode: file read per request, overrides LIVE_EXCLUDE (FLAG_DIR/live-exclude).
    FLAG_DIR: Directory of the fault flag files below (default /tmp/probes; created at start).
    CREATE_HEALTHY_FILE: 1 deletes FLAG_DIR/healthy at start and creates it once started.
    EXIT_AFTER: Exit by itself at this time, with EXIT_CODE.
    EXIT_CODE: Exit code for EXIT_AFTER (default 1, 0-255).
    ON_SIGTERM: ``exitN`` (default exit0; N 0-255) or ``ignore``; SIGINT is handled the same.
    SIGTERM_DELAY: Keep serving this long after SIGTERM before exiting (default 0).

Paths (on every listener; GET and HEAD):
    ``/`` answers 200 ``Hello, World!``; ``/status/<code>`` answers that code (200-599);
    ``/redirect?to=/path[&code=301|302|303|307|308]`` answers 302 (or ``code``) with Location;
    ``/info`` answers JSON (settings, pod name, start time, listeners, counters, flag files);
    ``/config`` (config mode only) answers ``LIVE_EXCLUDE=name1,name2``; anything else 404.

Health paths, and the first rule that decides their answer:
    ``/livez`` (liveness), ``/healthz`` (liveness, plus DEGRADE), ``/readyz`` (readiness),
    ``/startupz`` (startup); below ``<kind>`` is liveness, readiness or startup.
    1. Before START_DELAY, unless ``start-now`` exists (START_MODE=503): 503, reason ``starting``.
    2. Flag file ``hang-<kind>`` or HANG_AFTER passed: hang until the client goes away, HANG_MAX
       passes (then 503) or the app exits.
    3. Flag file ``fail-<kind>``: 500 for liveness, 503 for readiness and startup.
    4. Liveness only: POD_NAME listed at CONFIG_URL: 500, reason ``excluded``. An unreachable
       config service or a non-2xx answer logs a warning and does not fail the probe.
    5. FAIL_AFTER passed: 503.
    6. ``/healthz`` with DEGRADE: count+1, then 500 ``Server Error <count>`` or 200 ``OK <count>``.
    7. Otherwise 200 ``OK``.

Flag files in FLAG_DIR are checked on every request, so a test flips a fault at a chosen moment
(``kubectl exec POD -- touch /tmp/probes/fail-liveness``). Put FLAG_DIR on an emptyDir to keep a
fault across container restarts. ``exit-now`` holding an integer 0-255 makes the app delete the
file and exit with that code (checked every 0.2 s; an empty file is waited on, other content is
ignored with a warning). ``healthy`` is what exec probes ``cat`` (see CREATE_HEALTHY_FILE).

Output: one line per request and event on stdout, flushed, each starting with a UTC timestamp;
health lines read ``Health Check: OK`` / ``Error: Service Unhealthy`` / ``Error: Service Hanging``
plus path, status and reason (format in :mod:`pytest_probes.target.logline`). Each listener logs
``listening on ADDRESS:PORT (main|live|ready)`` once bound. Exit codes: 64 bad configuration,
69 a port could not be bound, EXIT_CODE / ON_SIGTERM / ``exit-now`` as configured.
"""

from pytest_probes.target.logline import HealthLogLine, parse_health_line
from pytest_probes.target.server import App, main
from pytest_probes.target.settings import (
    Settings,
    SettingsError,
    parse_exclude_list,
    parse_settings,
)

__all__ = [
    "App",
    "HealthLogLine",
    "Settings",
    "SettingsError",
    "main",
    "parse_exclude_list",
    "parse_health_line",
    "parse_settings",
]

"""The target app's gRPC side: the standard ``grpc.health.v1.Health/Check`` on ``GRPC_PORT``.

The kubelet's gRPC probe (``pkg/probe/grpc/grpc.go``) calls ``grpc.health.v1.Health/Check`` with
the probe's ``service`` (``""`` unless the spec sets ``grpc.service``) and counts ``SERVING`` as
success; any other status, an error or a timeout is a failure. The answer follows the app's own
health rules (:meth:`pytest_probes.target.server.App.health_verdict`), so the flag files and
FAIL_AFTER flip it at run time as they flip the HTTP paths: the service name picks the rules,
``""`` and ``liveness`` those of ``/livez``, ``readiness`` of ``/readyz``, ``startup`` of
``/startupz``; other names answer ``NOT_FOUND``, as the standard service does. A hanging verdict
holds the call until the client's deadline.

grpcio is imported only when ``GRPC_PORT`` is set: without it the app runs on the standard
library alone. Debian's ``python3-grpcio`` (in the image) has no ``grpc_health`` module and the
image carries no protobuf runtime, so the service is a generic handler over raw bytes and the two
messages, one field each, are encoded here by hand (protobuf wire format: ``HealthCheckRequest``
is field 1 ``string service``, ``HealthCheckResponse`` field 1 enum ``status``).
"""

from __future__ import annotations

from typing import Any

from pytest_probes.target.handler import Kind

SERVICE = "grpc.health.v1.Health"
"""The standard health service (``grpc/health/v1/health.proto``)."""

UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3
"""``HealthCheckResponse.ServingStatus`` values."""

SERVICE_KINDS: dict[str, Kind] = {"": "liveness", "liveness": "liveness",
                                  "readiness": "readiness", "startup": "startup"}
"""Which health rules answer a ``service`` name."""

def check_path(service: str) -> str:
    """The path the app logs a ``Health/Check`` of ``service`` under.

    A health log line's ``path``: :func:`pytest_probes.faults.before_next_probe` finds gRPC
    probes by it.
    """
    return f"/{SERVICE}/Check?service={service}"


KIND_PATHS: dict[Kind, str] = {"liveness": "/livez", "readiness": "/readyz",
                               "startup": "/startupz"}
"""The HTTP path whose rules a kind's gRPC answer follows."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def decode_check_request(data: bytes) -> str:
    """The ``service`` of a serialized ``HealthCheckRequest`` (``""`` when absent).

    Raises:
        ValueError: ``data`` is not a valid message.
    """
    service = ""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated length-delimited field")
            if field == 1:
                service = data[pos:pos + size].decode("utf-8")
            pos += size
        else:
            raise ValueError(f"unsupported wire type {wire}")
    if pos != len(data):
        raise ValueError("truncated fixed-width field")
    return service


def encode_check_request(service: str) -> bytes:
    """A serialized ``HealthCheckRequest`` (for tests and clients without protobuf)."""
    raw = service.encode("utf-8")
    return (b"\x0a" + _varint(len(raw)) + raw) if raw else b""


def encode_check_response(status: int) -> bytes:
    """A serialized ``HealthCheckResponse`` with ``status``."""
    return b"\x08" + _varint(status)


def decode_check_response(data: bytes) -> int:
    """The ``status`` of a serialized ``HealthCheckResponse`` (``UNKNOWN`` when absent)."""
    status = UNKNOWN
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key & 7 != 0:
            raise ValueError(f"unexpected wire type {key & 7} in HealthCheckResponse")
        value, pos = _read_varint(data, pos)
        if key >> 3 == 1:
            status = value
    return status


def serve(app: Any, port: int, bind_address: str,
          tls: tuple[bytes, bytes] | None = None) -> tuple[Any, int]:
    """Start the gRPC server for ``app``; returns it (call ``stop(0)`` to end) and its port.

    Args:
        app: The :class:`~pytest_probes.target.server.App` whose rules answer.
        port: The port (0 picks a free one).
        bind_address: The address to bind.
        tls: The PEM private key and certificate chain to serve TLS with (no client
            certificates asked); plaintext without. The kubelet's prober in ``grpc.mode: TLS``
            does not verify the server's certificate (``InsecureSkipVerify``,
            ``pkg/probe/grpc/grpc.go``), so a self-signed one will do.

    Raises:
        ImportError: grpcio is not installed.
        OSError: The port cannot be bound.
    """
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    def check(request: bytes, context: Any) -> bytes:
        try:
            service = decode_check_request(request)
        except (ValueError, UnicodeDecodeError) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad HealthCheckRequest: {err}")
        kind = SERVICE_KINDS.get(service)
        if kind is None:
            app.log(f"gRPC Health/Check service={service!r}: NOT_FOUND")
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return encode_check_response(app.grpc_check(kind, service, context))

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Check": grpc.unary_unary_rpc_method_handler(check)})
    server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="grpc"))
    server.add_generic_rpc_handlers((handler,))
    host = f"[{bind_address}]" if ":" in bind_address else bind_address
    address = f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
    if not bound:
        raise OSError(f"cannot bind gRPC port {host}:{port}")
    server.start()
    return server, bound

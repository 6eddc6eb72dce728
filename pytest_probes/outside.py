"""Faults for any image, from outside the app: freeze, kill, block a port, delay answers.

The app needs no help (no flag files, no tools in its image): these act on the container's
processes and on its network namespace from the node, as root.

- :meth:`OutsideFaults.freeze` stops every process of the container with SIGSTOP (and continues
  them with SIGCONT): HTTP, TCP, exec and gRPC probes then time out, as with a hung app. SIGSTOP,
  not the cgroup freezer, because a frozen cgroup holds a SIGKILL until it is thawed, while a
  stopped process dies of it at once: the kubelet's kill (a liveness kill, a pod deletion) ends a
  frozen container within its grace period, exactly as it ends a hung app (its SIGTERM waits,
  the SIGKILL at the end of the grace period does not).
- :meth:`OutsideFaults.kill` sends a signal (SIGKILL by default) to the container's main process:
  a crash, exit code 137.
- :meth:`OutsideFaults.block_port` drops TCP packets to a port with iptables inside the pod's own
  network namespace (``nsenter --net``), never in the host's tables: the app keeps running but
  the kubelet's probes (and every other client) get no answer.
- :meth:`OutsideFaults.delay` holds the app's answers on a port for a number of milliseconds, to
  exercise ``timeoutSeconds``. netem (``tc qdisc ... netem delay``) would be the tool, but this
  machine's kernel has no ``sch_netem``: instead an ``iptables -t nat`` REDIRECT in the pod's
  network namespace sends the port's connections to a proxy in that namespace
  (:mod:`pytest_probes._delay_proxy`) which passes the answers on late. HTTP and gRPC probes see
  the delay; a TCP probe only connects and does not.

Each returns the moment it took effect, by the node's clock (the server's on these providers:
one kernel), printed by the same shell that acted; each can be undone after ``for_s`` seconds,
and everything still in force is undone by :meth:`OutsideFaults.undo_all` (the fixture's
teardown). On the local provider the commands run on this host (the cluster's processes are
ours); on kind inside the node container (``docker exec``), whose kernel is the same. On an
existing cluster there is no node to act from: the call fails at once, saying so.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenacity import wait_fixed

from pytest_probes._poll import poll
from pytest_probes.errors import ProbesError, ProbesTimeoutError
from pytest_probes.records import pod_matches

log = logging.getLogger(__name__)

SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGSEGV", "SIGABRT", "SIGHUP")

_ID = re.compile(r"^[a-z0-9]+://([0-9a-f]{64})$")

# The container's processes: every pid whose cgroup path names the container id (containerd's
# cgroupfs path ends in it, its systemd scope is cri-containerd-<id>.scope). With NSpid, so that
# the main process (pid 1 in the container) is known.
_PIDS = r"""
id=$1
for f in /proc/[0-9]*/cgroup; do
  if grep -q "$id" "$f" 2>/dev/null; then
    pid=${f#/proc/}; pid=${pid%/cgroup}
    echo "$pid $(awk '/^NSpid:/{print $NF}' /proc/$pid/status 2>/dev/null)"
  fi
done
"""


@dataclass
class _Undo:
    what: str
    command: list[str]
    run: Callable[[list[str]], str]
    timer: threading.Timer | None = None
    after: Callable[[], object] | None = None


class OutsideFaults:
    """Faults acting on a pod's container from the node (see the module docstring).

    Args:
        api_client: A client of the cluster (to find the pod's node and container).
        provider: The cluster's provider: ``local`` or ``kind`` (``existing`` fails each call).
        namespace: The pods' namespace.
        docker: The docker binary, for kind.
    """

    def __init__(self, api_client: Any, provider: str, namespace: str, *,
                 docker: str = "docker") -> None:
        self.api_client = api_client
        self.provider = provider
        self.namespace = namespace
        self.docker = docker
        self._undo: list[_Undo] = []
        self._lock = threading.Lock()
        self.undone: list[tuple[str, datetime]] = []
        """What was undone (thawed, unblocked) and when, by the node's clock."""

    # ------------------------------------------------------------------ public

    def freeze(self, pod: str, container: str | None = None, *,
               for_s: float | None = None) -> datetime:
        """Stop every process of the container (SIGSTOP); continue them after ``for_s``."""
        _check_for(for_s)
        run, cid, name = self._target(pod, container)
        pids = [pid for pid, _ in self._pids(run, cid, pod, name)]
        moment = self._act(run, f"kill -STOP {' '.join(pids)}", f"freeze {pod}/{name}")
        # Only pids still in the container: a pid of a process gone may be another's by then.
        self._later(f"thaw {pod}/{name}",
                    ["bash", "-c", f"for p in {' '.join(pids)}; do grep -qs {cid} /proc/$p/cgroup "
                                 "&& kill -CONT $p; done; true"], run, for_s)
        return moment

    def kill(self, pod: str, container: str | None = None, *,
             signal: str = "SIGKILL") -> datetime:
        """Send ``signal`` to the container's main process (SIGKILL: a crash, exit 137)."""
        if signal not in SIGNALS:
            raise ValueError(f"signal={signal!r}: choose one of {', '.join(SIGNALS)}")
        run, cid, name = self._target(pod, container)
        main = [pid for pid, nspid in self._pids(run, cid, pod, name) if nspid == "1"]
        if not main:
            raise ProbesError(f"pod {self.namespace}/{pod} container {name}: no main process "
                              "found (is it running?)")
        return self._act(run, f"kill -{signal.removeprefix('SIG')} {main[0]}",
                         f"{signal} {pod}/{name}")

    def block_port(self, pod: str, port: int, *, container: str | None = None,
                   for_s: float | None = None) -> datetime:
        """Drop TCP traffic to ``port`` inside the pod's network namespace; undo after ``for_s``."""
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port={port!r}: a TCP port number (1-65535)")
        _check_for(for_s)
        run, cid, name = self._target(pod, container)
        pid = self._pids(run, cid, pod, name)[0][0]
        rule = f"INPUT -p tcp --dport {port} -j DROP"
        moment = self._act(run, f"nsenter --net=/proc/{pid}/ns/net iptables -w -I {rule}",
                           f"block port {port} of {pod}")
        self._later(f"unblock port {port} of {pod}",
                    ["bash", "-c", f"grep -qs {cid} /proc/{pid}/cgroup && nsenter "
                                 f"--net=/proc/{pid}/ns/net iptables -w -D {rule}; true"],
                    run, for_s)
        return moment

    def delay(self, pod: str, port: int, ms: float, *, container: str | None = None,
              for_s: float | None = None) -> datetime:
        """Hold the answers from ``port`` for ``ms`` milliseconds; undo after ``for_s``.

        Connections to the port are redirected inside the pod's network namespace to a proxy
        there (:mod:`pytest_probes._delay_proxy`) that forwards them to the app and passes what
        it answers on ``ms`` late: an HTTP or gRPC probe whose ``timeoutSeconds`` is shorter
        fails, one with room passes late. A TCP probe only connects, and is not delayed. (The
        stand-in for netem, which this machine's kernel lacks.) The proxy runs on this host in
        the pod's network namespace, found from the container's processes, for both the local
        and the kind provider: a kind node's processes are this host's.
        """
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port={port!r}: a TCP port number (1-65535)")
        if isinstance(ms, bool) or not isinstance(ms, int | float) or not 0 < ms <= 600_000:
            raise ValueError(f"ms={ms!r}: a delay in milliseconds, above 0 and at most 600000")
        _check_for(for_s)
        _run, cid, name = self._target(pod, container)
        netns = f"/proc/{self._host_pid(cid, pod, name)}/ns/net"
        proxy = subprocess.Popen(
            ["nsenter", f"--net={netns}", sys.executable, "-m", "pytest_probes._delay_proxy",
             "--delay", str(ms / 1000)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        listening = _first_line(proxy, timeout=30.0)
        if not listening.startswith("listening on "):
            proxy.kill()
            _, err = proxy.communicate()
            raise ProbesError(f"delay {pod}/{name} port {port}: the proxy did not start "
                              f"({listening!r}): {err.strip()[-300:]}")
        rule = (f"PREROUTING -p tcp --dport {port} -j REDIRECT --to-ports "
                f"{listening.split()[-1]}")
        try:
            moment = self._act(_local, f"nsenter --net={netns} iptables -w -t nat -I {rule}",
                               f"delay port {port} of {pod} by {ms:g} ms")
        except ProbesError:
            proxy.kill()
            proxy.wait()
            raise
        # The proxy is our child and not reaped before this kill: its pid is still its own.
        self._later(f"undelay port {port} of {pod}",
                    ["bash", "-c", f"nsenter --net={netns} iptables -w -t nat -D {rule}; "
                                   f"kill {proxy.pid}; true"],
                    _local, for_s, after=proxy.wait)
        return moment

    def _host_pid(self, cid: str, pod: str, name: str) -> str:
        """A pid of the container on this host (a kind node's pids are its own namespace's)."""
        for line in _local(["sh", "-c", _PIDS, "pids", cid]).splitlines():
            if line.split():
                return line.split()[0]
        raise ProbesError(f"pod {self.namespace}/{pod} container {name}: no process of it on "
                          "this host; the delay fault acts from the host running the node")

    def undo_all(self) -> list[str]:
        """Undo every fault still in force (thaw, unblock); return what was undone."""
        with self._lock:
            pending, self._undo = self._undo, []
        done = []
        for undo in pending:
            if undo.timer is not None:
                undo.timer.cancel()
            self._run_undo(undo)
            done.append(undo.what)
        return done

    # ------------------------------------------------------------------ helpers

    def _pod(self, pod: str) -> Any:
        """The pod named ``pod``, or the one live pod it names by prefix.

        ``web`` names ``web-7c9f...``, as in the assertion helpers (:func:`pod_matches`).
        """
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api_client)
        pods = [p for p in core.list_namespaced_pod(self.namespace).items
                if pod_matches(p.metadata.name, pod) and p.metadata.deletion_timestamp is None]
        exact = [p for p in pods if p.metadata.name == pod]
        if exact or len(pods) == 1:
            return (exact or pods)[0]
        if not pods:
            raise ProbesError(f"no pod {pod!r} (nor one whose name starts with {pod}-) in "
                              f"namespace {self.namespace}; deploy it first")
        raise ProbesError(f"{len(pods)} pods in {self.namespace} match {pod!r} "
                          f"({', '.join(p.metadata.name for p in pods)}); name one of them")

    def _target(self, pod: str, container: str | None) -> tuple[Callable[[list[str]], str],
                                                                 str, str]:
        """The command runner for the pod's node, the container id and name."""
        if self.provider not in ("local", "kind"):
            # An ephemeral debug container is no way in: it shares the target's pid namespace,
            # where the app is usually pid 1, and the kernel drops SIGSTOP and SIGKILL sent to a
            # namespace's init from inside it (pid_namespaces(7)); iptables in the pod's network
            # namespace needs NET_ADMIN and an image that has iptables.
            raise ProbesError(
                f"faults from outside the app act from the node, which the {self.provider} "
                "provider does not give us (an ephemeral container cannot stop or kill the "
                "app: the kernel ignores SIGSTOP and SIGKILL sent to its pid namespace's init "
                "from inside it); use the app's own fault hooks there (the target app's flags), "
                "or run the test on the local or kind provider")
        status = self._pod(pod)
        pod = status.metadata.name
        statuses = list(status.status.container_statuses or []) + list(
            status.status.init_container_statuses or [])
        names = [s.name for s in statuses]
        if container is None:
            if len(status.spec.containers) != 1:
                raise ProbesError(f"pod {self.namespace}/{pod} has containers {names}; pass "
                                  "container=")
            container = status.spec.containers[0].name
        found = [s for s in statuses if s.name == container]
        if not found or not found[0].container_id or found[0].state.running is None:
            raise ProbesError(f"pod {self.namespace}/{pod} container {container} is not running "
                              f"(containers: {names}); wait for it first")
        match = _ID.match(found[0].container_id)
        if match is None:
            raise ProbesError(f"pod {self.namespace}/{pod}: unexpected container id "
                              f"{found[0].container_id!r}")
        node = status.spec.node_name
        if self.provider == "local":
            return _local, match.group(1), container
        return (lambda argv: _local([self.docker, "exec", node, *argv])), match.group(1), \
            container

    def _pids(self, run: Callable[[list[str]], str], cid: str, pod: str,
              name: str) -> list[tuple[str, str]]:
        lines = run(["sh", "-c", _PIDS, "pids", cid]).split("\n")
        pids = [(parts[0], parts[1] if len(parts) > 1 else "")
                for parts in (line.split() for line in lines) if parts]
        if not pids:
            raise ProbesError(f"pod {self.namespace}/{pod} container {name}: no process of "
                              f"container {cid[:12]} on its node (did it just exit?)")
        return pids

    def _act(self, run: Callable[[list[str]], str], action: str, what: str) -> datetime:
        # bash's $EPOCHREALTIME is read without a fork: `date` after the action started as a new
        # process, up to seconds late on a loaded machine (a kill seen before its own moment).
        out = run(["bash", "-c", f"{action} && echo $EPOCHREALTIME"])
        try:
            moment = datetime.fromtimestamp(float(out.split()[-1]), UTC)
        except (ValueError, IndexError) as err:
            raise ProbesError(f"{what}: no time printed after `{action}`: {out!r}") from err
        log.info("%s at %s", what, moment.strftime("%H:%M:%S.%f"))
        return moment

    def _later(self, what: str, command: list[str], run: Callable[[list[str]], str],
               for_s: float | None, *, after: Callable[[], object] | None = None) -> None:
        undo = _Undo(what, command, run, after=after)
        with self._lock:
            self._undo.append(undo)
        if for_s is not None:

            def fire() -> None:
                with self._lock:
                    if undo not in self._undo:
                        return
                    self._undo.remove(undo)
                self._run_undo(undo)

            undo.timer = threading.Timer(for_s, fire)
            undo.timer.daemon = True
            undo.timer.start()

    def _run_undo(self, undo: _Undo) -> None:
        try:
            out = undo.run([*undo.command[:-1], f"{undo.command[-1]}; echo $EPOCHREALTIME"])
            moment = datetime.fromtimestamp(float(out.split()[-1]), UTC)
        except (ProbesError, ValueError, IndexError) as err:
            log.warning("%s failed: %s", undo.what, err)
            return
        finally:
            if undo.after is not None:
                undo.after()
        log.info("%s at %s", undo.what, moment.strftime("%H:%M:%S.%f"))
        with self._lock:
            self.undone.append((undo.what, moment))

    def wait_undone(self, what: str, *, timeout: float = 60.0) -> datetime:
        """Wait until the undo ``what`` (``"unblock port 8080 of web"``) ran; return its moment.

        The moment is when it took effect, by the node's clock.

        Raises:
            ProbesTimeoutError: It did not run within ``timeout`` seconds.
        """

        def moments() -> list[datetime]:
            with self._lock:
                return [moment for done, moment in self.undone if done == what]

        found = poll(moments, until=bool, timeout=timeout, wait=wait_fixed(0.1))
        if not found:
            raise ProbesTimeoutError(f"{what} did not happen within {timeout:g} s",
                                     what=what, timeout=timeout)
        return found[-1]


def _check_for(for_s: float | None) -> None:
    if for_s is not None and (isinstance(for_s, bool) or not isinstance(for_s, int | float)
                              or not 0 < for_s < float("inf")):
        raise ValueError(f"for_s={for_s!r}: a finite number of seconds above 0, or None (until "
                         "the test ends)")


def _first_line(proc: subprocess.Popen[str], *, timeout: float) -> str:
    """The first line ``proc`` prints, or ``""`` if it prints none within ``timeout``."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()
                                                          if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


def _local(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ProbesError(f"`{shlex.join(argv)}` failed: {err}") from err
    if done.returncode != 0:
        raise ProbesError(f"`{shlex.join(argv)[:200]}` exited {done.returncode}: "
                          f"{(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout

"""The processes of a local cluster: started in order, stopped and started again, torn down.

Its processes run detached, so a cluster outlives the command that started it. The start order
follows what each needs (containerd and etcd, the API server, the kubelet, the controllers); the
teardown stops the kubelet first, kills the pods, stops the daemons group by group and cleans the
node up (bridge, rules, cgroups, mounts), leaving no process listed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pytest_probes.binaries import runtime
from pytest_probes.cluster import Progress
from pytest_probes.errors import ClusterError
from pytest_probes.providers.local import controlplane, node, supervisor
from pytest_probes.providers.local.api import ClusterApi
from pytest_probes.providers.local.config import (
    COMPONENTS,
    STATE_FILE,
    ClusterPaths,
    ClusterState,
    clusters_dir,
    network_of_unreadable_state,
    read_state,
    write_state,
)
from pytest_probes.providers.local.readiness import Stopwatch, unix_socket_answers, wait_for

log = logging.getLogger(__name__)

CLUSTER_PROGRAMS = frozenset({*COMPONENTS, "runc"})
"""Program names that belong to a cluster when their command line names its directory."""

STOP_ORDER = (
    ("kube-controller-manager", "kube-scheduler", "kube-apiserver", "containerd"),
    ("etcd",),
)
"""How ``down`` stops the daemons after the kubelet: each group together, group after group."""

VANISH_TIMEOUT = 15.0
"""Seconds ``down`` waits, after killing, until no process of the cluster is listed any more (not
even as a zombie the host's init has yet to reap)."""

STOP_TIMEOUT = 3.0
"""Seconds a component gets to exit after SIGTERM before it is killed (its data is thrown away
anyway, so there is nothing to shut down gracefully for)."""

CLUSTER_NICENESS: Mapping[str, int] = {
    "containerd": -10,
    "kubelet": -10,
    "etcd": -5,
    "kube-apiserver": -5,
    "kube-controller-manager": -5,
    "kube-scheduler": -5,
}
"""The niceness each process of the cluster runs at (containerd's shims inherit containerd's).

A real node reserves CPU for the kubelet and the runtime (``kubeReserved``/``systemReserved``)
and runs no control plane and no test run beside them. Here all share 2 cores, and what the
tests time is the node's work: probes, kills, container starts, the apps' answers. So the node
agents and the pods come first, the control plane next (a freshly started kube-apiserver
serving 16 workers' lists and watches took over half a core), and the test run's xdist workers
(3-5 s of CPU each while the suite starts) take what is left. At niceness 0 they delayed
container starts and the apps' first answers by up to 11 s on a 2-core machine, so timings
measured the harness rather than Kubernetes."""

PODS_NICENESS = -10
"""The pods' tier: their cgroup tree weighs as much as one process at this niceness.

The pods' own niceness counts only inside their cgroup. Against the kubelet, containerd, the
control plane and the test run, the scheduler weighs the tree as one task at its ``cpu.shares``,
by default that of niceness 0: 40 apps starting at once then shared the CPU of one worker, and
took a median 19 s from their container's start to their first answer (``benchmarks/burst.py``,
40 pods beside 8 busy processes); with the kubelet's weight, 1.5 s."""

GO_ENV: Mapping[str, Mapping[str, str]] = {
    "etcd": {"GOGC": "50"},
    "kube-apiserver": {"GOGC": "50"},
    "kube-controller-manager": {"GOGC": "50"},
    "kube-scheduler": {"GOGC": "50"},
    "kubelet": {"GOGC": "50"},
}
"""Extra environment per component: a lower GOGC trades a little CPU for less resident memory."""


class ClusterProcesses:
    """Starts, stops and tears down the processes of one local cluster.

    Args:
        name: The cluster name.
        cache_dir: The pytest-probes cache directory.
        paths: The cluster's files.
        api: The cluster's API server and etcd, for the readiness checks.
    """

    def __init__(self, name: str, cache_dir: Path, paths: ClusterPaths, api: ClusterApi) -> None:
        self.name = name
        self.cache_dir = cache_dir
        self.paths = paths
        self.api = api

    @property
    def sysctl_record(self) -> Path:
        """The host's kernel settings from before the first cluster's kubelet changed them."""
        return clusters_dir(self.cache_dir) / ".host-sysctl.json"

    def other_kubelets_running(self) -> bool:
        """Whether the kubelet of another cluster of the cache directory runs."""
        for state_file in clusters_dir(self.cache_dir).glob(f"*/{STATE_FILE}"):
            if state_file.parent.name == self.name:
                continue
            try:
                record = json.loads(state_file.read_text())["processes"]["kubelet"]
                if supervisor.is_alive(supervisor.ProcessRecord.from_json(record)):
                    return True
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return False

    def wait(self, state: ClusterState, component: str, condition: Callable[[], bool],
             timeout: float, *, what: str = "") -> None:
        """Poll ``condition`` until it holds (:func:`.readiness.wait_for`)."""
        wait_for(self.name, self.paths, state, component, condition, timeout, what=what)

    def kubelet_command(self, state: ClusterState, kubelet: Path) -> list[str]:
        """The kubelet's command line for this cluster."""
        paths = self.paths
        return node.kubelet_command(
            kubelet,
            config=paths.etc / "kubelet.yaml",
            kubeconfig=paths.component_kubeconfig("kubelet"),
            root_dir=paths.kubelet_root,
            node_name=state.node_name,
            node_ip=state.network.gateway,
        )

    def check_started_alike(self, state: ClusterState) -> None:
        """Refuse a running cluster that another pytest-probes version started.

        The kubelet's flags decide behaviour the tests time (:data:`node.DEAD_INSTANCES_KEPT`),
        and the runtime decides how probes run (containerd 1.6 cancelled exec probes of a
        terminating pod).

        Raises:
            ClusterError: The kubelet runs with other flags, or containerd is another build.
        """
        containerd = state.processes.get("containerd")
        wanted_containerd = runtime.runtime_bins(self.cache_dir).containerd
        if containerd is not None and Path(containerd.argv[0]) != wanted_containerd:
            raise ClusterError(
                f"cluster {self.name} was started by another version of pytest-probes: it runs "
                f"{containerd.argv[0]}, not {wanted_containerd} ({runtime.describe()}): run "
                f"`pytest-probes cluster down --name {self.name}` first, or pick another "
                "cluster name",
                provider="local",
            )
        commands: dict[str, Callable[[Path], list[str]]] = {
            "kubelet": lambda binary: self.kubelet_command(state, binary),
            # etcd's TLS and the API server's --anonymous-auth=false close a path to root.
            "etcd": lambda binary: controlplane.etcd_command(
                binary, data_dir=self.paths.data / "etcd", ports=state.ports,
                pki=self.paths.pki),
            "kube-apiserver": lambda binary: controlplane.apiserver_command(
                binary, pki=self.paths.pki, ports=state.ports,
                advertise_address=state.network.gateway, feature_gates=state.settings.gates),
        }
        for component, command in commands.items():
            recorded = state.processes.get(component)
            if recorded is None:
                continue
            wanted = command(Path(recorded.argv[0]))
            if list(recorded.argv) != wanted:
                differ = sorted(set(wanted).symmetric_difference(recorded.argv))
                raise ClusterError(
                    f"cluster {self.name} was started by another version of pytest-probes: its "
                    f"{component} runs with other flags ({' '.join(differ)}): run `pytest-probes "
                    f"cluster down --name {self.name}` first, or pick another cluster name",
                    provider="local",
                )

    def start_process(
        self, state: ClusterState, name: str, argv: list[str], env_extra: Mapping[str, str] = {}
    ) -> supervisor.ProcessRecord:
        """Start one component detached, at its niceness, and record it in the state file.

        The kubelet's root directory is put on a shared mount first (:func:`node.make_rshared`:
        the kubelet would do it itself while creating its sockets there, and lose the race).

        Raises:
            ClusterError: The kubelet's root directory could not be mounted.
        """
        if name == "kubelet":
            try:
                node.make_rshared(self.paths.kubelet_root)
            except OSError as error:
                raise ClusterError(
                    f"local cluster {self.name}: could not put the kubelet's root directory on a "
                    f"shared mount, as the kubelet needs ({error}); the local provider needs root "
                    "and mount(2) (not a container without CAP_SYS_ADMIN)",
                    provider="local",
                ) from error
        env = dict(os.environ)
        env.update(env_extra)
        record = supervisor.start(
            name,
            argv,
            log_path=self.paths.log(name),
            pid_path=self.paths.pid_file(name),
            env=env,
            cwd=self.paths.root,
            nice=CLUSTER_NICENESS.get(name, 0),
        )
        state.processes[name] = record
        write_state(self.paths, state)
        return record

    def start_all(
        self,
        state: ClusterState,
        bins: Path,
        engine: runtime.RuntimeBins,
        pause: tuple[str, Path],
        watch: Stopwatch,
        timeout: float,
    ) -> None:
        """Start every component in order, each once what it needs answers; then check it all."""
        paths = self.paths
        node.create_bridge(state.network)
        node.allow_pod_traffic(state.network, self.name)
        node.create_cgroup_root(node.cgroup_root_name(self.name), cpu_nice=PODS_NICENESS)
        watch.say("starting containerd and etcd")
        self.start_process(
            state,
            "containerd",
            node.containerd_command(str(engine.containerd), config=paths.etc / "containerd.toml"),
            # containerd starts its shim, and the shim runc, from PATH.
            {"PATH": os.pathsep.join([engine.search_path, os.environ.get("PATH", "")])},
        )
        self.start_process(
            state,
            "etcd",
            controlplane.etcd_command(
                bins / "etcd", data_dir=paths.data / "etcd", ports=state.ports, pki=paths.pki
            ),
            GO_ENV["etcd"],
        )
        self.wait(state, "containerd", lambda: unix_socket_answers(Path(state.socket)), timeout)
        self.wait(state, "etcd", lambda: self.api.etcd_healthy(state), timeout)
        watch.say("starting kube-apiserver")
        self.start_process(
            state,
            "kube-apiserver",
            controlplane.apiserver_command(
                bins / "kube-apiserver",
                pki=paths.pki,
                ports=state.ports,
                advertise_address=state.network.gateway,
                feature_gates=state.settings.gates,
            ),
            GO_ENV["kube-apiserver"],
        )
        self.import_pause(state, pause, engine.ctr)
        node.save_host_sysctls(self.sysctl_record)
        self.start_process(state, "kubelet", self.kubelet_command(state, bins / "kubelet"),
                           GO_ENV["kubelet"])
        self.wait(state, "kube-apiserver", lambda: self.api.apiserver_ready(state), timeout)
        watch.say("kube-apiserver ready; starting controller manager and scheduler")
        self.start_process(
            state,
            "kube-controller-manager",
            controlplane.controller_manager_command(
                bins / "kube-controller-manager",
                pki=paths.pki,
                kubeconfig=paths.component_kubeconfig("controller-manager"),
                ports=state.ports,
                cluster_name=self.name,
                feature_gates=state.settings.gates,
            ),
            GO_ENV["kube-controller-manager"],
        )
        self.start_process(
            state,
            "kube-scheduler",
            controlplane.scheduler_command(
                bins / "kube-scheduler",
                kubeconfig=paths.component_kubeconfig("scheduler"),
                ports=state.ports,
                feature_gates=state.settings.gates,
            ),
            GO_ENV["kube-scheduler"],
        )
        self.wait(
            state,
            "kubelet",
            lambda: self.api.node_ready(state),
            timeout,
            what=f"node {state.node_name} to become Ready",
        )
        watch.say(f"node {state.node_name} Ready")
        self.wait(
            state,
            "kube-controller-manager",
            lambda: self.api.default_sa_exists(state),
            timeout,
            what="the default ServiceAccount in namespace default",
        )
        version = self.api.server_version(state)
        if version != f"v{state.version}":
            raise ClusterError(
                f"cluster {self.name}: expected the API server to report v{state.version}, "
                f"it reports {version!r}; rebuild with `rm -r {bins}`",
                provider="local",
            )

    def import_pause(self, state: ClusterState, pause: tuple[str, Path], ctr: Path) -> None:
        """Import the pause image into the node's containerd unless it holds it already."""
        from pytest_probes.providers.local import image_import

        ref, archive = pause
        if not image_import.image_present(
            ref, address=state.socket, namespace="k8s.io", ctr=str(ctr)
        ):
            image_import.import_archive(
                archive, address=state.socket, namespace="k8s.io", snapshotter=state.snapshotter,
                ctr=str(ctr),
            )

    def stop(self, component: str, *, timeout: float = STOP_TIMEOUT, kill: bool = False) -> None:
        """Stop one running component, as :meth:`.lifecycle.LocalCluster.stop_component` says.

        Raises:
            ClusterError: The cluster or the component is unknown or not running.
        """
        _state, record = self.recorded(component)
        if not supervisor.is_alive(record):
            raise ClusterError(
                f"cluster {self.name}: {component} (pid {record.pid}) is not running; start it "
                f"with start_component({component!r}) or recreate the cluster",
                provider="local",
            )
        supervisor.stop(record, timeout=timeout, sig=signal.SIGKILL if kill else signal.SIGTERM)
        supervisor.wait_vanished([record], timeout=VANISH_TIMEOUT)
        log.info("cluster %s: %s stopped", self.name, component)

    def start(self, component: str, timeout: float) -> ClusterState:
        """Start a stopped component with its recorded command line; wait until it is ready.

        Returns:
            The cluster state, with the new process in it.

        Raises:
            ClusterError: The component is already running, exits at once or does not get ready.
        """
        state, record = self.recorded(component)
        if supervisor.is_alive(record):
            raise ClusterError(
                f"cluster {self.name}: {component} already runs (pid {record.pid})",
                provider="local",
            )
        self.start_process(state, component, list(record.argv), GO_ENV.get(component, {}))
        ready: dict[str, Callable[[], bool]] = {
            "kube-apiserver": lambda: self.api.apiserver_ready(state),
            "etcd": lambda: self.api.etcd_healthy(state),
            "containerd": lambda: unix_socket_answers(Path(state.socket)),
        }
        self.wait(state, component, ready.get(component, lambda: True), timeout)
        log.info("cluster %s: %s started again", self.name, component)
        return state

    def recorded(self, component: str) -> tuple[ClusterState, supervisor.ProcessRecord]:
        """Return the cluster state and the recorded process of ``component``."""
        if component not in COMPONENTS:
            raise ClusterError(
                f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}",
                provider="local",
            )
        state = read_state(self.paths)
        record = state.processes.get(component) if state is not None else None
        if state is None or record is None:
            raise ClusterError(
                f"cluster {self.name} has no {component} process on record; is it up? "
                f"(pytest-probes cluster status --name {self.name})",
                provider="local",
            )
        return state, record

    @staticmethod
    def stop_group(group: list[supervisor.ProcessRecord]) -> None:
        """SIGTERM a group of processes together; SIGKILL what is left after STOP_TIMEOUT."""
        for record in group:
            if supervisor.is_alive(record):
                supervisor.signal_group(record.pid, signal.SIGTERM)
        if supervisor.wait_gone(group, timeout=STOP_TIMEOUT):
            return
        for record in group:
            if supervisor.is_alive(record):
                log.info(
                    "%s (pid %d) did not stop within %.0f s; killing it",
                    record.name,
                    record.pid,
                    STOP_TIMEOUT,
                )
                supervisor.signal_group(record.pid, signal.SIGKILL)
        supervisor.wait_gone(group, timeout=5.0)

    def strays(self, socket_path: Path) -> list[int]:
        """Return cluster processes no pid file knows of (a component, a shim, runc).

        Only programs the cluster runs count: someone's ``tail -f`` of a log is left alone.
        """
        found = set(supervisor.processes_mentioning(str(self.paths.root)))
        found.update(supervisor.processes_mentioning(str(socket_path)))
        strays = []
        for pid in sorted(found):
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            name = Path(argv0).name
            if name in CLUSTER_PROGRAMS or name.startswith("containerd-shim"):
                strays.append(pid)
        return strays

    def teardown(self, state: ClusterState | None, progress: Progress, *, remove: bool) -> None:
        """Stop every process, clean the node up, and remove the directory (else its data)."""
        paths = self.paths
        records: dict[str, supervisor.ProcessRecord] = {}
        for name in COMPONENTS:
            record = (state.processes.get(name) if state else None) or supervisor.read_pid_file(
                paths.pid_file(name)
            )
            if record is not None:
                records[name] = record
        started = time.monotonic()

        def phase(what: str) -> None:
            log.debug("teardown of %s: %s at %.2f s", self.name, what, time.monotonic() - started)

        # The kubelet first, so it does not restart the containers that are about to go.
        if "kubelet" in records:
            supervisor.stop(records["kubelet"], timeout=STOP_TIMEOUT)
        phase("kubelet stopped")
        socket_path = Path(state.socket) if state else paths.socket
        network = state.network if state else network_of_unreadable_state(self.paths)
        cgroup = node.cgroup_root_name(self.name)
        killed = supervisor.kill_pids(sorted(node.cgroup_pids(cgroup)))
        phase("pod processes killed")
        # etcd last: its graceful stop waits for the API server's watches to end.
        for group in STOP_ORDER:
            self.stop_group([records[name] for name in group if name in records])
        phase("daemons stopped")
        killed += supervisor.kill_pids(self.strays(socket_path))
        problems = node.cleanup_node(
            cluster=self.name,
            cluster_dir=paths.root,
            state_dir=paths.containerd_state,
            socket=socket_path,
            network=network,
            pod_logs_dir=paths.pod_logs,
        )
        if not self.other_kubelets_running():
            problems += node.restore_host_sysctls(self.sysctl_record)
        phase("node cleaned up")
        if not socket_path.is_relative_to(paths.root):
            shutil.rmtree(socket_path.parent, ignore_errors=True)
        problems += [f"process {pid} still runs" for pid in self.strays(socket_path)]
        # `ps` must not list them any more when `down` returns, not even as zombies.
        listed = supervisor.wait_vanished([*records.values(), *killed], timeout=VANISH_TIMEOUT)
        if listed:
            log.warning("cluster %s: %s still listed (zombies) %.0f s after being stopped",
                        self.name, ", ".join(f"{r.name} {r.pid}" for r in listed),
                        VANISH_TIMEOUT)
        phase("every process gone")
        if problems:
            raise ClusterError(
                f"local cluster {self.name} could not be removed completely: "
                + "; ".join(problems),
                provider="local",
            )
        if remove:
            if node.mounts_under(paths.root):
                raise ClusterError(
                    f"refusing to delete {paths.root}: something is still mounted under it",
                    provider="local",
                )
            shutil.rmtree(paths.root, ignore_errors=True)
        else:
            for name in ("data", "state", "run"):
                shutil.rmtree(paths.root / name, ignore_errors=True)
            paths.state_file.unlink(missing_ok=True)

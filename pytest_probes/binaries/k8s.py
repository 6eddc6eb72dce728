"""Build the Kubernetes and etcd binaries from the Go module proxy, for local and kind nodes.

A small wrapper module requires ``k8s.io/kubernetes vX.Y.Z`` and replaces every staging module
(``k8s.io/api``, ``k8s.io/client-go``, ...) by its published ``v0.Y.Z`` release, exactly as the
``replace`` block of that Kubernetes version's own ``go.mod`` lists them; etcd comes from the same
module graph (``go.etcd.io/etcd/server/v3`` at the version Kubernetes requires). All five binaries
are built by one ``go build`` so shared packages compile once, and kept per version under
``<cache_dir>/k8s/<version>/bin``. Go's own caches (``GOMODCACHE``, ``GOCACHE``) stay where Go puts
them, so a rebuild is incremental.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tenacity import RetryCallState, Retrying, retry_if_exception_type

from pytest_probes._locks import file_lock
from pytest_probes._poll import stop_after
from pytest_probes.cluster import Progress, version_key
from pytest_probes.errors import ClusterError

log = logging.getLogger(__name__)

PINNED_VERSIONS: Mapping[str, str] = {
    "1.33": "1.33.13",
    "1.34": "1.34.4",
    "1.35": "1.35.4",
    "1.36": "1.36.3",
    "1.37": "1.37.2",
}
"""The Kubernetes patch release built for each supported minor version: the newest patch the Go
module proxy serves (``go list -m -versions k8s.io/kubernetes``). 1.33 is out of upstream support
(its last patch was 1.33.13); it stays while it builds and passes."""

DEFAULT_MINOR = "1.37"
"""The minor version used when none is asked for: the newest one known to work here."""

K8S_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"

K8S_COMMANDS: Mapping[str, str] = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
}
"""Binary name → Go package of the Kubernetes commands."""

BINARIES: tuple[str, ...] = (*K8S_COMMANDS, "etcd")
"""Every binary the local provider needs."""

NODE_IMAGE_COMMANDS: Mapping[str, str] = {
    "kubeadm": "k8s.io/kubernetes/cmd/kubeadm",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
}
"""Binary name → Go package of the commands a kind node image needs beside :data:`BINARIES`."""

NODE_IMAGE_BINARIES: tuple[str, ...] = (*BINARIES, *NODE_IMAGE_COMMANDS)
"""Every binary a kind node image is made of."""

_ALL_COMMANDS: Mapping[str, str] = {**K8S_COMMANDS, **NODE_IMAGE_COMMANDS}

BUILD_TIMEOUT = 3600.0
"""Seconds a whole build (download and compile) may take before it is stopped."""

PROGRESS_INTERVAL = 20.0
"""Seconds between two progress lines while a build runs."""

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")
_version_key = version_key  # the name the integration tests use


@dataclass(frozen=True)
class Replace:
    """One ``replace`` directive of the wrapper module: ``module => module version``."""

    module: str
    version: str

    def render(self) -> str:
        """Return the directive as it appears inside a ``replace ( ... )`` block."""
        return f"{self.module} => {self.module} {self.version}"


def known_versions() -> list[str]:
    """Return the pinned full versions, oldest first."""
    return sorted(PINNED_VERSIONS.values(), key=version_key)


def resolve_version(requested: str | None) -> str:
    """Turn a requested Kubernetes version into a pinned full version (``1.34.4``).

    Args:
        requested: ``None`` for the default, a minor version (``1.34``), or a full version
            (``1.34.4`` or ``v1.34.4``) that is one of the pinned releases.

    Returns:
        The full version without the leading ``v``.

    Raises:
        ClusterError: The version is not one the local provider knows how to build.
    """
    if requested is None or requested.strip() in ("", "default", "latest"):
        return PINNED_VERSIONS[DEFAULT_MINOR]
    text = requested.strip()
    match = _VERSION_RE.match(text)
    if match is not None:
        minor = f"{match.group(1)}.{match.group(2)}"
        pinned = PINNED_VERSIONS.get(minor)
        if pinned is not None and (match.group(3) is None or pinned == text.lstrip("v")):
            return pinned
    choices = ", ".join(f"{minor} (= {full})" for minor, full in sorted(PINNED_VERSIONS.items()))
    raise ClusterError(
        f"the local provider cannot build Kubernetes {requested!r}: it knows {choices}. "
        f"Pass one of those as the Kubernetes version, or use another provider for other "
        f"versions",
        provider="local",
    )


def staging_version(version: str) -> str:
    """Return the staging modules' version for a Kubernetes version (``1.34.4`` → ``v0.34.4``)."""
    major, minor, patch = version.split(".")
    del major
    return f"v0.{minor}.{patch}"


def parse_staging_replaces(gomod: str, version: str) -> list[Replace]:
    """Read the staging-module replacements out of Kubernetes' own ``go.mod``.

    Kubernetes replaces each staging module by a directory of its own tree
    (``k8s.io/api => ./staging/src/k8s.io/api``); outside that tree each must instead be replaced
    by its published release, ``v0.<minor>.<patch>``.

    Args:
        gomod: The text of ``k8s.io/kubernetes``' ``go.mod``.
        version: The Kubernetes version (``1.34.4``).

    Returns:
        One :class:`Replace` per staging module, sorted by module path.

    Raises:
        ClusterError: The file has no staging replacements (not Kubernetes' go.mod).
    """
    target = staging_version(version)
    found: dict[str, Replace] = {}
    for directive in _replace_directives(gomod):
        left, _, right = directive.partition("=>")
        module = left.split()[0] if left.split() else ""
        path = right.split()[0] if right.split() else ""
        if path.startswith("./staging/src/") and module:
            found[module] = Replace(module=module, version=target)
    if not found:
        raise ClusterError(
            f"the go.mod of {K8S_MODULE} v{version} has no `replace k8s.io/... => ./staging/...` "
            "directives; expected Kubernetes' own go.mod",
            provider="local",
        )
    return [found[key] for key in sorted(found)]


def _replace_directives(gomod: str) -> Iterator[str]:
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if in_block:
            if line == ")":
                in_block = False
            else:
                yield line
        elif line.startswith("replace"):
            rest = line[len("replace") :].strip()
            if rest == "(":
                in_block = True
            elif rest:
                yield rest


def required_version(gomod: str, module: str) -> str | None:
    """Return the version a ``go.mod`` requires of ``module``, or ``None`` if it does not."""
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
                continue
            parts = line.split()
        elif line.startswith("require"):
            rest = line[len("require") :].strip()
            if rest == "(":
                in_block = True
                continue
            parts = rest.split()
        else:
            continue
        if len(parts) >= 2 and parts[0] == module:
            return parts[1]
    return None


def go_directive(gomod: str) -> str | None:
    """Return the version of the ``go`` directive of a ``go.mod`` (``1.24.0``), if any."""
    match = re.search(r"^go\s+(\S+)\s*$", gomod, flags=re.MULTILINE)
    return match.group(1) if match else None


def godebug_lines(gomod: str) -> list[str]:
    """Return the single-line ``godebug`` directives of a ``go.mod``, verbatim."""
    return [
        line.strip()
        for line in gomod.splitlines()
        if line.startswith("godebug ") and "(" not in line
    ]


def render_wrapper_gomod(version: str, k8s_gomod: str) -> str:
    """Render the ``go.mod`` of the wrapper module that builds one Kubernetes version.

    Args:
        version: The Kubernetes version (``1.34.4``).
        k8s_gomod: The text of that version's ``k8s.io/kubernetes`` ``go.mod``.

    Returns:
        The wrapper module's ``go.mod`` text.

    Raises:
        ClusterError: The Kubernetes go.mod lacks what the wrapper needs.
    """
    etcd = required_version(k8s_gomod, ETCD_MODULE)
    if etcd is None:
        raise ClusterError(
            f"{K8S_MODULE} v{version} does not require {ETCD_MODULE}; cannot tell which etcd "
            "to build",
            provider="local",
        )
    lines = ["module pytest-probes.local/k8sbuild", ""]
    go = go_directive(k8s_gomod)
    if go:
        lines += [f"go {go}", ""]
    debug = godebug_lines(k8s_gomod)
    if debug:
        lines += [*debug, ""]
    lines += [
        "require (",
        f"\t{ETCD_MODULE} {etcd}",
        f"\t{K8S_MODULE} v{version}",
        ")",
        "",
        "replace (",
    ]
    lines += [f"\t{replace.render()}" for replace in parse_staging_replaces(k8s_gomod, version)]
    lines += [")", ""]
    return "\n".join(lines)


def ldflags(version: str, *, build_date: str | None = None) -> str:
    """Return the linker flags that strip the binaries and stamp the Kubernetes version.

    Args:
        version: The Kubernetes version (``1.34.4``).
        build_date: RFC 3339 build date; defaults to now (UTC).

    Returns:
        The value for ``go build -ldflags``.
    """
    major, minor, _patch = version.split(".")
    date = build_date or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion=v{version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate={date}",
        ]
    return " ".join(flags)


def go_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for ``go`` commands: ``-mod=mod`` and the local toolchain only.

    ``GOFLAGS`` keeps whatever else the caller's environment sets, so does the proxy setting.
    """
    env = dict(os.environ if base is None else base)
    flags = [flag for flag in env.get("GOFLAGS", "").split() if not flag.startswith("-mod=")]
    env["GOFLAGS"] = " ".join([*flags, "-mod=mod"])
    env["GOTOOLCHAIN"] = "local"
    return env


def go_install_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return :func:`go_env` without ``-mod=``, which ``go install PACKAGE@VERSION`` refuses."""
    env = go_env(base)
    env["GOFLAGS"] = " ".join(f for f in env["GOFLAGS"].split() if not f.startswith("-mod="))
    return env


def bin_dir(cache_dir: Path, version: str) -> Path:
    """Return where the binaries of one Kubernetes version are kept."""
    return cache_dir / "k8s" / version / "bin"


def missing_binaries(
    cache_dir: Path, version: str, names: Sequence[str] = BINARIES
) -> list[str]:
    """Return the names of the binaries (of ``names``) not yet built for ``version``."""
    directory = bin_dir(cache_dir, version)
    return [name for name in names if not os.access(directory / name, os.X_OK)]


def ensure_binaries(
    version: str,
    cache_dir: Path,
    progress: Progress,
    *,
    go: str = "go",
    names: Sequence[str] = BINARIES,
) -> Path:
    """Build whatever binaries of ``version`` are missing, and return their directory.

    Args:
        version: A pinned full Kubernetes version (see :func:`resolve_version`).
        cache_dir: The pytest-probes cache directory.
        progress: Receives progress lines while building.
        go: The ``go`` command.
        names: The binaries wanted: :data:`BINARIES` (the local provider's) by default,
            :data:`NODE_IMAGE_BINARIES` for a kind node image.

    Returns:
        The directory holding them.

    Raises:
        ClusterError: Go is missing or the download or build failed or took too long.
    """
    directory = bin_dir(cache_dir, version)
    if not missing_binaries(cache_dir, version, names):
        return directory
    root = directory.parent
    root.mkdir(parents=True, exist_ok=True)
    # One lock for every version: two Go builds at once would only slow each other down.
    with file_lock(
        build_lock(cache_dir),
        timeout=BUILD_TIMEOUT,
        progress=progress,
        waiting=lambda waited: f"waiting for another Kubernetes build to finish before "
        f"v{version} ({elapsed(waited)})",
        held_too_long=f"another process has been building Kubernetes for over "
        f"{BUILD_TIMEOUT:.0f} s",
        interval=PROGRESS_INTERVAL,
        poll=1.0,
    ):
        missing = missing_binaries(cache_dir, version, names)
        if not missing:
            return directory
        _build(version, root, directory, missing, progress, go=go)
    return directory


def build_lock(cache_dir: Path) -> Path:
    """Return the lock file every Go build of pytest-probes holds (Kubernetes, the runtime)."""
    return cache_dir / "k8s" / ".build.lock"


def elapsed(seconds: float) -> str:
    """Format a duration as ``3m07s`` or ``42s`` for progress lines."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def run_go(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    what: str,
    progress: Progress,
    timeout: float,
) -> str:
    """Run a ``go`` command, showing progress, and return its standard output.

    Raises:
        ClusterError: Go is missing, the command failed (keeping the tail of its stderr) or took
            longer than ``timeout``.
    """
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        except OSError as error:
            raise ClusterError(
                f"cannot run {argv[0]!r} ({error}); the local provider needs the Go toolchain "
                "(https://go.dev/dl) on PATH to build Kubernetes",
                provider="local",
                command=argv,
            ) from error
        last = started

        def report(_state: RetryCallState) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL:
                progress(f"{what} ({elapsed(now - started)})")
                last = now

        try:
            # Each attempt waits up to 1 s for the build to exit; no pause is needed between.
            for attempt in Retrying(retry=retry_if_exception_type(subprocess.TimeoutExpired),
                                    stop=stop_after(timeout), before_sleep=report,
                                    reraise=True):
                with attempt:
                    proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ClusterError(
                f"{what} took longer than {timeout:.0f} s and was stopped",
                provider="local",
                command=argv,
            ) from None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-30:])
        raise ClusterError(
            f"{what} failed (exit {proc.returncode}) in {cwd}:\n{tail}",
            provider="local",
            command=argv,
            returncode=proc.returncode,
            stderr_tail=tail,
        )
    return stdout


def _build(
    version: str, root: Path, target: Path, missing: list[str], progress: Progress, *, go: str
) -> None:
    env = go_env()
    work = root / "src"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress(f"building {', '.join(missing)} for Kubernetes v{version}")

    downloaded = run_go(
        [go, "mod", "download", "-json", f"{K8S_MODULE}@v{version}"],
        cwd=root,
        env=env,
        what=f"downloading {K8S_MODULE}@v{version}",
        progress=progress,
        timeout=BUILD_TIMEOUT,
    )
    try:
        info = json.loads(downloaded)
        k8s_gomod = Path(info["GoMod"]).read_text()
    except (ValueError, KeyError, OSError) as error:
        raise ClusterError(
            f"`go mod download -json {K8S_MODULE}@v{version}` did not name a readable go.mod "
            f"({error}); output: {downloaded[:500]}",
            provider="local",
        ) from error
    gomod = render_wrapper_gomod(version, k8s_gomod)
    gomod_path = work / "go.mod"
    if not gomod_path.exists() or gomod_path.read_text() != gomod:
        _atomic_write(gomod_path, gomod)
        (work / "go.sum").unlink(missing_ok=True)

    packages = [_ALL_COMMANDS[name] for name in missing if name in _ALL_COMMANDS]
    if "etcd" in missing:
        packages.append(ETCD_MODULE)
    out_dir = Path(tempfile.mkdtemp(prefix=".out-", dir=root))
    try:
        run_go(
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                ldflags(version),
                "-o",
                f"{out_dir}/",
                *packages,
            ],
            cwd=work,
            env=env,
            what=f"compiling {', '.join(missing)} for Kubernetes v{version}",
            progress=progress,
            timeout=BUILD_TIMEOUT,
        )
        target.mkdir(parents=True, exist_ok=True)
        for name in missing:
            # `go build -o DIR/` names a binary after its package; etcd's is ".../server/v3".
            built = out_dir / ("server" if name == "etcd" else name)
            if not built.is_file():
                raise ClusterError(
                    f"go build finished but did not produce {built}", provider="local"
                )
            os.chmod(built, 0o755)
            os.replace(built, target / name)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    took = time.monotonic() - started
    log.info("built %s for Kubernetes v%s in %.1f s", ", ".join(missing), version, took)
    progress(f"built {', '.join(missing)} for Kubernetes v{version} in {elapsed(took)}")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def feature_gate_problem(directory: Path, gates: Mapping[str, bool]) -> str | None:
    """Why the Kubernetes binaries in ``directory`` refuse these feature gates, or ``None``.

    Every component (API server, controller manager, scheduler, kubelet) registers the same
    gates of its version (``pkg/features/kube_features.go``) and refuses a gate it does not know
    (``unrecognized feature gate: X``) or a locked one set against its lock (``cannot set feature
    gate X to false, feature is locked to true``). ``kube-scheduler --feature-gates=... --version``
    validates the flag and exits at once, so it answers for the version without starting
    anything.

    Returns:
        The component's complaint (``unrecognized feature gate: Foo``), or ``None`` when it
        accepts them all.
    """
    if not gates:
        return None
    flag = feature_gates_flag(gates)
    done = subprocess.run([str(directory / "kube-scheduler"), flag, "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode == 0:
        return None
    found = re.search(r'err="\[?(.*?)\]?"\s*$', done.stderr.strip(), re.MULTILINE)
    return found.group(1) if found else (done.stderr.strip().splitlines() or ["refused"])[-1]


def feature_gates_flag(gates: Mapping[str, bool]) -> str:
    """``--feature-gates=A=true,B=false`` (sorted by name)."""
    return "--feature-gates=" + ",".join(
        f"{name}={str(on).lower()}" for name, on in sorted(gates.items()))

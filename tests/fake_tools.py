"""Fake ``kind`` and ``docker`` executables for testing the kind provider without Docker.

Each records its arguments (one JSON line per call in ``$FAKE_TOOLS_LOG``) and answers like the
real tool, backed by the ``local`` provider so the kind provider's whole flow runs against a real
API server and kubelet:

- ``kind create cluster --name N --image kindest/node:vX.Y.Z@...`` brings up the local cluster
  ``N`` at Kubernetes X.Y (``python -m pytest_probes cluster up``) and writes its kubeconfig,
  renamed to kind's ``kind-N`` context; ``get clusters`` lists the clusters it created;
  ``get kubeconfig`` prints that kubeconfig; ``delete cluster`` runs ``cluster down``.
- ``docker build -t REF`` checks the build context holds the target app and makes the image from
  the local provider's target image archive; ``kind load docker-image REF`` imports that archive
  into the node's containerd and tags it ``REF``; ``kind load image-archive`` imports an archive.
- ``docker ps --all --filter label=io.x-k8s.kind.cluster=N`` names the local cluster's node as
  the cluster's one node container, and ``docker inspect`` shows it running since ``kind create``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

_COMMON = r'''
import json, os, subprocess, sys
from pathlib import Path

def record(tool):
    with open(os.environ["FAKE_TOOLS_LOG"], "a") as log:
        log.write(json.dumps({"tool": tool, "argv": sys.argv[1:]}) + "\n")

def state_dir():
    path = Path(os.environ["FAKE_TOOLS_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path

def flag(args, name):
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None

def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)
'''

FAKE_KIND = _COMMON + r'''
import yaml
from pytest_probes.cluster import default_cache_dir

record("kind")
args = sys.argv[1:]
clusters = state_dir() / "kind-clusters"
clusters.mkdir(exist_ok=True)

def local_state(name):
    return json.loads((default_cache_dir() / "clusters" / name / "cluster.json").read_text())

def kubeconfig(name):
    data = yaml.safe_load((default_cache_dir() / "clusters" / name / "kubeconfig").read_text())
    ctx = f"kind-{name}"
    data["clusters"][0]["name"] = ctx
    data["users"][0]["name"] = ctx
    data["contexts"][0] = {"name": ctx, "context": {"cluster": ctx, "user": ctx}}
    data["current-context"] = ctx
    return yaml.safe_dump(data)

def ctr(name, *more):
    from pytest_probes.binaries.runtime import runtime_bins
    state = local_state(name)
    binary = str(runtime_bins(Path(state["cache_dir"])).ctr)
    done = subprocess.run([binary, "--address", state["socket"], "-n", "k8s.io", *more],
                          capture_output=True, text=True)
    if done.returncode:
        fail(f"ERROR: ctr {' '.join(more)}: {done.stderr}")
    return done.stdout

def cli(*more):
    done = subprocess.run([sys.executable, "-m", "pytest_probes", "cluster", *more],
                          capture_output=True, text=True)
    if done.returncode:
        fail(f"ERROR: failed: {done.stderr}")

name = flag(args, "--name") or "kind"
if args[:1] == ["version"]:
    print("kind " + os.environ["FAKE_KIND_RELEASE"] + " go1.26.3 linux/amd64")
elif args[:2] == ["get", "clusters"]:
    names = sorted(p.name for p in clusters.iterdir() if p.suffix != ".started")
    if not names:
        sys.stderr.write("No kind clusters found.\n")
    for n in names:
        print(n)
elif args[:2] == ["create", "cluster"]:
    if os.environ.get("FAKE_KIND_CREATE_FAILS"):  # kubeadm init failed; kind removed the node
        sys.stderr.write(os.environ["FAKE_KIND_CREATE_FAILS"])
        sys.exit(1)
    if (clusters / name).exists():
        fail(f'ERROR: failed to create cluster: node(s) already exist for a cluster with the '
             f'name "{name}"')
    image = flag(args, "--image") or ""
    minor = ".".join(image.partition("@")[0].rpartition(":v")[2].split(".")[:2])
    from datetime import datetime, timezone
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the node's start
    cli("up", "--name", name, "--k8s-version", minor)
    (clusters / name).write_text(image)
    (clusters / f"{name}.started").write_text(started)
    path = flag(args, "--kubeconfig")
    if path:
        Path(path).write_text(kubeconfig(name))
elif args[:2] == ["get", "kubeconfig"]:
    if not (clusters / name).exists():
        fail(f'ERROR: could not locate any control plane nodes for cluster named "{name}"')
    sys.stdout.write(kubeconfig(name))
elif args[:2] == ["delete", "cluster"]:
    if (clusters / name).exists():
        cli("down", "--name", name)
        (clusters / name).unlink()
        (clusters / f"{name}.started").unlink(missing_ok=True)
elif args[:2] == ["load", "docker-image"]:
    ref = args[2]
    built = state_dir() / "docker-images.json"
    images = json.loads(built.read_text()) if built.exists() else {}
    if ref not in images:
        fail(f"ERROR: image: \"{ref}\" not present locally")
    ctr(name, "images", "import", "--snapshotter", "overlayfs", images[ref]["archive"])
    ctr(name, "images", "tag", "--force", images[ref]["source"], ref)
elif args[:2] == ["load", "image-archive"]:
    ctr(name, "images", "import", "--snapshotter", "overlayfs", args[2])
else:
    fail(f"fake kind: unsupported command {args}", 2)
'''

FAKE_DOCKER = _COMMON + r'''
from pytest_probes.cluster import default_cache_dir
from pytest_probes.images import build_target_image

record("docker")
args = sys.argv[1:]
if args[:1] == ["info"]:
    fail("Cannot connect to the Docker daemon (fake docker has no engine)")
elif args[:1] == ["build"]:
    tag, dockerfile, context = flag(args, "-t"), flag(args, "-f"), Path(args[-1])
    if not (dockerfile and Path(dockerfile).is_file()):
        fail(f"ERROR: Dockerfile {dockerfile} not found")
    if not (context / "pytest_probes" / "target" / "server.py").is_file():
        fail(f"ERROR: COPY pytest_probes/target: not found in context {context}")
    image = build_target_image(default_cache_dir())
    built = state_dir() / "docker-images.json"
    images = json.loads(built.read_text()) if built.exists() else {}
    images[tag] = {"archive": str(image.archive), "source": image.ref}
    built.write_text(json.dumps(images))
    print(f"Successfully tagged {tag}")
elif args[:2] == ["ps", "--all"]:
    # The kind cluster's node "container": the local cluster's node, started when it was made.
    label = (flag(args, "--filter") or "").partition("=")[2]
    name = label.partition("=")[2]
    state = default_cache_dir() / "clusters" / name / "cluster.json"
    if (state_dir() / "kind-clusters" / name).exists() and state.exists():
        print(json.loads(state.read_text())["node_name"])
elif args[:1] == ["inspect"] and flag(args, "--format") == \
        "{{.Name}} {{.State.Running}} {{.State.StartedAt}}":
    for node in args[3:]:
        cluster = node.removesuffix("-node")
        started = state_dir() / "kind-clusters" / f"{cluster}.started"
        if not started.exists():
            fail(f"Error: No such object: {node}")
        print(f"/{node} true {started.read_text()}")
else:
    fail(f"fake docker: unsupported command {args}", 2)
'''


def install(directory: Path) -> dict[str, str]:
    """Write the fakes into ``directory/bin``; return the environment variables they need.

    Put ``directory/bin`` first on ``PATH`` and set the returned variables (``FAKE_TOOLS_LOG``,
    ``FAKE_TOOLS_STATE``, ``FAKE_KIND_RELEASE``: the pinned kind release, which the fake kind
    reports) before running the code under test.
    """
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, body in (("kind", FAKE_KIND), ("docker", FAKE_DOCKER)):
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    from pytest_probes.providers.kind import PINNED_KIND

    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_KIND_RELEASE": PINNED_KIND,
        "FAKE_TOOLS_LOG": str(directory / "calls.jsonl"),
        "FAKE_TOOLS_STATE": str(directory / "state"),
    }


def calls(directory: Path, tool: str) -> list[list[str]]:
    """Return the recorded argument lists of one tool, in call order."""
    path = directory / "calls.jsonl"
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = [json.loads(line) for line in path.read_text().splitlines()]
    return [row["argv"] for row in rows if row["tool"] == tool]

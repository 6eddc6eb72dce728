# The two quickstart commands: `make probes` runs the live probe tests on the default provider,
# `make test` runs the whole test suite (offline and live). Both install what is missing first.
# Everything Python runs from the project's virtual environment, which bootstrap makes: the
# system interpreter's packages are never touched.
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
PYTEST ?= $(PYTHON) -m pytest
# The venv's bin first: bootstrap links a Go toolchain there when the system's is too old.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Byte code is written (__pycache__, which git ignores) even where PYTHONDONTWRITEBYTECODE is set,
# as on this machine: otherwise each xdist worker compiles and assertion-rewrites the package and
# the tests from source, all the workers at once at the start of a run (collecting took 1.2 s of
# CPU per worker, 0.75 s with the byte code cached).
unexport PYTHONDONTWRITEBYTECODE
# The live scenarios mostly wait on the kubelet, so they run side by side (pytest-xdist), each in
# its own namespace on one shared cluster. How many fit depends on the machine's cores: on
# 2026-12-07 a 2-core machine of the faster kind ran 20 workers in 212-222 s (96 passed each
# time), but on a slower one (the same suite's collection 1.2-1.4 CPU-s per worker, not 0.75) the
# same 20 took 303.7 s with 3 of 96 failed (probes and restarts late on the loaded node; the tests'
# summed time 5,436 s against 4,117-4,214 s at 12 and 16); 16 took 284.2 s and 12 370.1 s, every
# scenario passing. 16 was the default from then; on 2026-12-08 three fresh-clone runs at 16 on
# that machine each failed 1 of 96 on a lag of the loaded API server (an Event 5 s behind its
# stamp, a status write 5 s behind the kubelet's transition, an exec into a container killed
# meanwhile), so 12 is the default: 34 % CPU busy there, not 68 %. See docs/speed-and-reports.md.
PROBES_WORKERS ?= 12
# The live runs go through scripts/live, which has the local cluster and the target image ready
# before the workers start (and brings down a cluster it created).
LIVE = $(PYTHON) scripts/live

.PHONY: bootstrap probes test lint bench matrix min-versions

bootstrap:
	@VENV=$(VENV) ./scripts/bootstrap

probes: bootstrap
	$(LIVE) $(PYTEST) -m probes -n $(PROBES_WORKERS) $(ARGS)

# The live suite on kind: scripts/docker-host starts a Docker engine (installing docker.io and
# building kind if missing) and stops what it started; the node image is built here from pinned
# sources (no registry is needed). The xdist test drives the local provider's lifecycle only.
# A kind node is one container holding the whole cluster, so it gets fewer workers: with 16 on two
# cores, container create and start took 2-3 s each and 2 of 42 restarts missed the kubelet's
# windows (one allowance per CRI call); with 8, 42 of 42 passed. On the slower 2-core machine of
# 2026-12-07 (see PROBES_WORKERS) 8 failed 5 of 96 (restarts 2-5 s past their windows, the
# container start alone taking 5 s) and two configured clusters' kubeadm init failed while they
# came up beside the run: 4 there.
KIND_WORKERS ?= 4
KIND_LIVE = $(PYTHON) scripts/docker-host run -- $(LIVE) $(PYTEST) -m probes -n $(KIND_WORKERS) \
	--probes-provider kind --probes-kind-node-image offline --probes-cluster-name probes-kind

# The plugin's own end-to-end tests on a live cluster (marker `selftest`: inner pytest runs, the
# wheel in an outside project, Chromium on the HTML report, the CLI) are not probe scenarios, so
# `-m probes` leaves them out; they run here, on the local provider, after the scenarios. Most of
# their time is CPU (inner sessions, builds), so they get fewer workers than the scenarios.
SELFTEST_WORKERS ?= 6

# Offline and integration tests first, then the live scenarios concurrently on the local
# provider, the plugin's live self-tests, then the scenarios on kind.
test: bootstrap
	$(PYTEST) -m "not probes and not selftest" $(ARGS)
	$(LIVE) $(PYTEST) -m probes -n $(PROBES_WORKERS) --probes-provider local $(ARGS)
	$(LIVE) $(PYTEST) -m selftest -n $(SELFTEST_WORKERS) --probes-provider local $(ARGS)
	$(KIND_LIVE) $(ARGS)

# The offline tests with every dependency at the lower bound pyproject.toml declares, in a fresh
# virtual environment of their own (scripts/min-versions; under 2 minutes here).
min-versions: bootstrap
	$(PYTHON) scripts/min-versions

bench: bootstrap
	$(PYTHON) benchmarks/speed.py --workers $(PROBES_WORKERS)

matrix: bootstrap
	$(PYTHON) benchmarks/matrix.py --workers $(PROBES_WORKERS) $(MATRIX_ARGS)

lint: bootstrap
	$(PYTHON) -m ruff check pytest_probes tests benchmarks
	$(PYTHON) -m mypy

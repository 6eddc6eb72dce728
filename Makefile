# The two quickstart commands: `make probes` runs the live probe tests on the default provider,
# `make test` runs the whole test suite (offline and live). Both install what is missing first.
PYTEST ?= python3 -m pytest

.PHONY: bootstrap probes test lint

bootstrap:
	@./scripts/bootstrap

probes: bootstrap
	$(PYTEST) -m probes $(ARGS)

test: bootstrap
	$(PYTEST) $(ARGS)

lint: bootstrap
	ruff check pytest_probes tests benchmarks
	mypy

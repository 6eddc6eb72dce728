"""The README's examples run, and its tables and those of the docs/ pages match the code."""

from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PROVIDERS = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
OPTIONS = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
# The README with every docs/ page: where a name is documented may move between them.
DOCUMENTATION = "\n".join(
    [README, *(path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md")))])


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_quickstart_is_two_make_targets_that_exist() -> None:
    quick = README.split("## Quickstart", 1)[1].split("##", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", quick, re.S)[0].strip().splitlines()
    assert [c.split("#")[0].strip() for c in commands] == ["make probes", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "\nprobes: bootstrap\n\t$(LIVE) $(PYTEST) -m probes -n $(PROBES_WORKERS)" in makefile
    test_recipe = makefile.split("\ntest: bootstrap\n", 1)[1].split("\n\n", 1)[0]
    # The whole suite: everything that is neither a probe test nor a live self-test, then every
    # probe test on the local provider, the live self-tests there, and the probe tests on kind.
    assert test_recipe.splitlines() == [
        '\t$(PYTEST) -m "not probes and not selftest" $(ARGS)',
        "\t$(LIVE) $(PYTEST) -m probes -n $(PROBES_WORKERS) --probes-provider local $(ARGS)",
        "\t$(LIVE) $(PYTEST) -m selftest -n $(SELFTEST_WORKERS) --probes-provider local $(ARGS)",
        "\t$(KIND_LIVE) $(ARGS)",
    ]
    kind_live = makefile.split("\nKIND_LIVE = ", 1)[1].split("\n\n", 1)[0]
    assert "$(LIVE) $(PYTEST) -m probes -n $(KIND_WORKERS)" in kind_live
    assert "--probes-provider kind --probes-kind-node-image offline" in kind_live
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_library_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = next(b for b in python_blocks() if "Timeline.load" in b)
    script = tmp_path / "example.py"
    script.write_text(block)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "2022-06-11 01:52:27+00:00 ['10.1.1.222', '10.1.1.223']" in out
    assert out.count("EndpointRemoved") == 2


def test_options_table_lists_every_option(pytestconfig: pytest.Config) -> None:
    table = OPTIONS.split("# Options", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"\| `(--probes-[a-z0-9-]+)` \|", table))
    group = pytestconfig._parser.getgroup("probes")
    registered = {opt.names()[0] for opt in group.options}
    assert documented == registered


def test_fixture_and_helper_names_in_readme_exist() -> None:
    import pytest_probes

    for name in re.findall(r"`(assert_[a-z_]+)`", DOCUMENTATION):
        assert name in pytest_probes.__all__, name
    from pytest_probes import fixtures, plugin

    # The ini keys of the --probes-* options are named probes_* too.
    ini_keys = {f"probes_{noun.replace('-', '_')}" for noun in re.findall(
        r'_add_option_ini\(parser, group, "([a-z-]+)"', Path(plugin.__file__).read_text())}
    assert "probes_durations_file" in ini_keys
    for name in re.findall(r"`(probes_[a-z_]+)`", DOCUMENTATION):
        if name not in ini_keys:
            assert hasattr(fixtures, name), name


def test_kind_section_lists_the_pinned_release_and_images() -> None:
    from pytest_probes.providers import kind

    section = PROVIDERS.split("\n## kind", 1)[1].split("\n## ", 1)[0]
    rows = {minor: (release, image) for minor, release, image in re.findall(
        r"\| (1\.\d+)(?: \(default\))? \| (v0\.\d+\.\d+) \| `(kindest/node:[^`]+)` \|", section)}
    assert rows == {minor: (release, kind.NODE_IMAGES[release][minor])
                    for minor, release in kind.KIND_RELEASE_FOR.items()}
    assert f"| {kind.DEFAULT_MINOR} (default) |" in section
    assert f"https://kind.sigs.k8s.io/dl/{kind.PINNED_KIND}/kind-linux-amd64" in section
    assert f"kind {kind.PINNED_KIND}" in PROVIDERS.split("# Providers", 1)[1]


def test_documented_environment_variables_exist() -> None:
    from pytest_probes.providers import existing, kind

    documented = set(re.findall(r"`(PYTEST_PROBES_[A-Z_]+)", DOCUMENTATION))
    assert documented == {kind.KIND_ENV, kind.DOCKER_ENV, existing.TARGET_IMAGE_ENV}

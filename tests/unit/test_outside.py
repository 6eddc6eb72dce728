"""Faults from outside the app: what is refused before anything is touched.

The faults themselves act on real containers in ``tests/live/test_outside_faults.py``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_probes.errors import ProbesError
from pytest_probes.outside import OutsideFaults


def test_an_existing_cluster_has_no_node_to_act_from_and_says_so_at_once() -> None:
    faults = OutsideFaults(None, "existing", "ns")
    for call in (lambda: faults.freeze("p"), lambda: faults.kill("p"),
                 lambda: faults.block_port("p", 8080), lambda: faults.delay("p", 8080, 500)):
        with pytest.raises(ProbesError, match=r"act from the node, which the existing provider "
                                              r"does not give us \(an ephemeral container cannot"):
            call()
    assert faults.undo_all() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda f: f.kill("p", signal="SIGFOO"), "signal='SIGFOO': choose one of SIGKILL"),
     (lambda f: f.block_port("p", 0), "port=0: a TCP port number"),
     (lambda f: f.block_port("p", True), "port=True"),
     (lambda f: f.block_port("p", "8080"), "port='8080'"),
     (lambda f: f.freeze("p", for_s=-1), "for_s=-1: a finite number of seconds above 0"),
     (lambda f: f.freeze("p", for_s=math.inf), "for_s=inf"),
     (lambda f: f.block_port("p", 80, for_s=math.nan), "for_s=nan")],
)
def test_bad_arguments_are_refused_before_anything_is_touched(call: Any, message: str) -> None:
    # A local provider with no API client: reaching the cluster would fail otherwise.
    faults = OutsideFaults(None, "local", "ns")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(faults)



def test_a_delay_needs_a_sensible_port_and_duration() -> None:
    faults = OutsideFaults(None, "local", "ns")
    with pytest.raises(ValueError, match="ms=0"):
        faults.delay("web", 80, 0)
    with pytest.raises(ValueError, match="port=70000"):
        faults.delay("web", 70000, 100)

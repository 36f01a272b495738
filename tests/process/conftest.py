"""Fixtures for corral.process tests: an installed reaper and both containment strategies.

Every fixture undoes what it did even when the test fails: cgroups are removed,
the subreaper flag and SIGCHLD handler restored, and every process killed.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.process import Containment, Reaper, choose_containment, prctl
from corral.process.cgroup import CgroupContainment, find_writable_cgroup
from tests.helpers.cgroups import remove_cgroup

STRATEGIES = ["cgroup", "subreaper"]


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    with Reaper().installed() as installed:
        yield installed
        installed.reap_nowait()


def _cgroup_or_skip(strategy: str) -> None:
    if strategy == "cgroup" and find_writable_cgroup() is None:
        pytest.skip("no writable cgroup v2 on this machine")


@contextlib.contextmanager
def _containment(strategy: str, reaper: Reaper, tmp_path: Path) -> Iterator[Containment]:
    _cgroup_or_skip(strategy)
    owner = f"t{uuid.uuid4().hex[:10]}"
    made = choose_containment(
        force=strategy,  # type: ignore[arg-type]
        owner_id=owner,
        reaper=reaper,
        records_dir=tmp_path / "records",
    )
    try:
        yield made
    finally:
        try:
            made.close(kill_detached=True)
        finally:
            reaper.reap_nowait()
            base = find_writable_cgroup()
            if base is not None:
                remove_cgroup(base / f"corral-{owner}")
            shutil.rmtree(tmp_path / "records", ignore_errors=True)
            prctl.set_child_subreaper(False)


@pytest.fixture(params=STRATEGIES)
def containment(
    request: pytest.FixtureRequest, reaper: Reaper, tmp_path: Path
) -> Iterator[Containment]:
    """Each strategy in turn."""
    with _containment(request.param, reaper, tmp_path) as made:
        yield made


@pytest.fixture
def cgroup_containment(reaper: Reaper, tmp_path: Path) -> Iterator[CgroupContainment]:
    """The cgroup strategy only (skipped without a writable cgroup v2)."""
    with _containment("cgroup", reaper, tmp_path) as made:
        assert isinstance(made, CgroupContainment)
        yield made

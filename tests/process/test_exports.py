"""The public surface of corral.process is deliberate."""

from __future__ import annotations

import corral.process


def test_exported_names() -> None:
    assert sorted(corral.process.__all__) == [
        "AbandonedOwner",
        "Containment",
        "ExitStatus",
        "ForkGuard",
        "KillReport",
        "KilledProcess",
        "ProcessError",
        "ProcessInfo",
        "ProcessRef",
        "Reaper",
        "ReaperStatistics",
        "ReclaimedOwner",
        "Unit",
        "UnsupportedPlatform",
        "choose_containment",
        "current_reaper",
        "detach",
        "find_abandoned",
        "find_escaped",
        "is_child_subreaper",
        "kill_tree",
        "reclaim_abandoned",
        "scan",
        "set_child_subreaper",
        "set_parent_death_signal",
    ]
    for name in corral.process.__all__:
        assert getattr(corral.process, name).__doc__, f"{name} has no docstring"


def test_process_package_imports_nothing_else_from_corral() -> None:
    from pathlib import Path

    package = Path(corral.process.__file__).parent
    for module in package.glob("*.py"):
        for line in module.read_text().splitlines():
            if line.startswith(("import corral", "from corral")):
                assert line.startswith("from corral.process"), f"{module.name}: {line}"

"""Dependency order of programs: dependencies first, file order otherwise."""

from __future__ import annotations

from collections.abc import Sequence

from corral.supervisor.config_schema import ProgramConfig

__all__ = ["DependencyCycle", "dependency_order"]


class DependencyCycle(ValueError):
    """``depends_on`` loops; ``cycle`` names it, first name repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(" -> ".join(cycle))
        self.cycle = cycle


def dependency_order(programs: Sequence[ProgramConfig]) -> tuple[ProgramConfig, ...]:
    """``programs`` reordered so each comes after everything it depends on.

    A depth-first walk in the given order, visiting dependencies in the order
    they are listed, keeps the given order wherever dependencies allow. Every
    name in ``depends_on`` must be one of ``programs``; a loop raises
    :class:`DependencyCycle`.
    """
    by_name = {program.name: program for program in programs}
    ordered: list[ProgramConfig] = []
    placed: set[str] = set()

    def place(name: str, path: list[str]) -> None:
        if name in placed:
            return
        if name in path:
            raise DependencyCycle([*path[path.index(name) :], name])
        for dependency in by_name[name].depends_on:
            place(dependency, [*path, name])
        placed.add(name)
        ordered.append(by_name[name])

    for program in programs:
        place(program.name, [])
    return tuple(ordered)

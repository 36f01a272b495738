"""One instance of a supervised program: its state machine, restarts and rolling replacement.

An instance has at most one *current* generation, at most one *incoming* one
(a rolling reload: started beside the current one, which is retired once the
new one is ready) and any number of *retiring* ones, which are being stopped.
The instance is stopped only when all of them are empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from corral.supervisor.config import ProgramConfig
from corral.supervisor.generation import Generation, ProcessRow
from corral.supervisor.states import ProgramState, can_move

__all__ = ["Instance", "InstanceStatus"]

log = logging.getLogger("corral.supervisor")

MAX_BACKOFF_S = 60.0

GenerationFactory = Callable[[ProgramConfig, int, int], Generation]
"""Starts generation ``number`` of instance ``index`` of a program."""


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """What ``corral ctl status`` shows for one instance."""

    name: str
    program: str
    state: str
    generation: int
    pid: int | None
    uptime_s: float
    processes: tuple[ProcessRow, ...]
    stale: tuple[int, ...]
    last_exit: str


class Instance:
    """Instance ``index`` of ``program``."""

    def __init__(self, program: ProgramConfig, index: int, start: GenerationFactory) -> None:
        self.program = program
        self.index = index
        self._start_generation = start
        self.state = ProgramState.STOPPED
        self.current: Generation | None = None
        self.incoming: Generation | None = None
        self.retiring: list[Generation] = []
        self.generations = 0
        self.retries = 0
        self.next_start_at = 0.0
        self.wanted = program.autostart
        self.last_exit = ""

    @property
    def name(self) -> str:
        """``program`` or ``program:index`` when it has several instances."""
        return (
            self.program.name if self.program.numprocs == 1 else f"{self.program.name}:{self.index}"
        )

    def __repr__(self) -> str:
        return f"<instance {self.name} {self.state.value}>"

    def _move(self, new: ProgramState) -> None:
        if new is self.state:
            return
        if not can_move(self.state, new):
            raise RuntimeError(f"{self.name}: illegal move {self.state.value} -> {new.value}")
        log.info("%s: %s -> %s", self.name, self.state.value, new.value)
        self.state = new

    # -- commands --------------------------------------------------------------
    def start(self) -> None:
        """Start it (a no-op if it is starting or running)."""
        self.wanted = True
        if self.state in (ProgramState.STARTING, ProgramState.RUNNING, ProgramState.STOPPING):
            return
        self.retries = 0
        self._launch()

    def stop(self) -> None:
        """Stop every generation; done when :attr:`stopped` is true."""
        self.wanted = False
        for generation in (self.current, self.incoming):
            if generation is not None:
                self.retiring.append(generation)
                generation.begin_stop()
        self.current = self.incoming = None
        if self.state in (ProgramState.STARTING, ProgramState.RUNNING):
            self._move(ProgramState.STOPPING)
        elif self.state in (ProgramState.BACKOFF, ProgramState.EXITED, ProgramState.FATAL):
            self._move(ProgramState.STOPPED)

    def replace(self, program: ProgramConfig) -> None:
        """Rolling reload: start a new generation with ``program``; retire the old once ready."""
        self.program = program
        if self.current is None or self.state is not ProgramState.RUNNING:
            if self.current is not None:
                self.retiring.append(self.current)
                self.current.begin_stop()
                self.current = None
                self._move(ProgramState.STOPPING)
                self._move(ProgramState.STOPPED)
            if self.wanted:
                self.start()
            return
        if self.incoming is not None:
            self.retiring.append(self.incoming)
            self.incoming.begin_stop()
        self.generations += 1
        self.incoming = self._start_generation(program, self.index, self.generations)

    def kill_now(self) -> None:
        """A second TERM: SIGKILL every generation at once."""
        self.stop()
        for generation in self.retiring:
            generation.kill_now()

    @property
    def stopped(self) -> bool:
        """True when no process of any generation is left and none is wanted."""
        return self.current is None and self.incoming is None and not self.retiring

    @property
    def settled(self) -> bool:
        """True when nothing is in flight: no incoming or retiring generation."""
        return self.incoming is None and not self.retiring

    def generations_alive(self) -> list[Generation]:
        """Every generation with processes, newest last."""
        found = [*self.retiring, self.current, self.incoming]
        return [g for g in found if g is not None]

    # -- the loop's turn -------------------------------------------------------
    def tick(self) -> None:
        """Advance starts, exits, backoffs, replacements and stops."""
        self._tick_retiring()
        self._tick_incoming()
        if self.current is not None:
            self._tick_current(self.current)
        elif self.state is ProgramState.BACKOFF and time.monotonic() >= self.next_start_at:
            self._launch()
        elif self.state is ProgramState.STOPPING and not self.retiring:
            self._move(ProgramState.STOPPED)

    def _tick_current(self, generation: Generation) -> None:
        status = generation.exit_status
        if status is not None:
            self._on_exit(generation, status.describe(), status.code)
        elif self.state is ProgramState.STARTING and generation.is_ready():
            self._move(ProgramState.RUNNING)
            self.retries = 0

    def _tick_incoming(self) -> None:
        incoming = self.incoming
        if incoming is None:
            return
        status = incoming.exit_status
        if status is not None:
            log.error(
                "%s: new generation %d %s before it was ready; the old one keeps running",
                self.name,
                incoming.number,
                status.describe(),
            )
            self.incoming = None
            self.retiring.append(incoming)
            incoming.begin_stop()
            self.last_exit = f"generation {incoming.number} {status.describe()} while starting"
            return
        if incoming.is_ready():
            old, self.current, self.incoming = self.current, incoming, None
            if old is not None:
                log.info(
                    "%s: generation %d ready, retiring %d", self.name, incoming.number, old.number
                )
                self.retiring.append(old)
                old.begin_stop()

    def _tick_retiring(self) -> None:
        for generation in list(self.retiring):
            if generation.advance_stop():
                generation.close()
                self.retiring.remove(generation)

    def _on_exit(self, generation: Generation, how: str, code: int) -> None:
        self.current = None
        self.retiring.append(generation)
        generation.begin_stop()  # whatever the main process left behind goes too
        self.last_exit = how
        if self.state is ProgramState.STARTING:
            log.error("%s: %s within start_s=%g", self.name, how, self.program.start_s)
            self._back_off()
            return
        log.warning("%s: %s", self.name, how)
        self._move(ProgramState.EXITED)
        if self._should_restart(code):
            self._launch()

    def _should_restart(self, code: int) -> bool:
        policy = self.program.autorestart
        return self.wanted and (policy == "always" or (policy == "on-failure" and code != 0))

    def _back_off(self) -> None:
        self.retries += 1
        if self.retries > self.program.start_retries:
            log.error(
                "%s: gave up after %d failed starts (start_retries=%d)",
                self.name,
                self.retries,
                self.program.start_retries,
            )
            self._move(ProgramState.FATAL)
            return
        delay_s = min(MAX_BACKOFF_S, 0.5 * 2 ** (self.retries - 1))
        self.next_start_at = time.monotonic() + delay_s
        self._move(ProgramState.BACKOFF)

    def _launch(self) -> None:
        self.generations += 1
        self._move(ProgramState.STARTING)
        try:
            self.current = self._start_generation(self.program, self.index, self.generations)
        except Exception as error:
            log.error("%s: could not start: %s", self.name, error)
            self.last_exit = f"could not start: {error}"
            self._back_off()

    # -- status ----------------------------------------------------------------
    def status(self) -> InstanceStatus:
        """Every process of every generation; older generations' processes are STALE."""
        rows = tuple(row for g in self.generations_alive() for row in g.processes())
        newest = max((g.number for g in self.generations_alive()), default=self.generations)
        current = self.current
        return InstanceStatus(
            name=self.name,
            program=self.program.name,
            state=self.state.value,
            generation=current.number if current else self.generations,
            pid=current.pid if current else None,
            uptime_s=current.up_s() if current else 0.0,
            processes=rows,
            stale=tuple(row.pid for row in rows if row.generation < newest),
            last_exit=self.last_exit,
        )

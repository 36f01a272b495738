"""``corral run``: the supervisor's main loop.

One thread. Signal handlers and SIGCHLD only write to pipes; the loop selects
on them, on the control socket and on the programs' log pipes, then reaps,
moves every instance's state machine on, and answers finished commands.

As PID 1 (a container, or ``unshare --pid --fork``) it reaps every orphan and
forwards USR1, USR2 and WINCH to the programs' main processes (seeds/003).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from corral.process import Containment, Reaper, choose_containment
from corral.signals import SignalRecorder
from corral.supervisor.commands import Commands
from corral.supervisor.config import ProgramConfig, SupervisorConfig
from corral.supervisor.control import Connection, ControlServer
from corral.supervisor.generation import Generation
from corral.supervisor.logfile import LogPump, RotatingLog
from corral.supervisor.program import Instance
from corral.supervisor.sockets import open_listener
from corral.supervisor.statefile import clean_up_after, own_state, read_state, write_state
from corral.supervisor.states import ProgramState

__all__ = ["Supervisor"]

log = logging.getLogger("corral.supervisor")

TICK_S = 0.1
UNSAFE_NO_ORPHAN_REAPING = "CORRAL_UNSAFE_NO_ORPHAN_REAPING"
"""Set to 1 to stop reaping orphans: only for the test that shows the zombies it prevents."""
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, *FORWARDED)


class Supervisor:
    """Runs the programs of one ``corral.toml``."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self.run_dir = Path(config.run.state_file).parent
        self.selector = selectors.DefaultSelector()
        self.signals = SignalRecorder(HANDLED)
        self.instances: dict[str, list[Instance]] = {}
        self.listeners: dict[str, socket.socket] = {}
        self.logs: dict[Path, RotatingLog] = {}
        self.shutting_down = False
        self.retired: list[Instance] = []
        self.shutdown_deadline = 0.0
        self.commands = Commands(self)
        self.owner_id = f"run-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.containment: Containment
        self.control: ControlServer

    # -- lifecycle --------------------------------------------------------------
    def run(self) -> int:
        """Run until shut down; 0 when every unit emptied in time."""
        self._start()
        try:
            while not (self.shutting_down and self._all_stopped()):
                self._tick()
        finally:
            clean = self._finish()
        return 0 if clean else 1

    def _start(self) -> None:
        self._clean_up_previous_run()
        self.control = ControlServer(Path(self.config.run.control_socket))
        strategy = self.config.run.containment
        self.containment = choose_containment(
            force=None if strategy == "auto" else strategy,
            owner_id=self.owner_id,
            reaper=Reaper(reap_orphans=os.environ.get(UNSAFE_NO_ORPHAN_REAPING) != "1").install(),
        )
        self.containment.reaper.install_sigchld()
        write_state(
            Path(self.config.run.state_file),
            own_state(self.owner_id, self.containment.kind, self.config.path),
        )
        self.signals.install()
        self.selector.register(self.signals.fd, selectors.EVENT_READ, "signals")
        self.selector.register(self.containment.reaper.fileno(), selectors.EVENT_READ, "reaper")
        self.selector.register(self.control.fileno(), selectors.EVENT_READ, "control")
        for program in self.config.programs:
            self.add_program(program)
        log.info(
            "corral run %s: %d programs, containment: %s",
            self.config.path,
            len(self.config.programs),
            self.containment.describe(),
        )

    def _clean_up_previous_run(self) -> None:
        previous = read_state(Path(self.config.run.state_file))
        if previous is None or previous.alive():
            return  # none, or alive: the control socket check refuses a second one
        for what in clean_up_after(previous):
            log.warning(
                "stopped a leftover of the previous corral run (pid %d): %s", previous.pid, what
            )

    def _finish(self) -> bool:
        clean = True
        for instance in self.all_instances():
            if not instance.stopped:
                clean = False
                log.error("%s: processes survived the shutdown", instance.name)
        self.signals.uninstall()
        for listener in self.listeners.values():
            listener.close()
        self.control.close()
        try:
            self.containment.close()
        except Exception as error:
            log.error("could not release every unit: %s", error)
            clean = False
        self.containment.reaper.uninstall_sigchld()
        Path(self.config.run.state_file).unlink(missing_ok=True)
        log.info("corral run stopped")
        return clean

    # -- programs ----------------------------------------------------------------
    def add_program(self, program: ProgramConfig) -> list[Instance]:
        """Create the instances of ``program`` (started by the loop when wanted)."""
        if program.socket and program.socket not in self.listeners:
            self.listeners[program.socket] = open_listener(self._socket_config(program.socket))
        instances = [Instance(program, i, self.start_generation) for i in range(program.numprocs)]
        self.instances[program.name] = instances
        return instances

    def _socket_config(self, name: str) -> Any:
        return next(s for s in self.config.sockets if s.name == name)

    def all_instances(self) -> list[Instance]:
        """Every instance, in dependency order, then those being removed."""
        return [*(i for group in self.instances.values() for i in group), *self.retired]

    def retire(self, instances: list[Instance]) -> None:
        """Stop instances that a reload removed; they are forgotten once stopped."""
        for instance in instances:
            instance.stop()
            self.retired.append(instance)

    def start_generation(self, program: ProgramConfig, index: int, number: int) -> Generation:
        generation = Generation(
            program,
            index=index,
            number=number,
            containment=self.containment,
            listener=self.listeners.get(program.socket or ""),
            logs=self._logs_for(program),
            run_dir=self.run_dir,
        )
        for pump in generation.pumps:
            self.selector.register(pump.fileno(), selectors.EVENT_READ, pump)
        return generation

    def _logs_for(self, program: ProgramConfig) -> tuple[RotatingLog, RotatingLog]:
        out, err = self.config.log_files(program.name)
        return self._log(Path(out), program), self._log(Path(err), program)

    def _log(self, path: Path, program: ProgramConfig) -> RotatingLog:
        if path not in self.logs:
            self.logs[path] = RotatingLog(
                path, max_bytes=program.log_max_bytes, backups=program.log_backups
            )
        return self.logs[path]

    # -- the loop ------------------------------------------------------------------
    def _tick(self) -> None:
        for key, _ in self.selector.select(TICK_S):
            self._on_event(key.data)
        self._on_signals(self.signals.take())
        self.containment.reaper.reap_nowait()
        self._start_wanted()
        for instance in self.all_instances():
            instance.tick()
        self.retired = [i for i in self.retired if not i.stopped]
        self.commands.answer_finished()
        if self.shutting_down and time.monotonic() > self.shutdown_deadline:
            self._kill_everything("shutdown took longer than shutdown_timeout_s")

    def _on_event(self, data: Any) -> None:
        if data == "reaper":
            self.containment.reaper.wait_sigchld(timeout_s=0)
        elif data == "control":
            connection = self.control.accept()
            if connection is not None:
                self.selector.register(connection.fileno(), selectors.EVENT_READ, connection)
        elif isinstance(data, Connection):
            if data.read():
                self.selector.unregister(data.fileno())
                self.commands.handle(data)
        elif isinstance(data, LogPump) and not data.pump():
            self.selector.unregister(data.fileno())  # every writer is gone
            data.close()

    def _start_wanted(self) -> None:
        if self.shutting_down:
            return
        for instance in self.all_instances():
            startable = instance.state is ProgramState.STOPPED and instance.stopped
            if instance.wanted and startable and self._dependencies_running(instance.program):
                instance.start()

    def _dependencies_running(self, program: ProgramConfig) -> bool:
        return all(
            i.state is ProgramState.RUNNING
            for name in program.depends_on
            for i in self.instances.get(name, [])
        )

    def _all_stopped(self) -> bool:
        return all(instance.stopped for instance in self.all_instances())

    # -- signals -------------------------------------------------------------------
    def _on_signals(self, received: list[int]) -> None:
        for signum in received:
            if signum == signal.SIGHUP:
                self.commands.reload(everything=False, connection=None)
            elif signum in FORWARDED:
                self._forward(signum)
            elif self.shutting_down or signum == signal.SIGQUIT:
                self._kill_everything(f"{signal.Signals(signum).name} during shutdown")
            else:
                self.shutdown(f"{signal.Signals(signum).name}")

    def _forward(self, signum: int) -> None:
        for instance in self.all_instances():
            if instance.current is not None:
                instance.current.ref.send_signal(signum)

    def shutdown(self, why: str) -> None:
        """Stop every program (its stop signal, grace, then its whole tree), then exit."""
        if self.shutting_down:
            return
        log.info("%s: stopping every program", why)
        self.shutting_down = True
        self.shutdown_deadline = time.monotonic() + self.config.run.shutdown_timeout_s
        for instance in reversed(self.all_instances()):
            instance.stop()

    def _kill_everything(self, why: str) -> None:
        log.warning("%s: killing every program's processes now", why)
        self.shutting_down = True
        self.shutdown_deadline = float("inf")
        for instance in self.all_instances():
            instance.kill_now()

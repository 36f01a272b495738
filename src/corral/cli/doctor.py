"""``corral doctor [APP]``: what this machine gives corral, and what to fix.

Each check is a small function returning a ``Check`` record (name, ok/warn/fail, what
was found, the fix). Nothing is left changed: the cgroup probe is removed, the
subreaper flag is tried in a forked child, the broker is only asked for statistics.
Exit code: 0 when every check is ok or warn; BROKER_UNAVAILABLE when the broker check
fails; FAILURE when another check fails; CONFIG (through ``load_app``) for a bad APP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from corral.app import Corral
from corral.errors import CorralError
from corral.exitcodes import ExitCode
from corral.loader import load_app
from corral.process import UnsupportedPlatform, find_abandoned, prctl
from corral.process.cgroup import find_writable_cgroup

__all__ = ["Check", "doctor", "local_checks"]

Status = Literal["ok", "warn", "fail"]
BROKER_CHECK = "broker"
BROKER_TIMEOUT_S = 10.0
MAX_SKEW_S = 1.0
# Inits known to reap orphans; anything else as PID 1 may leave zombies (seed 003).
REAPING_INITS = ("systemd", "init", "tini", "docker-init", "dumb-init", "catatonit", "s6-svscan")

out = Console(highlight=False)


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: ``status`` is ok, warn or fail; ``fix`` says what to do if not ok."""

    name: str
    status: Status
    found: str
    fix: str = ""


# -- containment ---------------------------------------------------------------------
def _probe_kill_support(base: Path) -> tuple[bool, bool]:
    """(cgroup.kill, cgroup.freeze) in a child cgroup of ``base``, probed and removed."""
    probe = base / f"corral-doctor-{os.getpid()}"
    probe.mkdir()
    try:
        return (probe / "cgroup.kill").exists(), (probe / "cgroup.freeze").exists()
    finally:
        probe.rmdir()


def check_containment() -> Check:
    """Which strategy ``choose_containment()`` would pick here, and why."""
    try:
        base = find_writable_cgroup()
    except UnsupportedPlatform as error:
        return Check("containment", "fail", str(error), "run corral workers on Linux")
    if base is None:
        return Check(
            "containment",
            "warn",
            "no writable cgroup v2: fallback to subreaper + process groups + CORRAL_UNIT "
            "markers (a process that clears its environment and calls setsid() can escape)",
            "give corral a cgroup v2 it may write: run as root, under systemd with "
            "Delegate=yes, or in a container with a private, writable cgroup namespace",
        )
    try:
        has_kill, has_freeze = _probe_kill_support(base)
    except OSError as error:  # e.g. cgroup.max.descendants reached since the first probe
        return Check(
            "containment",
            "warn",
            f"cgroup v2 at {base} looked writable, but a probe cgroup failed: {error}",
            "check cgroup.max.descendants and permissions of that cgroup",
        )
    if has_kill:
        return Check("containment", "ok", f"cgroup v2 writable at {base} (cgroup.kill)")
    if has_freeze:
        return Check("containment", "ok", f"cgroup v2 writable at {base} (freeze + SIGKILL)")
    return Check(
        "containment",
        "fail",
        f"cgroup v2 writable at {base} but units have neither cgroup.kill nor cgroup.freeze",
        "use Linux 5.2+ (cgroup.freeze) or 5.14+ (cgroup.kill)",
    )


def check_abandoned() -> Check:
    """Owner cgroups left behind by dead workers (a SIGKILLed worker main)."""
    try:
        found = find_abandoned()
    except UnsupportedPlatform:
        return Check("abandoned units", "ok", "no cgroups on this platform")
    if not found:
        return Check("abandoned units", "ok", "no cgroups of dead owners")
    names = ", ".join(f"{a.directory}" for a in found)
    return Check(
        "abandoned units",
        "warn",
        f"{len(found)} owner cgroup(s) of dead or unknown owners: {names}",
        "the next worker start reclaims those of dead owners "
        "(corral.process.reclaim_abandoned()); remove unrecorded ones by hand",
    )


# -- subreaper, pidfd, PID 1 ---------------------------------------------------------------
def _subreaper_in_child() -> bool:
    """Set PR_SET_CHILD_SUBREAPER in a forked child, so this process is not changed."""
    pid = os.fork()
    if pid == 0:  # the child: only os._exit may end it (never unwind into click)
        try:
            prctl.set_child_subreaper(True)
            os._exit(0 if prctl.is_child_subreaper() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def check_subreaper() -> Check:
    """Whether this process may become a child subreaper (orphans re-parent to it)."""
    try:
        works = _subreaper_in_child()
    except (UnsupportedPlatform, OSError, AttributeError) as error:
        works, detail = False, str(error)
    else:
        detail = "prctl(PR_SET_CHILD_SUBREAPER) refused"
    if works:
        return Check("subreaper", "ok", "PR_SET_CHILD_SUBREAPER works: orphans re-parent to us")
    return Check(
        "subreaper",
        "fail",
        f"cannot become a child subreaper: {detail}",
        "use Linux 3.4+; orphans would re-parent to PID 1 and escape containment",
    )


def check_pidfd() -> Check:
    """Whether the kernel offers pidfds (processes named without pid-reuse races)."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        found = f"Python on {sys.platform} has no os.pidfd_open"
    else:
        try:
            os.close(pidfd_open(os.getpid()))
        except OSError as error:
            found = f"os.pidfd_open failed: {error}"
        else:
            return Check("pidfd", "ok", "os.pidfd_open works")
    return Check(
        "pidfd",
        "warn",
        f"{found}; processes are identified by (pid, start time) instead",
        "use Linux 5.3+ for pidfds (a tiny pid-reuse window remains without them)",
    )


def _pid1_command() -> str:
    with contextlib.suppress(OSError):
        raw = Path("/proc/1/cmdline").read_bytes()
        return " ".join(p.decode(errors="replace") for p in raw.split(b"\0") if p)
    return ""


def check_pid1() -> Check:
    """Who is PID 1 of this pid namespace, and whether orphans outside corral get reaped."""
    if os.getpid() == 1:
        return Check(
            "PID 1",
            "warn",
            "this process is PID 1 of its pid namespace (a container)",
            "run `corral worker` or `corral run` itself as PID 1 (it reaps), or use an init "
            "that reaps (docker run --init, tini)",
        )
    command = _pid1_command()
    name = Path(command.split(" ", 1)[0]).name if command else "unknown"
    if name in REAPING_INITS or "corral" in command:
        return Check("PID 1", "ok", f"PID 1 is {name}, which reaps orphans")
    return Check(
        "PID 1",
        "warn",
        f"PID 1 is {name!r}, which may not reap orphans: corral owners are "
        "subreapers and reap their own, but other processes can be left <defunct>",
        "in a container, make `corral worker` / `corral run` PID 1 (exec form), or run it "
        "under a reaping init (docker run --init, tini)",
    )


# -- broker and clock -------------------------------------------------------------------------
def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _broker_fix(url: str) -> str:
    if url.startswith(("redis://", "rediss://")):
        return f"start redis-server or fix CORRAL_BROKER_URL (now {_redacted(url)})"
    return f"check that the file in {_redacted(url)} is writable, or fix CORRAL_BROKER_URL"


def _within(call: Callable[[], object], timeout_s: float) -> object:
    """``call()`` in a daemon thread; TimeoutError if it has no answer in ``timeout_s``."""
    answer: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            answer.append(call())
        except BaseException as error:
            failure.append(error)

    thread = threading.Thread(target=run, name="corral-doctor-broker", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if failure:
        raise failure[0]
    if not answer:
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    return answer[0]


def check_broker(app: Corral, *, timeout_s: float = BROKER_TIMEOUT_S) -> Check:
    """The broker answers ``queue_stats()`` within ``timeout_s``."""
    started = time.monotonic()
    try:
        _within(app.broker.queue_stats, timeout_s)
    except Exception as error:  # whatever it is, the doctor reports it
        return Check(
            BROKER_CHECK,
            "fail",
            f"{_redacted(app.broker_url)}: {error}",
            _broker_fix(app.broker_url),
        )
    elapsed_ms = (time.monotonic() - started) * 1000
    return Check(BROKER_CHECK, "ok", f"{_redacted(app.broker_url)} answered in {elapsed_ms:.0f} ms")


def check_clock(app: Corral) -> Check:
    """Broker clock vs local clock; leases use the broker's, so skew only shifts datetimes."""
    before = time.time()
    broker_now = app.broker.now()
    after = time.time()
    skew_s = broker_now - (before + after) / 2
    found = (
        f"local clock is {abs(skew_s):.3f} s {'behind' if skew_s > 0 else 'ahead of'} the broker"
    )
    if abs(skew_s) <= MAX_SKEW_S:
        return Check("clock", "ok", found)
    return Check(
        "clock",
        "warn",
        found + "; leases use the broker's clock, but eta/countdown sent as datetimes shift",
        "synchronise clocks (chrony / systemd-timesyncd) on this machine and the broker's",
    )


# -- the command --------------------------------------------------------------------------------
def local_checks() -> list[Check]:
    """The checks that need no app: containment, subreaper, pidfd, PID 1."""
    return [check_containment(), check_abandoned(), check_subreaper(), check_pidfd(), check_pid1()]


def app_checks(app: Corral) -> list[Check]:
    """Broker reachability, then (if it answered) the clock."""
    broker = check_broker(app)
    if broker.status == "fail":
        return [broker]
    try:
        clock = check_clock(app)
    except CorralError as error:
        clock = Check("clock", "fail", f"broker.now() failed: {error}", _broker_fix(app.broker_url))
    return [broker, clock]


def exit_code(checks: list[Check]) -> ExitCode:
    """OK unless a check failed: BROKER_UNAVAILABLE for the broker, else FAILURE."""
    failed = {c.name for c in checks if c.status == "fail"}
    if BROKER_CHECK in failed:
        return ExitCode.BROKER_UNAVAILABLE
    return ExitCode.FAILURE if failed else ExitCode.OK


_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _table(checks: list[Check]) -> Table:
    table = Table(title="corral doctor")
    for column in ("check", "status", "found", "fix"):
        table.add_column(column, overflow="fold")
    for c in checks:
        # Text, not markup: a path or an error message may hold "[...]".
        table.add_row(c.name, Text(c.status, style=_STYLES[c.status]), Text(c.found), Text(c.fix))
    return table


@click.command()
@click.argument("app_ref", metavar="[MODULE:APP]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor(app_ref: str | None, as_json: bool) -> None:
    """Check containment, subreaper, pidfd, PID 1 and (with APP) the broker and clock."""
    app = load_app(app_ref) if app_ref else None
    checks = local_checks() + (app_checks(app) if app is not None else [])
    code = exit_code(checks)
    if as_json:
        records = [dataclasses.asdict(c) for c in checks]
        click.echo(json.dumps({"ok": code == ExitCode.OK, "checks": records}, indent=2))
    else:
        out.print(_table(checks))
    if app is not None:
        app.close()
    # sys.exit, as the other commands do: run_guarded drops a click Exit's code.
    sys.exit(int(code))

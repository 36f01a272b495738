"""The program launcher: the few steps between the supervisor's fork and the program's exec.

Run as ``python -m corral.supervisor.launch [options] -- ARGV...``; it execs the
program, so the program keeps the launcher's pid. It exists because these steps
must run in the child, and ``Popen(preexec_fn=...)`` is unsafe in a process
with threads:

1. ``--pdeathsig SIG``: the kernel sends SIG to the program when the supervisor
   dies, even by SIGKILL, so no instance outlives it unowned (seeds 001, 002).
   ``--parent-pid`` closes the race where the supervisor died before the flag
   was set: the kernel would then never send the signal.
2. ``--listen-fd N``: the supervisor's listening socket becomes fd 3, announced
   with ``LISTEN_FDS=1``, ``LISTEN_PID=<pid>`` and ``LISTEN_FDNAMES`` (systemd's
   socket-activation protocol; ``corral.listen_socket()`` reads it).
3. ``--notify-socket PATH``: ``NOTIFY_SOCKET`` for ``READY=1`` (sd_notify).

Protocol variables the supervisor itself inherited (from systemd, say) are
removed unless set here, so a program never answers to the wrong manager.

A program that cannot be found exits 127, one that cannot be executed 126, as
shells do.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from corral.process.prctl import set_parent_death_signal

__all__ = ["LISTEN_FD", "launcher_argv", "main"]

LISTEN_FD = 3  # systemd's SD_LISTEN_FDS_START
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
_PROTOCOL_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET")


def launcher_argv(
    argv: Sequence[str],
    *,
    parent_pid: int | None = None,
    pdeathsig: int | None = None,
    listen_fd: int | None = None,
    listen_name: str | None = None,
    notify_path: Path | None = None,
) -> list[str]:
    """The command that launches ``argv`` through this launcher.

    Pass ``listen_fd`` to Popen in ``pass_fds`` too. ``-P`` keeps the program's
    working directory off ``sys.path``, so a file there named like a stdlib or
    corral module cannot hijack the launcher.
    """
    command = [sys.executable, "-P", "-m", "corral.supervisor.launch"]
    if parent_pid is not None:
        command += ["--parent-pid", str(parent_pid)]
    if pdeathsig is not None:
        command += ["--pdeathsig", str(int(pdeathsig))]
    if listen_fd is not None:
        command += ["--listen-fd", str(listen_fd)]
    if listen_name is not None:
        command += ["--listen-name", listen_name]
    if notify_path is not None:
        command += ["--notify-socket", os.fspath(notify_path)]
    return [*command, "--", *argv]


def main(args: Sequence[str] | None = None) -> int:
    """Prepare the process as the options say, then exec the program (returns only on failure)."""
    options = _parse(args)
    if options.pdeathsig is not None:
        _set_parent_death_signal(options.pdeathsig, options.parent_pid)
    env = _protocol_env(dict(os.environ), options)
    if options.listen_fd is not None:
        _move_listen_fd(options.listen_fd)
    return _exec(options.argv, env)


def _parse(args: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m corral.supervisor.launch",
        usage="%(prog)s [options] -- ARGV...",
        description="Set the parent-death signal, pass a listening socket, then exec ARGV.",
    )
    parser.add_argument("--parent-pid", type=int, help="exit at once unless this is our parent")
    parser.add_argument("--pdeathsig", type=_signal_number, help="signal on parent death")
    parser.add_argument("--listen-fd", type=int, help="listening socket fd to pass as fd 3")
    parser.add_argument("--listen-name", help="the socket's name, for LISTEN_FDNAMES")
    parser.add_argument("--notify-socket", help="sd_notify socket path, for NOTIFY_SOCKET")
    words = list(sys.argv[1:] if args is None else args)
    # Split at the first "--" ourselves: everything after it is the program's, verbatim,
    # even words that look like our options or another "--".
    if "--" not in words or words.index("--") == len(words) - 1:
        parser.error("give the program after '--', like: -- sleep 10")
    split = words.index("--")
    options = parser.parse_args(words[:split])
    options.argv = words[split + 1 :]
    return options


def _signal_number(text: str) -> int:
    """``"15"``, ``"TERM"`` or ``"SIGTERM"`` -> 15."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown signal {text!r}") from None


def _set_parent_death_signal(sig: int, parent_pid: int | None) -> None:
    set_parent_death_signal(sig)
    if parent_pid is not None and os.getppid() != parent_pid:
        # The parent died before the flag was set, so the kernel will never send
        # the signal: end as if it had, rather than run the program unowned.
        print(
            f"corral: launcher's parent {parent_pid} is gone; not starting the program",
            file=sys.stderr,
        )
        os._exit(128 + sig)


def _protocol_env(env: dict[str, str], options: argparse.Namespace) -> dict[str, str]:
    for name in _PROTOCOL_VARS:
        env.pop(name, None)
    if options.listen_fd is not None:
        env["LISTEN_FDS"] = "1"
        # The launcher execs the program, so our pid is the program's pid.
        env["LISTEN_PID"] = str(os.getpid())
        if options.listen_name:
            env["LISTEN_FDNAMES"] = options.listen_name
    if options.notify_socket:
        env["NOTIFY_SOCKET"] = options.notify_socket
    return env


def _move_listen_fd(fd: int) -> None:
    if fd != LISTEN_FD:
        os.dup2(fd, LISTEN_FD, inheritable=True)
        os.close(fd)
    else:
        os.set_inheritable(LISTEN_FD, True)


def _exec(argv: list[str], env: dict[str, str]) -> int:
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        print(f"corral: {argv[0]}: command not found", file=sys.stderr)
        return EXIT_NOT_FOUND
    except OSError as exc:
        print(f"corral: {argv[0]}: cannot execute: {exc.strerror}", file=sys.stderr)
        return EXIT_CANNOT_EXECUTE
    raise AssertionError("execvpe returned")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())

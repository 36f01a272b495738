"""corral.toml: parsing, defaults, paths, workers, order, and every error with file and line."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.supervisor.config import (
    ProgramConfig,
    ReadySpec,
    RunConfig,
    SocketConfig,
    WorkerOptions,
    config_reference,
    load_config,
    parse_config,
)
from corral.supervisor.config_fields import field_specs
from corral.supervisor.config_worker import worker_specs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "corral.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "corral.toml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


# --- valid files -------------------------------------------------------------------------------


def test_every_program_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [socket.web]
        address = "127.0.0.1:8000"
        [program.db]
        command = ["db"]
        [program.web]
        command = ["gunicorn", "app:wsgi"]
        numprocs = 3
        directory = "srv"
        environment = { B = "2", A = "one", PORT = 8000 }
        autostart = false
        autorestart = "always"
        start_s = 2
        start_retries = 7
        stop_signal = "SIGQUIT"
        stop_grace_s = 12.5
        kill_timeout_s = 3
        ready = "tcp:localhost:8000"
        depends_on = ["db"]
        stdout = "/var/log/web.log"
        stderr = "stdout"
        log_max_bytes = 1024
        log_backups = 0
        socket = "web"
        keep = ["*rsync*"]
        """,
    )
    web = load_config(path).program("web")
    assert web == ProgramConfig(
        name="web",
        command=("gunicorn", "app:wsgi"),
        numprocs=3,
        directory=str(tmp_path / "srv"),
        environment=(("A", "one"), ("B", "2"), ("PORT", "8000")),
        autostart=False,
        autorestart="always",
        start_s=2.0,
        start_retries=7,
        stop_signal=signal.SIGQUIT,
        stop_grace_s=12.5,
        kill_timeout_s=3.0,
        ready=ReadySpec("tcp", host="localhost", port=8000),
        depends_on=("db",),
        stdout="/var/log/web.log",
        stderr="stdout",
        log_max_bytes=1024,
        log_backups=0,
        socket="web",
        keep=("*rsync*",),
    )
    assert isinstance(web.start_s, float)
    assert hash(web)  # frozen all the way down: usable as a dict key, comparable on reload


def test_defaults_and_absolute_paths(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[program.app]\ncommand = "run --fast"\n'))
    assert config.path == tmp_path / "corral.toml"
    assert config.programs == (ProgramConfig(name="app", command=("/bin/sh", "-c", "run --fast")),)
    assert config.sockets == ()
    assert config.run == RunConfig(
        control_socket=str(tmp_path / ".corral/control.sock"),
        state_file=str(tmp_path / ".corral/run.state"),
        log_dir=str(tmp_path / ".corral/logs"),
    )
    assert config.log_files("app") == (
        str(tmp_path / ".corral/logs/app.out.log"),
        str(tmp_path / ".corral/logs/app.err.log"),
    )


def test_relative_paths_follow_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("HOME", "/home/someone")
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    path = write(
        conf_dir,
        """
        [corral]
        log_dir = "../logs"
        control_socket = "~/corral.sock"
        state_file = "/run/corral.state"
        [socket.api]
        address = "unix:run/api.sock"
        [program.app]
        command = ["app"]
        directory = "./work/../srv"
        stdout = "out.log"
        stderr = "err/app.log"
        ready = "file:run/ready"
        """,
    )
    config = parse_config(path.read_text(), path=Path(os.path.relpath(path, "/")))
    app = config.program("app")
    assert config.path == path
    assert config.run.log_dir == str(tmp_path / "logs")
    assert config.run.control_socket == "/home/someone/corral.sock"
    assert config.run.state_file == "/run/corral.state"
    assert config.socket("api").address == f"unix:{conf_dir}/run/api.sock"
    assert config.socket("api").unix_path() == f"{conf_dir}/run/api.sock"
    assert app.directory == str(conf_dir / "srv")
    assert (app.stdout, app.stderr) == (str(conf_dir / "out.log"), str(conf_dir / "err/app.log"))
    assert app.ready == ReadySpec("file", path=str(conf_dir / "run/ready"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"none"', ReadySpec("none")),
        ('"notify"', ReadySpec("notify")),
        ('"tcp:127.0.0.1:80"', ReadySpec("tcp", host="127.0.0.1", port=80)),
        ('"tcp:[::1]:8000"', ReadySpec("tcp", host="::1", port=8000)),
        ('"http:http://h:8/health"', ReadySpec("http", url="http://h:8/health")),
        ('"https://h/ok"', ReadySpec("http", url="https://h/ok")),
        ('"file:/tmp/ready"', ReadySpec("file", path="/tmp/ready")),
    ],
)
def test_ready_forms(tmp_path: Path, text: str, expected: ReadySpec) -> None:
    config = load_config(write(tmp_path, f'[program.a]\ncommand = ["a"]\nready = {text}\n'))
    assert config.program("a").ready == expected


@pytest.mark.parametrize(("text", "expected"), [('"INT"', 2), ('"sigusr1"', 10), ("1", 1)])
def test_signal_forms(tmp_path: Path, text: str, expected: int) -> None:
    config = load_config(write(tmp_path, f'[program.a]\ncommand="a"\nstop_signal = {text}\n'))
    assert config.program("a").stop_signal == signal.Signals(expected)


def test_sockets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [socket.v4]
        address = "0.0.0.0:0"
        [socket.v6]
        address = "[::1]:8001"
        backlog = 16
        [program.a]
        command = "a"
        """,
    )
    v4, v6 = load_config(path).sockets
    assert v4 == SocketConfig(name="v4", address="0.0.0.0:0")
    assert v6 == SocketConfig(name="v6", address="[::1]:8001", backlog=16)
    assert (v4.host_port(), v6.host_port(), v6.unix_path()) == (("0.0.0.0", 0), ("::1", 8001), None)


# --- workers -----------------------------------------------------------------------------------


def test_worker_expands_to_a_corral_worker_program(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [worker.mail]
        app = "shop.tasks:app"
        concurrency = 3
        queues = ["sms", "email"]
        prefetch = 8
        max_tasks_per_child = 100
        max_memory_per_child_mb = 256
        log_level = "DEBUG"
        log_format = "json"
        numprocs = 2
        environment = { A = "1" }
        """,
    )
    mail = load_config(path).program("mail")
    assert mail.kind == "worker"
    assert mail.command == (
        sys.executable, "-m", "corral.cli.main", "worker", "shop.tasks:app",
        "-c", "3", "-Q", "sms,email", "--grace-s", "29.0", "--prefetch", "8",
        "--max-tasks-per-child", "100", "--max-memory-per-child-mb", "256",
        "--log-level", "DEBUG", "--log-format", "json",
    )  # fmt: skip
    assert (mail.stop_signal, mail.stop_grace_s) == (signal.SIGTERM, 30.0)
    assert (mail.numprocs, mail.environment) == (2, (("A", "1"),))


def test_worker_defaults_and_grace(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [worker.a]
        app = "tasks:app"
        [worker.b]
        app = "tasks"
        stop_grace_s = 0.5
        """,
    )
    a, b = load_config(path).programs
    defaults = WorkerOptions(app="tasks:app")
    assert a.command[5:] == (
        "-c", str(os.cpu_count() or 1), "-Q", "default", "--grace-s", "29.0",
        "--prefetch", str(defaults.prefetch), "--max-tasks-per-child", "0",
        "--max-memory-per-child-mb", "0", "--log-level", "INFO", "--log-format", "text",
    )  # fmt: skip
    assert b.command[b.command.index("--grace-s") + 1] == "0.0"  # never negative
    assert a.autorestart == "on-failure" and a.directory is None


# --- order -------------------------------------------------------------------------------------


def test_dependency_order_is_stable_by_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [program.web]
        command = "w"
        depends_on = ["tasks", "cache"]
        [program.alone]
        command = "x"
        [worker.tasks]
        app = "tasks:app"
        depends_on = ["db"]
        [program.cache]
        command = "c"
        [program.db]
        command = "d"
        [program.last]
        command = "l"
        """,
    )
    names = [p.name for p in load_config(path).programs]
    assert names == ["db", "tasks", "cache", "web", "alone", "last"]


def test_unknown_program_lists_the_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[program.a]\ncommand="a"\n[program.b]\ncommand="b"\n'))
    with pytest.raises(ConfigError, match=r"no program or worker named 'c'; the names are: a, b"):
        config.program("c")
    with pytest.raises(ConfigError, match=r"no \[socket.s\]"):
        config.socket("s")


# --- the example and the reference -------------------------------------------------------------


def test_example_parses_and_shows_every_key() -> None:
    config = load_config(EXAMPLE)
    assert [p.name for p in config.programs] == ["redis", "web", "tasks"]
    data = tomllib.loads(EXAMPLE.read_text())
    shown = {
        "corral": set(data["corral"]),
        "program": set().union(*data["program"].values()),
        "worker": set().union(*data["worker"].values()),
        "socket": set().union(*data["socket"].values()),
    }
    assert shown == {
        "corral": set(field_specs(RunConfig)),
        "program": set(field_specs(ProgramConfig)),
        "worker": set(worker_specs()),
        "socket": set(field_specs(SocketConfig)),
    }


def test_every_key_is_documented_in_the_reference() -> None:
    reference = config_reference()
    for cls in (RunConfig, ProgramConfig, WorkerOptions, SocketConfig):
        for field in dataclasses.fields(cls):
            assert field.metadata.get("doc"), f"{cls.__name__}.{field.name} has no doc"
            if not field.metadata.get("internal"):
                assert f"\n{field.name} = " in reference
    assert 'stop_signal = "TERM"' in reference and "stop_grace_s = 30.0" in reference


# --- errors: each names the file, the line, the section and the key, and what to do ------------

P = '[program.a]\ncommand = ["a"]\n'  # a valid program to put the faulty part after (lines 1-2)

ERRORS = {
    "unknown key": (
        P + 'autorestrat = "always"\n',
        3,
        [
            "[program.a] autorestrat: unknown key 'autorestrat' (did you mean 'autorestart'?);",
            "valid keys are: autorestart, autostart, command, depends_on, directory",
        ],
    ),
    "unknown section": (
        '[programs.a]\ncommand = "a"\n',
        1,
        ["[programs]: unknown section (did you mean [program]?); the sections are: corral"],
    ),
    "unknown [corral] key": (
        "[corral]\n\nlogdir = 'x'\n" + P,
        3,
        ["[corral] logdir", "(did you mean 'log_dir'?)"],
    ),
    "section not a table": ('program = "a"\n', 1, ["[program]: expected a table"]),
    "program not a table": ('[program]\na = "x"\n', 2, ["[program] a: expected a table"]),
    "bad name": ('[program."my app"]\ncommand = "a"\n', 1, ["'my app' is not a valid name"]),
    "missing command": (
        "[program.a]\nnumprocs = 2\n",
        1,
        ["[program.a]: missing required key 'command'"],
    ),
    "empty command list": (
        "[program.a]\ncommand = []\n",
        2,
        ["[program.a] command: the command is empty"],
    ),
    "empty command item": ('[program.a]\ncommand = [""]\n', 2, ["the command is empty"]),
    "blank command string": ('[program.a]\ncommand = "  "\n', 2, ["the command is empty"]),
    "command of numbers": (
        "[program.a]\ncommand = [1]\n",
        2,
        ["expected a list of strings (the argv) or a string"],
    ),
    "int as string": (P + 'numprocs = "2"\n', 3, ["numprocs: expected an integer, got string '2'"]),
    "float for int": (P + "start_retries = 1.5\n", 3, ["expected an integer, got float 1.5"]),
    "bool for number": (
        P + "start_s = true\n",
        3,
        ["start_s: expected a number of seconds, got boolean True"],
    ),
    "string for bool": (P + 'autostart = "yes"\n', 3, ["autostart: expected true or false"]),
    "not a list": (P + 'depends_on = "b"\n', 3, ["depends_on: expected a list of strings"]),
    "bad choice": (
        P + 'autorestart = "sometimes"\n',
        3,
        ["expected one of 'always', 'on-failure', 'never'"],
    ),
    "numprocs 0": (P + "numprocs = 0\n", 3, ["numprocs: must be at least 1, got 0"]),
    "negative start_s": (P + "start_s = -1\n", 3, ["start_s: must be at least 0, got -1"]),
    "negative grace": (P + "stop_grace_s = -0.5\n", 3, ["stop_grace_s: must be at least 0"]),
    "negative retries": (P + "start_retries = -1\n", 3, ["start_retries: must be at least 0"]),
    "infinite timeout": (P + "kill_timeout_s = inf\n", 3, ["expected a finite number"]),
    "negative [corral]": (
        "[corral]\nshutdown_timeout_s = -1\n" + P,
        2,
        ["[corral] shutdown_timeout_s"],
    ),
    "bad containment": (
        '[corral]\ncontainment = "docker"\n' + P,
        2,
        ["containment: expected one of 'auto'"],
    ),
    "unknown signal": (
        P + 'stop_signal = "TERMINATE"\n',
        3,
        ["stop_signal: unknown signal 'TERMINATE'; use one of: HUP"],
    ),
    "bad signal number": (P + "stop_signal = 999\n", 3, ["999 is not a signal number"]),
    "bad ready": (
        P + 'ready = "port:80"\n',
        3,
        ['ready: \'port:80\' is not "none", "tcp:HOST:PORT"'],
    ),
    "ready without port": (P + 'ready = "tcp:localhost"\n', 3, ["'localhost' is not HOST:PORT"]),
    "ready port 0": (P + 'ready = "tcp:localhost:0"\n', 3, ["port 0 cannot be probed"]),
    "ready bad url": (P + 'ready = "http:localhost/x"\n', 3, ["is not an http:// or https://"]),
    "ready bad url port": (P + 'ready = "http://h:x/"\n', 3, ["has an invalid port"]),
    "env bad name": (
        P + 'environment = { "A-B" = "1" }\n',
        3,
        ["environment: 'A-B' is not a valid environment variable"],
    ),
    "env bool": (
        P + "environment = { DEBUG = true }\n",
        3,
        ["DEBUG: expected a string, got boolean True; quote the value"],
    ),
    "env not table": (P + 'environment = ["A=1"]\n', 3, ["expected a table such as"]),
    "env subtable line": (P + "[program.a.environment]\nX = []\n", 3, ["[program.a] environment"]),
    "depends on unknown": (
        P + 'depends_on = ["db"]\n[program.b]\ncommand = "b"\n',
        3,
        ["depends_on: no program or worker named 'db'; the names are: a, b"],
    ),
    "cycle": (
        '[program.a]\ncommand = "a"\ndepends_on = ["b"]\n[program.b]\ncommand = "b"\n'
        'depends_on = ["c"]\n[program.c]\ncommand = "c"\ndepends_on = ["a"]\n',
        3,
        ["[program.a] depends_on: dependency cycle a -> b -> c -> a; remove one"],
    ),
    "self cycle": (P + 'depends_on = ["a"]\n', 3, ["dependency cycle a -> a"]),
    "unknown socket": (
        P + 'socket = "web"\n',
        3,
        ["socket: no [socket.web]; the sockets are: none; add a [socket.NAME]"],
    ),
    "socket port": (
        '[socket.s]\naddress = "127.0.0.1:70000"\n' + P,
        2,
        ["[socket.s] address: port '70000' in '127.0.0.1:70000' is not a number"],
    ),
    "socket no port": ('[socket.s]\naddress = "localhost"\n' + P, 2, ["is not HOST:PORT"]),
    "socket bare ipv6": ('[socket.s]\naddress = "::1:80"\n' + P, 2, ["in brackets: [::1]:PORT"]),
    "socket bad ipv6": ('[socket.s]\naddress = "[::g]:80"\n' + P, 2, ["is not an IPv6 address"]),
    "socket bad host": (
        '[socket.s]\naddress = "a b:80"\n' + P,
        2,
        ["'a b' in 'a b:80' is not a host name"],
    ),
    "socket empty unix": ('[socket.s]\naddress = "unix:"\n' + P, 2, ["unix: needs a path"]),
    "socket backlog": (
        '[socket.s]\naddress = "h:1"\nbacklog = 0\n' + P,
        3,
        ["backlog: must be at least 1"],
    ),
    "socket twice": (
        '[socket.s]\naddress = "h:1"\n[socket.t]\naddress = "h:1"\n' + P,
        4,
        ["[socket.t] address: 'h:1' is already the address of [socket.s]"],
    ),
    "socket no address": ("[socket.s]\n" + P, 1, ["[socket.s]: missing required key 'address'"]),
    "worker and program": (
        P + '[worker.a]\napp = "t:app"\n',
        3,
        ["[worker.a]: a [program.a] has the same name (line 1); rename one"],
    ),
    "worker command": (
        '[worker.w]\napp = "t:app"\ncommand = "x"\n',
        3,
        ["[worker.w] command: unknown key 'command'"],
    ),
    "worker no app": (
        "[worker.w]\nconcurrency = 2\n",
        1,
        ["[worker.w]: missing required key 'app'"],
    ),
    "worker bad app": (
        '[worker.w]\napp = "t:app:x"\n',
        2,
        ["'t:app:x' is not of the form MODULE:ATTRIBUTE"],
    ),
    "worker no queues": ('[worker.w]\napp = "t"\nqueues = []\n', 3, ["name at least one queue"]),
    "worker comma queue": (
        '[worker.w]\napp = "t"\nqueues = ["a,b"]\n',
        3,
        ["one queue per list item"],
    ),
    "worker concurrency": (
        '[worker.w]\napp = "t"\nconcurrency = 0\n',
        3,
        ["concurrency: must be at least 1"],
    ),
    "worker log level": (
        '[worker.w]\napp = "t"\nlog_level = "LOUD"\n',
        3,
        ["log_level: expected one of 'DEBUG'"],
    ),
    "nothing to run": ("[corral]\n", None, ["no [program.NAME] or [worker.NAME] section"]),
    "toml syntax": (P + "numprocs = \n", 3, ["invalid TOML: Invalid value; fix the syntax"]),
    "toml duplicate": (P + "[program.a]\n", 3, ["invalid TOML: Cannot declare"]),
    "toml end of document": (P + 'x = "unterminated', 3, ["invalid TOML"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_error(tmp_path: Path, case: str) -> None:
    text, line, fragments = ERRORS[case]
    message = error_of(tmp_path, text)
    where = f"{tmp_path / 'corral.toml'}:{line}: " if line else f"{tmp_path / 'corral.toml'}: "
    assert message.startswith(where), message
    for fragment in fragments:
        assert fragment in message, message


def test_inline_tables_point_at_their_key(tmp_path: Path) -> None:
    message = error_of(tmp_path, '[program]\n\nweb = { command = "w", numproc = 2 }\n')
    assert message.startswith(f"{tmp_path / 'corral.toml'}:3: [program.web] numproc:"), message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: no such config file; create it"):
        load_config(tmp_path / "nope.toml")


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"corral.toml: cannot read the config file"):
        load_config(tmp_path / "corral.toml")

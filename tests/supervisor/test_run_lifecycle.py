"""Restarts, dependencies, workers, signals and logs under `corral run`."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cgroups import private_cgroup
from tests.helpers.procs import children_of, zombies_under
from tests.supervisor.conftest import RunEnv, pid_alive, wait_for

pytestmark = pytest.mark.timeout(120)


def test_crashing_program_backs_off_then_is_fatal(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.broken]
        command = "exit 3"
        start_s = 5
        start_retries = 2
        """
    )
    run_env.start(wait_running=False)
    assert wait_for(lambda: run_env.instance("broken")["state"] == "fatal", timeout_s=30)
    broken = run_env.instance("broken")
    assert broken["generation"] == 3  # the first start and two retries
    assert "exited 3" in broken["last_exit"]


def test_autorestart_always_restarts_with_a_new_generation(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.blinker]
        command = "sleep 1.5"
        start_s = 0.2
        autorestart = "always"
        """
    )
    run_env.start()
    assert wait_for(lambda: run_env.instance("blinker")["generation"] >= 3, timeout_s=30)


def test_autorestart_never_leaves_it_exited(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.once]
        command = "sleep 0.5"
        start_s = 0.1
        autorestart = "never"
        """
    )
    run_env.start(wait_running=False)
    assert wait_for(lambda: run_env.instance("once")["state"] == "exited", timeout_s=20)
    time.sleep(1.0)
    assert run_env.instance("once")["generation"] == 1


def test_depends_on_starts_after_the_dependency_is_ready(run_env: RunEnv) -> None:
    ready_file = run_env.workdir / "db.ready"
    run_env.write(
        f"""
        [program.web]
        command = "date +%s.%N > web.started; exec sleep 300"
        directory = "{run_env.workdir}"
        depends_on = ["db"]

        [program.db]
        command = "sleep 1; touch {ready_file}; exec sleep 300"
        ready = "file:{ready_file}"
        """
    )
    run_env.start()
    assert wait_for((run_env.workdir / "web.started").exists)
    assert wait_for(lambda: run_env.instance("web")["state"] == "running")
    assert ready_file.stat().st_mtime <= (run_env.workdir / "web.started").stat().st_mtime


def test_signal_reaches_the_main_process(run_env: RunEnv) -> None:
    run_env.write(
        f"""
        [program.hup]
        command = "trap 'echo got-hup > {run_env.workdir}/hup' HUP; while true; do sleep 0.1; done"
        """
    )
    run_env.start()
    done = run_env.ctl("signal", "hup", "HUP")
    assert done.returncode == 0, done.stderr
    assert wait_for((run_env.workdir / "hup").exists)


def test_output_goes_to_rotating_logs_and_tail(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.talker]
        command = "for i in $(seq 1 50); do echo line-$i; echo err-$i >&2; done; exec sleep 300"
        """
    )
    run_env.start()
    assert wait_for(lambda: "line-50" in run_env.ctl("tail", "talker", "-n", "3").stdout)
    tail = run_env.ctl("tail", "talker", "-n", "2").stdout.split()
    assert tail == ["line-49", "line-50"]
    assert run_env.ctl("tail", "talker", "--stderr", "-n", "1").stdout.split() == ["err-50"]


def test_worker_section_runs_a_corral_worker(run_env: RunEnv) -> None:
    app = run_env.workdir / "supapp.py"
    app.write_text(
        "import os\nfrom corral import Corral\n"
        "app = Corral(os.environ['CORRAL_BROKER_URL'])\n"
        "@app.task\ndef add(x: int, y: int) -> int:\n    return x + y\n"
    )
    url = f"sqlite:///{run_env.workdir}/broker.db"
    run_env.env["CORRAL_BROKER_URL"] = url
    run_env.write(
        f"""
        [worker.tasks]
        app = "supapp:app"
        concurrency = 1
        directory = "{run_env.workdir}"
        stop_grace_s = 5
        """
    )
    run_env.start()
    sys.path.insert(0, str(run_env.workdir))
    os.environ["CORRAL_BROKER_URL"] = url
    try:
        import supapp

        assert supapp.add.delay(2, 3).get(timeout_s=30) == 5
        supapp.app.close()
    finally:
        sys.path.remove(str(run_env.workdir))
        sys.modules.pop("supapp", None)
    assert run_env.ctl("shutdown").returncode == 0


@pytest.fixture
def isolated_cgroup() -> Iterator[Path | None]:
    with private_cgroup() as path:
        yield path


def test_corral_run_sigkilled_next_run_stops_its_leftovers_first(
    isolated_cgroup: Path | None, run_env: RunEnv
) -> None:
    # Both runs start in a cgroup of this test's own: a worker or run that a parallel
    # test starts reclaims dead owners' units under its own cgroup, and once reclaimed
    # this test's killed run before the negative control below could look (a flake).
    run_env.cgroup = isolated_cgroup if run_env.containment == "cgroup" else None
    run_env.write(
        """
        [program.php]
        command = "bash -c 'sleep 300; true'"
        """
    )
    run_env.start()
    [sleeper] = [
        p["pid"] for p in run_env.instance("php")["processes"] if p["cmdline"] == "sleep 300"
    ]
    if run_env.cgroup is not None:
        cgroup = Path(f"/proc/{sleeper}/cgroup").read_text().splitlines()[-1]
        assert f"/{run_env.cgroup.name}/corral-" in cgroup, cgroup  # the isolation holds
    assert run_env.process is not None
    run_env.process.send_signal(signal.SIGKILL)
    run_env.process.wait(timeout=10)
    try:
        # Negative control: nothing cleaned up yet, the old worker still runs (seed 002).
        time.sleep(0.5)
        assert pid_alive(sleeper)
        run_env.start()
        assert wait_for(lambda: not pid_alive(sleeper), timeout_s=20)
        assert "leftover of the previous corral run" in run_env.log(), run_env.log()
        new = [
            p["pid"] for p in run_env.instance("php")["processes"] if p["cmdline"] == "sleep 300"
        ]
        assert new and sleeper not in new
    finally:
        if pid_alive(sleeper):
            os.kill(sleeper, signal.SIGKILL)


@pytest.fixture
def pid1_env(tmp_path: Path) -> Iterator[RunEnv]:
    """One strategy is enough here: reaping as PID 1 does not depend on containment."""
    env = RunEnv(tmp_path, "cgroup")
    try:
        yield env
    finally:
        env.stop()


@pytest.mark.parametrize("reaping", ["on", "off"])
def test_pid1_reaps_100_orphaning_restarts(pid1_env: RunEnv, reaping: str) -> None:
    run_env = pid1_env
    if reaping == "off":
        run_env.env["CORRAL_UNSAFE_NO_ORPHAN_REAPING"] = "1"
    run_env.write(
        """
        [program.orphaner]
        command = "(sleep 0.05 &); exit 0"
        start_s = 0
        autorestart = "always"
        """
    )
    run_env.start(
        wait_running=False,
        command=[
            "unshare", "--pid", "--fork", "--mount-proc",
            sys.executable, "-m", "corral.cli.main", "run", "-c", str(run_env.config),
        ],
    )  # fmt: skip
    assert wait_for(lambda: run_env.instance("orphaner")["generation"] >= 100, timeout_s=90)
    assert run_env.process is not None
    [pid1] = children_of(run_env.process.pid)
    if reaping == "on":
        assert wait_for(lambda: not zombies_under(pid1), timeout_s=10), zombies_under(pid1)
    else:
        assert len(zombies_under(pid1)) >= 50  # negative control: <defunct> piles up
    os.kill(pid1, signal.SIGTERM)
    assert run_env.process.wait(timeout=30) == 0
    assert Path(run_env.workdir).exists()


def test_ctl_stop_start_restart(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.sleeper]
        command = ["sleep", "300"]
        numprocs = 2
        """
    )
    run_env.start()
    first = run_env.instance("sleeper:0")["pid"]
    assert run_env.ctl("stop", "sleeper:0").returncode == 0
    assert not pid_alive(first)
    assert run_env.instance("sleeper:0")["state"] == "stopped"
    assert run_env.instance("sleeper:1")["state"] == "running"
    started = run_env.ctl("start", "sleeper:0")
    assert started.returncode == 0 and "sleeper:0: running" in started.stdout
    second = run_env.instance("sleeper:0")["pid"]
    restarted = run_env.ctl("restart", "sleeper")
    assert restarted.returncode == 0, restarted.stderr
    assert not pid_alive(second)
    assert {i["state"] for i in run_env.status()["instances"]} == {"running"}
    unknown = run_env.ctl("stop", "nope")
    assert unknown.returncode != 0 and "no program 'nope'" in unknown.stderr


def test_usr1_to_corral_run_is_forwarded_to_the_programs(run_env: RunEnv) -> None:
    """As in a container, where `docker kill -s USR1` reaches only PID 1."""
    loop = f"trap 'echo got-usr1 >> {run_env.workdir}/usr1' USR1; while true; do sleep 0.1; done"
    run_env.write(
        f"""
        [program.app]
        command = "{loop}"
        numprocs = 2
        """
    )
    run_env.start()
    assert run_env.process is not None
    run_env.process.send_signal(signal.SIGUSR1)
    usr1 = run_env.workdir / "usr1"
    assert wait_for(lambda: usr1.exists() and usr1.read_text().count("got-usr1") == 2)

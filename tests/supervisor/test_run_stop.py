"""What "stopped" means: the whole tree, never just the main pid (seeds 001, 002)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.supervisor.conftest import RunEnv, pid_alive, wait_for

pytestmark = pytest.mark.timeout(120)


def _pids_running(env: RunEnv, name: str, needle: str) -> list[int]:
    return [p["pid"] for p in env.instance(name)["processes"] if p["cmdline"] == needle]


def test_bash_c_wrapper_stops_completely(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.php]
        command = "bash -c 'sleep 300; true'"
        stop_grace_s = 2
        """
    )
    run_env.start()
    [sleeper] = _pids_running(run_env, "php", "sleep 300")
    everything = [p["pid"] for p in run_env.instance("php")["processes"]]
    done = run_env.ctl("stop", "php")
    assert done.returncode == 0, done.stderr
    assert "php: stopped" in done.stdout
    assert not any(pid_alive(p) for p in everything)  # stopped means the unit is empty
    assert not pid_alive(sleeper)


def test_negative_control_term_to_the_wrapper_alone_leaves_the_worker() -> None:
    """What supervisord does: SIGTERM to the main pid. `bash -c` dies; its child lives on."""
    wrapper = subprocess.Popen(["bash", "-c", "sleep 300; true"])
    try:
        assert wait_for(lambda: _children(wrapper.pid) != [])
        [sleeper] = _children(wrapper.pid)
        wrapper.send_signal(signal.SIGTERM)
        wrapper.wait(timeout=10)
        time.sleep(0.2)
        assert pid_alive(sleeper)  # the old worker keeps running (seed 002)
    finally:
        for pid in _children(wrapper.pid) + ([sleeper] if "sleeper" in locals() else []):
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    from tests.helpers.procs import children_of

    return children_of(pid)


def test_shutdown_stops_setsid_and_double_forked_descendants(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.forker]
        command = "setsid sh -c 'sleep 300 &'; (sleep 301 &); exec sleep 302"
        stop_grace_s = 1
        """
    )
    run_env.start()
    assert wait_for(lambda: len(run_env.instance("forker")["processes"]) >= 3)
    everything = [p["pid"] for p in run_env.instance("forker")["processes"]]
    done = run_env.ctl("shutdown")
    assert done.returncode == 0, done.stderr
    assert run_env.process is not None
    assert run_env.process.wait(timeout=30) == 0
    assert not any(pid_alive(p) for p in everything)


def test_detached_helper_survives_stop_and_nohup_one_does_not(run_env: RunEnv) -> None:
    script = run_env.workdir / "helpers.py"
    script.write_text(
        "import subprocess, time, pathlib\n"
        "import corral\n"
        "kept = corral.spawn(['sleep', '300'], detach=True)\n"
        "pathlib.Path('kept.pid').write_text(str(kept.pid))\n"
        "subprocess.run(['sh', '-c', 'nohup sleep 301 >/dev/null 2>&1 & echo $! > plain.pid'])\n"
        "time.sleep(300)\n"
    )
    run_env.write(
        f"""
        [program.app]
        command = ["{sys.executable}", "helpers.py"]
        directory = "{run_env.workdir}"
        stop_grace_s = 1
        """
    )
    run_env.start()
    kept_file, plain_file = run_env.workdir / "kept.pid", run_env.workdir / "plain.pid"
    assert wait_for(lambda: kept_file.exists() and plain_file.exists() and plain_file.read_text())
    kept, plain = int(kept_file.read_text()), int(plain_file.read_text())
    try:
        assert run_env.ctl("stop", "app").returncode == 0
        assert not pid_alive(plain)  # nohup does not take a process out of the unit
        assert pid_alive(kept)  # detach does (seed 001)
        assert kept in [p["pid"] for p in run_env.status().get("detached", [])]
    finally:
        if pid_alive(kept):
            os.kill(kept, signal.SIGKILL)


def test_second_term_kills_without_waiting(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.stubborn]
        command = "trap '' TERM; sleep 300 & wait; wait"
        stop_grace_s = 60
        """
    )
    run_env.start()
    pids = [p["pid"] for p in run_env.instance("stubborn")["processes"]]
    assert run_env.process is not None
    run_env.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert any(pid_alive(p) for p in pids)  # still within its 60 s grace
    run_env.process.send_signal(signal.SIGTERM)
    assert run_env.process.wait(timeout=15) == 0
    assert not any(pid_alive(p) for p in pids)


def test_a_second_corral_run_on_the_same_socket_is_refused(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.sleeper]
        command = ["sleep", "300"]
        """
    )
    run_env.start()
    second = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "run", "-c", str(run_env.config)],
        cwd=run_env.workdir,
        env=run_env.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 78
    assert "already using the control socket" in second.stderr
    socket_path = Path(run_env.workdir / ".corral" / "control.sock")
    assert socket_path.stat().st_mode & 0o777 == 0o600


def test_keep_rule_spares_matching_processes(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.app]
        command = "nohup sleep 303 >/dev/null 2>&1 & exec sleep 300"
        keep = ["sleep 303"]
        stop_grace_s = 1
        """
    )
    run_env.start()
    assert wait_for(lambda: len(run_env.instance("app")["processes"]) == 2)
    kept = next(
        p["pid"] for p in run_env.instance("app")["processes"] if p["cmdline"] == "sleep 303"
    )
    main = run_env.instance("app")["pid"]
    try:
        assert run_env.ctl("stop", "app").returncode == 0
        assert not pid_alive(main)
        assert pid_alive(kept)
        assert kept in [p["pid"] for p in run_env.status()["detached"]]
    finally:
        if pid_alive(kept):
            os.kill(kept, signal.SIGKILL)

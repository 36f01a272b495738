"""``Task[P, R]`` keeps the task's signature: mypy --strict accepts good calls and rejects bad ones.

Each file in tests/typing_cases/ marks the lines that must be errors with
``# E: <text of mypy's message>``; every unmarked line must check cleanly.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = sorted((REPO / "tests" / "typing_cases").glob("*.py"))
# Two spaces before the comment, as code formatters write it: prose mentioning marks is skipped.
MARK = re.compile(r"\S  # E: (?P<text>.+?)\s*$")
REPORT = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<text>.*)$")

Errors = dict[tuple[str, int], list[str]]


def expected_errors(path: Path) -> dict[int, str]:
    """Line number -> the text its ``# E:`` mark expects."""
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        mark = MARK.search(line)
        if mark:
            found[number] = mark["text"]
    return found


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Errors:
    """Run mypy --strict once over every case file; its errors by (file name, line)."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache)]
    command += ["--no-error-summary", "--hide-error-context", "--no-pretty"]
    run = subprocess.run(
        [*command, *map(str, CASES)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 2 would be a crash or bad config
    errors: Errors = {}
    for line in run.stdout.splitlines():
        report = REPORT.match(line)
        if report:
            key = (Path(report["path"]).name, int(report["line"]))
            errors.setdefault(key, []).append(report["text"])
    return errors


def test_there_are_cases() -> None:
    assert CASES
    assert all(expected_errors(case) for case in CASES)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_bad_calls_are_rejected(case: Path, reported: Errors) -> None:
    missing = []
    for line, text in expected_errors(case).items():
        if not any(text in error for error in reported.get((case.name, line), [])):
            missing.append(
                f"{case.name}:{line}: expected {text!r}, got {reported.get((case.name, line))}"
            )
    assert not missing, "\n".join(missing)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_good_calls_check_cleanly(case: Path, reported: Errors) -> None:
    marked = expected_errors(case)
    unexpected = [
        f"{name}:{line}: {texts}"
        for (name, line), texts in sorted(reported.items())
        if name == case.name and line not in marked
    ]
    assert not unexpected, "\n".join(unexpected)

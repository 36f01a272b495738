"""broker_from_url: SQLite URLs, unknown schemes and options."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.brokers import broker_from_url
from corral.brokers.sqlite import SqliteBroker
from corral.errors import ConfigError


def test_absolute_path(tmp_path: Path) -> None:
    broker = broker_from_url(f"sqlite:///{tmp_path}/abs.db")
    try:
        assert isinstance(broker, SqliteBroker)
        assert broker.path == tmp_path / "abs.db"
        assert broker.url == f"sqlite:///{tmp_path}/abs.db"
        assert (tmp_path / "abs.db").exists()
    finally:
        broker.close()


def test_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    broker = broker_from_url("sqlite:///data/rel.db", busy_timeout_s=1.0)
    try:
        assert isinstance(broker, SqliteBroker)
        assert broker.path == tmp_path / "data" / "rel.db"
        assert broker.busy_timeout_s == 1.0
    finally:
        broker.close()


def test_the_url_of_a_broker_opens_the_same_file(tmp_path: Path) -> None:
    first = SqliteBroker(tmp_path / "same.db")
    second = broker_from_url(first.url)
    try:
        assert isinstance(second, SqliteBroker) and second.path == first.path
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("url", ["amqp://localhost", "postgres://x/y", "corral.db", ""])
def test_unknown_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite://, redis://, rediss://"):
        broker_from_url(url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:////"])
def test_sqlite_url_without_a_file(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///relative/path\.db"):
        broker_from_url(url)


def test_unknown_option_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"busy_timeout.*busy_timeout_s, clock"):
        broker_from_url(f"sqlite:///{tmp_path}/x.db", busy_timeout=3)


def test_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "x.db"
    with pytest.raises(ConfigError, match=str(missing)):
        broker_from_url(f"sqlite:///{missing}")

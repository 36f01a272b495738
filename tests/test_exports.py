"""The public API is curated: ``corral.__all__`` is exactly this list, and each name resolves."""

from __future__ import annotations

import inspect

import corral

EXPECTED = [
    "BrokerError",
    "BrokerUnavailable",
    "CodecError",
    "ConfigError",
    "Corral",
    "CorralError",
    "DecodeError",
    "EncodeError",
    "ExitCode",
    "PayloadTooLarge",
    "ResultError",
    "ResultHandle",
    "ResultTimeout",
    "SoftTimeLimitExceeded",
    "SupervisorUnavailable",
    "Task",
    "TaskFailed",
    "TaskOptions",
    "TaskRevoked",
    "TaskState",
    "TimeLimitExceeded",
    "UnknownTask",
    "detach",
    "listen_socket",
    "notify_ready",
    "spawn",
]


def test_all_is_exactly_the_public_api() -> None:
    assert corral.__all__ == EXPECTED


def test_every_exported_name_resolves() -> None:
    for name in corral.__all__:
        assert getattr(corral, name) is not None, name


def test_exported_names_are_documented() -> None:
    for name in corral.__all__:
        assert inspect.getdoc(getattr(corral, name)), name


def test_exported_classes_claim_a_public_module() -> None:
    # The names live in their modules (corral.app, corral.errors, ...), never in a
    # private one a user would be tempted to import from.
    for name in corral.__all__:
        module = getattr(corral, name).__module__
        assert module.startswith("corral."), (name, module)
        assert not any(part.startswith("_") for part in module.split(".")), (name, module)


def test_the_issue_imports_work() -> None:
    from corral import Corral, CorralError, TaskState

    assert (Corral, TaskState, CorralError) == (corral.Corral, corral.TaskState, corral.CorralError)


def test_no_public_name_is_left_out_of_all() -> None:
    public = {name for name in vars(corral) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(corral, name))}
    assert public - modules == set(EXPECTED)

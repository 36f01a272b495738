"""corral.supervisor: ``corral run``, the supervisor of programs and workers.

- ``config``: ``corral.toml`` declared as frozen dataclasses, parsed and validated
  (``load_config``, ``parse_config``), every error naming its file and line.

Standard library only. Import the submodules you need; this package imports
nothing, so ``import corral.supervisor`` stays cheap.
"""

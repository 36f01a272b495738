"""One module per system for bench/compare.py, each run by ``run.py`` with the python of
that system's own virtualenv (bench/.venvs/<peer>; corral and the raw floor use .venv).

``harness`` holds what they share (standard library only); ``report`` and ``targets``
turn the driver's records into RESULTS.md. The modules are imported by plain name
(this folder is on the path), not as a package.
"""

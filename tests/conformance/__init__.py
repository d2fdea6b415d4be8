"""Conformance suite: the service held to DVC itself (issue 10).

shapes.py      the corpus: one generator per repository shape (templating, params files, wdir, subfolders, ...)
repos.py       a shape made into a git repository (git init + dvc init + files + dvc add + commit)
oracle.py      one long-lived DVC process answering as `dvc stage list`, `dvc status --json`, `dvc repro` do
scenario.py    one shape exercised: service calls, DVC on copies of the workspace taken at the same moments
compare.py     both sides' answers in one comparable form
test_shapes.py one test per (check, shape); test_random_dags.py the hypothesis part

Run alone: `.ci/with-services.sh -- .venv/bin/python -m pytest tests/conformance`; more random examples with
CONFORMANCE_EXAMPLES=<n> (default 3, derandomized; with the variable set, fresh randomness).
"""

"""The fuzz suite's marker and fixtures: a session canary and a runner that judges each case."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus import Case, Env
from runner import judge, run_api, run_in_process


@pytest.fixture
def make_env(request: pytest.FixtureRequest, tmp_path: Path):
    """An Env for a case; a case that needs MNIST asks for the session's data fixture."""

    def make(case: Case) -> Env:
        if case.skip_if is not None and (reason := case.skip_if()):
            pytest.skip(reason)
        if case.mnist:
            data = request.getfixturevalue("mnist_dir")
        else:
            from ganalyze.data import resolve_data_dir

            data = resolve_data_dir()
        return Env(root=tmp_path, canary=tmp_path / "CODE-RAN", data=Path(data))

    return make


@pytest.fixture
def run_case(make_env):
    """Build a case, run it in-process through click's CliRunner and judge its outcome."""

    def run(case: Case) -> None:
        env = make_env(case)
        args = case.build(env)
        code, output = (run_api if case.api else run_in_process)(args)
        judge(case, env, code, output)

    return run

"""Cases that need a real process: devices and FIFOs (a read could hang or never end), memory
bombs (the child is killed above a resident-memory bound), and exit codes (abort, exit,
KeyboardInterrupt). The children run three at a time, each under a wall-clock limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from corpus import CASES, build_corpus
from runner import judge, run_subprocess

pytestmark = pytest.mark.fuzz

build_corpus()
PROCESS_CASES = [c for c in CASES if c.subprocess]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Build every case's inputs, then start all children at once (three in parallel)."""
    from corpus import Env

    from ganalyze.data import resolve_data_dir

    envs, futures = {}, {}
    pool = ThreadPoolExecutor(max_workers=3)
    for case in PROCESS_CASES:
        root = tmp_path_factory.mktemp("proc")
        env = Env(root, root / "CODE-RAN", resolve_data_dir())
        args = case.build(env)
        envs[case.id] = env
        futures[case.id] = pool.submit(run_subprocess, args, case.timeout, case.rss_limit_mb)
    yield envs, futures
    pool.shutdown(wait=True)


@pytest.mark.parametrize("case", PROCESS_CASES, ids=lambda c: c.id)
def test_in_a_process(case, launched) -> None:
    envs, futures = launched
    result = futures[case.id].result()
    judge(case, envs[case.id], result.code, result.output, result.killed)

"""Pickled payloads in torch files, torch.export archives and TorchScript archives: no code
runs (a canary file must never appear), every case ends in a clean error or a correct load."""

from __future__ import annotations

import pytest
from corpus import cases

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("case", cases("pickle"), ids=lambda c: c.id)
def test_torch_pickles(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("pt2"), ids=lambda c: c.id)
def test_export_archives(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("torchscript"), ids=lambda c: c.id)
def test_torchscript_archives(case, run_case) -> None:
    run_case(case)

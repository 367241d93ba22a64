"""Broken files of every kind, special paths, .npy/.npz samples and PNG folders."""

from __future__ import annotations

import pytest
from corpus import cases

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("case", cases("corrupt"), ids=lambda c: c.id)
def test_corrupt_files(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("special"), ids=lambda c: c.id)
def test_special_paths(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("npy"), ids=lambda c: c.id)
def test_npy_npz(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("png"), ids=lambda c: c.id)
def test_png_folders(case, run_case) -> None:
    run_case(case)

"""Entry points that misbehave at import or call, and hostile option values."""

from __future__ import annotations

import pytest
from corpus import cases

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("case", cases("entry"), ids=lambda c: c.id)
def test_entry_points(case, run_case) -> None:
    run_case(case)


@pytest.mark.parametrize("case", cases("options"), ids=lambda c: c.id)
def test_options(case, run_case) -> None:
    run_case(case)

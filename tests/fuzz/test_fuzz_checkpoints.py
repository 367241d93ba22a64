"""Checkpoints with missing keys, wrong types, bad values and non-finite weights, on `report`
and on `train --resume`; training that diverges."""

from __future__ import annotations

import pytest
from corpus import cases

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("case", cases("checkpoint"), ids=lambda c: c.id)
def test_checkpoints(case, run_case) -> None:
    run_case(case)

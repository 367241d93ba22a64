"""Intervals and divergences against reference values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from ganalyze.stats import entropy, kl_divergence, wilson_interval


def test_wilson_matches_hand_computed_values() -> None:
    # by hand: z = 1.959964, centre (p + z^2/2n)/(1 + z^2/n), half-width as in the docstring
    assert wilson_interval(20, 100) == pytest.approx((0.133367, 0.288830), abs=2e-6)
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and hi == pytest.approx(0.071348, abs=2e-6)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_kl_and_entropy_match_scipy() -> None:
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    assert kl_divergence(p, q) == pytest.approx(st.entropy(p, q))
    assert entropy(p) == pytest.approx(st.entropy(p))
    assert kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == float("inf")

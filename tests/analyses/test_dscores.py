"""Discriminator scores: the AUC convention, an input-blind D, messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from ganalyze import audit
from ganalyze.analyses.dscores import bootstrap_auc, roc_auc
from ganalyze.errors import InputError
from reference_gan.model import make_discriminator, make_generator


def test_auc_matches_sklearn_ties_included() -> None:
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 300).astype(float), rng.integers(0, 4, 200).astype(float)
    labels = np.r_[np.ones(300), np.zeros(200)]
    assert roc_auc(positive=pos, negative=neg) == pytest.approx(
        roc_auc_score(labels, np.r_[pos, neg])
    )
    lo, hi = bootstrap_auc(positive=pos, negative=neg, n_boot=200)
    assert lo < roc_auc(positive=pos, negative=neg) < hi


class Blind(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 1), 0.7)


def _bare(tmp_path, d: nn.Module | None = None):
    torch.manual_seed(0)
    g_path = tmp_path / "G.pt"
    torch.save(make_generator().state_dict(), g_path)
    if d is None:
        return g_path, None
    d_path = tmp_path / "D.pt"
    torch.jit.save(torch.jit.script(d), d_path)
    return g_path, d_path


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_a_discriminator_that_ignores_its_input_gives_auc_one_half(tmp_path, mnist_dir):
    g, d = _bare(tmp_path, Blind())
    rep = audit(g, discriminator=d, n_samples=300, data_dir=mnist_dir, analyses="dscores")
    res = rep.result("dscores")
    assert res.metric("d_membership_auc").value == 0.5
    assert res.metric("d_train_mean").value == pytest.approx(0.7)
    assert not res.flags
    assert "histograms" in res.figures


def test_checkpoint_discriminator_scores_real_digits_in_its_native_range(
    tiny_checkpoint, mnist_dir
) -> None:
    rep = audit(tiny_checkpoint, n_samples=500, data_dir=mnist_dir, analyses="dscores")
    res = rep.result("dscores")
    # after 2 epochs D calls most real digits real: it sees them in [-1, 1] as in training
    assert res.metric("d_acc_real_test").value > 0.8
    assert res.metric("d_test_mean").value > res.metric("d_gen_mean").value
    assert "2048 MNIST training images" in res.notes[0]


def test_skipped_without_a_discriminator(tmp_path, mnist_dir) -> None:
    g, _ = _bare(tmp_path)
    rep = audit(g, n_samples=200, data_dir=mnist_dir, analyses="dscores")
    assert [name for name, _ in rep.skipped] == ["dscores"] and not rep.results
    assert rep.skipped[0][1].startswith("needs discriminator: no discriminator was given")
    assert "--discriminator FILE" in rep.skipped[0][1]


def test_mismatched_discriminator_shape_is_a_clear_error(tmp_path, mnist_dir) -> None:
    g, _ = _bare(tmp_path)
    d_path = tmp_path / "D_big.pt"
    torch.save(make_discriminator(image_size=1024).state_dict(), d_path)
    with pytest.raises(InputError, match=r"rejected input of shape \(n, 784\)"):
        audit(g, discriminator=d_path, n_samples=200, data_dir=mnist_dir, analyses="dscores")


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_d_output_logits_option(tmp_path, mnist_dir) -> None:
    class Const(nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], 1)  # logit 0: probability 0.5

    g, d = _bare(tmp_path, Const())
    rep = audit(
        g, discriminator=d, d_output="logits", n_samples=100, data_dir=mnist_dir, analyses="dscores"
    )
    assert rep.result("dscores").metric("d_test_mean").value == pytest.approx(0.5)
    rep = audit(g, discriminator=d, n_samples=100, data_dir=mnist_dir, analyses="dscores")
    assert rep.result("dscores").metric("d_test_mean").value == 0.0  # all in [0, 1]: probs

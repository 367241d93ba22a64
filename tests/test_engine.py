"""The hand-written training step against autograd on the plain nn.Sequential models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from reference_gan.engine import FlatAdam, GANStep, epoch_stats, flatten_parameters
from reference_gan.model import make_discriminator, make_generator


def _reference_step(G, D, opt_g, opt_d, x, z1, z2):
    """The study's step, written the textbook way (Sigmoid outputs, nn.BCELoss)."""
    bce, b = nn.BCELoss(), x.shape[0]
    d_loss = bce(D(x), torch.ones(b, 1)) + bce(D(G(z1).detach()), torch.zeros(b, 1))
    opt_d.zero_grad()
    d_loss.backward()
    d_grads = [p.grad.clone() for p in D.parameters()]
    opt_d.step()
    g_loss = bce(D(G(z2)), torch.ones(b, 1))
    opt_g.zero_grad()
    opt_d.zero_grad()
    g_loss.backward()
    g_grads = [p.grad.clone() for p in G.parameters()]
    opt_g.step()
    return d_grads, g_grads


def _recording(opt, net, store):
    step = opt.step

    def wrapped():
        store.append([p.grad.clone() for p in net.parameters()])
        step()

    return wrapped


@pytest.mark.parametrize("b", [32, 7])
def test_gradients_and_adam_updates_match_autograd(b: int) -> None:
    torch.manual_seed(0)
    G, D = make_generator(), make_discriminator()
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    opt_g = torch.optim.Adam(G_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    engine = GANStep(G, D, lr=2e-4, betas=(0.5, 0.999))
    seen_d, seen_g = [], []
    engine.opt_d.step = _recording(engine.opt_d, D, seen_d)
    engine.opt_g.step = _recording(engine.opt_g, G, seen_g)
    data = torch.rand(500, 784) * 2 - 1
    logits = torch.empty(3 * b, 1)
    for _ in range(6):
        idx, z = torch.randint(0, 500, (b,)), torch.randn(2 * b, 64)
        d_ref, g_ref = _reference_step(G_ref, D_ref, opt_g, opt_d, data[idx], z[:b], z[b:])
        engine.step(data, idx, z, logits)
        for ours, ref in zip(seen_d[-1] + seen_g[-1], d_ref + g_ref, strict=True):
            torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-6)
        for ours, ref in zip(
            list(G.parameters()) + list(D.parameters()),
            list(G_ref.parameters()) + list(D_ref.parameters()),
            strict=True,
        ):
            # Adam moves each weight by about lr per step; agreement must be far finer.
            torch.testing.assert_close(ours, ref, rtol=0, atol=2e-6)


def test_logits_are_those_the_losses_come_from() -> None:
    torch.manual_seed(3)
    G, D = make_generator(), make_discriminator()
    D_before = copy.deepcopy(D)
    G_before = copy.deepcopy(G)
    engine = GANStep(G, D, lr=2e-4, betas=(0.9, 0.999))
    b, data = 16, torch.rand(100, 784) * 2 - 1
    idx, z = torch.arange(b), torch.randn(2 * b, 64)
    logits = torch.empty(3 * b, 1)
    engine.step(data, idx, z, logits)
    with torch.no_grad():
        p_real = D_before(data[idx])
        p_fake = D_before(G_before(z[:b]))
        p_gen = D(G_before(z[b:]))  # the G step sees the updated D and the old G
    torch.testing.assert_close(torch.sigmoid(logits[:b]), p_real, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.sigmoid(logits[b : 2 * b]), p_fake, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.sigmoid(logits[2 * b :]), p_gen, rtol=1e-4, atol=1e-6)


def test_epoch_stats_match_a_hand_computation_of_the_study_losses() -> None:
    torch.manual_seed(4)
    n, b = 70, 32  # batches of 32, 32 and 6
    logits = torch.randn(3 * n, 1) * 3
    stats = epoch_stats(logits, n, b)
    per_batch = {k: [] for k in stats}
    offset = 0
    for size in (32, 32, 6):
        block = logits[offset : offset + 3 * size, 0].double()
        offset += 3 * size
        p = 1 / (1 + torch.exp(-block))
        pr, pf, pg = p[:size], p[size : 2 * size], p[2 * size :]
        per_batch["d_loss"].append((-torch.log(pr)).mean() + (-torch.log(1 - pf)).mean())
        per_batch["g_loss"].append((-torch.log(pg)).mean())
        per_batch["d_real"].append(pr.mean())
        per_batch["d_fake"].append(pf.mean())
        per_batch["d_acc_real"].append((pr > 0.5).double().mean())
        per_batch["d_acc_fake"].append((pf < 0.5).double().mean())
    for key, values in per_batch.items():
        assert stats[key] == pytest.approx(float(torch.stack(values).mean()), rel=1e-9), key
    # and nn.BCELoss on the probabilities agrees with the logits form
    p = torch.sigmoid(logits[:32])
    assert float(nn.BCELoss()(p, torch.ones(32, 1))) == pytest.approx(
        float(nn.functional.softplus(-logits[:32]).mean()), rel=1e-5
    )


def test_flat_parameters_keep_the_state_dict_and_share_storage() -> None:
    torch.manual_seed(5)
    G = make_generator()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    flat = flatten_parameters(G)
    assert flat.numel() == sum(v.numel() for v in before.values())
    for key, value in G.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    flat.data.zero_()
    assert all(float(p.detach().abs().sum()) == 0 for p in G.parameters())


def test_flat_adam_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(6)
    p = nn.Parameter(torch.randn(100))
    p.grad = torch.randn(100)
    opt = FlatAdam(p, lr=1e-2, betas=(0.9, 0.999))
    opt.step()
    state = opt.state_dict()
    q = nn.Parameter(p.detach().clone())
    q.grad = p.grad.clone()
    other = FlatAdam(q, lr=1e-2, betas=(0.9, 0.999))
    other.load_state_dict(state)
    opt.step()
    other.step()
    assert torch.equal(p, q)
    assert float(opt.step_count) == 2.0

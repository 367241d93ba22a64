"""A fast training step for the reference GAN: hand-written forward and backward passes.

The maths is the study's, step for step:

- D step: D loss = BCE(D(x), 1) + BCE(D(G(z1)), 0), batch means, summed; Adam on D.
- G step: G loss = BCE(D(G(z2)), 1) with a fresh z2 (non-saturating); Adam on G.

What makes it fast on a CPU, where a batch of 32 leaves the step dominated by overheads:

- each net's parameters, gradients and Adam moments live in one flat buffer (the modules'
  parameters are views into it), so Adam is one fused kernel per net;
- G's weights do not change during the D step, so G(z1) and G(z2) are one forward pass over 2B
  latents; D sees real and fake rows in one forward pass;
- the backward passes are written out with preallocated buffers and ``out=`` GEMMs: no autograd
  graph, no weight gradients of D in the G step, no input gradient of G's first layer;
- D works in logits: d BCE(sigmoid(l), t) / dl = sigmoid(l) - t, exact where the probability
  form saturates, and the state_dict keys stay those of the Sigmoid model.

``tests/test_engine.py`` checks every gradient and update against autograd on the plain
``nn.Sequential`` models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

aten = torch.ops.aten


def flatten_parameters(module: nn.Module) -> nn.Parameter:
    """Move ``module``'s parameters into one flat buffer, keeping them as views into it.

    Returns the flat parameter; its ``.grad`` is a flat buffer whose views are the
    parameters' ``.grad``. ``module.state_dict()`` is unchanged in keys and values.
    """
    params = list(module.parameters())
    total = sum(p.numel() for p in params)
    ref = params[0]
    flat = nn.Parameter(torch.empty(total, dtype=ref.dtype, device=ref.device))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        flat.data[offset : offset + n].copy_(p.data.reshape(-1))
        p.data = flat.data[offset : offset + n].view_as(p)
        p.grad = flat.grad[offset : offset + n].view_as(p)
        offset += n
    return flat


class FlatAdam:
    """Adam (PyTorch's algorithm and defaults) on one flat parameter, as one fused kernel.

    ``torch.optim.Adam(fused=True)`` runs the same kernel, but its Python bookkeeping costs about
    as much as the kernel itself at this size; this class keeps only the state. Its
    ``state_dict`` holds plain tensors and numbers (loadable with ``weights_only=True``).
    """

    def __init__(
        self, param: nn.Parameter, lr: float, betas: tuple[float, float], eps: float = 1e-8
    ) -> None:
        self.param, self.lr, self.betas, self.eps = param, float(lr), tuple(betas), float(eps)
        self.exp_avg = torch.zeros_like(param.data)
        self.exp_avg_sq = torch.zeros_like(param.data)
        self.step_count = torch.zeros((), dtype=torch.float32, device=param.device)

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        torch._fused_adam_(
            [self.param.data],
            [self.param.grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.step_count],
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict:
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "step": self.step_count.clone(),
            "exp_avg": self.exp_avg.clone(),
            "exp_avg_sq": self.exp_avg_sq.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count.copy_(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


@dataclass
class _Work:
    """Preallocated activations and gradients for one batch size."""

    x: torch.Tensor  # (3B, 784): real, fake for the D step, fake for the G step
    target: torch.Tensor  # (2B, 1): 1 for real rows, 0 for fake rows
    g_a1: torch.Tensor
    g_a2: torch.Tensor
    d_c1: torch.Tensor
    d_c2: torch.Tensor
    d_dl: torch.Tensor
    d_de2: torch.Tensor
    d_de1: torch.Tensor
    g_dx: torch.Tensor
    g_dh2: torch.Tensor
    g_dh1: torch.Tensor


class GANStep:
    """One study-style training step of the reference G and D, with Adam on both.

    Parameters
    ----------
    generator, discriminator
        The ``nn.Sequential`` models of :mod:`reference_gan.model`; the discriminator's trailing
        Sigmoid is not run here (its loss is taken on logits).
    lr, betas
        Adam settings, shared by both nets as in the study.
    """

    def __init__(
        self,
        generator: nn.Sequential,
        discriminator: nn.Sequential,
        lr: float,
        betas: tuple[float, float],
    ) -> None:
        self.G, self.D = generator, discriminator
        self.g_flat = flatten_parameters(generator)
        self.d_flat = flatten_parameters(discriminator)
        self.opt_g = FlatAdam(self.g_flat, lr=lr, betas=betas)
        self.opt_d = FlatAdam(self.d_flat, lr=lr, betas=betas)
        self._work: dict[int, _Work] = {}
        # Transposed views stay valid: every update writes into the same flat storage.
        self._gwt = [generator[i].weight.t() for i in (0, 2, 4)]
        self._dwt = [discriminator[i].weight.t() for i in (0, 2, 4)]

    @torch.no_grad()
    def nonfinite(self) -> list[str]:
        """Which of G's weights, D's weights and the Adam moments hold NaN or infinite values.

        One float64 sum per buffer (finite exactly when every float32 element is: float32
        values cannot overflow it) and one sync, about 1 ms on a CPU (2.5x less than
        ``isfinite(t).all()``); callers run it once per epoch, never per step.
        """
        parts = {
            "G's weights": [self.g_flat],
            "D's weights": [self.d_flat],
            "Adam moments": [
                t for opt in (self.opt_g, self.opt_d) for t in (opt.exp_avg, opt.exp_avg_sq)
            ],
        }
        sums = torch.stack([t.sum(dtype=torch.float64) for ts in parts.values() for t in ts])
        finite, bad = torch.isfinite(sums).tolist(), []
        for name, ts in parts.items():
            if not all(finite[: len(ts)]):
                bad.append(name)
            finite = finite[len(ts) :]
        return bad

    def _workspace(self, b: int) -> _Work:
        if b not in self._work:
            w1 = self.G[0].weight
            hid_g, img = w1.shape[0], self.G[4].weight.shape[0]
            hid_d = self.D[0].weight.shape[0]
            kw = {"dtype": w1.dtype, "device": w1.device}
            target = torch.cat([torch.ones(b, 1, **kw), torch.zeros(b, 1, **kw)])
            self._work[b] = _Work(
                x=torch.empty(3 * b, img, **kw),
                target=target,
                g_a1=torch.empty(2 * b, hid_g, **kw),
                g_a2=torch.empty(2 * b, hid_g, **kw),
                d_c1=torch.empty(2 * b, hid_d, **kw),
                d_c2=torch.empty(2 * b, hid_d, **kw),
                d_dl=torch.empty(2 * b, 1, **kw),
                d_de2=torch.empty(2 * b, hid_d, **kw),
                d_de1=torch.empty(2 * b, hid_d, **kw),
                g_dx=torch.empty(b, img, **kw),
                g_dh2=torch.empty(b, hid_g, **kw),
                g_dh1=torch.empty(b, hid_g, **kw),
            )
        return self._work[b]

    def _d_forward(self, x: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, logits: torch.Tensor):
        D, wt = self.D, self._dwt
        torch.addmm(D[0].bias, x, wt[0], out=c1)
        F.leaky_relu_(c1, D[1].negative_slope)
        torch.addmm(D[2].bias, c1, wt[1], out=c2)
        F.leaky_relu_(c2, D[3].negative_slope)
        torch.addmm(D[4].bias, c2, wt[2], out=logits)

    def _d_backward_to_hidden(self, dl: torch.Tensor, e1, e2, de1, de2, weights: bool) -> None:
        """From dLoss/dlogits to dLoss/d(pre-activation of D's first layer), in ``de1``."""
        D = self.D
        if weights:
            torch.mm(dl.t(), e2, out=D[4].weight.grad)
            torch.sum(dl, 0, out=D[4].bias.grad)
        torch.mm(dl, D[4].weight, out=de2)
        aten.leaky_relu_backward.grad_input(de2, e2, D[3].negative_slope, True, grad_input=de2)
        if weights:
            torch.mm(de2.t(), e1, out=D[2].weight.grad)
            torch.sum(de2, 0, out=D[2].bias.grad)
        torch.mm(de2, D[2].weight, out=de1)
        aten.leaky_relu_backward.grad_input(de1, e1, D[1].negative_slope, True, grad_input=de1)

    @torch.no_grad()
    def step(
        self, data: torch.Tensor, index: torch.Tensor, z: torch.Tensor, logits: torch.Tensor
    ) -> None:
        """Run one D step and one G step.

        Parameters
        ----------
        data, index
            (N, 784) training images in [-1, 1] and the (B,) indices of this batch's rows.
        z
            (2B, latent) latents: the first B feed the D step, the last B the G step.
        logits
            (3B, 1) output buffer: D's logits on the real rows and on G(z1) before the D update,
            then on G(z2) after it (the values the study's losses and logged scores come from).
        """
        b = index.shape[0]
        w = self._workspace(b)
        torch.index_select(data, 0, index, out=w.x[:b])
        G, D = self.G, self.D
        # G forward on z1 and z2 at once: G's weights do not change in the D step.
        gwt = self._gwt
        torch.addmm(G[0].bias, z, gwt[0], out=w.g_a1).relu_()
        torch.addmm(G[2].bias, w.g_a1, gwt[1], out=w.g_a2).relu_()
        torch.addmm(G[4].bias, w.g_a2, gwt[2], out=w.x[b:]).tanh_()

        # D step on [real; G(z1)]: dBCE/dlogit = (sigmoid(l) - target) / B per half.
        xd, dl = w.x[: 2 * b], w.d_dl
        self._d_forward(xd, w.d_c1, w.d_c2, logits[: 2 * b])
        torch.sigmoid(logits[: 2 * b], out=dl)
        dl.sub_(w.target).div_(b)
        self._d_backward_to_hidden(dl, w.d_c1, w.d_c2, w.d_de1, w.d_de2, weights=True)
        torch.mm(w.d_de1.t(), xd, out=D[0].weight.grad)
        torch.sum(w.d_de1, 0, out=D[0].bias.grad)
        self.opt_d.step()

        # G step on G(z2) through the updated D: input gradients only on the D side.
        xg = w.x[2 * b :]
        c1, c2, dl = w.d_c1[:b], w.d_c2[:b], w.d_dl[:b]
        self._d_forward(xg, c1, c2, logits[2 * b :])
        torch.sigmoid(logits[2 * b :], out=dl)
        dl.sub_(1.0).div_(b)
        self._d_backward_to_hidden(dl, c1, c2, w.d_de1[:b], w.d_de2[:b], weights=False)
        dx = torch.mm(w.d_de1[:b], D[0].weight, out=w.g_dx)
        aten.tanh_backward.grad_input(dx, xg, grad_input=dx)
        h1, h2 = w.g_a1[b:], w.g_a2[b:]
        torch.mm(dx.t(), h2, out=G[4].weight.grad)
        torch.sum(dx, 0, out=G[4].bias.grad)
        dh2 = torch.mm(dx, G[4].weight, out=w.g_dh2)
        aten.threshold_backward.grad_input(dh2, h2, 0, grad_input=dh2)
        torch.mm(dh2.t(), h1, out=G[2].weight.grad)
        torch.sum(dh2, 0, out=G[2].bias.grad)
        dh1 = torch.mm(dh2, G[2].weight, out=w.g_dh1)
        aten.threshold_backward.grad_input(dh1, h1, 0, grad_input=dh1)
        torch.mm(dh1.t(), z[b:], out=G[0].weight.grad)
        torch.sum(dh1, 0, out=G[0].bias.grad)
        self.opt_g.step()


def epoch_stats(logits: torch.Tensor, n: int, b: int) -> dict[str, float]:
    """Average the study's per-batch numbers over the steps of an epoch.

    ``logits`` holds, step after step, the (3b_s, 1) blocks that :meth:`GANStep.step` writes for
    ``n`` images in batches of ``b`` (the last batch may be smaller). Each number is a batch
    mean (as the study logged them), then averaged over the batches of the epoch.
    """
    steps = math.ceil(n / b)
    sizes = torch.full((steps,), b, dtype=torch.int64)
    sizes[-1] = n - b * (steps - 1)
    lg = logits.reshape(-1).double().cpu()
    step_id = torch.repeat_interleave(torch.arange(steps), 3 * sizes)
    pos = torch.arange(3 * n) - 3 * b * step_id
    kind = pos // sizes[step_id]  # 0 real, 1 fake (D step), 2 fake (G step)
    sign = torch.where(kind == 1, 1.0, -1.0).double()  # BCE target 0 for kind 1, else 1
    groups = step_id * 3 + kind
    means = {}
    for name, values in (
        ("loss", F.softplus(sign * lg)),
        ("score", torch.sigmoid(lg)),
        ("correct", (sign * lg < 0).double()),
    ):
        means[name] = torch.bincount(groups, values, 3 * steps) / sizes.repeat_interleave(3)
        means[name] = means[name].reshape(steps, 3).mean(0)
    return {
        "d_loss": float(means["loss"][0] + means["loss"][1]),
        "g_loss": float(means["loss"][2]),
        "d_real": float(means["score"][0]),
        "d_fake": float(means["score"][1]),
        "d_acc_real": float(means["correct"][0]),
        "d_acc_fake": float(means["correct"][1]),
    }

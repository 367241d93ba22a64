"""Training speed: the textbook loop against ganalyze's trainer, in one process.

(a) the loop as the study's code writes it: torchvision MNIST with ToTensor and Normalize, a
    DataLoader (batch 32, shuffled), nn.Sequential G and D with Sigmoid, nn.BCELoss, two
    torch.optim.Adam, loss.backward();
(b) ganalyze's trainer step (reference_gan.engine.GANStep, driven as reference_gan.train drives
    it): the same maths on a pre-scaled tensor with a hand-written backward and fused Adam.

Rounds alternate (a) and (b) so that both see the same machine load; the medians and their
ratio are printed, with the FLOP-bound time per step on this machine.

    GANALYZE_DATA=../shared/data python benchmarks/train_speed.py [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn


def textbook_ms_per_step(data_dir: str, steps: int, warmup: int = 20) -> float:
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(data_dir, train=True, transform=tf), batch_size=32, shuffle=True
    )
    from reference_gan.model import make_discriminator, make_generator

    G, D = make_generator(), make_discriminator()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4)
    bce = nn.BCELoss()
    batches = iter(loader)
    start = None
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x, _ = next(batches)
        x, b = x.reshape(-1, 784), x.shape[0]
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
        d_loss = bce(D(x), ones) + bce(D(G(torch.randn(b, 64))), zeros)
        opt_d.zero_grad()
        opt_g.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(D(G(torch.randn(b, 64))), ones)
        opt_d.zero_grad()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    return (time.perf_counter() - start) / steps * 1e3


def ganalyze_ms_per_step(data: torch.Tensor, steps: int, warmup: int = 20) -> float:
    from reference_gan.engine import GANStep
    from reference_gan.model import make_discriminator, make_generator

    engine = GANStep(make_generator(), make_discriminator(), lr=2e-4, betas=(0.9, 0.999))
    n, b = len(data), 32
    perm = torch.randperm(n)
    z = torch.randn(2 * n, 64)
    logits = torch.empty(3 * n, 1)
    start = None
    for s in range(warmup + steps):  # the inner loop of reference_gan.train._Run.run_epoch
        if s == warmup:
            start = time.perf_counter()
        i, m = s * b, min(b, n - s * b)
        engine.step(data, perm[i : i + m], z[2 * i : 2 * i + 2 * m], logits[3 * i : 3 * i + 3 * m])
    return (time.perf_counter() - start) / steps * 1e3


def flops_per_step(b: int = 32, latent: int = 64, hidden: int = 256, image: int = 784) -> int:
    """GEMM FLOPs of one D step and one G step (2 per multiply-add), biases and pointwise ops
    not counted: the least work any implementation of the same maths must do."""
    g = latent * hidden + hidden * hidden + hidden * image  # G forward, per sample
    d = image * hidden + hidden * hidden + hidden  # D forward, per sample
    d_hidden_back = hidden * hidden + hidden  # D input-gradients back to layer 1
    g_input_back = hidden * image + hidden * hidden  # G input-gradients, layers 3 and 2
    macs = (
        2 * b * g  # G forward on z1 and z2
        + 2 * b * d  # D forward on real and fake (D step)
        + 2 * b * (d + d_hidden_back)  # D step backward: weight grads + hidden grads
        + b * d  # D forward on G(z2) (G step)
        + b * (d_hidden_back + image * hidden)  # D input grads down to the image
        + b * (g + g_input_back)  # G backward: weight grads + hidden grads
    )
    return 2 * macs


def machine_gflops(size: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    from ganalyze.data import ensure_mnist, load_mnist

    root = ensure_mnist(args.data_dir)
    data = load_mnist(True, root).to_tanh_range()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, batch 32, {args.steps} steps/round"
    )
    a, b = [], []
    for r in range(args.rounds):
        a.append(textbook_ms_per_step(str(root), args.steps))
        b.append(ganalyze_ms_per_step(data, args.steps))
        print(f"round {r + 1}: (a) textbook {a[-1]:.2f} ms/step  (b) ganalyze {b[-1]:.2f} ms/step")
    ma, mb = statistics.median(a), statistics.median(b)
    gflops = machine_gflops()
    bound = flops_per_step() / (gflops * 1e9) * 1e3
    print(f"(a) textbook loop (DataLoader, autograd, torch.optim.Adam): {ma:.2f} ms/step")
    print(f"(b) ganalyze trainer (hand-written backward, fused flat Adam): {mb:.2f} ms/step")
    print(f"speed-up (a)/(b): {ma / mb:.2f}x")
    print(
        f"FLOP bound: {flops_per_step() / 1e6:.0f} MFLOP/step at {gflops:.0f} GFLOP/s "
        f"(1024^3 sgemm here) = {bound:.2f} ms/step; (b) is {mb / bound:.1f}x that bound"
    )
    print(
        f"300 epochs of 1875 steps: (a) {ma * 1875 * 300 / 6e4:.0f} min, "
        f"(b) {mb * 1875 * 300 / 6e4:.0f} min"
    )


if __name__ == "__main__":
    main()

"""Distribution metrics, 10,000 generated against 10,000 real digits in the mnist_cnn space.

ganalyze's `distribution` analysis (fd, kid, precision/recall/density/coverage, classifier score,
vendi, mifid, against MNIST test and MNIST train, reference cache warm) against the reference
implementations of the same numbers vs MNIST test only: the ``prdc`` package (dense distance
matrices), a scipy.linalg.sqrtm Frechet distance and a numpy KID. The "generated" digits are
10,000 MNIST-train images (their features are computed before timing, as a report has them);
the analysis runs once to warm the reference cache, and the second run is timed.

    GANALYZE_DATA=../shared/data python benchmarks/distribution_speed.py
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg


def baseline(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    from prdc import compute_prdc

    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        out.update(compute_prdc(real_features=real, fake_features=fake, nearest_k=5))
    r, f = real.astype(np.float64), fake.astype(np.float64)
    s1, s2 = np.cov(r, rowvar=False), np.cov(f, rowvar=False)
    out["fd"] = float(((r.mean(0) - f.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2)
                      - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)  # fmt: skip
    rng, d, mmd = np.random.default_rng(0), r.shape[1], []
    for _ in range(100):
        x, y = (
            f[rng.choice(len(f), 1000, replace=False)],
            r[rng.choice(len(r), 1000, replace=False)],
        )
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        m = 1000
        mmd.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.mean())  # fmt: skip
    out["kid"] = float(np.mean(mmd))
    return out


def main() -> None:
    from ganalyze.analyses.distribution import Distribution
    from ganalyze.context import Context
    from ganalyze.generators import load_generator
    from ganalyze.reference import ReferenceData

    ref = ReferenceData(progress=False)
    for name in ("test_to_test", "train_to_train", "test_to_train"):  # warm the cache
        getattr(ref, name)("mnist_cnn")
    rows = np.random.default_rng(0).choice(len(ref.train), 10_000, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fake.npy"
        np.save(path, ref.train_images.numpy()[rows])
        ctx = Context(load_generator(path), reference=ref, progress=False)
        _ = ctx.features, ctx.neighbors_in_train("mnist_cnn", k=1)
        Distribution().run(ctx)  # warms the reference cache (KID's real-subset kernel sums)
        start = time.perf_counter()
        res = Distribution().run(ctx)
        ours = time.perf_counter() - start
    start = time.perf_counter()
    base = baseline(ref.features("test"), ctx.features)
    took = time.perf_counter() - start
    print("distribution metrics, 10,000 generated vs MNIST test (10,000) and train (60,000):")
    print(
        f"  ganalyze `distribution` (all {len(res.metrics)} metrics, test and train) {ours:6.2f} s"
    )
    print(f"  prdc + sqrtm FD + numpy KID (vs test only)            {took:6.2f} s"
          f"   ratio {took / ours:.2f}x")  # fmt: skip
    for name in ("fd", "kid", "precision", "recall", "density", "coverage"):
        print(
            f"    {name:10s} ours {res.metric(name, 'mnist_cnn').value:.6g}  "
            f"reference {base[name]:.6g}"
        )


if __name__ == "__main__":
    main()

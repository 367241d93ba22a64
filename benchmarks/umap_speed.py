"""UMAP of 10,000 generated + 10,000 real digits: stock umap-learn against ganalyze's path.

Each runs in a fresh process (imports and any numba compilation included), on the same 20,000
mnist_cnn features: 10,000 MNIST test digits as the real set and, standing in for generated
digits, 10,000 seeded MNIST-train digits (their features are precomputed, as a report has
them). Stock: ``umap.UMAP(n_neighbors=15, n_epochs=200, random_state=seed)`` (pynndescent,
numba). Ours: latent_map's ``embed``: FAISS's flat 15-NN graph and
:func:`ganalyze.embedding.umap_embedding`.
Quality: sklearn's trustworthiness (k = 15) of each layout, on the same seeded 5,000 of the
points (the full 20,000 x 20,000 rank matrix would need about 6 GB).

Then the fixed MNIST map (what latent_map draws since the map became part of the reference
cache): the 10,000 stand-ins, and 10,000 samples of a checkpoint (``--checkpoint``; by default
a 3-epoch `ganalyze train` run made on the spot), in mnist_cnn and pixel space, placed on the
layout of MNIST test (:func:`ganalyze.embedding.place`), against a joint fit of all 20,000 points.
Quality: the trustworthiness of the placed points' neighbourhoods (2,000 seeded placed points
as queries, all 20,000 points as candidate neighbours, :func:`ganalyze.embedding.
trustworthiness_of`), and sklearn's on the seeded 5,000 as above. Then the latent_map analysis,
first view and whole, on the checkpoint's 10,000 samples, in fresh processes.

    GANALYZE_DATA=../shared/data python benchmarks/umap_speed.py [--checkpoint ckpt.pt]
                                                                 [--skip-stock]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import sys, time
start = time.perf_counter()
import numpy as np
x = np.load(sys.argv[2])
if sys.argv[1] == "stock":
    import umap
    emb = umap.UMAP(n_neighbors=15, n_epochs=200, random_state=0).fit_transform(x)
else:
    from ganalyze.analyses.latent_map import embed
    emb = embed(x, 0)
np.save(sys.argv[3], emb)
print(time.perf_counter() - start)
"""

# the latent_map analysis itself on 10,000 samples of a checkpoint, reference cache warm, in a
# fresh process
ANALYSIS = r"""
import sys, time
start = time.perf_counter()
from ganalyze.analyses.latent_map import LatentMap, embed
from ganalyze.context import Context
from ganalyze.generators import load_generator
ctx = Context(load_generator(sys.argv[2]), n_samples=10_000, progress=False)
if sys.argv[1] == "first":
    from ganalyze.embedding import place
    ref = ctx.reference
    place(ctx.space("mnist_cnn"), reference=ref.space("test", "mnist_cnn"),
          reference_embedding=ref.test_map("mnist_cnn"), seed=0)
else:
    LatentMap().run(ctx)
print(time.perf_counter() - start)
"""


def _checkpoint(folder: Path) -> str:
    """A `ganalyze train --epochs 3` checkpoint (full MNIST train, about 40 s)."""
    from reference_gan.train import TrainConfig, train

    return str(train(TrainConfig(epochs=3, out=str(folder), quiet=True, device="cpu")))


def fixed_map(ref, rows: np.ndarray, ckpt: str) -> None:
    """Placement on the fixed MNIST map against a joint fit: time and trustworthiness."""
    from sklearn.manifold import trustworthiness

    from ganalyze.context import Context
    from ganalyze.embedding import place, trustworthiness_of, umap_layout
    from ganalyze.generators import load_generator

    ctx = Context(load_generator(ckpt), n_samples=10_000, progress=False, reference=ref)
    sets = {"MNIST-train stand-ins": lambda s: ref.space("train", s)[rows],
            f"samples of {Path(ckpt).name}": ctx.space}  # fmt: skip
    print("the fixed MNIST map: 10,000 points placed on MNIST test's layout vs a joint fit of "
          "all 20,000 (same process):")  # fmt: skip
    for space in ("mnist_cnn", "pixel"):
        test = ref.space("test", space)
        start = time.perf_counter()
        fixed = ref.test_map(space)
        t_map = time.perf_counter() - start
        print(f"  {space}: map from the reference cache in {t_map:.2f} s")
        for label, get in sets.items():
            new = np.ascontiguousarray(get(space), np.float32)
            x = np.concatenate([new, test])
            start = time.perf_counter()
            joint = umap_layout(x, seed=0)
            t_joint = time.perf_counter() - start
            start = time.perf_counter()
            placed = np.concatenate([place(new, reference=test, reference_embedding=fixed,
                                           seed=0), fixed])  # fmt: skip
            t_place = time.perf_counter() - start
            queries = np.random.default_rng(2).choice(len(new), 2_000, replace=False)
            sub = np.random.default_rng(1).choice(len(x), 5_000, replace=False)
            tj, tp = (trustworthiness_of(x, e, queries) for e in (joint, placed))
            sj, sp = (trustworthiness(x[sub], e[sub], n_neighbors=15) for e in (joint, placed))
            print(f"    {label:34s} joint fit {t_joint:5.1f} s, placed {t_place:5.2f} s "
                  f"({t_joint / t_place:4.1f}x); trustworthiness@15 of the placed points' "
                  f"neighbourhoods: joint {tj:.4f}, placed {tp:.4f} ({tp - tj:+.4f}); "
                  f"sklearn on 5,000 of all: joint {sj:.4f}, placed {sp:.4f}")  # fmt: skip


def main() -> None:
    import argparse

    from sklearn.manifold import trustworthiness

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None,
                        help="G for latent_map [default: train 3 epochs now]")  # fmt: skip
    parser.add_argument("--skip-stock", action="store_true", help="no umap-learn run")
    args = parser.parse_args()

    from ganalyze.reference import ReferenceData

    ref = ReferenceData(progress=False)
    rows = np.random.default_rng(0).choice(len(ref.train), 10_000, replace=False)
    x = np.concatenate([ref.features("train")[rows], ref.features("test")]).astype(np.float32)
    sub = np.random.default_rng(1).choice(len(x), 5_000, replace=False)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        np.save(data, x)
        for name in ("ganalyze",) if args.skip_stock else ("stock", "ganalyze"):
            out = Path(tmp) / f"{name}.npy"
            start = time.perf_counter()
            child = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, name, data, out],
                                   capture_output=True, text=True, check=True)  # fmt: skip
            wall = time.perf_counter() - start
            emb = np.load(out)
            results[name] = (wall, float(child.stdout.split()[-1]),
                             trustworthiness(x[sub], emb[sub], n_neighbors=15))  # fmt: skip
    print("UMAP of 20,000 mnist_cnn points (10,000 + 10,000), each in a fresh process:")
    for name, (wall, inside, trust) in results.items():
        print(
            f"  {name:9s} process {wall:6.1f} s (inside: {inside:5.1f} s)  "
            f"trustworthiness@15 {trust:.4f}"
        )
    if not args.skip_stock:
        s, g = results["stock"], results["ganalyze"]
        print(f"  speed-up {s[0] / g[0]:.2f}x; trustworthiness difference {g[2] - s[2]:+.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint or _checkpoint(Path(tmp))
        fixed_map(ref, rows, ckpt)
        print(f"latent_map, 10,000 samples of {ckpt} + 10,000 MNIST test, fresh process:")
        for part, text in (("first", "first view (samples, features, mnist_cnn UMAP)"),
                           ("whole", "whole analysis")):  # fmt: skip
            start = time.perf_counter()
            subprocess.run([sys.executable, "-W", "ignore", "-c", ANALYSIS, part, ckpt],
                           check=True, capture_output=True)  # fmt: skip
            print(f"  {text:48s} {time.perf_counter() - start:6.1f} s, imports included")


if __name__ == "__main__":
    main()

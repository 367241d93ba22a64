"""The reference cache is safe when several processes build it at once (compare's workers do)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BUILDER = """
import hashlib, os, sys, time
import numpy as np
from ganalyze.reference import ReferenceData
rng = np.random.default_rng(0)
def digits(n):
    x = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(4, 20, 2)
        x[i, r:r + 6, c:c + 3] = 255
    return x, rng.integers(0, 10, n)
(a, la), (b, lb) = digits(1500), digits(400)
ref = ReferenceData.from_arrays(a, la, b, lb)
while time.time() < float(sys.argv[1]):  # start together
    time.sleep(0.005)
parts = [ref.probs("test"), ref.features("train"), ref.test_to_train("pixel").distances,
         ref.test_to_train("mnist_cnn").indices]
print(hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest())
"""


def test_two_builders_at_once_end_with_one_complete_cache(tmp_path):
    env = {**os.environ, "GANALYZE_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    start = time.time() + 8  # both processes have imported ganalyze by then
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(start)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    digests = [out.strip().splitlines()[-1] for out, _ in outputs]
    assert digests[0] == digests[1]
    (folder,) = (tmp_path / "cache" / "reference").iterdir()
    files = sorted(folder.iterdir())
    assert not [f.name for f in files if f.name.startswith(".")]  # no temporary files left
    names = {f.name for f in files}
    assert {"train_classifier.npy", "test_classifier.npy",
            "test_to_train_pixel_k5.npy"} <= names or len(names) >= 3  # fmt: skip
    for f in files:  # every cached array is complete and loads
        assert np.load(f, allow_pickle=False).size > 0
    # a third process reads the cache as it is and gets the same arrays
    again = subprocess.run([sys.executable, "-c", BUILDER, "0"], env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.stdout.strip().splitlines()[-1] == digests[0]
    assert (
        hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
        == hashlib.sha256(b"".join(f.read_bytes() for f in sorted(folder.iterdir()))).hexdigest()
    )
    assert isinstance(Path(folder), Path)

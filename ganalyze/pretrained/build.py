"""Write a shipped generator's folder (slimmed checkpoints and manifest) from a training run.

Each checkpoint keeps what an audit needs: G, D, the config (with the member set), the epoch,
the history and the fixed latents. The optimizer and RNG states (what resuming needs) are
dropped. The member set is dropped only when it is all of MNIST train, which is what an audit
assumes when a checkpoint records none; ``config.n_train`` still says 60,000. The manifest
records each file's SHA-256, which ganalyze checks before reading it.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

KEEP = ("format", "generator", "discriminator", "config", "epoch", "step", "history", "fixed_z",
        "versions")  # fmt: skip
MNIST_TRAIN = 60_000


def slim(ck: dict) -> dict:
    """The fields of a checkpoint that an audit reads."""
    out = {k: ck[k] for k in KEEP if k in ck}
    cfg = dict(out["config"])
    idx = cfg.get("train_indices")
    if (
        idx is not None
        and len(idx) == MNIST_TRAIN
        and torch.equal(torch.sort(idx).values, torch.arange(MNIST_TRAIN, dtype=idx.dtype))
    ):
        del cfg["train_indices"]  # all of MNIST train: the audit's default member set
    elif idx is not None:
        cfg["train_indices"] = idx.to(torch.int32)
    out["config"] = cfg
    return out


def write(run: Path, epochs: list[int], out: Path, *, name: str, trained: str = "",
          max_mb: float = 12.0, log=print) -> dict:  # fmt: skip
    """Slim ``run``'s checkpoints of ``epochs`` into ``out`` with a manifest; the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for epoch in epochs:
        ck = torch.load(Path(run) / "checkpoints" / f"epoch_{epoch:04d}.pt", weights_only=True)
        buf = io.BytesIO()
        torch.save(slim(ck), buf)
        data = buf.getvalue()
        file = f"epoch_{epoch:04d}.pt"
        (out / file).write_bytes(data)
        files[str(epoch)] = {"file": file, "sha256": hashlib.sha256(data).hexdigest(),
                             "bytes": len(data)}  # fmt: skip
        log(f"{file}: {len(data) / 1e6:.2f} MB")
    total = sum(f["bytes"] for f in files.values()) / 1e6
    if total > max_mb:
        raise SystemExit(f"{total:.2f} MB in all, over the {max_mb} MB budget")
    cfg = ck["config"]
    manifest = {
        "name": name,
        "description": (
            "The study's GAN (MLP G 64-256-256-784 Tanh, MLP D 784-256-256-1 Sigmoid, Adam "
            f"lr {cfg['lr']:g}, betas {tuple(cfg['betas'])}, batch {cfg['batch_size']}, "
            f"non-saturating G loss) on {cfg['n_train']:,} MNIST-train digits, seed "
            f"{cfg['seed']}, {cfg['epochs']} epochs."
        ),
        "command": (
            f"OMP_NUM_THREADS=1 ganalyze train --seed {cfg['seed']} --epochs "
            f"{cfg['epochs']} --save-every 10 --device cpu"
            + (f" --limit {cfg['limit']}" if cfg.get("limit") else "")
        ),  # fmt: skip
        "trained": trained,
        "default_epoch": epochs[-1],
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log(f"{total:.2f} MB in all; manifest written to {out / 'manifest.json'}")
    return manifest

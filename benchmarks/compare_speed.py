"""Compare speed: `ganalyze compare` of a run's checkpoints against one `ganalyze report` each.

1. Trains a small run (5 epochs, a checkpoint each, on the first ``--limit`` training digits)
   unless ``--skip-setup RUN`` names one (its checkpoints are copied, the folder is not touched),
   and warms a reference cache (MNIST arrays, neighbours, KID sums) with one small report.
2. Times, each as fresh processes, with n samples and every analysis but latent_map, each
   variant with a private $GANALYZE_CACHE: the warm reference cache, an empty result cache:
   a. the baseline: one `ganalyze report CKPT` per checkpoint, one after the other;
   b. `ganalyze compare RUN` (the audits in one process);
   c. `ganalyze compare RUN --workers 2`;
   d. after (b), a sixth checkpoint (the last one with one byte appended), `ganalyze compare RUN`
      again into the same folder with b's cache: five audits reused, one run; against one
      report (a's mean);
   e. the same once more, every audit reused: what the comparison itself costs.
3. Prints seconds, the ratio to the baseline and the target of each; and the CPU seconds of
   each variant (its processes and theirs: figure helpers, workers) with the cores they kept
   busy on average. CPU seconds over the cores are the least wall time any schedule of that
   work can take: the floor of ``--workers``.

    GANALYZE_DATA=../shared/data python benchmarks/compare_speed.py [--n-samples 10000]
        [--limit 10000] [--analyses A,B] [--skip-setup RUN] [--keep]

The machine's speed and load change the seconds; the ratios, measured in one run, are what
matter.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "ganalyze.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str], cache: Path) -> tuple[float, str, float]:
    """Run a ganalyze command in a fresh process with ``cache`` as $GANALYZE_CACHE; return the
    wall-clock seconds, its stdout and the CPU seconds of it and its child processes."""
    env = {**os.environ, "GANALYZE_CACHE": str(cache)}
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout, _children_cpu() - cpu


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # the cache writes new files and renames: links are safe
    except OSError:
        shutil.copy2(src, dst)


def private_cache(warm: Path, target: Path) -> Path:
    """A cache folder holding the warm reference data and no results."""
    shutil.copytree(warm, target, copy_function=_link,
                    ignore=lambda d, names: ["results"] if Path(d) == warm else [])  # fmt: skip
    return target


def files(cache: Path) -> set[str]:
    """The reference data's files in a cache (results left out)."""
    return {str(p.relative_to(cache)) for p in cache.rglob("*")
            if p.is_file() and p.relative_to(cache).parts[0] != "results"}  # fmt: skip


def setup_run(args: argparse.Namespace, tmp: Path) -> Path:
    run_dir = tmp / "run"
    if args.skip_setup:
        source = Path(args.skip_setup)
        (run_dir / "checkpoints").mkdir(parents=True)
        for path in sorted((source / "checkpoints").glob("epoch_*.pt")):
            shutil.copy2(path, run_dir / "checkpoints" / path.name)
        for name in ("latest.pt", "config.json", "history.csv"):
            if (source / name).is_file():
                shutil.copy2(source / name, run_dir / name)
        return run_dir
    limit = ["--limit", str(args.limit)] if args.limit else []
    start = time.perf_counter()
    subprocess.run([*CLI, "train", "--epochs", "5", "--save-every", "1", "--out", str(run_dir),
                    "--quiet", *limit], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    print(f"setup: trained 5 epochs on {args.limit or 60000} digits in "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=10_000,
                        help="training digits of the setup run (0: all 60,000)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--analyses", metavar="A,B", default=None,
                        help="default: every registered analysis but latent_map")  # fmt: skip
    parser.add_argument("--skip-setup", metavar="RUN", default=None,
                        help="use this run folder's checkpoints instead of training")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    from ganalyze.analyses.base import registered
    from ganalyze.comparison.specs import expand_specs

    analyses = args.analyses or ",".join(name for name in registered() if name != "latent_map")
    tmp = Path(tempfile.mkdtemp(prefix="compare_speed-"))
    try:
        run_dir = setup_run(args, tmp)
        ckpts = [entry.spec for entry in expand_specs([str(run_dir)])]
        n = str(args.n_samples)
        common = ["--n-samples", n, "--analyses", analyses, "--quiet"]

        warm = tmp / "cache-warm"
        # KID's cached real-side sums are per subset size, min(1000, n): warm with that n
        warm_n = str(min(args.n_samples, 1000))
        took, _, _ = run(["report", ckpts[0], "-o", str(tmp / "warm"), "--n-samples", warm_n,
                       "--analyses", analyses, "--quiet"], warm)  # fmt: skip
        shutil.rmtree(warm / "results", ignore_errors=True)
        warmed = files(warm)
        print(f"setup: warmed the reference cache in {took:.0f} s "
              f"({len(warmed)} files, {sum((warm / f).stat().st_size for f in warmed) / 2**20:.0f}"
              f" MB)")  # fmt: skip
        print(f"machine: {os.cpu_count()} CPUs, {platform.platform()}, {platform.processor()}"
              f", Python {platform.python_version()}; load average at start "
              f"{os.getloadavg()[0]:.2f}")  # fmt: skip
        print(
            f"{len(ckpts)} checkpoints, n = {n}, analyses {analyses}; each variant a fresh "
            "process with a warm reference cache and an empty result cache"
        )

        caches: dict[str, Path] = {}
        cpu: dict[str, float] = {}

        def timed(variant: str, commands: list[list[str]], cache: str | None = None) -> list[float]:
            if cache is None:
                caches[variant] = private_cache(warm, tmp / f"cache-{variant}")
            path = caches[cache or variant]
            times, outputs = [], []
            cpu[variant] = 0.0
            for command in commands:
                took, out, used = run(command, path)
                times.append(took)
                outputs.append(out.strip())
                cpu[variant] += used
            grown = files(path) - warmed
            if grown:
                print(f"  note: {variant} added to the reference cache: {sorted(grown)[:5]}")
            said = [o.splitlines()[0] for o in outputs if o.startswith("Audited")]
            print(f"  {variant}: {', '.join(f'{t:.1f}' for t in times)} s"
                  + (f" ({'; '.join(said)})" if said else ""))  # fmt: skip
            return times

        reports = timed("a", [["report", ckpt, "-o", str(tmp / f"report-{i}"), *common]
                              for i, ckpt in enumerate(ckpts)])  # fmt: skip
        out_b = str(tmp / "compare-b")
        (serial,) = timed("b", [["compare", str(run_dir), "-o", out_b, *common]])
        (parallel,) = timed("c", [["compare", str(run_dir), "-o", str(tmp / "compare-c"),
                                   "--workers", str(args.workers), *common]])  # fmt: skip
        last = Path(ckpts[-1])
        match = re.fullmatch(r"epoch_(\d+)\.pt", last.name)
        sixth = last.with_name(f"epoch_{int(match[1]) + 1 if match else 9999:04d}.pt")
        shutil.copy2(last, sixth)
        with open(sixth, "ab") as fh:
            fh.write(b"\0")  # a new content: the cache key differs, the checkpoint loads
        (rerun,) = timed("d", [["compare", str(run_dir), "-o", out_b, *common]], cache="b")
        (reused,) = timed("e", [["compare", str(run_dir), "-o", out_b, *common]], cache="b")

        baseline, one = sum(reports), sum(reports) / len(reports)
        rows = [
            (f"a. {len(ckpts)} x ganalyze report (baseline)", baseline, baseline, None),
            ("b. ganalyze compare, serial", serial, baseline, 0.9),
            (f"c. ganalyze compare --workers {args.workers}", parallel, baseline, 0.6),
            ("   one ganalyze report (a's mean)", one, one, None),
            (f"d. compare again, a checkpoint added ({len(ckpts)} reused)", rerun, one, 1.3),
            ("e. compare again, every audit reused", reused, one, None),
        ]
        print()
        print(f"{'variant':56s} {'seconds':>8s} {'ratio':>7s}  target")
        for name, seconds, against, target in rows:
            verdict = ""
            if target is not None:
                ok = seconds / against <= target
                verdict = f"<= {target:.1f}x  {'met' if ok else 'MISSED'}"
            print(f"{name:56s} {seconds:8.1f} {seconds / against:6.2f}x  {verdict}")
        cores = os.cpu_count() or 1
        print()
        print("CPU seconds (the processes and their children) and the cores kept busy:")
        for variant, wall in (("a", baseline), ("b", serial), ("c", parallel)):
            print(f"  {variant}: {cpu[variant]:.1f} CPU s over {wall:.1f} s, "
                  f"{cpu[variant] / wall:.2f} of {cores} cores busy")  # fmt: skip
        floor = cpu["c"] / cores
        print(f"  c's floor on {cores} cores (its CPU seconds / cores): {floor:.1f} s, "
              f"{floor / baseline:.2f}x the baseline")  # fmt: skip
        print(
            "(ratios of b and c against a; of d and e against one report. The seconds depend "
            "on the machine and its load; the ratios, measured in one run, are what matter.)"
        )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

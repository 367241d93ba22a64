"""Running a corpus case (in-process or as a bounded subprocess) and judging its outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

from corpus import Case, Env


def run_in_process(args: list[str]) -> tuple[int, str]:
    """``ganalyze ARGS`` through CliRunner: (exit code, stdout and stderr together). An
    exception that escapes the CLI is appended as the traceback a real process would print."""
    from click.testing import CliRunner

    from ganalyze.cli import main

    try:
        result = CliRunner().invoke(main, args, catch_exceptions=True)
    except KeyboardInterrupt:
        raise
    except BaseException:  # GeneratorExit and kin pass CliRunner's `except Exception`
        return 1, traceback.format_exc()
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "\n" + "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, output


def run_api(args: list[str]) -> tuple[int, str]:
    """``ganalyze.load_generator(SPEC)`` and one sample of every image, as the report would: a
    GanalyzeError becomes (1, "Error: ..."), any other exception its traceback."""
    from ganalyze.errors import GanalyzeError
    from ganalyze.generators import load_generator

    try:
        gen = load_generator(args[1])
        gen.sample(len(gen.images) if gen.images is not None else 64, 0)
    except GanalyzeError as exc:
        return 1, f"Error: {exc}"
    except Exception:
        return 1, traceback.format_exc()
    return 0, ""


@dataclass
class Bounded:
    code: int | None
    output: str
    killed: str | None  # why the child was killed, None when it exited by itself
    peak_rss_mb: float
    seconds: float


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def run_subprocess(args: list[str], timeout: float, rss_limit_mb: int) -> Bounded:
    """``python -m ganalyze.cli ARGS`` in its own session, polled every 20 ms: killed (with its
    whole process group) when its resident memory passes ``rss_limit_mb`` or after
    ``timeout`` seconds. (RLIMIT_AS is no use here: importing torch maps > 3 GB of address
    space before ganalyze allocates anything.)"""
    with tempfile.TemporaryFile() as log:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ganalyze.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        killed, peak = None, 0.0
        while proc.poll() is None:
            rss = _rss_mb(proc.pid)
            peak = max(peak, rss)
            elapsed = time.monotonic() - start
            if rss > rss_limit_mb:
                killed = f"killed: resident memory {rss:.0f} MB > {rss_limit_mb} MB"
            elif elapsed > timeout:
                killed = f"killed: still running after {timeout:.0f} s"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.02)
        seconds = time.monotonic() - start
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    return Bounded(proc.returncode, output, killed, peak, seconds)


def summary(code: int | None, output: str) -> str:
    """One line that says what happened: the exception of a traceback, the Error lines, or the
    last line of output."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    if "Traceback" in output:
        tail = lines[lines.index(next(ln for ln in lines if ln.startswith("Traceback"))) :]
        exc = next((ln for ln in reversed(tail) if not ln.startswith(("File ", "^", "~"))), "")
        return f"exit {code}, Traceback: {exc[:300]}"
    errors = [ln for ln in lines if ln.startswith("Error:")]
    if errors:
        return f"exit {code}, {len(errors)} Error line(s): {errors[0][:300]}"
    return f"exit {code}, no Error line; last output: {(lines[-1] if lines else '(none)')[:300]}"


def judge(case: Case, env: Env, code: int | None, output: str, killed: str | None = None) -> None:
    """Assert the case's stated outcome, and that no pickled code ran."""
    ran = env.canary.exists()
    assert not ran, f"CODE RAN (canary created); {summary(code, output)}"
    assert killed is None, f"{killed}; {summary(code, output)}"
    lines = output.splitlines()
    n_errors = sum(ln.startswith("Error:") for ln in lines)
    if case.expect == "error":
        clean = code not in (0, None) and n_errors == 1 and "Traceback" not in output
        assert clean, f"expected a clean error; got {summary(code, output)}"
    else:
        ok = code == 0 and "Traceback" not in output and n_errors == 0
        assert ok, f"expected success; got {summary(code, output)}"
        case.check(env, output)

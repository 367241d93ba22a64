"""Figures as files: each figure laid out once and written as PNG (for the page) and as vector
PDF (for papers); and a helper process that renders an audit's figures while it goes on.

Rendering a report's two dozen figures costs about as much as a third of the audit on two
cores, all of it in one thread. :class:`BackgroundRenderer` moves it to a second process: the
audit hands each analysis's result over as soon as the analysis finishes (:meth:`submit`), the
helper draws and renders its figures on the core the analyses leave idle, and
:meth:`ganalyze.report.Report.save` writes the bytes it got back. Whatever the helper cannot
do (a figure that does not pickle, a helper that died or was never started) is rendered in
the audit's own process when the report is saved, by the same :func:`render`; the files are
the same either way.

The helper receives the audit's own results over a pipe, pickled by the audit process itself;
it reads nothing from disk. What it sends back is not pickled: a JSON header and raw bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

PNG_DPI = 100
# Figures for papers: TrueType (Type 42) fonts in PDF and PS, which venues accept; matplotlib's
# default Type 3 fonts are refused by some.
PAPER_FONTS = {"pdf.fonttype": 42, "ps.fonttype": 42}
WAIT_S = 600.0  # the longest save() waits for one figure before rendering it itself
_FRAME = struct.Struct("<Q")


@dataclass(frozen=True)
class FigureFiles:
    """One figure's files: PNG bytes (at :data:`PNG_DPI`) and vector PDF bytes."""

    png: bytes
    pdf: bytes


def render(fig: Any, dpi: int = PNG_DPI) -> FigureFiles:
    """``fig`` as PNG and PDF bytes, both cropped to the same tight bounding box.

    Equivalent to ``savefig(..., bbox_inches="tight")`` for each format, with the layout
    (constrained or tight) and the bounding box computed once rather than twice per format;
    the figure's layout engine is switched off afterwards, so the figure keeps that layout.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    with getattr(renderer, "_draw_disabled", contextlib.nullcontext)():
        fig.draw(renderer)  # runs the layout engine once
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")
    bbox = fig.get_tightbbox(renderer).padded(matplotlib.rcParams["savefig.pad_inches"])
    png, pdf = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png", dpi=dpi, bbox_inches=bbox)
    with matplotlib.rc_context(PAPER_FONTS):
        fig.savefig(pdf, format="pdf", bbox_inches=bbox)
    return FigureFiles(png=png.getvalue(), pdf=pdf.getvalue())


def render_result(result: Any, name: str) -> FigureFiles:
    """Figure ``name`` of an analysis result, drawn from its data (legends clear of the data,
    :func:`ganalyze.report.html.draw`) and rendered."""
    from ganalyze.report.html import draw

    fig = draw(result, name)
    try:
        return render(fig)
    finally:
        fig.clear()


def submit(report: Any, result: Any, renderer: BackgroundRenderer) -> None:
    """Have ``renderer`` render the figures of ``result``, one of ``report``'s results; what
    it sends back is what :func:`figure_files` returns for them."""
    cache = report.__dict__.setdefault("_figure_files", {})
    cache.update({(result.name, name): f for name, f in renderer.submit(result).items()})


def settle(report: Any) -> None:
    """Render here, from the last figure backwards, those of ``report``'s figures the helper
    has not rendered yet, until reaching one it has: the helper works from the first
    forwards, so the two meet in the middle, each on a core of its own."""
    cache = report.__dict__.get("_figure_files") or {}
    keys = [(r, name) for r in report.results for name in r.figures]
    here = 0
    for result, name in reversed(keys):
        pending = cache.get((result.name, name))
        if not isinstance(pending, Future):
            continue
        if pending.done() and pending.exception() is None:
            break  # the helper answers in order: every earlier figure is answered or underway
        cache[(result.name, name)] = None  # figure_files renders it here
        figure_files(report, result, name)
        here += 1
    if cache:
        logger.debug("figures: %d of %d rendered here, the rest by the helper", here, len(keys))


def figure_files(report: Any, result: Any, name: str) -> FigureFiles:
    """Figure ``name`` of ``result`` in ``report``, rendered once per report: the helper's
    answer when :class:`BackgroundRenderer` rendered it (waited for), else rendered here."""
    cache = report.__dict__.setdefault("_figure_files", {})
    key = (result.name, name)
    files = cache.get(key)
    if isinstance(files, Future):
        try:
            files = files.result(timeout=WAIT_S)
        except Exception as exc:
            logger.debug("figure %s/%s rendered here: %s", result.name, name, exc)
            files = None
    if files is None:
        files = render_result(result, name)
    cache[key] = files
    return files


class BackgroundRenderer:
    """Renders analysis results' figures in a helper process while the audit goes on.

    Use as a context manager, or call :meth:`close`. :meth:`submit` never blocks and never
    raises: a result that cannot be sent is rendered later in this process. With
    ``lazy=True`` the helper starts at the first :meth:`submit` (for callers that may have
    nothing to render), else at once, so that its imports overlap the audit's first steps.

    >>> with BackgroundRenderer() as renderer:                       # doctest: +SKIP
    ...     report = ganalyze.audit("ckpt.pt", renderer=renderer)
    ...     report.save("reports/ckpt")
    """

    def __init__(self, lazy: bool = False) -> None:
        self._proc: subprocess.Popen | None = None
        self._closed = False
        self._jobs: dict[int, dict[str, Future]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._next = 0
        if not lazy:
            self._start()

    def _start(self) -> None:
        if os.environ.get("GANALYZE_FIGURE_HELPER", "1") == "0":  # every figure rendered at save
            self._closed = True
            self._fail_all(RuntimeError("GANALYZE_FIGURE_HELPER=0"))
            return
        # the parent's import path, and not the working directory before it (PYTHONSAFEPATH):
        # the helper imports the same ganalyze and matplotlib as the audit
        path = os.pathsep.join(p for p in sys.path if p)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg",
                   PYTHONSAFEPATH="1", PYTHONPATH=path)  # fmt: skip
        extra = {}
        if os.name == "nt":  # no os.nice there: the same "idle moments only" as a process class
            extra["creationflags"] = subprocess.IDLE_PRIORITY_CLASS | subprocess.CREATE_NO_WINDOW
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "ganalyze.report.figures"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, **extra,
            )  # fmt: skip
        except OSError as exc:  # no interpreter to start: every figure is rendered at save
            logger.debug("no figure helper: %s", exc)
            self._closed = True
            self._fail_all(exc)
            return
        for target in (self._write, self._read):
            threading.Thread(target=target, daemon=True).start()

    def submit(self, result: Any) -> dict[str, Future]:
        """Queue every figure of ``result``; returns {figure name: Future of FigureFiles}.
        A future that fails (the figure did not pickle, draw or render, or the helper is
        gone) means: render it in this process."""
        futures = {name: Future() for name in result.figures}
        if not futures:
            return futures
        if self._proc is None and not self._closed:
            self._start()
        if self._closed:  # switched off, closed, or the helper is gone
            _fail(futures, RuntimeError("no figure helper"))
            return futures
        try:
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            rc = _changed_rc()
        except Exception as exc:  # a figure spec that does not pickle (a lambda, say)
            logger.debug("figures of %s rendered at save: %s", result.name, exc)
            _fail(futures, exc)
            return futures
        with self._lock:
            if self._closed:  # the helper died meanwhile
                _fail(futures, RuntimeError("the figure helper stopped"))
                return futures
            key, self._next = self._next, self._next + 1
            self._jobs[key] = dict(futures)
        header = json.dumps({"key": key, "figures": list(futures)}).encode()
        self._outbox.put(_frame(header) + _frame(rc) + _frame(payload))
        return futures

    def close(self) -> None:
        """Stop the helper now; figures it has not answered yet fail (and are rendered in
        this process if a report that wants them is saved later)."""
        self._closed = True
        self._outbox.put(None)
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            with contextlib.suppress(OSError):
                self._proc.stdout.close()
        self._fail_all(RuntimeError("the figure helper was closed"))

    def __enter__(self) -> BackgroundRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> None:
        stdin = self._proc.stdin
        try:
            while (frame := self._outbox.get()) is not None:
                stdin.write(frame)
                stdin.flush()
        except OSError:  # the helper is gone; the reader fails what is pending
            pass
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _read(self) -> None:
        stdout = self._proc.stdout
        try:
            while header := _read_frame(stdout):
                answer = json.loads(header)
                body = {k: _read_frame(stdout) for k in ("png", "pdf")} if answer["ok"] else {}
                with self._lock:
                    futures = self._jobs.get(answer["key"], {})
                    future = futures.pop(answer["figure"], None)
                    if not futures:
                        self._jobs.pop(answer["key"], None)
                if future is None:
                    continue
                if answer["ok"]:
                    future.set_result(FigureFiles(png=body["png"], pdf=body["pdf"]))
                else:
                    future.set_exception(RuntimeError(answer["error"]))
        except Exception as exc:  # a broken stream: whatever is pending is rendered at save
            logger.debug("figure helper's answers stopped: %s", exc)
        finally:
            with self._lock:
                self._closed = True
            self._fail_all(RuntimeError("the figure helper stopped"))

    def _fail_all(self, exc: Exception) -> None:
        with self._lock:
            jobs, self._jobs = self._jobs, {}
        for futures in jobs.values():
            _fail(futures, exc)


def _fail(futures: dict[str, Future], exc: Exception) -> None:
    for future in futures.values():
        if not future.done():
            future.set_exception(exc)


def _read_frame(stream) -> bytes:
    """One length-prefixed frame, or b"" at the end of the stream."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return b""
    (size,) = _FRAME.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError("truncated frame")
    return body


def _changed_rc() -> bytes:
    """The rcParams this process changed from matplotlib's defaults, pickled: the helper draws
    with them, so a style set in a notebook or script shapes every figure alike."""
    import warnings

    import matplotlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        changed = {}
        for key, value in matplotlib.rcParams.items():
            default = matplotlib.rcParamsDefault.get(key)
            try:
                same = bool(value == default)
            except Exception:
                same = False
            if not same and key != "backend":
                changed[key] = value
    return pickle.dumps(changed, protocol=pickle.HIGHEST_PROTOCOL)


def _frame(data: bytes) -> bytes:
    return _FRAME.pack(len(data)) + data


def _serve() -> None:
    """The helper: read jobs from stdin until it closes, each a JSON header (key, figure
    names) and a pickled result; answer each figure with a JSON header and, when it rendered,
    its PNG and PDF frames."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice on Windows
        os.nice(19)  # the audit's analyses come first; this takes the idle moments
    import matplotlib

    matplotlib.use("Agg")
    stdin = sys.stdin.buffer
    # the answers go to a copy of fd 1; fd 1 itself (print, native code) goes to stderr
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while header := _read_frame(stdin):
        job, rc, payload = json.loads(header), _read_frame(stdin), _read_frame(stdin)
        try:
            rc = pickle.loads(rc)  # noqa: S301 (the audit's own rcParams)
            result = pickle.loads(payload)  # noqa: S301 (the audit's own result, see above)
        except Exception as exc:  # e.g. a plugin's figure function defined in a notebook
            result, error = None, exc
        for name in job["figures"]:
            answer = {"key": job["key"], "figure": name, "ok": False}
            try:
                if result is None:
                    raise error
                with matplotlib.rc_context(rc):  # the audit's style (rcParams it changed)
                    files = render_result(result, name)
            except Exception as exc:
                stdout.write(_frame(json.dumps({**answer, "error": repr(exc)}).encode()))
            else:
                answer["ok"] = True
                stdout.write(_frame(json.dumps(answer).encode()) + _frame(files.png)
                             + _frame(files.pdf))  # fmt: skip
            stdout.flush()


if __name__ == "__main__":
    _serve()

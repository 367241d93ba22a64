"""Calls into user code (issue 12, section 5): no audit that silently lies, no dead process.

Each case writes a small user module into tmp_path and runs it through the Python API
(``load_generator(...).sample(...)``) and, for the generator cases, through ``ganalyze report``.
"""

from __future__ import annotations

import inspect
import re
import signal
import textwrap
import threading
import time

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganalyze import LoadOptions, load_generator
from ganalyze.cli import main
from ganalyze.errors import InputError, LoaderError
from ganalyze.generators.base import DEFAULT_TIMEOUT, Discriminator, call_user
from ganalyze.generators.entrypoint import from_entry_point, is_factory


def _module(tmp_path, body: str, name: str = "user") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text("import os, sys, time\nimport torch\n" + textwrap.dedent(body))
    return str(path)


def _g(tmp_path, body: str, attr: str = "g") -> str:
    return f"{_module(tmp_path, body)}:{attr}"


def _cli(tmp_path, spec: str, *extra: str):
    out = tmp_path / "report"
    args = ["report", spec, "-o", str(out), "--analyses", "modes", "--n-samples", "50"]
    result = CliRunner().invoke(main, [*args, "--latent-dim", "4", *extra])
    return result, out


def _assert_clean_error(result, out, match: str) -> None:
    text = result.output  # stdout and stderr together
    assert result.exit_code != 0, text
    assert "Traceback" not in text
    assert not isinstance(result.exception, AssertionError | RuntimeError | KeyError)
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, text
    assert re.search(match, errors[0]), errors[0]
    assert not (out / "index.html").exists()  # never a silently missing or partial report


# a generator's first call is the probe batch of 1,000 latents that load_generator makes
ROWS = {
    "fewer": ("return torch.rand(len(z) - 1, 784)", r"returned 999 rows \(shape \(999, 784\)\)"),
    "double": ("return torch.rand(2 * len(z), 784)", r"returned 2000 rows \(shape \(2000, 784\)\)"),
    "scalar": ("return torch.tensor(0.5)", r"returned a scalar \(shape \(\)\)"),
}


@pytest.mark.parametrize("case", sorted(ROWS))
def test_wrong_row_count_is_an_error(tmp_path, case) -> None:
    body, reason = ROWS[case]
    spec = _g(tmp_path, f"def g(z):\n    {body}\n")
    with pytest.raises(LoaderError, match=rf"The generator .*user\.py:g {reason} for 1000 inputs"):
        load_generator(spec, latent_dim=4).sample(50, seed=0)
    result, out = _cli(tmp_path, spec)
    _assert_clean_error(result, out, rf"user\.py:g {reason}.*row i belongs to input i")


RAISES = {
    "KeyError": (
        "raise KeyError('boom')",
        r"raised KeyError: 'boom' on latents of shape \(1000, 4\)",
    ),
    "ZeroDivisionError": ("return 1 / 0", r"raised ZeroDivisionError: division by zero"),
    "AssertionError": ("assert len(z) > 10**9", r"raised AssertionError \(no message\)"),
    "custom": (
        "class Broken(Exception): pass\n    raise Broken('line one\\nline two')",
        r"raised Broken: line one line two on latents",
    ),
    "RuntimeError": (
        "return torch.nn.Linear(3, 784)(z)",
        r"raised RuntimeError: mat1 and mat2.*If its latent size is not 4, pass --latent-dim",
    ),
}


@pytest.mark.parametrize("case", sorted(RAISES))
def test_a_raising_generator_is_one_error(tmp_path, case) -> None:
    body, reason = RAISES[case]
    spec = _g(tmp_path, f"def g(z):\n    {body}\n")
    with pytest.raises(LoaderError, match=rf"^The generator .*user\.py:g {reason}"):
        load_generator(spec, latent_dim=4).sample(50, seed=0)
    result, out = _cli(tmp_path, spec)
    _assert_clean_error(result, out, rf"^Error: The generator .*user\.py:g {reason}")


RETURNS = {
    "None": ("return None", r"returned None for 1000 inputs; expected images of shape"),
    "str": ("return 'images'", r"returned a str for 1000 inputs"),
    "dict": ("return {'images': z}", r"returned a dict for 1000 inputs"),
    "tuple": (
        "return torch.rand(len(z), 784), z, z",
        r"returned a tuple of 3 \(Tensor, Tensor, Tensor\).*VAE's \(recon, mu, logvar\).*"
        r"module:object\.method.*wrapper",
    ),
    "object array": ("return [z[0], 'x']", r"returned a list"),
}


@pytest.mark.parametrize("case", sorted(RETURNS))
def test_a_generator_returning_no_images_is_one_error(tmp_path, case) -> None:
    body, reason = RETURNS[case]
    spec = _g(tmp_path, f"def g(z):\n    {body}\n")
    with pytest.raises(LoaderError, match=rf"The generator .*user\.py:g {reason}"):
        load_generator(spec, latent_dim=4).sample(50, seed=0)
    result, out = _cli(tmp_path, spec)
    _assert_clean_error(result, out, rf"user\.py:g {reason}")


def test_a_list_or_array_of_numbers_is_still_accepted(tmp_path) -> None:
    spec = _g(tmp_path, "def g(z):\n    return (torch.rand(len(z), 784) > 2).numpy().tolist()\n")
    z, x = load_generator(spec, latent_dim=4).sample(10, seed=0)
    assert x.shape == (10, 1, 28, 28) and float(x.max()) == 0.0


EXITS = {
    "sys.exit() at import": (
        "sys.exit()\ndef g(z):\n    return z\n",
        r"called sys\.exit\(None\) at import",
    ),
    "sys.exit(0) at call": ("def g(z):\n    sys.exit(0)\n", r"called sys\.exit\(0\) on latents"),
    "SystemExit at import": ("raise SystemExit(3)\n", r"called sys\.exit\(3\) at import"),
    "KeyboardInterrupt at import": ("raise KeyboardInterrupt\n", r"interrupted .*at import"),
    "KeyboardInterrupt at call": (
        "def g(z):\n    raise KeyboardInterrupt\n",
        r"interrupted \(KeyboardInterrupt\) on latents",
    ),
    "exit builtin as g": ("g = exit\n", r"called sys\.exit\(tensor"),
}


@pytest.mark.parametrize("case", sorted(EXITS))
def test_exit_and_interrupt_are_clean_errors(tmp_path, case) -> None:
    body, reason = EXITS[case]
    spec = _g(tmp_path, body)
    with pytest.raises(LoaderError, match=reason):
        load_generator(spec, latent_dim=4).sample(50, seed=0)
    result, out = _cli(tmp_path, spec)
    _assert_clean_error(result, out, reason)
    if "Interrupt" in case:
        assert result.exit_code == 130


def test_import_errors_name_the_file(tmp_path) -> None:
    spec = _g(tmp_path, "{}['missing']\n")
    with pytest.raises(LoaderError, match=r"Importing .*user\.py failed: KeyError: 'missing'"):
        load_generator(spec, latent_dim=4)
    with pytest.raises(
        LoaderError, match=r"Cannot import module 'no_such_pkg_x\.mod': ModuleNotFoundError"
    ):
        load_generator("no_such_pkg_x.mod:g")


def test_a_raising_factory_and_attribute_are_clean_errors(tmp_path) -> None:
    body = """
        def make():
            raise ValueError('no weights here')
        def __getattr__(name):
            raise KeyError(name)
    """
    path = _module(tmp_path, body)
    with pytest.raises(LoaderError, match=r"user\.py:make raised ValueError: no weights here"):
        load_generator(f"{path}:make")
    with pytest.raises(LoaderError, match=r"user\.py:other raised KeyError: 'other' when its"):
        load_generator(f"{path}:other")


def test_factories_are_python_functions_and_module_classes_only() -> None:
    import os

    def make():
        return nn.Linear(2, 784)

    def draw(z):
        return z

    class Holder:
        def build(self):
            return make()

    assert is_factory(make) and is_factory(lambda: None) and is_factory(Holder().build)
    assert not any(map(is_factory, (draw, os.abort, os._exit, os.getpid, exit, time.time)))


def test_os_abort_and_exit_never_kill_the_process(tmp_path) -> None:
    """The canary: were any of these called as a factory, this test process would end here."""
    spec = _g(tmp_path, "factory = os._exit\nabort = os.abort\n", "factory")
    for target in ("os:abort", "os:_exit", spec, spec.replace(":factory", ":abort")):
        with pytest.raises(LoaderError, match=r"raised TypeError"):
            load_generator(target, latent_dim=4).sample(3, seed=0)
    result, out = _cli(tmp_path, "os:abort")
    _assert_clean_error(result, out, r"The generator os:abort raised TypeError")


LOOPS = {
    "busy loop": "def g(z):\n    while True:\n        pass\n",
    "sleep": "def g(z):\n    time.sleep(10**6)\n",
    "swallows Exception": (
        "def g(z):\n    while True:\n        try:\n            time.sleep(10)\n"
        "        except Exception:\n            pass\n"
    ),
}


@pytest.mark.parametrize("case", sorted(LOOPS))
def test_a_call_that_never_returns_is_stopped(tmp_path, case) -> None:
    assert LoadOptions().timeout == DEFAULT_TIMEOUT == 600
    start = time.monotonic()  # the probe batch at load is the first call
    with pytest.raises(LoaderError, match=r"user\.py:g did not return within 0\.3 s on latents"):
        load_generator(_g(tmp_path, LOOPS[case]), latent_dim=4, timeout=0.3)
    assert time.monotonic() - start < 30


def test_import_and_factory_are_under_the_time_limit(tmp_path) -> None:
    path = _module(tmp_path, "def make():\n    time.sleep(10**6)\n", "slow_factory")
    with pytest.raises(LoaderError, match=r"make did not return within 0\.3 s when called as"):
        from_entry_point(path, "make", torch.device("cpu"), None, False, timeout=0.3)
    path = _module(tmp_path, "while True:\n    pass\n", "slow_import")
    with pytest.raises(LoaderError, match=r"slow_import\.py did not return within 0\.3 s at"):
        from_entry_point(path, "g", torch.device("cpu"), None, False, timeout=0.3)


def test_the_time_limit_restores_the_previous_handler_and_timer() -> None:
    fired = []

    def outer(signum, frame):
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        assert call_user(lambda: 7, who="f", doing="", timeout=0.2) == 7
        with pytest.raises(LoaderError, match="did not return"):
            call_user(time.sleep, 5, who="f", doing="", timeout=0.2)
        assert signal.getsignal(signal.SIGALRM) is outer
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] < 1.0  # the outer timer still runs
        time.sleep(1.0)
        assert fired == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_outside_the_main_thread_calls_run_without_a_limit() -> None:
    results = []
    worker = threading.Thread(
        target=lambda: results.append(call_user(lambda: 3, who="f", doing="", timeout=0.1))
    )
    worker.start()
    worker.join()
    assert results == [3]


@pytest.mark.skipif(
    "timeout" not in inspect.signature(load_generator).parameters,
    reason="load_generator does not take timeout yet",
)
def test_cli_timeout_option(tmp_path) -> None:
    result, out = _cli(tmp_path, _g(tmp_path, LOOPS["sleep"]), "--timeout", "0.5")
    _assert_clean_error(result, out, r"did not return within 0\.5 s.*--timeout SECONDS")


def test_cli_documents_the_timeout() -> None:
    result = CliRunner().invoke(main, ["report", "--help"])
    assert "--timeout SECONDS" in result.output and "600" in result.output
    result = CliRunner().invoke(main, ["report", "x.py:g", "--timeout", "-1"])
    assert result.exit_code == 2


def _discriminator(body: str, tmp_path) -> Discriminator:
    path = _module(tmp_path, body, "disc")
    gen = from_entry_point(path, "d", torch.device("cpu"), None, False)  # unprobed: D's own
    d = Discriminator(gen.fn, "0,1", (784,), output="logits", name=f"of {path}:g")
    return d


D_CASES = {
    "raises": (
        "def d(x):\n    raise RuntimeError('first line\\n  second line with the detail')\n",
        r"The discriminator of .*disc\.py:g rejected input of shape \(n, 784\) in range 0,1: "
        r"RuntimeError: first line second line with the detail\. Give the D",
    ),
    "raises KeyError": (
        "def d(x):\n    raise KeyError('w')\n",
        r"The discriminator of .*disc\.py:g raised KeyError: 'w' on input of shape",
    ),
    "NaN": (
        "def d(x):\n    s = torch.zeros(len(x))\n    s[:3] = float('nan')\n    s[3] = float('inf')"
        "\n    return s\n",
        r"The discriminator of .*disc\.py:g returned 3 NaN and 1 infinite scores \(of 20\)",
    ),
    "rows": (
        "def d(x):\n    return torch.zeros(len(x) - 1)\n",
        r"returned 19 rows \(shape \(19,\)\) for 20 inputs; expected one score per image",
    ),
    "columns": (
        "def d(x):\n    return torch.zeros(len(x), 2)\n",
        r"returned 2 values per image \(shape \(20, 2\)\)",
    ),
    "tuple": ("def d(x):\n    return torch.zeros(len(x)), x\n", r"returned a tuple of 2"),
    "exit": ("def d(x):\n    sys.exit(1)\n", r"called sys\.exit\(1\) on input of shape"),
}


@pytest.mark.parametrize("case", sorted(D_CASES))
def test_discriminator_failures_are_one_error(tmp_path, case) -> None:
    body, reason = D_CASES[case]
    d = _discriminator(body, tmp_path)
    with pytest.raises(InputError, match=reason):
        d.scores(torch.rand(20, 1, 28, 28))


def test_discriminator_timeout_follows_the_generator(tmp_path) -> None:
    spec = _g(tmp_path, "def g(z):\n    return torch.rand(len(z), 784)\n")
    gen = load_generator(spec, latent_dim=4)
    gen.discriminator = Discriminator(lambda x: time.sleep(10**6), None, None)
    gen.timeout = 0.3
    gen.sample(5)
    d = gen.bound_discriminator()
    with pytest.raises(InputError, match=r"discriminator of .*user\.py:g did not return"):
        d.scores(torch.rand(4, 1, 28, 28))


@pytest.mark.parametrize("seconds", [None, 0, float("inf"), float("nan"), 1e12])
def test_no_limit_values_arm_no_timer(seconds) -> None:
    def probe():
        return signal.getitimer(signal.ITIMER_REAL)[0]

    assert call_user(probe, who="f", doing="", timeout=seconds) == 0

"""Parameters belong to their analysis: declared as a frozen dataclass, parsed by type, checked
where declared, set by --param (with the --bootstrap and --interp-digits aliases) or
audit(params=...), and recorded in meta.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ganalyze.analyses import REGISTRY, Analysis
from ganalyze.analyses.base import format_value, make_params, param_specs, resolve_params
from ganalyze.analyses.distribution import Distribution
from ganalyze.analyses.interpolation import N_PATHS, N_STEPS, Interpolation
from ganalyze.analyses.memorization import COPY_PERCENTILE, CT_CELLS, Memorization
from ganalyze.cli import main
from ganalyze.errors import InputError
from ganalyze.pipeline import audit
from ganalyze.report.html import header_rows


class Typed(Analysis):
    """Not registered: one field of each type --param parses."""

    name, title, description = "typed", "Typed", "Every parameter type."

    @dataclass(frozen=True)
    class Params:
        flag: bool = field(default=False, metadata={"help": "a bool"})
        ratio: float = field(default=0.5, metadata={"help": "a float"})
        label: str = field(default="a", metadata={"help": "a str"})
        sizes: tuple[int, ...] = field(default=(1, 2), metadata={"help": "ints"})


def test_defaults_reproduce_the_constants_and_every_parameter_has_help() -> None:
    assert Interpolation.Params() == Interpolation.Params(digits=(9, 7, 1), pairs=N_PATHS,
                                                          frames=N_STEPS)  # fmt: skip
    assert (N_PATHS, N_STEPS) == (64, 64)
    assert Distribution.Params().bootstrap == 0
    assert Memorization.Params() == Memorization.Params(COPY_PERCENTILE, CT_CELLS)
    assert (COPY_PERCENTILE, CT_CELLS) == (1.0, 50)
    for name, cls in REGISTRY.items():
        assert dataclasses.is_dataclass(cls.Params), name
        assert cls.Params.__dataclass_params__.frozen, name
        assert cls().params == cls.Params(), name
        for spec in param_specs(cls):
            assert len(spec.help) > 20, (name, spec.name)


def test_values_are_parsed_by_the_field_type() -> None:
    params = make_params(Typed, {"flag": "yes", "ratio": "0.25", "label": "b", "sizes": "3, 4,5"})
    assert params == Typed.Params(flag=True, ratio=0.25, label="b", sizes=(3, 4, 5))
    assert make_params(Typed, {"flag": "0", "sizes": [7]}) == Typed.Params(sizes=(7,))
    assert make_params(Interpolation, {"digits": "1,7"}).digits == (1, 7)
    assert make_params(Interpolation, {"digits": [np.int64(4), 5]}).digits == (4, 5)
    assert make_params(Distribution, {"bootstrap": "20"}).bootstrap == 20
    assert format_value((9, 7, 1)) == "9,7,1" and format_value(True) == "true"
    for bad, message in [({"flag": "maybe"}, r"typed\.flag expects a bool"),
                         ({"ratio": "half"}, r"typed\.ratio expects a float \(e\.g\. 0\.5\)"),
                         ({"sizes": "1,x"}, r"typed\.sizes expects a tuple\[int, \.\.\.\] "
                                            r"\(e\.g\. 1,2\); got '1,x'")]:  # fmt: skip
        with pytest.raises(InputError, match=message):
            make_params(Typed, bad)


@pytest.mark.parametrize(
    ("analysis", "values", "message"),
    [
        ("distribution", {"bootstrap": -1}, r"distribution\.bootstrap must be an integer from 0 "
         r"to 10000; got -1\. Use 0 \(no intervals\) to 10,000"),
        ("distribution", {"bootstrap": True}, "must be an integer from 0 to 10000; got True"),
        ("distribution", {"bootstrap": 2.5}, "must be an integer"),
        ("interpolation", {"digits": "7"}, r"two or more digits 0-9 .*got \(7,\)"),
        ("interpolation", {"digits": (1, 12)}, "two or more digits 0-9"),
        ("interpolation", {"pairs": 4}, r"interpolation\.pairs must be an integer from 8"),
        ("interpolation", {"frames": 2}, r"interpolation\.frames must be an integer from 3"),
        ("interpolation", {"pairs": 1000, "frames": 1000}, "at most 65,536; got 1000 x 1000"),
        ("memorization", {"copy_percentile": 0}, r"copy_percentile must be a number from 0\.1"),
        ("memorization", {"ct_cells": 1}, r"memorization\.ct_cells must be an integer from 2"),
        ("interpolation", {"digit": "1,2"}, r"Unknown parameter interpolation\.digit; the "
         r"parameters of interpolation are: interpolation\.digits, interpolation\.pairs, "
         r"interpolation\.frames"),
        ("modes", {"k": 3}, r"Unknown parameter modes\.k; the parameters of modes are: none"),
    ],
)  # fmt: skip
def test_values_are_checked_where_declared(analysis, values, message) -> None:
    with pytest.raises(InputError, match=message):
        resolve_params({analysis: values})


def test_unknown_analysis_lists_the_valid_parameters() -> None:
    with pytest.raises(InputError, match=r"unknown analyses \['interp'\]; the parameters are: "
                       r"conditional\.pairs, .*memorization\.copy_percentile, "
                       r".*distribution\.bootstrap, interpolation\.digits"):  # fmt: skip
        resolve_params({"interp": {"digits": (1, 2)}})
    with pytest.raises(InputError, match="must be a mapping of field to value"):
        resolve_params({"interpolation": (1, 2)})
    chosen = resolve_params({"interpolation": {"pairs": "16"}}, ["modes", "interpolation"])
    assert list(chosen) == ["modes", "interpolation"] and chosen["interpolation"].pairs == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "interp.digits=1,2"], "Invalid value for '--param': Parameters for unknown "
         "analyses ['interp']; the parameters are: conditional.pairs, conditional.frames, "
         "memorization.copy_percentile"),
        (["--param", "interpolation.digitz=1,2"], "Unknown parameter interpolation.digitz; the "
         "parameters of interpolation are: interpolation.digits, interpolation.pairs"),
        (["--param", "interpolation.digits"], "expected ANALYSIS.FIELD=VALUE (e.g. "
         "interpolation.digits=9,7,1); got 'interpolation.digits'."),
        (["--param", "digits=1,2"], "expected ANALYSIS.FIELD=VALUE"),
        (["--param", "distribution.bootstrap=many"], "distribution.bootstrap expects a int"),
        (["--param", "distribution.bootstrap=10001"], "must be an integer from 0 to 10000"),
        (["--interp-digits", "nine,seven"], "interpolation.digits expects a tuple[int, ...]"),
        (["--bootstrap", "3", "--param", "distribution.bootstrap=3"], "distribution.bootstrap "
         "is set twice: by --bootstrap 3 and by --param; give one of them."),
    ],
)  # fmt: skip
def test_cli_param_errors_are_usage_errors(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.npy").write_bytes(b"")
    result = CliRunner().invoke(main, ["report", "x.npy", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output


def test_cli_lists_parameters_with_defaults_and_help() -> None:
    result = CliRunner().invoke(main, ["analyses", "--params"])
    assert result.exit_code == 0, result.output
    for name in REGISTRY:
        for spec in param_specs(REGISTRY[name]):
            line = f"    {name}.{spec.name}={format_value(spec.default)} ({spec.type_name})  "
            assert line + spec.help in result.output
    assert "interpolation.digits=9,7,1 (tuple[int, ...])" in result.output
    plain = CliRunner().invoke(main, ["analyses"])
    assert "interpolation.digits" not in plain.output and "interpolation " in plain.output


@pytest.fixture(scope="module")
def small_reference():
    """A reference of random blobs (no MNIST): the parameters' path, not the numbers, matters."""
    from scipy.ndimage import gaussian_filter

    from ganalyze.reference import ReferenceData

    rng = np.random.default_rng(5)
    blobs = gaussian_filter(rng.random((500, 28, 28)), (0, 2, 2))
    blobs = (blobs - blobs.min()) / (blobs.max() - blobs.min())
    images, labels = (blobs * 255).round().astype(np.uint8), np.arange(500) % 10
    return ReferenceData.from_arrays(images[:300], labels[:300], images[300:], labels[300:])


def test_audit_params_equal_the_aliases_and_land_in_meta(small_reference, tmp_path) -> None:
    spec = tmp_path / "samples.npy"
    np.save(spec, small_reference.test_images[:60].numpy())
    kw = {"analyses": "distribution", "reference": small_reference, "seed": 2}
    by_alias = audit(spec, bootstrap=7, **kw)
    by_params = audit(spec, params={"distribution": {"bootstrap": 7}}, **kw)
    by_text = audit(spec, params={"distribution": {"bootstrap": "7"}}, **kw)
    for report in (by_params, by_text):
        pd.testing.assert_frame_equal(report.metrics, by_alias.metrics)
        assert report.meta["params"] == by_alias.meta["params"]
    assert by_alias.meta["params"] == {"distribution": {"bootstrap": 7}}
    fd = by_alias.result("distribution").metric("fd", "mnist_cnn")
    assert fd.ci_low < fd.ci_high  # the parameter reached the analysis
    assert by_alias.meta["params_changed"] == {"distribution": {"bootstrap": 7}}
    assert ("parameters", "distribution.bootstrap=7") in header_rows(by_alias.meta)

    default = audit(spec, **kw)
    assert default.meta["params"] == {"distribution": {"bootstrap": 0}}
    assert np.isnan(default.result("distribution").metric("fd", "mnist_cnn").ci_low)
    with pytest.raises(InputError, match="is set twice: by bootstrap=7 and by params"):
        audit(spec, bootstrap=7, params={"distribution": {"bootstrap": 7}}, **kw)
    digits = audit(spec, interp_digits="1,7", **{**kw, "analyses": "modes"})
    assert digits.meta["params"] == {"modes": {}}  # only the analyses that ran
    with pytest.raises(InputError, match=r"interpolation\.digits expects two or more digits"):
        audit(spec, interp_digits=[3], **kw)

    default.save(tmp_path / "report")
    meta = json.loads((tmp_path / "report" / "meta.json").read_text(encoding="utf-8"))
    assert meta["params"] == {"distribution": {"bootstrap": 0}}

"""Nothing in a file ganalyze is handed runs code: torch.export and TorchScript archives are
inspected before torch reads them. Every poisoned file carries a canary payload that would
create a file; the tests check that the canary never appears, and that --trust-pickle does
what it promises."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from ganalyze.cli import main
from ganalyze.errors import LoaderError, UnsafeFileError
from ganalyze.generators import load_generator
from ganalyze.generators.archives import scan_pickle


class Canary:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def touch_then(path: str, value):
    Path(path).touch()
    return value


class TrustedInputs:
    """Sample inputs that leave a mark when unpickled (a file a user chose to trust)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (touch_then, (self.path, ((torch.randn(2, 8),), {})))


def _generator() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 784), nn.Tanh())


def _export(path: Path) -> Path:
    ep = torch.export.export(_generator(), (torch.randn(2, 8),))
    torch.export.save(ep, path)
    return path


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the zip ``src`` to ``dst``, passing each (name, bytes) through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
    return dst


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture()
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary"
    yield path
    assert not path.exists(), "a payload ran: the canary file was created"


@pytest.fixture()
def clean_pt2(tmp_path: Path) -> Path:
    return _export(tmp_path / "clean.pt2")


def _poisoned_sample_inputs(clean: Path, dst: Path, canary: Path) -> Path:
    payload = _torch_bytes(Canary(canary))
    return _rewrite(clean, dst, lambda n, d: payload if "sample_inputs/" in n else d)


def _poisoned_use_pickle(clean: Path, dst: Path, canary: Path) -> Path:
    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("model_weights_config.json"):
            config = json.loads(data)
            config["config"]["0.bias"]["use_pickle"] = True
            return json.dumps(config).encode()
        if name.endswith("weights/weight_1"):
            return _torch_bytes(Canary(canary))
        return data

    return _rewrite(clean, dst, edit)


def test_a_clean_export_program_loads_and_samples(clean_pt2: Path) -> None:
    gen = load_generator(clean_pt2)
    z, images = gen.sample(16, seed=0)
    assert gen.kind == "torch_export" and images.shape == (16, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1 and z.shape == (16, 8)


@pytest.mark.parametrize("name", ["evil.pt2", "evil.pt", "evil"])
@pytest.mark.parametrize("poison", [_poisoned_sample_inputs, _poisoned_use_pickle])
def test_poisoned_export_archives_are_refused_without_running(
    clean_pt2: Path, tmp_path: Path, canary: Path, poison, name: str
) -> None:
    evil = poison(clean_pt2, tmp_path / name, canary)
    with pytest.raises(UnsafeFileError, match="would run code when loaded") as info:
        load_generator(evil)
    text = str(info.value)
    assert "--trust-pickle" in text and "will likely succeed" not in text
    assert "sample_inputs" in text or "use_pickle" in text


def test_poisoned_export_as_discriminator_is_refused(
    clean_pt2: Path, tmp_path: Path, canary: Path
) -> None:
    evil = _poisoned_sample_inputs(clean_pt2, tmp_path / "d.pt2", canary)
    with pytest.raises(UnsafeFileError, match=r"--discriminator .*d\.pt2"):
        load_generator(clean_pt2, discriminator=evil)


def test_poisoned_export_gives_one_error_line_on_the_cli(
    clean_pt2: Path, tmp_path: Path, canary: Path
) -> None:
    evil = _poisoned_use_pickle(clean_pt2, tmp_path / "evil.pt", canary)
    result = CliRunner().invoke(main, ["report", str(evil), "-o", str(tmp_path / "r")])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "use_pickle" in lines[0]
    assert "Traceback" not in result.output and not (tmp_path / "r" / "index.html").exists()


def test_export_members_with_custom_objects_or_native_code_are_refused(
    clean_pt2: Path, tmp_path: Path, canary: Path
) -> None:
    def add(extra: str):
        def edit(name: str, data: bytes) -> bytes:
            return data

        dst = _rewrite(clean_pt2, tmp_path / f"{extra.replace('/', '_')}.pt2", edit)
        with zipfile.ZipFile(dst, "a") as zf:
            zf.writestr(f"clean/{extra}", pickle.dumps(Canary(canary)))
        return dst

    for extra, reason in [
        ("data/constants/custom_obj_0", "custom object"),
        ("data/constants/opaque_obj_0", "custom object"),
        ("data/aotinductor/model/model.so", "native code"),
    ]:
        with pytest.raises(UnsafeFileError, match=reason):
            load_generator(add(extra))


def test_trust_pickle_loads_what_it_promises(clean_pt2: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = _torch_bytes(TrustedInputs(marker))
    evil = _rewrite(
        clean_pt2, tmp_path / "t.pt2", lambda n, d: payload if "sample_inputs/" in n else d
    )
    with pytest.raises(UnsafeFileError, match="sample_inputs"):
        load_generator(evil)
    assert not marker.exists()
    gen = load_generator(evil, trust_pickle=True)  # the user vouches for the file: code runs
    assert marker.exists() and gen.kind == "torch_export"

    plain = tmp_path / "plain.pkl"  # pickle.dump of a whole module, not torch.save
    plain.write_bytes(pickle.dumps(_generator()))
    with pytest.raises(UnsafeFileError, match="pickled Python objects"):
        load_generator(plain)
    gen = load_generator(plain, trust_pickle=True)
    _, images = gen.sample(4, seed=0)
    assert gen.kind == "pickled_module" and images.shape == (4, 1, 28, 28)

    whole = tmp_path / "whole.pt"  # torch.save of a whole module
    torch.save(_generator(), whole)
    with pytest.raises(UnsafeFileError, match="torch.nn.modules.container.Sequential"):
        load_generator(whole)
    assert load_generator(whole, trust_pickle=True).kind == "pickled_module"


def _torchscript(path: Path) -> Path:
    torch.jit.save(torch.jit.script(_generator()), path)
    return path


def test_a_clean_torchscript_file_loads(tmp_path: Path) -> None:
    gen = load_generator(_torchscript(tmp_path / "g.pt"))
    assert gen.kind == "torchscript" and gen.sample(3, seed=1)[1].shape == (3, 1, 28, 28)


@pytest.mark.parametrize("member", ["constants.pkl", "data.pkl"])
def test_torchscript_pickles_naming_foreign_globals_are_refused(
    tmp_path: Path, canary: Path, member: str
) -> None:
    clean = _torchscript(tmp_path / "g.pt")
    payload = pickle.dumps(Canary(canary), protocol=2)
    evil = _rewrite(clean, tmp_path / "evil.pt", lambda n, d: payload if n.endswith(member) else d)
    with pytest.raises(UnsafeFileError, match="TorchScript archive .*pathlib"):
        load_generator(evil)


def test_pickle_scan_follows_the_weights_only_rules() -> None:
    assert scan_pickle(pickle.dumps({"a": [1, 2.5, "x"]}, protocol=2)) == []
    assert scan_pickle(_torch_pickle(torch.zeros(3))) == []
    assert any("os.system" in p or "posix.system" in p for p in scan_pickle(_os_system()))
    # protocol 4 reaches globals with STACK_GLOBAL, which the weights-only unpickler lacks
    assert "opcode STACK_GLOBAL" in scan_pickle(pickle.dumps(Canary(Path("x")), protocol=4))
    torchscript_class = b"\x80\x02c__torch__.Gen\nGen\n)\x81."
    assert scan_pickle(torchscript_class, torchscript=True) == []
    assert scan_pickle(torchscript_class) == ["global __torch__.Gen.Gen"]
    custom = b"\x80\x02c__torch__.torch.classes.ns\nFoo\n)\x81."
    assert scan_pickle(custom, torchscript=True) == ["global __torch__.torch.classes.ns.Foo"]
    assert scan_pickle(b"\x80\x02garbage")[0].startswith(("opcode", "not a valid pickle"))


def _torch_pickle(obj) -> bytes:
    with zipfile.ZipFile(io.BytesIO(_torch_bytes(obj))) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))


def _os_system() -> bytes:
    return b"cos\nsystem\n(S'true'\ntR."


def test_foreign_torch_file_errors_never_repeat_torchs_advice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(LoaderError) as info:
        load_generator(bad)
    assert "weights_only" not in str(info.value) and "will likely succeed" not in str(info.value)

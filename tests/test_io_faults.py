"""Model files under attack and under faults: forged class names, malformed headers, foreign
files, kill -9 during a save, and the permissions of what is written."""

import ast
import importlib.util
import json
import os
import pickle
import pkgutil
import signal
import stat
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bayesdl
from bayesdl.io import Persistable, _REGISTRY, atomic_write_bytes, write_safetensors
from bayesdl.linear_model import BayesianLinearRegression

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return BayesianLinearRegression().fit(X, X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=40)), X


def _one_line_error(excinfo, *fragments):
    text = str(excinfo.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text


# -- forged class names ----------------------------------------------------------------------
def _module_names():
    """Every module of the bayesdl package, ``__main__`` included (found without running it)."""
    names = ["bayesdl"]
    for info in pkgutil.walk_packages(bayesdl.__path__, "bayesdl."):
        names.append(info.name)
    return names


def _top_level_names(module: str) -> set[str]:
    """The names a module binds at its top level (functions, classes, imports, assignments),
    read from its source so that no module is executed to list them."""
    origin = importlib.util.find_spec(module).origin
    names = set()
    for node in ast.parse(Path(origin).read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


_LOAD_FORGED = textwrap.dedent("""
    import json, sys
    files, legit = json.loads(sys.stdin.read())
    sys.argv = ["bayesdl", "--version"]  # what a CLI run by a file would act on
    import bayesdl
    from bayesdl.io import _REGISTRY

    bayesdl.load(legit)  # a real model file: imports bayesdl's model packages, once
    before = set(sys.modules)
    failures = []
    for name, path in files:
        try:
            bayesdl.load(path)
            failures.append([name, "loaded"])
        except ValueError as e:
            if "\\n" in str(e) or repr(name) not in str(e):
                failures.append([name, "unclear error: " + str(e)])
        except BaseException as e:  # SystemExit included: a file must not run anything
            failures.append([name, f"{type(e).__name__}: {e}"])
    print(json.dumps({"failures": failures, "new_modules": sorted(set(sys.modules) - before),
                      "registered": sorted(_REGISTRY)}))
""")


def test_forged_names_from_every_module_are_refused_without_side_effects(tmp_path, fitted,
                                                                          monkeypatch):
    legit = fitted[0].save(tmp_path / "legit.safetensors")
    modules = _module_names()
    assert "bayesdl.__main__" in modules and "bayesdl.cli" in modules
    registered = {f"{c.__module__}.{c.__qualname__}" for c in _persistable_classes()}
    forged = sorted(({f"{m}.{n}" for m in modules for n in _top_level_names(m)} | set(modules))
                    - registered)
    assert len(forged) > 500
    assert "bayesdl.__main__.main" in forged and "bayesdl._base.TorchEstimatorMixin" in forged
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not under test here
    files = []
    for i, name in enumerate(forged):
        node = {"class": name, "params": {}, "state": {"__kinds__": {}}}
        path = write_safetensors(tmp_path / f"forged{i}.safetensors", {}, {"model": node, "info": {}})
        files.append([name, str(path)])  # written through the public API: valid checksum
    run = subprocess.run([sys.executable, "-c", _LOAD_FORGED], input=json.dumps([files, str(legit)]),
                         capture_output=True, text=True, cwd=tmp_path, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr[-3000:]
    *printed, last = run.stdout.strip().splitlines()
    assert printed == []  # in particular no "bayesdl 0.1.0": the CLI never ran
    result = json.loads(last)
    assert result["failures"] == []
    assert result["new_modules"] == []  # nothing imported because of what a file names
    # the registry a fresh process builds holds every public bayesdl estimator, and no
    # mixin or private base
    assert {n for n in result["registered"] if n.startswith("bayesdl.")} == registered


def _persistable_classes():
    import inspect

    for info in pkgutil.walk_packages(bayesdl.__path__, "bayesdl."):
        if info.name == "bayesdl.__main__":
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, Persistable) and obj.__module__ ==
                    info.name and hasattr(obj, "get_params") and not obj.__name__.startswith("_")):
                yield obj


def test_private_bases_and_mixins_are_not_loadable(tmp_path):
    for name in ["bayesdl._base.TorchEstimatorMixin", "bayesdl.io.Persistable",
                 "bayesdl.linear_model.basis._ScalarBasis", "bayesdl.cli.main"]:
        assert name not in _REGISTRY
        path = write_safetensors(tmp_path / "f.safetensors", {}, {"model": {
            "class": name, "params": {}, "state": {"__kinds__": {}}}, "info": {}})
        with pytest.raises(ValueError, match="Unknown model class") as e:
            bayesdl.load(path)
        _one_line_error(e, repr(name))


def test_main_module_does_not_run_the_cli_on_import():
    code = "import sys; sys.argv = ['x', '--version']; import bayesdl.__main__; print('imported')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0 and run.stdout == "imported\n", run.stdout + run.stderr


# -- malformed files -------------------------------------------------------------------------
def _header(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n, json.loads(raw[8:8 + n])


def _rewrite_metadata(path, edit):
    raw, n, header = _header(path)
    edit(header["__metadata__"])
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n:])


def _assert_corrupt(path):
    with pytest.raises(ValueError) as e:
        bayesdl.load(path)
    _one_line_error(e, f"corrupt or unsupported model file: {path} (")


def test_flipped_format_version_is_a_corrupt_file(tmp_path, fitted):
    path = fitted[0].save(tmp_path / "m.safetensors")
    raw = path.read_bytes()
    key = b'"bayesdl.format_version":"1"'
    assert raw.count(key) == 1
    path.write_bytes(raw.replace(key, key[:-2] + b'q"'))  # the single byte "1" -> "q"
    _assert_corrupt(path)


@pytest.mark.parametrize("edit", [
    lambda m: m.update({"bayesdl.format_version": ""}),
    lambda m: m.update({"bayesdl.format_version": "1.0"}),
    lambda m: m.update({"bayesdl.format_version": "-1"}),
    lambda m: m.update({"bayesdl.format_version": 1}),
    lambda m: m.update({"bayesdl.format_version": None}),
    lambda m: m.pop("bayesdl.format_version"),
    lambda m: m.update({"bayesdl.config": 5}),
    lambda m: m.pop("bayesdl.config"),
    lambda m: m.update({"bayesdl.sha256": ["x"]}),
    lambda m: m.pop("bayesdl.sha256"),
], ids=["empty-version", "float-version", "negative-version", "int-version", "null-version",
        "no-version", "config-not-string", "no-config", "sha-not-string", "no-sha"])
def test_malformed_header_fields_are_a_corrupt_file(tmp_path, fitted, edit):
    path = fitted[0].save(tmp_path / "m.safetensors")
    _rewrite_metadata(path, edit)
    _assert_corrupt(path)


def _node():
    return {"class": "bayesdl.linear_model.bayesian_linear.BayesianLinearRegression",
            "params": {}, "state": {"__kinds__": {}}}


@pytest.mark.parametrize("config", [
    ["model"],
    {"model": "BayesianLinearRegression", "info": {}},
    {"model": [1, 2], "info": {}},
    {"model": {"params": {}, "state": {}}, "info": {}},
    {"model": {**_node(), "class": ["a", "b"]}, "info": {}},
    {"model": {**_node(), "class": 3}, "info": {}},
    {"model": {**_node(), "params": [1]}, "info": {}},
    {"model": {**_node(), "params": {"no_such_parameter": 1}}, "info": {}},
    {"model": {k: v for k, v in _node().items() if k != "state"}, "info": {}},
    {"model": {**_node(), "state": {}}, "info": {}},
    {"model": {**_node(), "state": {"__kinds__": {"coef_": "torch"}}}, "info": {}},
    {"model": {**_node(), "state": {"__kinds__": {"predict": "json"}, "predict": 1}}, "info": {}},
    {"model": {**_node(), "state": {"__kinds__": {"__class__": "json"}, "__class__": 1}},
     "info": {}},
    {"model": {"class": "sklearn.pipeline.Pipeline", "steps": "abc"}, "info": {}},
    {"model": {"class": "sklearn.pipeline.Pipeline", "steps": [["only-a-name"]]}, "info": {}},
    {"model": _node(), "info": [1]},
], ids=["config-list", "model-string", "model-list", "no-class", "class-list", "class-int",
        "params-list", "unknown-param", "no-state", "no-kinds", "missing-tensor",
        "state-replaces-method", "state-replaces-class", "steps-string", "step-not-pair",
        "info-list"])
def test_malformed_model_description_is_a_corrupt_file(tmp_path, config):
    path = write_safetensors(tmp_path / "m.safetensors", {}, config)  # checksum is valid
    _assert_corrupt(path)


def test_config_that_is_not_json_is_a_corrupt_file(tmp_path, fitted):
    from bayesdl.io import _digest

    path = fitted[0].save(tmp_path / "m.safetensors")
    tensors = bayesdl.io.read_safetensors(path)[1]
    _rewrite_metadata(path, lambda m: m.update({"bayesdl.config": "{not json",
                                                "bayesdl.sha256": _digest("{not json", tensors)}))
    _assert_corrupt(path)


@pytest.mark.parametrize("kind", ["pickle", "csv", "npy", "binary"])
def test_foreign_files_are_named_as_not_a_model_file(tmp_path, fitted, kind):
    model, X = fitted
    path = tmp_path / f"model.{kind}"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(model))
    elif kind == "csv":
        path.write_text("x1,x2,y\n" + "\n".join(f"{a},{b},{c}" for a, b, c in X))
    elif kind == "npy":
        np.save(path, X)  # model.npy
    else:
        path.write_bytes(os.urandom(4096).replace(b"{", b"}"))
    with pytest.raises(ValueError) as e:
        bayesdl.load(path)
    _one_line_error(e, f"{path} is not a bayesdl model file (safetensors)")
    if kind == "pickle":
        assert "pickle" in str(e.value)


# -- kill -9 during save and the temporaries it leaves ---------------------------------------
def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_next_save_removes_temporaries_of_dead_writers_only(tmp_path, fitted):
    path = tmp_path / "m.safetensors"
    dead, alive = _dead_pid(), os.getppid()
    stale = [tmp_path / f".m.safetensors.{dead}.0123abcd.tmp",
             tmp_path / f".m.safetensors.{dead}.ffffffff.tmp"]
    keep = [tmp_path / f".m.safetensors.{alive}.89abcdef.tmp",  # a save still running
            tmp_path / f".other.safetensors.{dead}.0123abcd.tmp",  # another target
            tmp_path / ".m.safetensors.notes.tmp"]  # not a name bayesdl writes
    for f in stale + keep:
        f.write_bytes(b"x" * 100)
    fitted[0].save(path)
    assert sorted(p for p in tmp_path.iterdir()) == sorted(keep + [path])
    assert isinstance(bayesdl.load(path), BayesianLinearRegression)


_SAVE_AND_HANG = textwrap.dedent("""
    import os, sys, time
    import torch
    from bayesdl.io import write_safetensors

    def hang(fd):  # the bytes are written, the rename not yet done: kill -9 lands here
        print("writing", flush=True)
        time.sleep(120)
    os.fsync = hang
    write_safetensors(sys.argv[1], {"w": torch.ones(1000)}, {"model": {}})
""")


@pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")
def test_kill_9_during_save_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path, fitted):
    path = tmp_path / "m.safetensors"
    fitted[0].save(path)
    before = path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", _SAVE_AND_HANG, str(path)],
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert child.stdout.readline() == "writing\n"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    (left,) = tmp_path.glob(".m.safetensors.*.tmp")
    assert left.name.startswith(f".m.safetensors.{child.pid}.") and left.stat().st_size > 4000
    assert path.read_bytes() == before  # the killed save never touched the model
    fitted[0].save(path)
    assert list(tmp_path.iterdir()) == [path]
    np.testing.assert_array_equal(bayesdl.load(path).coef_, fitted[0].coef_)


# -- permissions ------------------------------------------------------------------------------
@pytest.fixture
def umask():
    old = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, fitted, umask, mask, mode):
    umask(mask)
    model_path = fitted[0].save(tmp_path / "m.safetensors")
    other = atomic_write_bytes(tmp_path / "sub" / "table.csv", b"a,b\n1,2\n")
    for f in (model_path, other):
        assert stat.S_IMODE(f.stat().st_mode) == mode, oct(f.stat().st_mode)

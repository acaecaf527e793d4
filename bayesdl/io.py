"""Saving and loading bayesdl models without pickle.

A model is one ``.safetensors`` file. Its tensors are the model's fitted arrays; its metadata
(a JSON string under ``"bayesdl.config"``) holds the class name, the hyper-parameters, the
small non-array fitted attributes and the format version. A SHA-256 over the config and every
tensor's bytes is stored beside it, so a truncated file or an edited header is rejected with a
``ValueError`` instead of silently loading a different model.

Loading never imports or unpickles anything a file names: the class name must be in the
registry of bayesdl classes (every public estimator subclassing :class:`Persistable`
registers itself when its package is imported; :func:`load` imports bayesdl's own model
packages, a fixed set that no file can change, before it looks a name up), or be a
scikit-learn ``Pipeline`` whose steps are themselves registered. Any other name, a function
or a malformed header is refused with a one-line ``ValueError``.

Writes are atomic: the bytes go to a temporary file ``.NAME.PID.RANDOM.tmp`` in the same
folder, which is flushed, fsynced and then renamed over the destination, so an interrupted
save never leaves a half file under the final name. A save killed before its rename leaves
its temporary behind; the next save to the same file removes those of dead processes. The
file gets the permissions of a plain ``open()`` (0666 less the user's umask).
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import json
import os
import pkgutil
import re
import secrets
import struct
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

FORMAT_NAME = "bayesdl"
FORMAT_VERSION = 1

_REGISTRY: dict[str, type] = {}
# Hyper-parameter objects stored inside a model's parameters (GP kernels): see Configurable.
_CONFIGURABLE: dict[str, type] = {}
# scikit-learn's scalers hold only arrays and numbers, so Pipelines may include them.
for _cls in (StandardScaler, MinMaxScaler):
    _REGISTRY[f"sklearn.preprocessing.{_cls.__name__}"] = _cls
_PIPELINE = "sklearn.pipeline.Pipeline"


def _qualname(cls: type) -> str:
    if cls.__module__.startswith("sklearn.preprocessing."):
        return f"sklearn.preprocessing.{cls.__qualname__}"  # the public import path
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type) -> type:
    """Allow instances of ``cls`` to be loaded by :func:`load` (used as a class decorator)."""
    _REGISTRY[_qualname(cls)] = cls
    return cls


# Sub-packages of bayesdl that hold no models: the command line, the report and the figures
# sit above the models and import them, so they are never imported on load.
_NOT_MODEL_PACKAGES = frozenset({"cli", "report", "viz"})
_packages_imported = False


def _import_model_packages() -> None:
    """Import every bayesdl sub-package that may define models, so their classes register.

    The set is bayesdl's own package list, fixed when bayesdl is installed: what a file names
    never decides what is imported.
    """
    global _packages_imported
    if _packages_imported:
        return
    import bayesdl

    for info in pkgutil.iter_modules(bayesdl.__path__):
        if info.ispkg and info.name not in _NOT_MODEL_PACKAGES:
            importlib.import_module(f"bayesdl.{info.name}")
    _packages_imported = True


class _UnknownClass(ValueError):
    """A class name outside the registry: refused with its own one-line message."""


def _lookup(name: str) -> type:
    """The registered class called ``name``; a ``ValueError`` for any other name."""
    _import_model_packages()
    if not isinstance(name, str):
        raise TypeError(f"the class name {name!r} is not a string")
    if name not in _REGISTRY:
        raise _UnknownClass(
            f"Unknown model class {name!r} in the file. Only bayesdl models can be loaded; "
            "was the file written by a newer bayesdl version? Upgrade bayesdl to load it."
        )
    return _REGISTRY[name]


class Configurable:
    """A hyper-parameter object (a GP kernel, say) that is stored as JSON, never pickled.

    Subclasses give ``get_config() -> dict`` and ``from_config(config)``; they register
    themselves, so a parameter or fitted attribute holding one round-trips through ``save``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _CONFIGURABLE[_qualname(cls)] = cls  # their own registry: never loadable as a model


_OBJECT = "__bayesdl_object__"


def _restore(value: Any) -> Any:
    """Inverse of :func:`_jsonable` for :class:`Configurable` objects (other values unchanged)."""
    if isinstance(value, dict) and _OBJECT in value:
        _import_model_packages()
        cls = _CONFIGURABLE.get(value[_OBJECT])
        if cls is None:
            raise _UnknownClass(f"Unknown hyper-parameter class {value[_OBJECT]!r} in the file.")
        return cls.from_config(value["config"])
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """Convert hyper-parameter and small fitted values to JSON types (TypeError otherwise)."""
    if isinstance(value, Configurable):
        return {_OBJECT: _qualname(type(value)), "config": _jsonable(value.get_config())}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a bayesdl model file")


class Persistable:
    """Mixin for every bayesdl model: registration plus ``save``, and the state protocol.

    The default state (:func:`get_state`) is every public fitted attribute (name ending in
    ``_``). A class with other state (an ``nn.Module``'s ``state_dict``, say) overrides
    ``_get_state`` and ``_set_state``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only public estimators can be named by a file: mixins and private bases cannot.
        if hasattr(cls, "get_params") and not cls.__name__.startswith("_"):
            register(cls)

    def save(self, path: str | os.PathLike) -> Path:
        """Write this model to ``path`` (a ``.safetensors`` file), atomically."""
        return save(self, path)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        return get_state(self)

    def _set_state(self, json_state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        set_state(self, json_state, tensors)


def get_state(model) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Default state: public fitted attributes as ``(json_state, tensors)``.

    Numeric numpy arrays and tensors become safetensors tensors; everything else must be
    JSON-serialisable.
    """
    json_state: dict[str, Any] = {}
    kinds: dict[str, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    for name, value in vars(model).items():
        if not name.endswith("_") or name.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            tensors[name], kinds[name] = value.detach().cpu().contiguous(), "torch"
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value))
            kinds[name] = "numpy"
        elif isinstance(value, np.ndarray):  # e.g. feature_names_in_ (strings)
            json_state[name], kinds[name] = value.tolist(), "numpy_object"
        else:
            json_state[name], kinds[name] = _jsonable(value), "json"
    json_state["__kinds__"] = kinds
    return json_state, tensors


def set_state(model, json_state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of :func:`get_state`."""
    kinds = json_state.pop("__kinds__")
    for name, kind in kinds.items():
        if not name.endswith("_") or name.startswith("_"):
            # only fitted attributes are state: a file may not replace methods or internals
            raise ValueError(f"{name!r} is not a fitted attribute")
        if kind == "torch":
            value = tensors[name]
        elif kind == "numpy":
            value = tensors[name].numpy()
        elif kind == "numpy_object":
            value = np.asarray(json_state[name], dtype=object)
        else:
            value = _restore(json_state[name])
        setattr(model, name, value)


def _encode(model: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Describe ``model`` as a JSON node, adding its tensors under ``prefix``."""
    if isinstance(model, Pipeline):
        steps = [[name, _encode(step, f"{prefix}{name}/", tensors)] for name, step in model.steps]
        return {"class": _PIPELINE, "steps": steps}
    name = _qualname(type(model))
    if isinstance(model, Persistable):
        json_state, own = model._get_state()
    elif _REGISTRY.get(name) is type(model):
        json_state, own = get_state(model)
    else:
        raise TypeError(
            f"{type(model).__name__} is not a bayesdl model; only bayesdl models, scikit-learn "
            "scalers and Pipelines of them can be saved."
        )
    tensors.update({prefix + k: v for k, v in own.items()})
    return {
        "class": name,
        "params": _jsonable(model.get_params(deep=False)),
        "state": json_state,
    }


def _decode(node: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if node["class"] == _PIPELINE:
        steps = [(name, _decode(sub, f"{prefix}{name}/", tensors)) for name, sub in node["steps"]]
        return Pipeline(steps)
    cls = _lookup(node["class"])
    model = cls(**{k: _restore(v) for k, v in node["params"].items()})
    own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    (model._set_state if isinstance(model, Persistable) else partial(set_state, model))(
        dict(node["state"]), own)
    return model


def _digest(config: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256(config.encode())
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        flat = t.reshape(-1).contiguous()
        if flat.stride(0) != 1:  # one element viewed from a row keeps the row's stride: "contiguous",
            flat = flat.clone(memory_format=torch.contiguous_format)  # but view() refuses it
        h.update(flat.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _temporaries(path: Path):
    """The temporary files of saves to ``path``, as ``(file, process id of the writer)``."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]{{8}}\.tmp")
    for entry in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = pattern.fullmatch(entry.name)
        if match:
            yield entry, int(match.group(1))


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no safe liveness probe here: keep the file
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that killed saves to ``path`` left behind, and return them.

    A temporary is stale when the process that wrote it no longer runs; those of running
    processes (a concurrent save, another thread of this process) are kept.
    """
    path = Path(path)
    stale = [tmp for tmp, pid in _temporaries(path)
             if pid != os.getpid() and not _process_alive(pid)]
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (never a half file).

    The file gets the permissions a plain ``open(path, "wb")`` gives (0666 less the umask),
    and the temporaries of earlier killed saves to ``path`` are removed first.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name to write to.")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # O_EXCL: never write through an existing file or link. The kernel reduces 0o666 by the
    # umask, as for open(); tempfile.mkstemp would force 0o600.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                      config: dict[str, Any]) -> Path:
    """Atomically write CPU ``tensors`` and a JSON ``config`` with format version and checksum.

    The container of both saved models and training checkpoints; read it with
    :func:`read_safetensors`.
    """
    config_json = json.dumps(_jsonable(config), sort_keys=True, allow_nan=True)
    metadata = {
        "bayesdl.format": FORMAT_NAME,
        "bayesdl.format_version": str(FORMAT_VERSION),
        "bayesdl.config": config_json,
        "bayesdl.sha256": _digest(config_json, tensors),
    }
    return atomic_write_bytes(path, _st_save(tensors, metadata=metadata))


def _corrupt(path, what: str, reason: str) -> ValueError:
    return ValueError(f"corrupt or unsupported {what}: {path} ({reason})")


def _not_safetensors(data: bytes, path: Path, what: str) -> ValueError:
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        looks = "; it looks like a pickle, which bayesdl never loads since it can run code"
    elif b"\0" not in data[:1024]:
        looks = "; it looks like a text file, such as a CSV of data"
    else:
        looks = ""
    return ValueError(f"{path} is not a bayesdl {what} (safetensors){looks}. Give the file "
                      "that 'bayesdl fit' or bayesdl.save wrote.")


def _read_header(data: bytes, path: Path, what: str) -> dict[str, str]:
    """The ``__metadata__`` of a bayesdl safetensors file, with every field checked."""
    if len(data) < 8:
        raise ValueError(f"{path} is not a bayesdl {what}: it is only {len(data)} bytes long "
                         "(truncated or empty).")
    if data[8:9] not in (b"{", b""):  # a safetensors header: its length, then a JSON object
        raise _not_safetensors(data, path, what)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path} is not a bayesdl {what}: the header says {n} bytes but the "
                         "file is truncated.")
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a bayesdl {what}: its header is not valid JSON ({e}); "
                         "was it edited?") from e
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("bayesdl.format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a bayesdl {what}: it has no bayesdl metadata (a plain "
                         "safetensors file?).")
    for key in ("bayesdl.format_version", "bayesdl.config", "bayesdl.sha256"):
        if not isinstance(meta.get(key), str):
            raise _corrupt(path, what, f"its header field {key!r} is missing or not a string")
    if not re.fullmatch(r"[0-9]{1,9}", meta["bayesdl.format_version"]):
        raise _corrupt(path, what, f"format version {meta['bayesdl.format_version']!r} is not "
                       "a whole number")
    return meta


def read_safetensors(path: str | os.PathLike, *, what: str = "model file"):
    """Read a file written by :func:`write_safetensors`: ``(config, tensors)``.

    Raises ``FileNotFoundError`` for a missing file and a one-line ``ValueError``, naming
    ``what`` was expected, for a foreign, truncated, edited or malformed file or a newer
    format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No bayesdl {what} at {path}.")
    data = path.read_bytes()
    meta = _read_header(data, path, what)
    version = int(meta["bayesdl.format_version"])
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses bayesdl format version {version}, newer than this bayesdl "
            f"understands ({FORMAT_VERSION}). Upgrade bayesdl."
        )
    try:
        tensors = _st_load(data)
    except SafetensorError as e:
        raise ValueError(f"{path} is corrupt: its tensor data cannot be read ({e}).") from e
    config = meta["bayesdl.config"]
    if _digest(config, tensors) != meta["bayesdl.sha256"]:
        raise ValueError(
            f"{path} is corrupt: its checksum does not match its contents (the file was edited "
            "or damaged). Re-create it from its source."
        )
    try:
        config = json.loads(config)
    except json.JSONDecodeError:
        config = None
    if not isinstance(config, dict):
        raise _corrupt(path, what, "its config is not a JSON object")
    return config, tensors


def save(model: Any, path: str | os.PathLike, *, info: dict | None = None) -> Path:
    """Save a fitted bayesdl model (or a Pipeline of them) to a ``.safetensors`` file.

    ``info`` is optional JSON-serialisable user metadata (e.g. the CLI records the input
    column names there); read it back with ``load(path, with_info=True)``.
    """
    tensors: dict[str, torch.Tensor] = {}
    return write_safetensors(path, tensors, {"model": _encode(model, "", tensors), "info": info or {}})


def load(path: str | os.PathLike, *, with_info: bool = False) -> Any:
    """Load a model written by :func:`save`; a one-line ``ValueError`` for any other file.

    Returns the model, or ``(model, info)`` when ``with_info``.
    """
    root, tensors = read_safetensors(path)
    if "model" not in root:
        raise ValueError(f"{path} is a bayesdl file but holds no model (a training checkpoint?).")
    try:
        model = _decode(root["model"], "", tensors)
        info = root.get("info", {})
        if not isinstance(info, dict):
            raise TypeError("'info' is not a JSON object")
    except _UnknownClass:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
        # a checksummed file whose description does not fit the class it names
        detail = (str(e).splitlines() or [""])[0]
        raise _corrupt(path, "model file", f"its model description is malformed: "
                       f"{type(e).__name__} {detail}") from None
    return (model, info) if with_info else model

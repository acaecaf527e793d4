"""Loaders for data files on disk: CSV, NPY/NPZ and MNIST-format IDX.

Every loader raises a ``ValueError`` that names the file and the problem (missing column,
non-numeric cell, truncated IDX payload, ...) rather than a parser traceback.
"""

from __future__ import annotations

import csv
import gzip
import os
import struct
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No data file at {path}.")
    return path


def _column_as_given(cells: list[str], path, name: str) -> np.ndarray:
    """A column as its cells spell it: int64 if every cell is an integer, else float64 if every
    cell is a number (empty cells NaN), else the text labels themselves (object array)."""
    cells = [c.strip() for c in cells]
    try:
        return np.array([int(c) for c in cells], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(c) if c else np.nan for c in cells], dtype=np.float64)
    except ValueError:
        pass
    if "" in cells:
        raise ValueError(f"{path}, line {cells.index('') + 2}, column {name!r} is empty (NaN); "
                         "drop that row or fill in its label.")
    return np.array(cells, dtype=object)


def load_csv(path, target: str | None = None, *, delimiter: str = ",", dtype=np.float64,
             target_as_given: bool = False, columns: list[str] | None = None):
    """Read a numeric CSV file with a header row.

    Returns a :class:`~sklearn.utils.Bunch` with ``data`` (n, d), ``feature_names`` and, when
    ``target`` names a column, ``target`` (n,) and ``target_name``. With
    ``target_as_given=True`` the target column keeps the type its cells spell: integers stay
    integers (``0``, not ``0.0``), text labels stay text; otherwise it is read as ``dtype``.
    ``columns`` keeps only those feature columns (the ones the file has), in the file's
    order; the others are not read, so they need not be numbers (e.g. a text label).
    """
    path = _existing(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows or not rows[0]:
        raise ValueError(f"{path} is empty; expected a header row and numeric rows.")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    if not body:
        raise ValueError(f"{path} has a header but no data rows.")
    if target is not None and target not in header:
        raise ValueError(f"Column {target!r} is not in {path}; its columns are {header}.")
    values = np.empty((len(body), len(header)), dtype=dtype)
    as_given = header.index(target) if target is not None and target_as_given else None
    unread = (set() if columns is None else
              {j for j, h in enumerate(header) if h not in columns and h != target})
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {i + 2}: {len(row)} fields where the header has {len(header)}."
            )
        for j, cell in enumerate(row):
            if j == as_given or j in unread:
                continue  # read below, as given; or not wanted
            try:
                values[i, j] = float(cell) if cell.strip() else np.nan
            except ValueError:
                raise ValueError(
                    f"{path}, line {i + 2}, column {header[j]!r}: {cell!r} is not a number. "
                    "Encode categories as numbers first."
                ) from None
    if unread:
        keep = [j for j in range(len(header)) if j not in unread]
        values, header, body = values[:, keep], [header[j] for j in keep], \
            [[r[j] for j in keep] for r in body]
    if target is None:
        return Bunch(data=values, feature_names=header)
    j = header.index(target)
    return Bunch(
        data=np.delete(values, j, axis=1),
        feature_names=[h for h in header if h != target],
        target=values[:, j] if as_given is None else _column_as_given([r[j] for r in body], path, target),
        target_name=target,
    )


def load_npy(path, *, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` array (memory-mapped read-only when ``mmap``); never unpickles."""
    path = _existing(path)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{path} is not a numeric .npy file ({e}).") from e


def load_npz(path, key: str | None = None):
    """Load one array (``key``) or a dict of all arrays from a ``.npz`` file; never unpickles."""
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if key is None:
                return {k: z[k] for k in z.files}
            if key not in z.files:
                raise ValueError(f"{path} has no array {key!r}; it has {z.files}.")
            return z[key]
    except (OSError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npz file ({e}).") from e


# IDX type codes (http://yann.lecun.com/exdb/mnist/ "FILE FORMATS"): code -> big-endian dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format), gzipped or not.

    The header is two zero bytes, a type code, the number of dimensions and one big-endian
    uint32 per dimension; the payload follows in row-major order.
    """
    path = _existing(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path} is truncated inside its IDX header.")
    shape = struct.unpack(f">{ndim}I", raw[4:head])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - head != expected:
        raise ValueError(
            f"{path}: the header promises shape {shape} ({expected} bytes) but the payload has "
            f"{len(raw) - head} bytes; the file is truncated or corrupt."
        )
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="))

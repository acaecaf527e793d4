"""Reading the user's data files and writing prediction tables for the CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..datasets import load_csv, load_npy
from ..io import atomic_write_bytes


def read_features(path, target: str | None = None, columns: list[str] | None = None):
    """Read ``path`` (.csv with header, or .npy) into ``(X, y, feature_names)``.

    With a CSV, ``target`` names the target column (``y`` is None without it), read as
    given: integer labels stay integers, text labels stay text; ``columns`` keeps only
    those feature columns (a model's inputs: the others, e.g. text labels, are not read). A
    ``.npy`` file holds features only and has no column names (``feature_names`` is None).
    """
    path = Path(path)
    if path.suffix.lower() == ".npy":
        if target is not None:
            raise ValueError("--target needs a CSV file with a header; a .npy holds features only.")
        X = np.asarray(load_npy(path), dtype=np.float64)
        X = X[:, None] if X.ndim == 1 else X
        return X, None, None
    if path.suffix.lower() not in {".csv", ".txt"}:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .npy.")
    bunch = load_csv(path, target=target, target_as_given=True, columns=columns)
    return bunch.data, bunch.get("target"), bunch.feature_names


def _line_of_row(path: Path, row: int) -> int:
    """The line number in a CSV file of data row ``row`` (0-based; blank lines skipped)."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        data_lines = [reader.line_num for r in reader if r][1:]  # [1:]: the header
    return data_lines[row]


def require_complete(path, values: np.ndarray, names: list[str] | None) -> None:
    """A one-line ``ValueError`` naming the line and column of the first missing value.

    ``values`` (n,) or (n, d) holds the columns ``names`` of ``path`` as read by
    :func:`read_features`; empty cells and NaN or infinite values count as missing.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return  # integers, or class labels that are not numbers
    bad = ~np.isfinite(values.reshape(len(values), -1))
    if not bad.any():
        return
    i, j = np.argwhere(bad)[0]
    path = Path(path)
    where = (f"line {_line_of_row(path, int(i))}, column {names[j]!r}" if names is not None
             else f"row {i}, column {j}")
    raise ValueError(f"{path}, {where}: missing value (an empty cell, NaN or inf). bayesdl "
                     "models need complete rows: fill the value in or drop the row.")


def write_table(path, columns: dict[str, np.ndarray]) -> Path:
    """Write named 1-D columns as a CSV file (atomically)."""
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(list(columns))
    writer.writerows(zip(*(np.asarray(c).tolist() for c in columns.values())))
    return atomic_write_bytes(path, buf.getvalue().encode())

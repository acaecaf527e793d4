"""Image data for the generative models: bundled digits, the user's files, transforms, splits.

Every loader returns ``(X, y)``: ``X`` a float64 array of images ``(N, H, W)`` (greyscale) or
``(N, C, H, W)``, ``y`` integer labels ``(N,)`` or None. Nothing is downloaded: MNIST and
Fashion-MNIST are read from IDX files the user already has.

- :func:`load_digits_images` -- scikit-learn's bundled 8x8 digits, scaled to [0, 1].
- :func:`load_images` -- one entry point for the command line: ``"digits"``, a ``.npy`` /
  ``.npz`` file, an IDX file or a folder of image files.
- :func:`to_unit_interval`, :func:`binarize`, :func:`dynamic_binarize` -- the transforms the
  Bernoulli-type models need.
- :func:`split_images` -- a fixed, reproducible train / validation / test split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._bundled import load_digits
from ._loaders import _existing, load_idx, load_npy, load_npz

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def load_digits_images():
    """The bundled 8x8 digits as images in [0, 1]: ``X`` (1797, 8, 8), ``y`` (1797,) in 0-9.

    The raw intensities are counts 0-16 (each pixel counts set bits in a 4x4 block of a
    32x32 bitmap), so dividing by 16 maps them onto [0, 1] exactly.
    """
    bunch = load_digits()
    return bunch["images"] / 16.0, bunch["target"]


def to_unit_interval(X) -> np.ndarray:
    """Scale images to [0, 1]: integer (uint8, 0-255) images are divided by 255.

    Float images already in [0, 1] are returned as float64; float images with values above 1
    are taken as 0-255 intensities. Negative values are refused (the fix is the user's:
    this function does not guess an offset).
    """
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"images must be numeric, got dtype {X.dtype}.")
    Xf = X.astype(np.float64)
    if Xf.size and Xf.min() < 0:
        raise ValueError(f"images have negative values (min {Xf.min():g}); rescale them to "
                         "[0, 1] yourself (e.g. (X - X.min()) / (X.max() - X.min())).")
    if X.dtype.kind in "biu" or (Xf.size and Xf.max() > 1):
        if Xf.max() > 255:
            raise ValueError(f"images have values up to {Xf.max():g}; to_unit_interval "
                             "expects 0-255 or [0, 1] intensities.")
        return Xf / 255.0
    return Xf


def binarize(X, threshold: float = 0.5) -> np.ndarray:
    """Static binarisation: 1 where a [0, 1] intensity exceeds ``threshold``, else 0."""
    return (np.asarray(X) > threshold).astype(np.float64)


def dynamic_binarize(X, generator=None):
    """Dynamic binarisation: each pixel is an independent Bernoulli draw with its intensity.

    Drawn afresh every epoch (Salakhutdinov & Murray 2008's MNIST protocol), it makes a
    grey-level image set a stochastic binary one without throwing the grey levels away.
    ``X`` is a tensor in [0, 1]; ``generator`` a ``torch.Generator`` on its device.
    """
    import torch

    return torch.bernoulli(torch.as_tensor(X), generator=generator)


def split_images(X, y=None, *, val: float = 0.1, test: float = 0.2, seed: int = 0):
    """Fixed train / validation / test indices: ``(train, val, test)`` integer arrays.

    The permutation depends on ``seed`` and ``len(X)`` only, so the same files always give
    the same split. With labels, each class is split in the same proportions (stratified).
    """
    n = len(X)
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"val and test are fractions with val + test < 1, got {val}, {test}.")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if y is None else [np.flatnonzero(np.asarray(y) == c)
                                               for c in np.unique(y)]
    parts = ([], [], [])
    for idx in groups:
        idx = rng.permutation(idx)
        n_test, n_val = int(round(test * len(idx))), int(round(val * len(idx)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test:n_test + n_val])
        parts[0].append(idx[n_test + n_val:])
    return tuple(np.sort(np.concatenate(p)) for p in parts)


def _load_folder(folder: Path):
    """Greyscale images from ``folder``; files in sub-folders take the sub-folder as label."""
    from PIL import Image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"{folder} holds no image files ({', '.join(sorted(_IMAGE_SUFFIXES))}).")
    images, labels = [], []
    for path in files:
        with Image.open(path) as im:
            images.append(np.asarray(im.convert("L"), dtype=np.float64) / 255.0)
        labels.append(path.parent.name if path.parent != folder else None)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise ValueError(f"the images in {folder} have different sizes {sorted(shapes)}; "
                         "resize them to one size first.")
    y = None
    if all(label is not None for label in labels):
        classes, y = np.unique(labels, return_inverse=True)
        y = classes[y]
        y = y.astype(int) if all(c.isdigit() for c in classes) else y
    return np.stack(images), y


def _idx_labels(path: Path):
    """Labels for an IDX image file: a sibling file named like it with 'labels' for 'images'
    (``train-images-idx3-ubyte`` -> ``train-labels-idx1-ubyte``), if it exists."""
    name = path.name.replace("images", "labels").replace("idx3", "idx1")
    sibling = path.with_name(name)
    return load_idx(sibling).astype(int) if name != path.name and sibling.is_file() else None


def load_images(spec: str | os.PathLike):
    """Images and labels from ``"digits"``, a ``.npy`` / ``.npz`` file, an IDX file or a folder.

    - ``.npz``: arrays ``X`` (or ``images``/``x``) and optional ``y`` (or ``labels``);
    - IDX (MNIST's ``*-images-idx3-ubyte[.gz]``): labels from the sibling ``*-labels-*`` file;
    - a folder: every PNG/JPEG/... image (greyscale), labelled by sub-folder name if all are
      in sub-folders.

    Integer images (0-255) are scaled to [0, 1]; float arrays are returned as stored.
    Returns ``(X, y)`` with ``X`` of shape ``(N, H, W)`` or ``(N, C, H, W)``.
    """
    if str(spec) == "digits":
        return load_digits_images()
    if Path(spec).is_dir():
        return _load_folder(Path(spec))
    path = _existing(spec)
    if path.suffix == ".npy":
        X, y = load_npy(path), None
    elif path.suffix == ".npz":
        arrays = load_npz(path)
        X = next((arrays[k] for k in ("X", "images", "x") if k in arrays), None)
        if X is None:
            raise ValueError(f"{path} has no array named X, images or x; it has {sorted(arrays)}.")
        y = next((arrays[k] for k in ("y", "labels") if k in arrays), None)
    else:
        X, y = load_idx(path), _idx_labels(path)
    X = to_unit_interval(X) if X.dtype.kind in "biu" else np.asarray(X, dtype=np.float64)
    if X.ndim not in (3, 4):
        raise ValueError(f"{path} holds an array of shape {X.shape}; images are (N, H, W) or "
                         "(N, C, H, W). For table rows use a model's fit on a CSV instead.")
    if y is not None and len(y) != len(X):
        raise ValueError(f"{path}: {len(X)} images but {len(y)} labels.")
    return X, y


__all__ = ["binarize", "dynamic_binarize", "load_digits_images", "load_images", "split_images",
           "to_unit_interval"]

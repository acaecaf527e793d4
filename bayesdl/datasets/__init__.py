"""Bundled real data, synthetic generators and loaders for the user's own files.

Bundled (CSV inside the package, no download):

- :func:`load_faithful` -- Old Faithful geyser eruptions (272 x 2; Azzalini & Bowman 1990,
  as in R's ``datasets::faithful``); PRML's mixture-model example.
- :func:`load_mcycle` -- simulated motorcycle crash, head acceleration against time (133 x 2;
  Silverman 1985, R's ``MASS::mcycle``); a classic heteroscedastic regression set.
- :func:`load_digits` -- the 8x8 handwritten digits bundled with scikit-learn (1797 x 64).
- :func:`load_geyser` -- Old Faithful's 299 successive eruptions in time order (R ``MASS::geyser``).
- :func:`load_nile` -- annual Nile flow at Aswan, 1871-1970 (statsmodels' ``nile``).
- :func:`load_co2` -- Mauna Loa CO2 monthly means 1958-2001 (521 x 1; NOAA, public domain, via
  statsmodels); the Gaussian-process forecasting example of R&W section 5.4.3.

Synthetic: :func:`make_sinusoidal` (PRML section 1.1) and :func:`make_gaussian_blobs`.

Loaders: :func:`load_csv`, :func:`load_npy`, :func:`load_npz`, :func:`load_idx`.

Images (the generative models): :func:`load_digits_images`, :func:`load_images` (digits, .npy,
.npz, IDX, a folder), :func:`to_unit_interval`, :func:`binarize`, :func:`dynamic_binarize` and
:func:`split_images` (in :mod:`bayesdl.datasets.images`).
"""

from ._bundled import load_co2, load_digits, load_faithful, load_geyser, load_mcycle, load_nile
from ._loaders import load_csv, load_idx, load_npy, load_npz
from ._synthetic import make_gaussian_blobs, make_sinusoidal
from .images import (binarize, dynamic_binarize, load_digits_images, load_images, split_images,
                     to_unit_interval)

__all__ = [
    "binarize",
    "dynamic_binarize",
    "load_digits_images",
    "load_images",
    "split_images",
    "to_unit_interval",
    "load_co2",
    "load_csv",
    "load_digits",
    "load_faithful",
    "load_geyser",
    "load_idx",
    "load_mcycle",
    "load_npy",
    "load_nile",
    "load_npz",
    "make_gaussian_blobs",
    "make_sinusoidal",
]

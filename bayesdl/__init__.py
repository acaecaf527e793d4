"""bayesdl: probabilistic machine learning and Bayesian deep learning on PyTorch."""

__version__ = "0.1.0"

__all__ = ["__version__", "load", "save"]


def __getattr__(name):
    # save/load live in bayesdl.io, which imports torch: importing it only when they are first
    # used keeps `import bayesdl` (and so `bayesdl --help`) fast.
    if name in ("load", "save"):
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'bayesdl' has no attribute {name!r}")

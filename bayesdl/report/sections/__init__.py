"""One module per model family, each exposing ``TITLE`` and ``build(quick, seed)``."""

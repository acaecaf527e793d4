"""The HTML report of ``bayesdl demo``: one section per model family.

Each module listed in :data:`SECTIONS` lives in ``bayesdl.report.sections`` and exposes
``TITLE`` and ``build(quick: bool, seed: int) -> Section``. A later model family adds its
section by adding one module and one line here. A section whose ``build`` also takes
``previous`` receives the sections built before it (for cross-model comparisons).
"""

# html and section import torch and matplotlib: they load on first use, so that reading
# SECTIONS (the CLI's 'demo --only' choices) stays cheap.
# Module names under bayesdl.report.sections, in report order.
SECTIONS: list[str] = [
    "distributions",
    "linear_model",
    "mixtures",
    "decomposition",
    "hmm",
    "gaussian_process",
    "optimize",
    "vae",
    "rbm",
    "gan",
    "diffusion",
    "generative_summary",
    "bdl",
]

__all__ = ["SECTIONS", "Section", "build_report", "write_report"]


def __getattr__(name):
    if name == "Section":
        from .section import Section

        return Section
    if name == "write_report":
        from .html import write_report

        return write_report
    raise AttributeError(f"module 'bayesdl.report' has no attribute {name!r}")


def build_report(out_dir, *, quick: bool = False, seed: int = 0, only=None, progress=print):
    """Build every section (or those named in ``only``) and write ``out_dir/index.html``.

    A section that raises is shown in the report with its traceback instead of aborting the
    others; the returned ``failed`` list names them so the CLI can exit non-zero.
    Returns ``(path_to_index_html, failed_section_names)``.
    """
    import importlib
    import inspect
    import time
    import traceback

    from .html import write_report
    from .section import Section

    names = SECTIONS if only is None else [n for n in SECTIONS if n in set(only)]
    unknown = set(only or ()) - set(SECTIONS)
    if unknown:
        raise ValueError(f"Unknown report section(s) {sorted(unknown)}; choose from {SECTIONS}.")
    built, failed = [], []
    for name in names:
        module = importlib.import_module(f"bayesdl.report.sections.{name}")
        progress(f"[bayesdl demo] {module.TITLE} ...")
        start = time.perf_counter()
        try:
            extra = ({"previous": [s for _, s in built]}
                     if "previous" in inspect.signature(module.build).parameters else {})
            section = module.build(quick=quick, seed=seed, **extra)
        except Exception:  # noqa: BLE001 - shown in the report and reported as a failure
            section = Section(title=module.TITLE, error=traceback.format_exc())
            failed.append(name)
        section.seconds = time.perf_counter() - start
        built.append((name, section))
        progress(f"[bayesdl demo] {module.TITLE}: {'FAILED' if section.error else 'ok'} "
                 f"({section.seconds:.1f} s)")
    return write_report(out_dir, built), failed

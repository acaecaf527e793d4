"""``bayesdl demo``: run every model family on bundled data and write an HTML report."""

from __future__ import annotations

from ..report import SECTIONS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run every model family on bundled data and write an HTML report",
        description="Fit every model family on the bundled real data sets and write "
        "OUT/index.html with figures and key numbers.",
    )
    p.add_argument("--out", default="bayesdl-report", help="report folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="smaller settings, for a smoke test")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, metavar="SECTION",
                   help=f"build only these sections (of: {', '.join(SECTIONS)})")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..report import build_report

    path, failed = build_report(args.out, quick=args.quick, seed=args.seed, only=args.only)
    print(path.resolve())
    if failed:
        print(f"bayesdl demo: sections failed: {', '.join(failed)} (see the report)")
        return 1
    return 0

"""The ``bayesdl`` command line: ``demo``, ``fit``, ``predict`` (and more as families land).

Each sub-command is a module in this package exposing ``add_parser(subparsers)``, which
registers the command and sets ``func(args) -> int`` as its handler. Add a command by adding
its module name to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__

COMMANDS = ["demo", "fit", "predict", "evaluate", "ab_test", "sample", "optimize"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayesdl",
        description="Probabilistic machine learning and Bayesian deep learning on PyTorch.",
        epilog="Run 'bayesdl COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"bayesdl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        # User errors (bad file, bad option value) get one clear line, not a traceback.
        print(f"bayesdl {args.command}: error: {e}", file=sys.stderr)
        return 2

"""The ``bayesdl`` command line: ``demo``, ``fit``, ``predict`` (and more as families land).

Each sub-command is a module in this package exposing ``add_parser(subparsers)``, which
registers the command and sets ``func(args) -> int`` as its handler. Add a command by adding
its module name to :data:`COMMANDS`. Command modules import torch and the model families
inside their handlers, not at the top, so that building the parser (``bayesdl --help``)
stays fast; a parser whose arguments need heavy imports adds them with
:meth:`HelpParser.defer`.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from .. import __version__

COMMANDS = ["demo", "fit", "predict", "evaluate", "ab_test", "sample", "optimize"]


def plain_text(text: str) -> str:
    """reST markup of docstrings (````code````, ``:role:`name```) as plain text for ``--help``."""
    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", text)
    return text.replace("``", "")


class HelpParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help is plain text and that can add arguments lazily.

    ``defer(fn)`` runs ``fn(parser)`` only when this parser is used (to parse or to show its
    help), so a command whose options import torch costs nothing in ``bayesdl --help``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred = []

    def defer(self, fn) -> None:
        self._deferred.append(fn)

    def complete(self) -> HelpParser:
        while self._deferred:
            self._deferred.pop(0)(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.complete()
        return plain_text(super().format_help())


def build_parser() -> argparse.ArgumentParser:
    parser = HelpParser(
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
    except (ValueError, OSError) as e:
        # User errors (bad option value, bad or missing file, an output path that is a
        # folder or not writable) get one clear line, not a traceback.
        print(f"bayesdl {args.command}: error: {e}", file=sys.stderr)
        return 2

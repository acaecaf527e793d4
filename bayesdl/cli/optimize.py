"""``bayesdl optimize``: Bayesian optimisation of a command's output over a search space.

    bayesdl optimize --space space.json --calls 40 --log log.csv -- python train.py --lr {lr}

runs the command once per suggested point, with each ``{name}`` replaced by that dimension's
value, and minimises the LAST number the command prints on stdout (use --maximize to maximise
it). A nonzero exit status, or no number on stdout, marks the point as failed: it is logged,
never fitted and never suggested again. Every evaluation is appended to the log (CSV, or JSON
when the name ends in .json); running the same command again resumes from the log.

space.json maps names to dimensions, e.g.
    {"lr": {"type": "real", "low": 1e-5, "high": 1e-1, "log": true},
     "layers": {"type": "integer", "low": 1, "high": 6},
     "act": {"type": "categorical", "categories": ["relu", "tanh"]}}
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

# A number not glued to letters ("loss=0.25" and "1e-3" count, "epoch10" does not), or a
# non-finite one as Python, numpy and torch print it ("nan", "inf", "-inf"), so a run that
# ends on "loss: nan" counts as failed rather than reporting an earlier number.
_NUMBER = re.compile(r"(?<![\w.])(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
                     r"|[-+]?(?:nan|inf(?:inity)?))(?![\w.])", re.IGNORECASE)
# A placeholder of the command: {name}.
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def add_parser(sub) -> None:
    p = sub.add_parser("optimize", help="Bayesian optimisation of a command's printed objective",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", required=True, help="JSON file of named dimensions")
    p.add_argument("--calls", type=int, default=40, help="total evaluations (default: %(default)s)")
    p.add_argument("--initial", type=int, default=None,
                   help="initial Sobol points before the GP is used (default: min(10, calls/4)+1)")
    p.add_argument("--acq", default="LogEI", help="acquisition: LogEI, PI, UCB, TS (default: %(default)s)")
    p.add_argument("--log", default="optimize_log.csv",
                   help="evaluation log, .csv or .json; resumed when it exists (default: %(default)s)")
    p.add_argument("--maximize", action="store_true", help="maximise the printed number")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run before it counts as failed")
    p.add_argument("cmd", nargs=argparse.REMAINDER,
                   help="the command after '--', with {name} placeholders")
    p.set_defaults(func=run)


def last_number(text: str) -> float | None:
    """The last number printed in ``text``, or None."""
    found = _NUMBER.findall(text)
    return float(found[-1]) if found else None


def _read_log(path: Path, names: list[str]) -> list[dict]:
    if not path.exists():
        return []
    if path.suffix == ".json":
        rows = json.loads(path.read_text() or "[]")
    else:
        import csv
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    missing = [n for n in names + ["objective"] if rows and n not in rows[0]]
    if missing:
        raise ValueError(f"the log {path} has no column {missing[0]!r}: it belongs to another "
                         "space; pass a new --log.")
    return rows


def _write_log(path: Path, names: list[str], rows: list[dict]) -> None:
    from ..io import atomic_write_bytes
    if path.suffix == ".json":
        atomic_write_bytes(path, json.dumps(rows, indent=1).encode())
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")  # quotes a category holding a comma
    writer.writerow(names + ["objective", "status"])
    writer.writerows([[r[k] for k in names + ["objective", "status"]] for r in rows])
    atomic_write_bytes(path, text.getvalue().encode())


def _typed(value, dim):
    from ..optimize.space import Categorical, Integer
    if isinstance(dim, Integer):
        return int(float(value))
    if isinstance(dim, Categorical):
        for c in dim.categories:
            if str(c) == str(value):
                return c
        raise ValueError(f"the log holds {value!r} for {dim.name}, not one of its categories.")
    return float(value)


def run(args) -> int:
    from tqdm import tqdm

    from ..optimize import BayesianOptimizer, Space

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise ValueError("no command to optimise: put it after '--', e.g. -- python train.py --lr {lr}")
    if args.calls < 1:
        raise ValueError(f"--calls must be at least 1, got {args.calls}.")
    space_path = Path(args.space)
    if not space_path.is_file():
        raise FileNotFoundError(f"no space file at {space_path}.")
    try:
        config = json.loads(space_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{space_path} is not valid JSON ({e}).") from e
    space = Space.from_config(config)
    names = space.names
    unknown = {m for part in cmd for m in _PLACEHOLDER.findall(part)} - set(names)
    if unknown:
        raise ValueError(f"the command uses {{{sorted(unknown)[0]}}} which is not a dimension of "
                         f"the space ({', '.join(names)}).")
    initial = args.initial if args.initial is not None else min(10, args.calls // 4) + 1
    opt = BayesianOptimizer(space, n_initial_points=initial, acq_func=args.acq,
                            random_state=args.seed)
    log = Path(args.log)
    rows = _read_log(log, names)
    for r in rows:
        x = [_typed(r[n], d) for n, d in zip(names, space.dimensions)]
        y = float(r["objective"]) if r["objective"] not in ("", "nan", None) else math.nan
        opt.tell(x, -y if args.maximize else y)
    sign = -1.0 if args.maximize else 1.0
    bar = tqdm(total=args.calls, initial=min(len(rows), args.calls), unit="run")
    _show_best(bar, opt, sign)
    try:
        while len(opt.func_vals) < args.calls:
            x = opt.ask()
            values = space.to_dict(x)
            # only {name} placeholders are replaced: other braces in the command stay as typed
            argv = [_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), part) for part in cmd]
            value, status = _evaluate(argv, args.timeout)
            opt.tell(x, math.nan if value is None else sign * value)
            rows.append({**values, "objective": "nan" if value is None else repr(value),
                         "status": status})
            _write_log(log, names, rows)
            bar.update(1)
            _show_best(bar, opt, sign)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted: {len(rows)} evaluations are in {log}; run the same command again "
              "to resume.", file=sys.stderr)
        return 130
    bar.close()
    if all(math.isnan(v) for v in opt.func_vals):
        raise ValueError(f"every run failed (see the status column of {log}); check the command.")
    best = opt.result()
    print(f"best {sign * best.fun:.6g} at " + " ".join(f"{k}={v}" for k, v in space.to_dict(best.x).items()))
    print(f"log: {log}")
    return 0


def _show_best(bar, opt, sign):
    import numpy as np
    y = np.asarray(opt.func_vals, dtype=float)
    if np.isfinite(y).any():
        bar.set_postfix(best=f"{sign * np.nanmin(y):.4g}")


def _evaluate(argv: list[str], timeout) -> tuple[float | None, str]:
    """Run one command; (objective or None, status)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise ValueError(f"cannot run {shlex.join(argv)}: {argv[0]} not found.") from None
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if done.returncode != 0:
        return None, f"exit {done.returncode}"
    value = last_number(done.stdout)
    if value is None:
        return None, "no number"
    if not math.isfinite(value):
        return None, "not finite"
    return value, "ok"

"""Bayesian optimisation: bayesdl against random search, Optuna TPE and Optuna GPSampler.

Median simple regret (best value found - known minimum) over seeds at several budgets on
Branin, Hartmann-6 and Ackley-5, and the median wall-clock time per suggestion (ask) of the
GP methods at the largest budget. Every method gets the same number of evaluations; the GP
methods start from 10 quasi-random points (bayesdl: scrambled Sobol; Optuna GP: its default).

    python benchmarks/bench_optimize.py                      # full: 10 seeds, 25/50/100 evals
    python benchmarks/bench_optimize.py --seeds 3 --budgets 25 50 --problems Branin

The peers' per-seed runs (values and ask times) are cached in ``bench_optimize_peers.json``
next to this script and reused when they cover the budget; ``--no-cache`` reruns them.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

from _timing import machine
from bayesdl.optimize import BayesianOptimizer
from bayesdl.optimize.functions import ACKLEY5, BRANIN, HARTMANN6

PROBLEMS = {p.name: p for p in (BRANIN, HARTMANN6, ACKLEY5)}


def run_bayesdl(problem, n, seed):
    opt = BayesianOptimizer(problem.bounds, n_initial_points=10, random_state=seed)
    ys, asks, cpus = [], [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        x = opt.ask()
        asks.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        y = problem.fn(x)
        opt.tell(x, y)
        ys.append(y)
    return ys, asks, cpus


def run_random(problem, n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.array(problem.bounds).T
    return [problem.fn(list(rng.uniform(lo, hi))) for _ in range(n)], [], []


def _run_optuna(sampler, problem, n):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=sampler)
    ys, asks, cpus = [], [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        trial = study.ask()
        x = [trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(problem.bounds)]
        asks.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        y = problem.fn(x)
        study.tell(trial, y)
        ys.append(y)
    return ys, asks, cpus


def run_tpe(problem, n, seed):
    import optuna
    return _run_optuna(optuna.samplers.TPESampler(seed=seed), problem, n)


def run_optuna_gp(problem, n, seed):
    import optuna
    return _run_optuna(optuna.samplers.GPSampler(seed=seed, n_startup_trials=10), problem, n)


METHODS = {"bayesdl BO": run_bayesdl, "random": run_random, "Optuna TPE": run_tpe,
           "Optuna GP": run_optuna_gp}
PEER_CACHE = pathlib.Path(__file__).with_name("bench_optimize_peers.json")


def run_cached(method, problem, n, seed, cache, path):
    """Values, ask wall and CPU times of one run, from ``cache`` (saved to ``path``) when it
    holds a run at least n long; a prefix of a longer run is the same run stopped earlier
    (the samplers see only the past). ``cache`` None: always run."""
    if cache is None:
        return METHODS[method](problem, n, seed)
    key = f"{problem.name}/{method}/{seed}"
    if key not in cache or len(cache[key]["ys"]) < n:
        ys, asks, cpus = METHODS[method](problem, n, seed)
        cache[key] = {"ys": [float(y) for y in ys], "asks": [float(a) for a in asks],
                      "cpus": [float(c) for c in cpus]}
        path.write_text(json.dumps(cache, indent=0, sort_keys=True))
    run = cache[key]
    return run["ys"][:n], run["asks"][:n], run.get("cpus", [])[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first..first+seeds-1")
    parser.add_argument("--budgets", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--no-cache", action="store_true", help="rerun the peers")
    parser.add_argument("--ours-cache", type=pathlib.Path, default=None,
                        help="keep bayesdl's runs in this JSON file too (e.g. to print the "
                             "table again); by default bayesdl always runs")
    args = parser.parse_args()
    peers = None if args.no_cache else (
        json.loads(PEER_CACHE.read_text()) if PEER_CACHE.exists() else {})
    ours = None if args.ours_cache is None else (
        json.loads(args.ours_cache.read_text()) if args.ours_cache.exists() else {})
    print(f"machine: {machine()}")
    print(f"seeds: {args.seeds}, budgets: {args.budgets}")
    n_max = max(args.budgets)
    for name in args.problems:
        problem = PROBLEMS[name]
        print(f"\n{name} (median simple regret over {args.seeds} seeds; ask time at "
              f"{n_max} evaluations)")
        header = f"{'method':<12}" + "".join(f"{'@' + str(b):>11}" for b in args.budgets)
        print(header + f"{'s/ask (last 10)':>17}{'CPU s/ask':>11}")
        regrets = {}
        for method in args.methods:
            curves, ask_times, cpu_times = [], [], []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                ys, asks, cpus = (run_cached(method, problem, n_max, seed, ours, args.ours_cache)
                                  if method == "bayesdl BO" else
                                  run_cached(method, problem, n_max, seed, peers, PEER_CACHE))
                curves.append(np.minimum.accumulate(ys) - problem.f_min)
                ask_times += asks[-10:]
                cpu_times += cpus[-10:]
            curves = np.array(curves)
            regrets[method] = {b: float(np.median(curves[:, b - 1])) for b in args.budgets}
            ask = f"{np.median(ask_times):.3f}" if ask_times else "-"
            cpu = f"{np.median(cpu_times):.3f}" if cpu_times else "-"
            print(f"{method:<12}" + "".join(f"{regrets[method][b]:>11.3g}" for b in args.budgets)
                  + f"{ask:>17}{cpu:>11}", flush=True)
        if "bayesdl BO" in regrets and "Optuna GP" in regrets:
            ratios = "  ".join(f"@{b}: {regrets['Optuna GP'][b] / max(regrets['bayesdl BO'][b], 1e-300):.3g}"
                               for b in args.budgets)
            print(f"regret ratio Optuna GP / bayesdl (>1: bayesdl ahead): {ratios}")


if __name__ == "__main__":
    main()

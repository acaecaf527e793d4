"""Report section: Bayesian optimisation (GP surrogate + log expected improvement)."""

from __future__ import annotations

import time

import numpy as np
import torch

from ...optimize import BayesianOptimizer
from ...optimize.functions import BRANIN
from ...viz import optimize as viz
from ..section import Section

TITLE = "Bayesian optimisation"


def forrester(x):
    """Forrester et al. (2008): (6x - 2)^2 sin(12x - 4) on [0, 1], minimum -6.0207 at 0.7572."""
    return (6 * x - 2) ** 2 * np.sin(12 * x - 4)


def _one_dimensional_run(seed, n_steps):
    opt = BayesianOptimizer([(0.0, 1.0)], n_initial_points=3, n_raw_samples=256, n_restarts=4,
                            random_state=seed)
    grid = np.linspace(0, 1, 300)
    steps = []
    show = {0, n_steps // 2, n_steps - 1}
    for _ in range(3):
        x = opt.ask()
        opt.tell(x, float(forrester(x[0])))
    for k in range(n_steps):
        gp = opt._surrogate()
        nxt = opt.ask()
        if k in show:
            U = torch.as_tensor(grid[:, None])
            with torch.no_grad():
                mean, std = opt._posterior(gp)(U)
                acq = opt.acquisition_values(U, gp)
            steps.append(dict(n=len(opt.func_vals), mean=mean.numpy() * opt._y_std + opt._y_mean,
                              std=std.numpy() * opt._y_std, acq=acq.numpy(),
                              x=[x[0] for x in opt.x_iters], y=list(opt.func_vals), next=nxt[0]))
        opt.tell(nxt, float(forrester(nxt[0])))
    return viz.steps_figure(grid, forrester(grid), steps), opt.result()


def _regret_curves(seeds, n_calls):
    """Simple regret after each evaluation on Branin, BO against uniform random search."""
    bo, rs = [], []
    lo, hi = np.array(BRANIN.bounds).T
    for seed in seeds:
        opt = BayesianOptimizer(BRANIN.bounds, n_initial_points=5, n_raw_samples=256,
                                n_restarts=4, random_state=seed)
        for _ in range(n_calls):
            x = opt.ask()
            opt.tell(x, BRANIN.fn(x))
        bo.append(np.minimum.accumulate(opt.func_vals) - BRANIN.f_min)
        rng = np.random.default_rng(seed)
        ys = [BRANIN.fn(list(rng.uniform(lo, hi))) for _ in range(n_calls)]
        rs.append(np.minimum.accumulate(ys) - BRANIN.f_min)
    return {"Bayesian optimisation (LogEI)": np.array(bo), "random search": np.array(rs)}


def build(quick: bool = False, seed: int = 0) -> Section:
    start = time.perf_counter()
    steps_fig, res = _one_dimensional_run(seed, 6 if quick else 8)
    seeds, n_calls = (range(seed, seed + 2), 10) if quick else (range(seed, seed + 3), 18)
    curves = _regret_curves(seeds, n_calls)
    regret_fig = viz.regret_figure(curves, f"Branin, {len(seeds)} seeds")
    bo_final = float(np.median(curves["Bayesian optimisation (LogEI)"][:, -1]))
    rs_final = float(np.median(curves["random search"][:, -1]))
    return Section(
        title=TITLE,
        summary=(
            "Bayesian optimisation minimises an expensive black box by fitting a Gaussian "
            "process to the evaluations so far (Matern-5/2 ARD kernel, priors on the "
            "hyper-parameters) and evaluating next where the log expected improvement "
            "(Ament et al. 2023) is largest. Top: the surrogate and the acquisition on the "
            "Forrester function at three steps; the red line is the point chosen next. "
            "Bottom: simple regret on Branin against random search with the same budget."),
        figures=[
            ("Forrester function: GP mean and 2-sd band (top) and log EI (bottom) after 3 "
             "initial points and later steps; red = next evaluation", steps_fig),
            (f"Simple regret against evaluations on Branin: median and inter-quartile band "
             f"over {len(seeds)} seeds", regret_fig),
        ],
        table={
            "Forrester: best value found (minimum -6.0207)": round(res.fun, 4),
            "Forrester: evaluations": len(res.func_vals),
            f"Branin: median regret of BO after {n_calls} evaluations": float(f"{bo_final:.3g}"),
            f"Branin: median regret of random search after {n_calls}": float(f"{rs_final:.3g}"),
            "seconds": round(time.perf_counter() - start, 2),
        },
    )

"""Bayesian optimisation: acquisitions against naive formulas and finite differences, the
space encoding, the ask/tell contract, persistence, and regret against random search."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from bayesdl.optimize import (BayesianOptimizer, Categorical, Integer, Optimizer, Real, Space,
                              minimize)
from bayesdl.optimize.acquisition import (LogExpectedImprovement, ProbabilityOfImprovement,
                                          UpperConfidenceBound, log_h)
from bayesdl.optimize.functions import BRANIN, HARTMANN6


# -- acquisitions -------------------------------------------------------------------------------
def test_log_ei_equals_log_of_naive_ei_where_ei_is_not_tiny():
    mu = torch.linspace(-3, 3, 41, dtype=torch.float64)
    sigma = torch.linspace(0.1, 2.0, 41, dtype=torch.float64)
    best = 0.3
    z = ((best - mu) / sigma).numpy()
    naive = sigma.numpy() * (scipy.stats.norm.pdf(z) + z * scipy.stats.norm.cdf(z))  # Jones eq. 15
    got = LogExpectedImprovement().score(mu, sigma, best)
    np.testing.assert_allclose(got.numpy(), np.log(naive), rtol=1e-10)


def test_log_h_matches_mpmath_precision_reference_in_the_tail_and_is_monotone():
    # Reference: log(phi(z) + z Phi(z)) = log(phi(z)) + log(1 - |z| Phi(z)/phi(z)) computed with
    # scipy's erfcx (Mills ratio), independent of the torch code path.
    z = np.array([-5.0, -10.0, -30.0, -100.0, -1e3])
    mills = np.sqrt(np.pi / 2) * scipy.special.erfcx(-z / np.sqrt(2))  # Phi(z)/phi(z)
    ref = scipy.stats.norm.logpdf(z) + np.log1p(z * mills)
    got = log_h(torch.tensor(z, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    # where EI underflows (z = -40 gives h ~ 1e-350) the log stays finite and increasing
    zz = torch.linspace(-1e6, 5, 20001, dtype=torch.float64)
    values = log_h(zz)
    assert torch.isfinite(values).all()
    assert (values.diff() > 0).all()
    assert float(torch.exp(log_h(torch.tensor([-40.0], dtype=torch.float64)))) == 0.0


@pytest.mark.parametrize("acq", [LogExpectedImprovement(), ProbabilityOfImprovement(),
                                 UpperConfidenceBound()])
def test_acquisition_gradients_match_finite_differences(acq):
    rng = np.random.default_rng(0)
    opt = BayesianOptimizer([(0.0, 1.0), (0.0, 1.0)], n_initial_points=2, acq_func=acq,
                            random_state=0)
    X = rng.uniform(size=(12, 2))
    opt.tell([list(x) for x in X], list(np.sin(5 * X[:, 0]) + X[:, 1] ** 2))
    gp = opt._surrogate()
    U = torch.tensor(rng.uniform(0.05, 0.95, size=(5, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda u: opt.acquisition_values(u, gp), (U,),
                                    eps=1e-6, atol=1e-6, rtol=1e-5)


def test_unknown_acquisition_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown acquisition 'EIX'"):
        BayesianOptimizer([(0.0, 1.0)], acq_func="EIX")


# -- space ----------------------------------------------------------------------------------------
def test_space_round_trips_every_dimension_type():
    space = Space({"lr": {"type": "real", "low": 1e-4, "high": 1e-1, "log": True},
                   "layers": {"type": "integer", "low": 1, "high": 8},
                   "act": {"type": "categorical", "categories": ["relu", "tanh", "gelu"]},
                   "drop": (0.0, 0.5)})
    assert space.n_dims == 1 + 1 + 3 + 1
    points = [[1e-4, 1, "relu", 0.0], [1e-1, 8, "gelu", 0.5], [3e-3, 4, "tanh", 0.25]]
    U = space.encode(points)
    assert U.min() >= 0 and U.max() <= 1
    np.testing.assert_allclose(U[2, 0], (math.log(3e-3) - math.log(1e-4)) / math.log(1e3),
                               rtol=1e-12)
    decoded = space.decode(U)
    for p, q in zip(points, decoded):
        assert p[1:3] == q[1:3]
        np.testing.assert_allclose([p[0], p[3]], [q[0], q[3]], rtol=1e-12)
    # every integer owns an equal share of the cube; one-hot blocks snap to the arg-max
    u = np.linspace(0, 1, 8001)[:, None]
    counts = np.bincount([k for k in Integer(1, 8).decode(u)])[1:]
    assert counts.max() - counts.min() <= 2
    assert Categorical(("a", "b", "c")).decode(np.array([[0.2, 0.7, 0.6]])) == ["b"]


@pytest.mark.parametrize("spec, message", [
    ([(1.0, 0.0)], "inverted or empty bounds"),
    ([[]], "no categories"),
    ({"a": {"type": "float", "low": 0, "high": 1}}, "unknown type 'float'"),
    ([(0.0, 1.0, "log-uniform")], "needs low > 0"),
])
def test_space_bad_input_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        Space(spec)


# -- ask / tell ----------------------------------------------------------------------------------
def _told(n=12, seed=0, **kwargs):
    opt = BayesianOptimizer(BRANIN.bounds, n_initial_points=5, random_state=seed, **kwargs)
    for _ in range(n):
        x = opt.ask()
        opt.tell(x, BRANIN.fn(x))
    return opt


def test_nan_in_tell_marks_a_failure_never_suggested_again_and_not_fitted():
    space = Space([Integer(0, 3), Categorical(("a", "b"))])  # 8 points in all
    opt = BayesianOptimizer(space, n_initial_points=2, random_state=0)
    opt.tell([[0, "a"], [3, "b"], [1, "a"]], [1.0, 2.0, float("nan")])
    seen = {(0, "a"), (3, "b"), (1, "a")}
    for _ in range(5):
        x = opt.ask()
        assert tuple(x) not in seen
        seen.add(tuple(x))
        opt.tell(x, float("nan") if x[0] == 2 else float(x[0]))
    assert len(opt._surrogate().X_train_) == int(np.sum(~np.isnan(opt.func_vals)))
    with pytest.raises(ValueError, match="exhausted"):
        opt.ask()
    with pytest.raises(ValueError, match="infinite"):
        opt.tell([0, "b"], float("inf"))


def test_ask_n_returns_n_distinct_points():
    opt = _told(8)
    batch = opt.ask(4)
    assert len(batch) == 4
    assert len({tuple(np.round(b, 12)) for b in batch}) == 4


def test_save_load_resumes_to_the_same_next_suggestion(tmp_path):
    opt = _told(9, seed=3)
    opt.save(tmp_path / "bo.safetensors")
    again = BayesianOptimizer.load(tmp_path / "bo.safetensors")
    assert again.x_iters == opt.x_iters
    np.testing.assert_array_equal(again.func_vals, opt.func_vals)
    np.testing.assert_allclose(again.ask(), opt.ask(), rtol=1e-9)
    # during the initial design too: the Sobol sequence continues
    early = BayesianOptimizer(BRANIN.bounds, n_initial_points=5, random_state=1)
    early.tell(early.ask(), 1.0)
    early.save(tmp_path / "early.safetensors")
    assert BayesianOptimizer.load(tmp_path / "early.safetensors").ask() == early.ask()


def test_noisy_observations_are_fitted_with_a_noise_term():
    rng = np.random.default_rng(0)
    opt = BayesianOptimizer([(0.0, 1.0)], n_initial_points=2, random_state=0)
    X = rng.uniform(size=40)
    opt.tell([[x] for x in X], list(np.sin(6 * X) + 0.3 * rng.standard_normal(40)))
    gp = opt._surrogate()
    noise_var = gp.kernel_.k2.noise_level * opt._y_std ** 2  # back in data units
    assert 0.03 < noise_var < 0.3  # true 0.09


def test_ask_returns_the_acquisition_maximum_of_a_dense_grid():
    # the batched multi-start L-BFGS-B must find the log EI peak as well as a 201 x 201 grid
    opt = _told(12, seed=1)
    gp = opt._surrogate()
    g = np.linspace(0, 1, 201)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)  # (40401, 2)
    with torch.no_grad():
        grid_best = float(opt.acquisition_values(grid, gp).max())
        chosen = float(opt.acquisition_values(opt.space.encode([opt.ask()]), gp)[0])
    assert chosen >= grid_best - 1e-6, (chosen, grid_best)


def test_bayesian_optimizer_is_the_documented_name_and_optimizer_its_alias():
    assert Optimizer is BayesianOptimizer
    with pytest.raises(ValueError, match="n_raw_samples and n_restarts must be at least 1"):
        BayesianOptimizer([(0.0, 1.0)], n_restarts=0)


def test_minimize_returns_the_skopt_result_fields():
    res = minimize(BRANIN.fn, BRANIN.bounds, n_calls=12, n_initial_points=6, random_state=0)
    assert len(res.x_iters) == len(res.func_vals) == 12
    assert res.fun == min(res.func_vals)
    assert res.x == res.x_iters[int(np.argmin(res.func_vals))]
    with pytest.raises(ValueError, match="n_calls"):
        minimize(BRANIN.fn, BRANIN.bounds, n_calls=0)


# -- regret against random search ---------------------------------------------------------------
def _median_regrets(problem, n_calls, n_initial, seeds):
    bo, rs = [], []
    for seed in seeds:
        res = minimize(problem.fn, problem.bounds, n_calls=n_calls, n_initial_points=n_initial,
                       random_state=seed)
        bo.append(res.fun - problem.f_min)
        rng = np.random.default_rng(seed)
        lo, hi = np.array(problem.bounds).T
        rs.append(min(problem.fn(list(rng.uniform(lo, hi))) for _ in range(n_calls))
                  - problem.f_min)
    return np.median(bo), np.median(rs)


def test_bo_beats_random_search_on_branin_light():
    bo, rs = _median_regrets(BRANIN, 20, 6, range(3))
    assert bo * 5 < rs, (bo, rs)


@pytest.mark.slow
@pytest.mark.parametrize("problem, n_calls, n_initial", [(BRANIN, 40, 8), (HARTMANN6, 60, 12)])
def test_bo_median_regret_is_ten_times_below_random_search(problem, n_calls, n_initial):
    bo, rs = _median_regrets(problem, n_calls, n_initial, range(10))
    assert bo * 10 < rs, (bo, rs)


# -- audit: scikit-optimize's conventions, persistence, resumed histories -------------------------
def test_space_reads_dimensions_by_scikit_optimize_rules():
    """skopt.space.check_dimension: two numbers are bounds whatever the container, a prior
    string (and a log base) makes a range, anything else is a list of categories."""
    space = Space([[-2.0, 2.0], np.array([0, 5]), (0.0, 1.0, "uniform"),
                   (1e-3, 1.0, "log-uniform", 10), (1, 2, 3), ["relu"], (True, False)])
    kinds = [(type(d).__name__, getattr(d, "log", None)) for d in space.dimensions]
    assert kinds == [("Real", False), ("Integer", False), ("Real", False), ("Real", True),
                     ("Categorical", None), ("Categorical", None), ("Categorical", None)]
    assert space.dimensions[4].categories == (1, 2, 3)
    # a log-uniform range is uniform in log space, whatever the base: log10 ratios are ln ratios
    u = space.dimensions[3].encode([1e-2])[0, 0]
    assert u == pytest.approx((math.log10(1e-2) + 3) / 3, rel=1e-12)
    # skopt's prior keyword, and skopt's positional prior in the place of ``log``
    assert Real(1e-4, 1e-1, prior="log-uniform", name="lr").log is True
    assert Real(0.1, 1.0, "uniform").log is False and Real(0.1, 1.0, "log-uniform").log is True
    assert Integer(1, 64, prior="log-uniform").log is True
    assert Categorical(["relu", "tanh"], name="act") == Categorical(("relu", "tanh"), name="act")
    with pytest.raises(ValueError, match="unknown prior 'normal'"):
        Real(0.1, 1.0, prior="normal")
    with pytest.raises(ValueError, match=r"needs \['low', 'high'\]"):
        Space({"lr": {"type": "real", "high": 1.0}})


def test_points_are_plain_python_values_and_whole_floats_count_as_integers():
    space = Space([Real(0.0, 1.0), Integer(1, 5), Categorical(("a", "b"))])
    assert space.check_point([np.float64(0.5), 3.0, np.str_("b")]) == [0.5, 3, "b"]
    assert [type(v) for v in space.check_point([np.float64(0.5), 3.0, "b"])] == [float, int, str]
    with pytest.raises(ValueError, match="lies outside"):
        space.check_point([0.5, 2.5, "a"])
    opt = BayesianOptimizer(space, n_initial_points=2, random_state=0)
    assert [type(v) for v in opt.ask()] == [float, int, str]
    with pytest.raises(ValueError, match="must be a real number"):
        opt.tell([0.5, 3, "a"], None)
    with pytest.raises(ValueError, match="x must be a list of points"):
        opt.tell([0.5, 3, "a"], [1.0])


def test_acquisition_parameters_survive_save_load(tmp_path):
    opt = _told(8, seed=2, acq_func=UpperConfidenceBound(beta=25.0))
    opt.save(tmp_path / "bo.safetensors")
    again = BayesianOptimizer.load(tmp_path / "bo.safetensors")
    assert again.acquisition.beta == 25.0
    np.testing.assert_allclose(again.ask(), opt.ask(), rtol=1e-12)


def test_a_history_told_to_a_new_optimizer_is_not_evaluated_again():
    """A resumed log (the history told to a fresh optimiser) continues the initial design
    where it stopped, exactly as the uninterrupted run, instead of repeating its points."""
    whole = BayesianOptimizer(BRANIN.bounds, n_initial_points=8, random_state=5)
    for _ in range(6):
        x = whole.ask()
        whole.tell(x, BRANIN.fn(x))
    resumed = BayesianOptimizer(BRANIN.bounds, n_initial_points=8, random_state=5)
    resumed.tell(whole.x_iters[:3], whole.func_vals[:3])
    for k in range(3, 6):
        x = resumed.ask()
        assert x == whole.x_iters[k]
        resumed.tell(x, BRANIN.fn(x))
    # in a small discrete space the Sobol design never repeats a point either (8 points)
    tiny = BayesianOptimizer([Integer(0, 3), Categorical(("a", "b"))], n_initial_points=8,
                             random_state=0)
    design = tiny.ask(8)
    assert len({tuple(p) for p in design}) == 8


def test_minimize_takes_callback_lists_and_survives_a_failed_first_evaluation():
    """As scikit-optimize: every callback sees the result after every evaluation (x None and
    fun NaN while nothing has succeeded), and tell returns that result."""
    calls, seen = [], []

    def fn(x):
        calls.append(x)
        return float("nan") if len(calls) == 1 else BRANIN.fn(x)

    res = minimize(fn, BRANIN.bounds, n_calls=8, n_initial_points=4, random_state=0,
                   callback=[lambda r: seen.append(len(r.x_iters)),
                             lambda r: len(r.x_iters) >= 6])
    assert seen == [1, 2, 3, 4, 5, 6]  # the second callback stops the run at 6
    assert len(res.x_iters) == 6 and np.isnan(res.func_vals[0])
    assert res.fun == np.nanmin(res.func_vals)
    opt = BayesianOptimizer(BRANIN.bounds, n_initial_points=3, random_state=0)
    first = opt.tell(opt.ask(), float("nan"))
    assert first.x is None and np.isnan(first.fun)
    second = opt.tell([1.0, 2.0], 30.0)
    assert second.x == [1.0, 2.0] and second.fun == 30.0 and len(second.x_iters) == 2
    assert opt.Xi == second.x_iters and opt.yi[1] == 30.0 and second.random_state == 0
    with pytest.raises(ValueError, match="every one of the 3 evaluations failed"):
        minimize(lambda x: float("nan"), BRANIN.bounds, n_calls=3, random_state=0)


def test_minimize_x0_is_evaluated_first_and_y0_told_without_evaluating():
    seen = []

    def fn(x):
        seen.append(list(x))
        return BRANIN.fn(x)

    start = [[-math.pi, 12.275], [math.pi, 2.275]]  # two of Branin's minima
    res = minimize(fn, BRANIN.bounds, n_calls=5, n_initial_points=3, random_state=0, x0=start)
    assert seen[:2] == start and len(seen) == 5
    assert res.fun == pytest.approx(BRANIN.f_min, abs=1e-5)
    seen.clear()
    told = minimize(fn, BRANIN.bounds, n_calls=3, n_initial_points=3, random_state=0,
                    x0=start[0], y0=BRANIN.fn(start[0]))
    assert len(told.x_iters) == 4 and len(seen) == 3 and told.x_iters[0] == start[0]
    with pytest.raises(ValueError, match="x0 holds 2 points to evaluate but n_calls is 1"):
        minimize(fn, BRANIN.bounds, n_calls=1, x0=start)


def test_thompson_draws_are_of_the_latent_f_not_of_noisy_y():
    """On a noisy objective, Thompson sampling's draws have the latent posterior's mean and
    variance (R&W 2.25-2.26), without the fitted noise variance (Monte Carlo, 4000 draws)."""
    rng = np.random.default_rng(1)
    opt = BayesianOptimizer([(0.0, 1.0)], n_initial_points=2, acq_func="TS", random_state=0)
    X = rng.uniform(size=30)
    opt.tell([[x] for x in X], list(np.sin(6 * X) + 0.4 * rng.standard_normal(30)))
    gp = opt._surrogate()
    posterior = opt._posterior(gp)
    U = torch.tensor([[0.1], [0.45], [0.8]], dtype=torch.float64)
    mean, std = posterior(U)
    noise = gp.kernel_.k2.noise_level
    assert noise > 2 * float(std.max()) ** 2  # a draw of y would have 3x the variance
    draws = posterior.sample(U, torch.Generator().manual_seed(0), n=4000).numpy()  # (3, 4000)
    se = std.numpy() / np.sqrt(4000)
    np.testing.assert_array_less(np.abs(draws.mean(1) - mean.numpy()), 5 * se)
    np.testing.assert_allclose(draws.var(1), std.numpy() ** 2, rtol=0.15)  # ~6 sd of var

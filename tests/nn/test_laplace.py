"""Laplace for networks against BayesianLogisticRegression, closed forms and grid searches."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from bayesdl.linear_model import BayesianLogisticRegression
from bayesdl.nn.laplace import Laplace
from bayesdl.uncertainty import (MonteCarloCategorical, decompose, negative_log_likelihood,
                                 predict_dist)


def _linear_net(D, K, coef, intercept):
    net = nn.Sequential(nn.Identity(), nn.Linear(D, K)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.as_tensor(coef))
        net[1].bias.copy_(torch.as_tensor(intercept))
    return net


@pytest.mark.parametrize("n_classes", [2, 3])
def test_last_layer_laplace_on_identity_body_equals_bayesian_logistic_regression(n_classes):
    X, y = make_classification(150, 3, n_informative=3, n_redundant=0, n_classes=n_classes,
                               n_clusters_per_class=1, random_state=0)
    alpha = 0.7
    blr = BayesianLogisticRegression(alpha=alpha, intercept_precision=alpha).fit(X, y)
    K = blr.coef_.shape[0]
    net = _linear_net(3, K, blr.coef_, blr.intercept_)
    la = Laplace(net, "classification", prior_precision=alpha).fit(torch.as_tensor(X), torch.as_tensor(y))
    # the Laplace orders (W row-major, then b); BLR orders (w_k, b_k) per class
    order = np.r_[[k * 4 + j for k in range(K) for j in range(3)], [k * 4 + 3 for k in range(K)]]
    np.testing.assert_allclose(la.posterior_covariance_.numpy(),
                               blr.covariance_[np.ix_(order, order)], rtol=1e-9, atol=1e-13)
    grid = torch.as_tensor(np.random.default_rng(0).normal(0, 2, (30, 3)))
    np.testing.assert_allclose(la.predict_dist(grid).probs.numpy(), blr.predict_proba(grid.numpy()),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(la.log_marginal_likelihood(), blr.log_evidence_, rtol=1e-9)


def test_kfac_diag_full_agree_on_a_single_output_linear_regression_layer():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(80, 4)))
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=X.dtype) + 0.3 * torch.randn(80, dtype=X.dtype)
    net = nn.Sequential(nn.Linear(4, 1)).double()
    fits = {s: Laplace(net, "regression", hessian_structure=s, prior_precision=2.0, sigma_noise=0.3)
            .fit(X, y) for s in ("full", "diag", "kron")}
    # Gaussian likelihood: the GGN is Phi^T Phi / sigma^2 exactly, and KFAC is exact for it
    Phi = torch.cat([X, torch.ones(80, 1, dtype=X.dtype)], 1)
    H = Phi.T @ Phi / 0.3**2
    np.testing.assert_allclose(fits["full"].H_.numpy(), H.numpy(), rtol=1e-10)
    np.testing.assert_allclose(fits["diag"].H_.numpy(), H.diagonal().numpy(), rtol=1e-10)
    _, _, _, A, B = fits["kron"].H_[0]
    np.testing.assert_allclose(torch.kron(B, A).numpy(), H.numpy(), rtol=1e-10)
    grid = torch.as_tensor(rng.normal(size=(10, 4)))
    full, kron = fits["full"].predict_dist(grid), fits["kron"].predict_dist(grid)
    np.testing.assert_allclose(kron.stddev.numpy(), full.stddev.numpy(), rtol=1e-9)
    # closed form: the Bayesian linear regression predictive variance phi^T S phi + sigma^2
    S = torch.linalg.inv(H + 2.0 * torch.eye(5, dtype=X.dtype))
    g = torch.cat([grid, torch.ones(10, 1, dtype=X.dtype)], 1)
    np.testing.assert_allclose(full.variance.numpy(), ((g @ S) * g).sum(1).numpy() + 0.09, rtol=1e-10)
    np.testing.assert_allclose(fits["full"].log_marginal_likelihood(),
                               fits["kron"].log_marginal_likelihood(), rtol=1e-10)


def test_last_layer_regressor_with_squeezed_output_equals_bayesian_linear_regression():
    """A custom regressor returning (N,) means (its head's (N, 1) squeezed): last-layer Laplace
    gives the closed-form Bayesian linear regression predictive phi^T S phi + sigma^2 (PRML
    3.58-3.59) and evidence (PRML 3.86). It was refused as "a layer after the last Linear"."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    Phi = np.c_[X, np.ones(len(X))]
    sigma, delta = 0.7, 3.0
    A = Phi.T @ Phi / sigma**2 + delta * np.eye(11)
    S = np.linalg.inv(A)
    m = S @ Phi.T @ y / sigma**2

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Identity(), nn.Linear(10, 1)

        def forward(self, x):
            return self.head(self.body(x))[:, 0]

    net = Regressor().double()
    with torch.no_grad():
        net.head.weight.copy_(torch.as_tensor(m[None, :10]))
        net.head.bias.fill_(m[10])
    la = Laplace(net, "regression", prior_precision=delta, sigma_noise=sigma).fit(
        torch.as_tensor(X), torch.as_tensor(y))
    dist = la.predict_dist(torch.as_tensor(X[:30]))
    np.testing.assert_allclose(dist.mean.numpy(), Phi[:30] @ m, rtol=1e-10)
    np.testing.assert_allclose(dist.variance.numpy(),
                               np.einsum("np,pq,nq->n", Phi[:30], S, Phi[:30]) + sigma**2, rtol=1e-10)
    N, M = Phi.shape
    E = 0.5 * np.sum((y - Phi @ m) ** 2) / sigma**2 + 0.5 * delta * m @ m
    evidence = (M / 2 * np.log(delta) - N * np.log(sigma) - E - 0.5 * np.linalg.slogdet(A)[1]
                - N / 2 * np.log(2 * np.pi))
    np.testing.assert_allclose(la.log_marginal_likelihood(), evidence, rtol=1e-10)


def test_marglik_prior_equals_grid_search_and_mc_plugs_into_decompose():
    X, y = make_classification(200, 5, n_informative=4, n_redundant=0, n_classes=3,
                               random_state=2)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.05, weight_decay=1e-3)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(net(Xt), yt).backward()
        opt.step()
    for structure in ("full", "diag", "kron"):
        la = Laplace(net, "classification", hessian_structure=structure).fit(Xt, yt)
        grid = la.prior_precision_ * np.logspace(-0.3, 0.3, 61)
        values = [la.log_marginal_likelihood(d) for d in grid]
        assert la.log_marginal_likelihood() >= max(values) - 1e-8
        np.testing.assert_allclose(la.prior_precision_, grid[int(np.argmax(values))], rtol=0.012)
    mc = predict_dist(la, Xt[:20], n_samples=20_000, generator=torch.Generator().manual_seed(0))
    assert isinstance(mc, MonteCarloCategorical)
    # reference: the linearised outputs' Gaussian N(f, J Sigma J^T) sampled row by row
    mean, cov = la.predictive_moments(Xt[:20])
    ref = torch.distributions.MultivariateNormal(mean, cov + 1e-12 * torch.eye(3)).sample((20_000,))
    np.testing.assert_allclose(mc.probs.numpy(), torch.softmax(ref, -1).mean(0).numpy(), atol=0.01)
    parts = decompose(mc)
    np.testing.assert_allclose(parts.total.numpy(), (parts.aleatoric + parts.epistemic).numpy(), rtol=1e-9)


def _val_nll(la, X, y, *args):
    """delta -> the mean NLL of (X, y) under the held-out objective's predictive."""
    dist, target = la._val_dist(X, *args), la._target(y)
    return lambda delta: float(-dist(delta).log_prob(target).mean())


@pytest.mark.parametrize("likelihood", ["classification", "regression"])
def test_val_nll_prior_is_the_best_of_a_grid_of_the_plain_predictive(likelihood):
    """The held-out objective (Jacobians rotated into H's eigenbasis once) equals the NLL of
    predict_dist after _set_prior, for every structure; the chosen prior beats a grid."""
    X, y = make_classification(240, 5, n_informative=4, n_redundant=0, n_classes=3,
                               class_sep=1.5, random_state=3)
    torch.manual_seed(0)
    K = 3 if likelihood == "classification" else 1
    net = nn.Sequential(nn.Linear(5, 32), nn.Tanh(), nn.Linear(32, K)).double()
    Xt = torch.as_tensor(X)
    yt = torch.as_tensor(y) if K == 3 else torch.as_tensor(X[:, 0] - X[:, 1] + 0.3 * y)
    loss = nn.functional.cross_entropy if K == 3 else (lambda o, t: ((o[:, 0] - t) ** 2).mean())
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(1000):  # no weight decay: an over-fitted MAP, as post-hoc Laplace meets it
        opt.zero_grad()
        loss(net(Xt[:160]), yt[:160]).backward()
        opt.step()
    Xv, yv = Xt[160:], yt[160:]
    for structure in ("full", "diag", "kron"):
        la = Laplace(net, likelihood, subset_of_weights="all", hessian_structure=structure,
                     prior_precision="val_nll").fit(Xt[:160], yt[:160], X_val=Xv, y_val=yv)
        best = la.prior_precision_
        objective = _val_nll(la, Xv, yv)

        def plain(delta):  # the reference: posterior at delta, then the public predictive
            la._set_prior(delta)
            dist = la.predict_dist(Xv)
            return float(-dist.log_prob(yv if K == 3 else yv.double()).mean())

        grid = best * np.logspace(-1, 1, 9)
        values = [plain(d) for d in grid]
        np.testing.assert_allclose([objective(d) for d in grid], values, rtol=1e-9)
        # "mc": the Monte-Carlo predictive over 64 fixed draws, as BayesianMLP* predicts
        # (a regression's Gaussian predictive is exact, so it stays the same objective)
        objective_mc = _val_nll(la, Xv, yv, "mc", 64)

        def plain_mc(delta):
            la._set_prior(delta)
            dist = la.predict_dist(Xv, link_approx="mc", n_samples=64,
                                   generator=torch.Generator().manual_seed(0))
            return negative_log_likelihood(dist, yv) if K == 3 else plain(delta)

        np.testing.assert_allclose([objective_mc(d) for d in grid[::2]],
                                   [plain_mc(d) for d in grid[::2]], rtol=1e-9)
        if K == 3:  # here the optimum is interior (neither the MAP nor the flat limit)
            assert 1e-2 < best < 1e3 and plain(best) <= min(values) + 1e-9


def test_all_weights_full_ggn_equals_autograd_jacobian_outer_product():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    X = torch.randn(7, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    la = Laplace(net, "classification", subset_of_weights="all", prior_precision=1.0).fit(X, y)
    params = dict(net.named_parameters())
    H = 0
    for x in X:  # a naive loop: J^T (diag p - p p^T) J per example
        J = torch.autograd.functional.jacobian(
            lambda *ps: torch.func.functional_call(net, dict(zip(params, ps)), (x[None],))[0],
            tuple(p.detach() for p in params.values()))
        J = torch.cat([j.reshape(2, -1) for j in J], 1)
        p = torch.softmax(net(x[None])[0], -1).detach()
        H = H + J.T @ (torch.diag(p) - torch.outer(p, p)) @ J
    np.testing.assert_allclose(la.H_.numpy(), H.numpy(), rtol=1e-10, atol=1e-14)


def test_clear_errors():
    net = nn.Sequential(nn.Linear(2, 2), nn.Softmax(-1)).double()
    X, y = torch.randn(5, 2, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match="last nn.Linear"):
        Laplace(net, prior_precision=1.0).fit(X, y)
    with pytest.raises(ValueError, match="hessian_structure"):
        Laplace(net, hessian_structure="block")
    with pytest.raises(ValueError, match=r"'kron' covers .* \['0.bias', '1.bias', '1.weight'\]"):
        frozen = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Linear(2, 2)).double()
        frozen[0].weight.requires_grad_(False)
        Laplace(frozen, subset_of_weights="all", hessian_structure="kron",
                prior_precision=1.0).fit(X, y)
    with pytest.raises(ValueError, match="X_val"):
        Laplace(nn.Linear(2, 2).double(), prior_precision="val_nll").fit(X, y)
    lin = nn.Linear(2, 2).double()
    with pytest.raises(ValueError, match="X contains NaN"):
        Laplace(lin, prior_precision=1.0).fit(torch.where(X > 1, float("nan"), X), y)
    with pytest.raises(ValueError, match=r"5 rows but its targets have shape \(4,\)"):
        Laplace(lin, prior_precision=1.0).fit(X, y[:4])
    with pytest.raises(ValueError, match=r"class labels 0..1 .*values 0..2.*LabelEncoder"):
        Laplace(lin, prior_precision=1.0).fit(X, torch.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match="one output and one target per row"):
        Laplace(lin, "regression", prior_precision=1.0).fit(X, X[:, 0])


def test_last_layer_is_the_one_called_last_not_the_one_defined_last():
    """A custom module may define its head before its body: last-layer Laplace takes the
    nn.Linear the forward pass calls last, and equals it on the same layers as nn.Sequential;
    a restored state keeps that layer."""

    class HeadFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(6, 3)
            self.body = nn.Sequential(nn.Linear(4, 6), nn.Tanh())

        def forward(self, x):
            return self.head(self.body(x))

    torch.manual_seed(0)
    net = HeadFirst().double()
    X, y = torch.randn(40, 4, dtype=torch.float64), torch.arange(40) % 3
    la = Laplace(net, prior_precision=1.0).fit(X, y)
    ref = Laplace(nn.Sequential(net.body, net.head), prior_precision=1.0).fit(X, y)
    assert la.last_layer_name_ == "head" and la.n_params_ == 21
    np.testing.assert_allclose(la.posterior_covariance_.numpy(), ref.posterior_covariance_.numpy(),
                               rtol=1e-12)
    back = Laplace(net, prior_precision=1.0).load_state(*la.state())
    np.testing.assert_array_equal(back.predict_dist(X).probs.numpy(), la.predict_dist(X).probs.numpy())


def test_from_trainer_checkpoint_equals_laplace_on_the_trained_network(tmp_path):
    from bayesdl.train import Trainer

    X, y = make_classification(100, 4, n_informative=3, n_redundant=0, random_state=3)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    Trainer(net, lambda m, batch, step: nn.functional.cross_entropy(m(batch[0]), batch[1]),
            max_epochs=3, checkpoint_dir=tmp_path, progress=False).fit((Xt, yt))
    fresh = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).double()
    la = Laplace.from_checkpoint(fresh, tmp_path / "last.safetensors", prior_precision=1.0).fit(Xt, yt)
    ref = Laplace(net, prior_precision=1.0).fit(Xt, yt)
    np.testing.assert_array_equal(la.posterior_covariance_.numpy(), ref.posterior_covariance_.numpy())


@pytest.mark.parametrize("likelihood", ["classification", "regression"])
def test_under_confidence_z_is_standard_normal_when_calibrated(likelihood):
    """prior_precision="auto" rejects the evidence when this z-score exceeds 2: over 1,000
    replicates of 200 rows whose labels are drawn from the predictive itself it has mean 0
    and sd 1 (to 0.1: 3 and 4.5 Monte-Carlo standard errors); the same rows with a
    flattened (under-confident) predictive score above 2 in every replicate."""
    torch.manual_seed(0)
    la = Laplace(nn.Linear(2, 3 if likelihood == "classification" else 1).double(), likelihood,
                 prior_precision=1.0, sigma_noise=1.0)
    X = torch.randn(20, 2, dtype=torch.float64)
    la.fit(X, torch.randint(0, 3, (20,)) if likelihood == "classification" else X[:, 0])
    g = torch.Generator().manual_seed(1)
    R, N = 1000, 200  # replicates, rows
    if likelihood == "classification":
        logits = 3 * torch.randn(R, N, 3, dtype=torch.float64, generator=g)
        u = torch.rand(R, N, 1, dtype=torch.float64, generator=g)
        ys = (u > torch.softmax(logits, -1).cumsum(-1)).sum(-1)  # (R, N) drawn from p
        pairs = [(torch.distributions.Categorical(logits=lg, validate_args=False),
                  torch.distributions.Categorical(logits=lg / 3, validate_args=False))
                 for lg in logits]
    else:
        mean = torch.randn(R, N, dtype=torch.float64, generator=g)
        scale = torch.rand(R, N, dtype=torch.float64, generator=g) + 0.5
        ys = mean + scale * torch.randn(R, N, dtype=torch.float64, generator=g)
        pairs = [(torch.distributions.Normal(m, s), torch.distributions.Normal(m, 2 * s))
                 for m, s in zip(mean, scale)]
    z = [la._under_confidence(dist, y) for (dist, _), y in zip(pairs, ys)]
    flat = [la._under_confidence(wide, y) for (_, wide), y in zip(pairs, ys)]
    assert abs(np.mean(z)) < 0.1 and abs(np.std(z) - 1) < 0.1
    assert np.min(flat) > 2

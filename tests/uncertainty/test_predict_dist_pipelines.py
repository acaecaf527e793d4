"""uncertainty.predict_dist for any model that predicts: bayesdl estimators, torch networks,
and scikit-learn Pipelines ending in either (the leading steps transform X first)."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from bayesdl.linear_model import BayesianLinearRegression, GaussianBasis
from bayesdl.mixture import GaussianMixture
from bayesdl.nn import MCDropout
from bayesdl.neural_network import BayesianMLPRegressor
from bayesdl.uncertainty import MonteCarloCategorical, predict_dist


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 3.0, size=(50, 2))
    return X, np.sin(X[:, 0]) + 0.1 * rng.normal(size=50)


def test_pipeline_ending_in_blr_gives_the_blr_predictive_on_transformed_inputs(data):
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()), ("basis", GaussianBasis(n_centers=5)),
                     ("blr", BayesianLinearRegression())]).fit(X, y)
    dist = predict_dist(pipe, X)
    assert isinstance(dist, torch.distributions.Normal)
    # the same as transforming by hand, and as the Pipeline's own predict
    Phi = pipe[1].transform(pipe[0].transform(X))
    ref = pipe[-1].predict_dist(Phi)
    torch.testing.assert_close(dist.mean, ref.mean, rtol=0, atol=0)
    torch.testing.assert_close(dist.stddev, ref.stddev, rtol=0, atol=0)
    mean, std = pipe.predict(X, return_std=True)
    np.testing.assert_allclose(dist.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(dist.stddev.numpy(), std, rtol=1e-12)
    # a bare estimator gives its own predict_dist
    torch.testing.assert_close(predict_dist(pipe[-1], Phi).mean, ref.mean, rtol=0, atol=0)


def test_pipeline_ending_in_a_mixture_gives_the_component_posterior(data):
    X, _ = data
    pipe = Pipeline([("scale", StandardScaler()), ("gmm", GaussianMixture(2, random_state=0))]).fit(X)
    dist = predict_dist(pipe, X)
    np.testing.assert_allclose(dist.probs.numpy(), pipe.predict_proba(X), rtol=1e-12, atol=1e-15)


def test_pipeline_ending_in_a_bayesian_mlp(data):
    X, y = data
    pipe = Pipeline([("scale", StandardScaler()),
                     ("bnn", BayesianMLPRegressor((8,), max_epochs=3, random_state=0))]).fit(X, y)
    dist = predict_dist(pipe, X)
    ref = pipe[-1].predict_dist(pipe[0].transform(X))  # the estimator seeds its own sampling
    torch.testing.assert_close(dist.mean, ref.mean, rtol=0, atol=0)
    torch.testing.assert_close(dist.variance, ref.variance, rtol=0, atol=0)


def test_pipeline_ending_in_a_torch_network(data):
    X, _ = data
    scaler = StandardScaler().fit(X)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), MCDropout(0.2, seed=3), nn.Linear(16, 3)).double()
    pipe = Pipeline([("scale", scaler), ("net", net)])
    state = net[2].generator.get_state()
    dist = predict_dist(pipe, X, 20)
    net[2].generator.set_state(state)
    ref = predict_dist(net, torch.as_tensor(scaler.transform(X)), 20)
    assert isinstance(dist, MonteCarloCategorical) and dist.member_probs.shape == (50, 20, 3)
    torch.testing.assert_close(dist.member_probs, ref.member_probs, rtol=0, atol=0)
    # a deterministic network: one pass, the softmax of its output on the scaled inputs
    lin = nn.Linear(2, 3).double()
    d = predict_dist(Pipeline([("scale", scaler), ("lin", lin)]), X)
    with torch.no_grad():
        expected = torch.softmax(lin(torch.as_tensor(scaler.transform(X))), -1)
    torch.testing.assert_close(d.probs, expected, rtol=1e-12, atol=1e-15)


def test_a_model_without_a_predictive_is_refused(data):
    with pytest.raises(ValueError, match="StandardScaler has no predictive distribution"):
        predict_dist(StandardScaler().fit(data[0]), data[0])

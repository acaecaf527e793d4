"""predict_dist: batched and looped Monte Carlo agree; n_samples validation; figure."""

import numpy as np
import pytest
import torch
from torch import nn

from bayesdl.nn import BayesLinear, DeepEnsemble, MCDropout
from bayesdl.uncertainty import decompose, predict_dist, sample_outputs


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 30), nn.ReLU(), MCDropout(0.3, seed=1), nn.Linear(30, 2))


def test_batched_and_looped_monte_carlo_estimate_the_same_predictive():
    net, x = _net(), torch.randn(3, 2)
    a = predict_dist(net, x, 4000, likelihood="heteroscedastic", batched=True)
    b = predict_dist(net, x, 4000, likelihood="heteroscedastic", batched=False)
    torch.testing.assert_close(a.mean, b.mean, atol=4 * (a.variance / 4000).sqrt().max().item(),
                               rtol=0)
    torch.testing.assert_close(decompose(a).epistemic, decompose(b).epistemic, rtol=0.15, atol=0)


def test_reference_mean_is_the_average_of_forward_passes():
    net, x = _net(), torch.randn(4, 2)
    gen_state = net[2].generator.get_state()
    outs = sample_outputs(net, x, 10, batched=False)
    net[2].generator.set_state(gen_state)
    ref = []
    for _ in range(10):
        net[2].batch_shared = True
        ref.append(net(x))
    net[2].batch_shared = False
    torch.testing.assert_close(outs, torch.stack(ref))
    d = predict_dist(net, x, 10)
    assert d.member_probs.shape == (4, 10, 2)


def test_deterministic_and_ensemble_sample_counts():
    lin = nn.Linear(2, 3)
    assert sample_outputs(lin, torch.randn(5, 2), 50).shape == (1, 5, 3)
    ens = DeepEnsemble.from_factory(lambda: nn.Linear(2, 3), 4, seed=0)
    out = sample_outputs(ens, torch.randn(5, 2), 50)
    assert out.shape == (4, 5, 3)
    d = predict_dist(ens, torch.randn(5, 2), 50)
    np.testing.assert_allclose(d.probs.sum(-1).detach().numpy(), 1.0)
    bayes_ens = DeepEnsemble([BayesLinear(2, 3, sampling="local") for _ in range(2)])
    assert sample_outputs(bayes_ens, torch.randn(5, 2), 7).shape == (14, 5, 3)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_n_samples_must_be_positive(bad):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        predict_dist(_net(), torch.randn(2, 2), bad)


def test_gaussian_likelihood_needs_noise():
    with pytest.raises(ValueError, match="noise_std"):
        predict_dist(_net(), torch.randn(2, 2), 3, likelihood="gaussian")


def test_reliability_diagram_renders(tmp_path):
    from torch.distributions import Categorical

    from bayesdl.viz.uncertainty import reliability_diagram
    rng = np.random.default_rng(0)
    probs = torch.as_tensor(rng.dirichlet(np.ones(3), size=200))
    y = rng.integers(0, 3, size=200)
    sharper = probs**2 / (probs**2).sum(1, keepdim=True)
    fig = reliability_diagram({"a": Categorical(probs=probs), "b": Categorical(probs=sharper)}, y)
    assert len(fig.axes) >= 2
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_gaussian_likelihood_of_a_deterministic_network_is_its_output_with_known_noise():
    torch.manual_seed(0)
    net, x = nn.Linear(3, 1), torch.randn(5, 3)
    d = predict_dist(net, x, 10, likelihood="gaussian", noise_std=0.3)
    torch.testing.assert_close(d.mean, net(x).squeeze(-1).detach())
    torch.testing.assert_close(d.stddev, torch.full((5,), 0.3))

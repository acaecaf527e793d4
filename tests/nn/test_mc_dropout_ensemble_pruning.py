"""MC dropout, deep ensembles and signal-to-noise pruning."""

import numpy as np
import pytest
import torch
from torch import nn

from bayesdl.nn import (BayesLinear, DeepEnsemble, MCDropout, function_sampling,
                        mc_dropout_weight_decay, signal_to_noise, signal_to_noise_prune,
                        to_mc_dropout)


def test_mc_dropout_is_active_in_eval_and_reproducible_from_its_seed():
    x = torch.ones(2000, 50, dtype=torch.float64)
    a, b = MCDropout(0.3, seed=7).eval(), MCDropout(0.3, seed=7).eval()
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb)
    dropped = (ya == 0).double().mean().item()
    # Binomial(100000, 0.3): standard error 0.00145
    assert abs(dropped - 0.3) < 0.006
    # kept units are scaled by 1 / (1 - p): E[output] = input
    assert set(np.unique(ya.numpy()).round(12)) == {0.0, round(1 / 0.7, 12)}
    # the global RNG is not used when a seed is given
    state = torch.get_rng_state()
    a(x)
    assert torch.equal(state, torch.get_rng_state())


def test_batch_shared_masks_under_function_sampling():
    net = nn.Sequential(nn.Linear(3, 20), MCDropout(0.5, seed=0),
                        BayesLinear(20, 1, sampling="local"))
    x = torch.randn(1, 3).repeat(8, 1)
    with function_sampling(net):
        out = net(x)
    assert torch.allclose(out, out[:1].expand_as(out))  # one network for the whole batch
    assert net[2].sampling == "local" and not net[1].batch_shared  # restored
    assert out.std() == 0 and net(x).std() > 0


def test_to_mc_dropout_replaces_dropout_layers():
    net = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.2), nn.Linear(4, 1))
    mc = to_mc_dropout(net, seed=0)
    assert isinstance(mc[1], MCDropout) and mc[1].p == 0.2 and isinstance(net[1], nn.Dropout)
    mc.eval()
    x = torch.randn(5, 2)
    assert not torch.equal(mc(x), mc(x))


def test_mc_dropout_weight_decay_formula():
    # l^2 (1 - p) / (N tau) = 1e-4 * 0.9 / (100 * 2)
    assert mc_dropout_weight_decay(1e-2, 0.1, 100, tau=2.0) == pytest.approx(4.5e-7)
    with pytest.raises(ValueError, match="dropout must be in"):
        mc_dropout_weight_decay(1e-2, 1.0, 100)
    with pytest.raises(ValueError, match="dropout probability"):
        MCDropout(1.5)


def test_deep_ensemble_stacks_members_and_is_reproducible():
    ens1 = DeepEnsemble.from_factory(lambda: nn.Linear(3, 2), 4, seed=5)
    ens2 = DeepEnsemble.from_factory(lambda: nn.Linear(3, 2), 4, seed=5)
    x = torch.randn(6, 3)
    out = ens1(x)
    assert out.shape == (4, 6, 2)
    torch.testing.assert_close(out, ens2(x))
    torch.testing.assert_close(out[2], ens1.members[2](x))
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="at least one member"):
        DeepEnsemble([])


def test_signal_to_noise_prune_removes_the_lowest_snr_weights():
    torch.manual_seed(0)
    net = nn.Sequential(BayesLinear(6, 5), nn.ReLU(), BayesLinear(5, 2))
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight_rho.uniform_(-4, 0)
    snr = np.concatenate([(l.weight_mu.abs() / l.posterior_std("weight")).detach().numpy().ravel()
                          for l in (net[0], net[2])])
    threshold = signal_to_noise_prune(net, 0.4)
    n_pruned = sum(int((l.weight_mask == 0).sum()) for l in (net[0], net[2]))
    assert n_pruned == round(0.4 * snr.size)
    assert threshold == pytest.approx(np.sort(snr)[n_pruned - 1])
    kept = signal_to_noise(net).numpy()
    np.testing.assert_allclose(np.sort(kept), np.sort(snr)[n_pruned:], rtol=1e-6)
    # pruned weights are exactly zero in every sample, and absent from the KL
    w = net[0].sample_weight("weight")
    assert torch.all(w[net[0].weight_mask == 0] == 0)
    full = BayesLinear(6, 5)
    full.load_state_dict({k: v for k, v in net[0].state_dict().items() if "mask" not in k})
    assert full.mask("weight") is None
    assert net[0].kl_divergence() < full.kl_divergence()
    # a fresh layer loading the pruned state takes its mask along
    again = BayesLinear(6, 5)
    again.load_state_dict(net[0].state_dict())
    torch.testing.assert_close(again.weight_mask, net[0].weight_mask)
    with pytest.raises(ValueError, match="fraction must be in"):
        signal_to_noise_prune(net, 1.0)

"""Restricted Boltzmann machines: energies, conditionals and log Z against brute-force sums,
AIS against exact enumeration, CD/PCD training through the Trainer."""

import itertools
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
import torch
from sklearn.datasets import load_digits

from bayesdl.generative import rbm as rbm_module
from bayesdl.generative.rbm import (BernoulliRBM, GaussianBernoulliRBM, ais_schedule, cd_loss,
                                    pcd_loss)
from bayesdl.train import Trainer


def _random_rbm(cls, D, H, scale=1.0, seed=0):
    torch.manual_seed(seed)
    m = cls(D, H).double()
    with torch.no_grad():
        m.weight.normal_(0, scale)
        m.visible_bias.normal_()
        m.hidden_bias.normal_()
    return m


def _params(m):
    return (m.weight.detach().numpy(), m.visible_bias.detach().numpy(),
            m.hidden_bias.detach().numpy())


def _naive_energy(v, h, W, b, c, gaussian):
    """E(v, h) written out unit by unit; Gaussian units in the ||v - b||^2 / 2 form."""
    e = 0.0
    for i in range(len(v)):
        e += 0.5 * (v[i] - b[i]) ** 2 if gaussian else -b[i] * v[i]
        for j in range(len(h)):
            e -= v[i] * W[i, j] * h[j]
    for j in range(len(h)):
        e -= c[j] * h[j]
    return e


def _binary_states(n):
    return [np.array(s, dtype=float) for s in itertools.product([0, 1], repeat=n)]


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_free_energy_and_p_h_given_v_match_a_loop_over_hidden_states(cls):
    gaussian = cls is GaussianBernoulliRBM
    m = _random_rbm(cls, 5, 4)
    W, b, c = _params(m)
    rng = np.random.default_rng(1)
    V = rng.normal(size=(6, 5)) if gaussian else (rng.random((6, 5)) < 0.5).astype(float)
    F = m.free_energy(torch.from_numpy(V)).detach().numpy()
    P = m.p_h_given_v(torch.from_numpy(V)).mean.detach().numpy()
    for n, v in enumerate(V):
        weights = np.array([math.exp(-_naive_energy(v, h, W, b, c, gaussian))
                            for h in _binary_states(4)])
        # our Gaussian energy is the ||v - b||^2 / 2 form less the constant ||b||^2 / 2
        const = 0.5 * b @ b if gaussian else 0.0
        assert F[n] == pytest.approx(-math.log(weights.sum()) - const, rel=1e-12, abs=1e-12)
        for j in range(4):
            on = sum(w for w, h in zip(weights, _binary_states(4)) if h[j] == 1)
            assert P[n, j] == pytest.approx(on / weights.sum(), rel=1e-12)


def test_bernoulli_p_v_given_h_matches_a_loop_over_visible_states():
    m = _random_rbm(BernoulliRBM, 4, 3)
    W, b, c = _params(m)
    for h in _binary_states(3):
        weights = np.array([math.exp(-_naive_energy(v, h, W, b, c, False))
                            for v in _binary_states(4)])
        dist = m.p_v_given_h(torch.from_numpy(h)[None])
        log_p = dist.log_prob(torch.tensor(np.array(_binary_states(4)))).detach().numpy()
        np.testing.assert_allclose(np.exp(log_p), weights / weights.sum(), rtol=1e-12)


def test_gaussian_p_v_given_h_is_the_normal_of_mean_b_plus_wh():
    m = _random_rbm(GaussianBernoulliRBM, 3, 2)
    W, b, c = _params(m)
    v = np.array([0.3, -1.2, 2.0])
    for h in _binary_states(2):
        log_p = m.p_v_given_h(torch.from_numpy(h)[None]).log_prob(torch.from_numpy(v)[None])
        assert float(log_p.detach()) == pytest.approx(scipy.stats.norm(b + W @ h, 1.0).logpdf(v).sum(),
                                             rel=1e-12)


def test_exact_log_partition_equals_the_sum_over_all_visible_and_hidden_states():
    m = _random_rbm(BernoulliRBM, 6, 4)
    W, b, c = _params(m)
    log_terms = [-_naive_energy(v, h, W, b, c, False)
                 for v in _binary_states(6) for h in _binary_states(4)]
    value, stderr = m.log_partition("exact")
    assert value == pytest.approx(scipy.special.logsumexp(log_terms), rel=1e-12)
    assert stderr == 0.0


def test_gaussian_exact_log_partition_equals_numerical_integration():
    m = _random_rbm(GaussianBernoulliRBM, 1, 3)
    W, b, c = _params(m)
    b0 = b[0]
    total = sum(scipy.integrate.quad(
        lambda x, h=h: math.exp(-_naive_energy([x], h, W, b, c, True)), -30, 30)[0]
        for h in _binary_states(3))
    # shift by the dropped constant ||b||^2 / 2
    assert m.log_partition("exact").value == pytest.approx(math.log(total) + 0.5 * b0 ** 2,
                                                           rel=1e-9)


def test_exact_log_partition_is_the_same_in_chunks(monkeypatch):
    m = _random_rbm(BernoulliRBM, 5, 9, scale=0.5)
    whole = m.log_partition("exact").value
    monkeypatch.setattr(rbm_module, "_ENUMERATION_CHUNK", 7)  # 512 states in 74 chunks
    assert m.log_partition("exact").value == pytest.approx(whole, rel=1e-13)


def test_gibbs_chains_reach_the_exact_distribution():
    """Empirical frequencies of v after Gibbs sweeps match p(v) = exp(-F(v)) / Z (4 visibles)."""
    m = _random_rbm(BernoulliRBM, 4, 3)
    states = torch.tensor(np.array(_binary_states(4)))
    p = torch.exp(-m.free_energy(states) - m.log_partition("exact").value).detach().numpy()
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    g = torch.Generator().manual_seed(0)
    v = m.gibbs(torch.zeros(20000, 4, dtype=torch.float64), 50, generator=g)
    codes = (v.numpy() @ (2 ** np.arange(3, -1, -1))).astype(int)  # row order of _binary_states
    freq = np.bincount(codes, minlength=16) / len(codes)
    # binomial standard errors; 4.5 of them over 16 cells
    np.testing.assert_array_less(np.abs(freq - p), 4.5 * np.sqrt(p * (1 - p) / len(codes)) + 1e-4)


def test_cd_loss_gradient_is_the_contrastive_divergence_update():
    m = _random_rbm(BernoulliRBM, 5, 3, scale=0.3)
    v = (torch.rand(8, 5, dtype=torch.float64) < 0.5).double()
    g = torch.Generator().manual_seed(3)
    loss = cd_loss(m, v, k=2, generator=g)
    loss.backward()
    v_k = m.gibbs(v, 2, generator=torch.Generator().manual_seed(3))
    ph, ph_k = torch.sigmoid(m.hidden_logits(v)), torch.sigmoid(m.hidden_logits(v_k))
    # Hinton (2002): Delta W ~ <v h>_data - <v h>_k; the loss gradient is its negative
    expected = -(v.T @ ph / 8 - v_k.T @ ph_k / 8)
    np.testing.assert_allclose(m.weight.grad.numpy(), expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(m.visible_bias.grad.numpy(),
                               -(v.mean(0) - v_k.mean(0)).numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.hidden_bias.grad.numpy(),
                               -(ph.mean(0) - ph_k.mean(0)).detach().numpy(), rtol=1e-12)


def test_ais_schedule_runs_from_0_to_1_densest_near_1():
    betas = ais_schedule(1450)
    assert len(betas) == 1451 and betas[0] == 0 and betas[-1] == 1
    assert torch.all(torch.diff(betas) > 0)
    assert int((betas <= 0.5).sum()) == 51 and int((betas > 0.9).sum()) == 1000
    with pytest.raises(ValueError, match="at least 3"):
        ais_schedule(2)


def _digits():
    X, _ = load_digits(return_X_y=True)
    return torch.from_numpy((X / 16.0 > 0.5).astype(np.float64))  # (1797, 64) binary


def _train(m, X, loss, epochs, **kwargs):
    return Trainer(m, lambda model, batch, step: loss(model, batch[0]), max_epochs=epochs,
                   batch_size=20, optimizer=lambda p: torch.optim.SGD(p, lr=0.05),
                   progress=False, seed=0, **kwargs).fit(X)


def _mean_log_likelihood(m, X):
    return float(-m.free_energy(X).detach().mean()) - m.log_partition("exact").value


def test_cd1_on_digits_increases_the_exact_log_likelihood():
    X = _digits()
    torch.manual_seed(0)
    m = BernoulliRBM(64, 10).double()
    before = _mean_log_likelihood(m, X)
    _train(m, X, cd_loss, 3)
    after = _mean_log_likelihood(m, X)
    # untrained: about -64 log 2 = -44.4 nats; a 10-unit RBM gets well below half of that
    assert before < -40 and after > before + 15, (before, after)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_ais_is_within_three_standard_errors_of_exact_on_a_trained_rbm(cls):
    X = _digits()
    if cls is GaussianBernoulliRBM:
        X = (X - X.mean(0)) / (X.std(0) + 0.1)
    torch.manual_seed(0)
    m = cls(64, 14).double()
    _train(m, X, cd_loss, 2)
    exact = m.log_partition("exact").value
    ais = m.log_partition("ais", data=X, n_betas=2000, n_runs=100,
                          generator=torch.Generator().manual_seed(0))
    assert 0 < ais.stderr < 0.5
    assert abs(ais.value - exact) < 3 * ais.stderr, (ais, exact)


def test_persistent_cd_resumes_exactly_through_the_trainer(tmp_path):
    X = _digits()[:400]

    def fresh():
        torch.manual_seed(0)
        m = BernoulliRBM(64, 16, n_chains=20).double()
        m.chains.copy_(X[:20])
        return m

    straight = fresh()
    _train(straight, X, pcd_loss, 4)
    assert not torch.equal(straight.chains, X[:20])  # the chains moved
    interrupted = fresh()
    _train(interrupted, X, pcd_loss, 2, checkpoint_dir=tmp_path)
    resumed = fresh()
    _train(resumed, X, pcd_loss, 4, checkpoint_dir=tmp_path, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_pcd_loss_needs_chains_and_exact_log_z_needs_few_hidden_units():
    with pytest.raises(ValueError, match="n_chains > 0"):
        pcd_loss(BernoulliRBM(4, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="method='ais'"):
        BernoulliRBM(4, 21).log_partition("exact")
    with pytest.raises(ValueError, match="'ais' or 'exact'"):
        BernoulliRBM(4, 2).log_partition("brute")
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        BernoulliRBM(4, 2).log_partition("ais", data=torch.zeros(3, 5))


def _pcd_on_rank(rank, port, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        torch.set_num_threads(1)
        X = _digits()[:200]
        torch.manual_seed(0)
        m = BernoulliRBM(64, 8, n_chains=10).double()
        m.chains.copy_(X[:10])
        _train(m, X, pcd_loss, 2)
        out[rank] = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_persistent_cd_trains_under_ddp_with_one_forward_per_step():
    """Two gloo ranks: DDP averages the gradients, so both end with the same weights; its
    buffer broadcast leaves both with rank 0's chains (as pcd_loss's docstring says)."""
    from tests._distributed import fits_on_two_ranks

    results = fits_on_two_ranks(_pcd_on_rank)
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
    assert not np.array_equal(results[0]["chains"], _digits()[:10].numpy())

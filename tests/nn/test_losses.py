"""ELBO scaling, heteroscedastic and logit-noise losses: references and gradcheck."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from scipy.special import softmax

from bayesdl.nn import (blundell_kl_weight, elbo_loss, heteroscedastic_gaussian_nll,
                        logit_noise_nll)


def test_heteroscedastic_nll_equals_scipy_logpdf():
    rng = np.random.default_rng(0)
    mean, log_var, y = rng.normal(size=(3, 7))
    got = heteroscedastic_gaussian_nll(*(torch.as_tensor(a) for a in (mean, log_var, y)),
                                       reduction="none")
    ref = -stats.norm.logpdf(y, mean, np.exp(0.5 * log_var))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    assert heteroscedastic_gaussian_nll(*(torch.as_tensor(a) for a in (mean, log_var, y)),
                                        reduction="sum").item() == pytest.approx(ref.sum())


def test_logit_noise_nll_equals_naive_loop_with_the_same_noise():
    rng = np.random.default_rng(1)
    N, K, T = 4, 3, 6
    f, s = rng.normal(size=(N, K)), rng.normal(size=(N, K))
    y = rng.integers(0, K, size=N)
    got = logit_noise_nll(torch.as_tensor(f), torch.as_tensor(s), torch.as_tensor(y), T,
                          generator=torch.Generator().manual_seed(3), reduction="none")
    eps = torch.randn((T, N, K), generator=torch.Generator().manual_seed(3),
                      dtype=torch.float64).numpy()
    expected = []
    for n in range(N):
        p = [softmax(f[n] + np.exp(s[n] / 2) * eps[t, n])[y[n]] for t in range(T)]
        expected.append(-np.log(np.mean(p)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_logit_noise_nll_without_noise_is_cross_entropy():
    f = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([0, 3, 1, 1, 2])
    got = logit_noise_nll(f, torch.full_like(f, -80.0), y, 3)
    torch.testing.assert_close(got, F.cross_entropy(f, y))


def test_gradcheck_custom_losses_float64():
    torch.manual_seed(0)
    m, s, y = (torch.randn(5, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(heteroscedastic_gaussian_nll, (m, s, y))
    f = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    v = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 2, 1, 2])
    assert torch.autograd.gradcheck(
        lambda a, b: logit_noise_nll(a, b, labels, 5, generator=torch.Generator().manual_seed(0)),
        (f, v))
    nll = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    kl = torch.tensor(12.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: elbo_loss(a, b, 100, batch_index=1, n_batches=4, scheme="blundell"), (nll, kl))


def test_blundell_weights_match_the_paper_and_sum_to_one():
    M = 6
    weights = [blundell_kl_weight(i, M) for i in range(M)]
    np.testing.assert_allclose(weights, [2.0 ** (M - i) / (2.0**M - 1) for i in range(1, M + 1)])
    assert sum(weights) == pytest.approx(1.0)
    # no overflow for very many batches
    assert blundell_kl_weight(0, 5000) == pytest.approx(0.5)


@pytest.mark.parametrize("scheme", ["uniform", "blundell"])
def test_elbo_loss_averages_to_the_negative_elbo_per_example(scheme):
    """Summed over the M batches of an epoch, B * loss_i adds up to sum NLL + KL."""
    rng = np.random.default_rng(0)
    N, M = 120, 4
    nll_per_example = rng.exponential(size=N)
    kl = torch.tensor(37.5)
    total = 0.0
    for i, batch in enumerate(np.split(nll_per_example, M)):
        loss = elbo_loss(torch.tensor(batch.mean()), kl, N, batch_index=i, n_batches=M,
                         scheme=scheme)
        total += loss.item() * len(batch)
    assert total == pytest.approx(nll_per_example.sum() + kl.item())


def test_elbo_loss_for_sequences_counts_time_steps_in_n_train():
    """A loss averaged over B sequences x T steps: n_train = N * T gives sum NLL + KL over an
    epoch; n_train = N (the number of sequences, Trainer's step.n_train) gives T times the KL."""
    rng = np.random.default_rng(1)
    N, T, M = 40, 30, 5
    nll = rng.exponential(size=(N, T))  # per sequence and time step
    kl = torch.tensor(12.5)
    for n_train, kl_weight in ((N * T, 1.0), (N, T)):
        total = 0.0
        for batch in np.split(nll, M):  # (B, T) each
            total += elbo_loss(torch.tensor(batch.mean()), kl, n_train).item() * batch.size
        assert total == pytest.approx(nll.sum() + kl_weight * kl.item())


def test_elbo_loss_errors():
    with pytest.raises(ValueError, match="needs batch_index and n_batches"):
        elbo_loss(torch.tensor(1.0), torch.tensor(1.0), 10, scheme="blundell")
    with pytest.raises(ValueError, match="scheme must be one of"):
        elbo_loss(torch.tensor(1.0), torch.tensor(1.0), 10, scheme="kl")
    with pytest.raises(ValueError, match="n_train"):
        elbo_loss(torch.tensor(1.0), torch.tensor(1.0), 0)
    with pytest.raises(ValueError, match="same shape"):
        heteroscedastic_gaussian_nll(torch.zeros(3), torch.zeros(3, 1), torch.zeros(3))

"""Report section "Distributions": conjugate updating, the Dirichlet, the CLT, KL asymmetry, MLE."""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Beta, Dirichlet, Exponential, Gamma, MultivariateNormal

from ...datasets import load_faithful
from ...distributions import compare_beta_arms, fit_mle, info
from ...distributions.conjugate import BetaBernoulliModel, NormalGammaModel, NormalKnownVarianceModel
from ...viz import distributions as viz
from ..section import Section

TITLE = "Distributions"


def _fit_factorised_gaussian(p: MultivariateNormal, reverse: bool, steps: int) -> MultivariateNormal:
    """Minimise KL(q||p) (``reverse``) or KL(p||q) over a factorised Gaussian q with L-BFGS."""
    loc = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    log_std = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([loc, log_std], max_iter=steps, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-15)

    def q():
        return MultivariateNormal(loc, scale_tril=torch.diag(log_std.exp()))

    def closure():
        opt.zero_grad()
        loss = info.kl_divergence(q(), p) if reverse else info.kl_divergence(p, q())
        loss.backward()
        return loss

    opt.step(closure)
    return MultivariateNormal(loc.detach(), scale_tril=torch.diag(log_std.detach().exp()))


def build(quick: bool = False, seed: int = 0) -> Section:
    gen = np.random.default_rng(seed)
    torch.manual_seed(seed)
    figures, table = [], {}

    # PRML Figure 2.3: Beta(2, 2) prior, one observation x = 1, Beta(3, 2) posterior
    prior = BetaBernoulliModel(2.0, 2.0)
    post = prior.update([1])
    figures.append(("PRML Figure 2.3: Beta(2, 2) prior times the likelihood of x = 1 gives the Beta(3, 2) "
                    "posterior.", viz.plot_beta_prior_likelihood_posterior(prior.posterior, post.posterior, 1)))
    true_mu = 0.7
    flips = gen.binomial(1, true_mu, size=500)
    checkpoints = [0, 1, 2, 5, 20, 100, 500]
    sequence, model, seen = [], prior, 0
    for n in checkpoints:
        model = model.update(flips[seen:n]) if n > seen else model  # one update per new chunk
        seen = n
        sequence.append((n, model.posterior))
    lo, hi = model.credible_interval(0.95)
    table["Beta posterior mean after 500 flips (true 0.7)"] = model.posterior.mean.item()
    table["95% credible interval for mu, lower"] = lo.item()
    table["95% credible interval for mu, upper"] = hi.item()
    figures.append(("Sequential updating: the Beta posterior after N coin flips (true mu = 0.7) concentrates "
                    "as N grows.", viz.plot_beta_sequence(sequence, true_mu)))

    # PRML Figure 2.12: the mean of a Gaussian with known variance 0.1, prior N(0, 0.1), data from N(0.8, 0.1)
    sigma = np.sqrt(0.1)
    points = gen.normal(0.8, sigma, size=10)
    gaussian = NormalKnownVarianceModel(mu0=0.0, sigma0=sigma, sigma=sigma)
    mean_posteriors = [(n, gaussian.update(points[:n]).posterior if n else gaussian.posterior) for n in (0, 1, 2, 10)]
    figures.append(("PRML Figure 2.12: the posterior over the mean of a Gaussian with known variance after "
                    "N = 0, 1, 2 and 10 points drawn with mean 0.8.",
                    viz.plot_gaussian_mean_posteriors(mean_posteriors, 0.8)))

    # PRML Figure 2.5: Dirichlet on the simplex
    dirichlets = [Dirichlet(torch.full((3,), a, dtype=torch.float64)) for a in (0.1, 1.0, 10.0)]
    figures.append(("PRML Figure 2.5: Dirichlet log-densities on the simplex for alpha = 0.1 (mass in the "
                    "corners), 1 (uniform) and 10 (mass near the centre).",
                    viz.plot_dirichlet_simplex(dirichlets, resolution=60 if quick else 120)))

    # central limit theorem: means of N Exponential(1) draws; the exact law is Gamma(N, rate N)
    reps = 4000 if quick else 20000
    sizes = [1, 2, 10, 50]
    means = {n: Exponential(torch.tensor(1.0, dtype=torch.float64)).sample((reps, n)).mean(1).numpy() for n in sizes}
    exact = {n: Gamma(torch.tensor(float(n), dtype=torch.float64), torch.tensor(float(n), dtype=torch.float64))
             for n in sizes}
    for n in (1, 50):
        m = means[n]
        table[f"skewness of the mean of {n} Exponential draws (theory 2/sqrt(N) = {2 / np.sqrt(n):.3g})"] = float(
            ((m - m.mean()) ** 3).mean() / m.std() ** 3)
    figures.append(("Central limit theorem: means of N draws from the skewed Exponential(1); the exact law "
                    "(Gamma(N, N)) approaches the Normal N(1, 1/N).",
                    viz.plot_central_limit(means, exact, population_mean=1.0, population_var=1.0)))

    # PRML Figure 10.2: factorised Gaussian fitted by KL(q||p) and KL(p||q)
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    p = MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    q_rev = _fit_factorised_gaussian(p, reverse=True, steps=200)
    q_fwd = _fit_factorised_gaussian(p, reverse=False, steps=200)
    precision = torch.linalg.inv(cov)
    # closed forms: KL(q||p) gives variances 1 / Lambda_ii (PRML eq. 10.12); KL(p||q) gives Sigma_ii (eq. 10.17)
    table["KL(q||p) fit: variance of z1 (closed form 1/Lambda_11)"] = q_rev.covariance_matrix[0, 0].item()
    table["closed form 1/Lambda_11"] = (1 / precision[0, 0]).item()
    table["KL(p||q) fit: variance of z1 (closed form Sigma_11 = 1)"] = q_fwd.covariance_matrix[0, 0].item()
    figures.append(("PRML Figure 10.2: a factorised Gaussian q fitted to a correlated Gaussian p. Minimising "
                    "KL(q||p) gives a compact q inside p; minimising KL(p||q) matches the marginals.",
                    viz.plot_factorised_gaussian_kl(p, q_rev, q_fwd)))

    # maximum likelihood and a conjugate predictive on real data: Old Faithful waiting times
    waiting = load_faithful().data[:, 1]
    normal, gamma = fit_mle("normal", waiting), fit_mle("gamma", waiting)
    predictive = NormalGammaModel(mu0=70.0, kappa0=1.0, a0=1.0, b0=100.0).update(waiting).posterior_predictive()
    table["Old Faithful waiting: Gamma MLE shape"] = gamma.concentration.item()
    table["Old Faithful waiting: Gamma MLE rate"] = gamma.rate.item()
    table["Old Faithful waiting: mean log-likelihood, Normal MLE"] = normal.log_prob(torch.as_tensor(waiting)).mean().item()
    table["Old Faithful waiting: mean log-likelihood, Gamma MLE"] = gamma.log_prob(torch.as_tensor(waiting)).mean().item()
    figures.append(("Old Faithful waiting times (272 eruptions) with the Normal and Gamma MLEs and the "
                    "Normal-Gamma posterior predictive (Student-t, the pale wide curve: with 272 points "
                    "the vague prior barely matters and it lies on the Normal MLE): no unimodal family "
                    "captures the two modes, which motivates mixture models.",
                    viz.plot_density_fits(waiting, {"Normal-Gamma predictive (Student-t)": predictive,
                                                    "Normal MLE": normal, "Gamma MLE": gamma},
                                          "waiting time to next eruption (min)")))

    # A/B test, as `bayesdl ab-test --successes 120,135 --trials 1000,1000`
    ab = compare_beta_arms([120, 135], [1000, 1000])
    table["A/B test 120/1000 vs 135/1000: P(B > A)"] = float(ab.prob_best[1])
    table["A/B test: expected loss of choosing B"] = float(ab.expected_loss[1])
    figures.append(("A/B test (bayesdl ab-test --successes 120,135 --trials 1000,1000): the Beta posterior of "
                    "each arm's conversion rate and the probability that it is the better one.",
                    viz.plot_ab_posteriors(ab.names, [Beta(torch.tensor(a), torch.tensor(b)) for a, b in zip(ab.a, ab.b)],
                                           ab.prob_best)))

    summary = ("Conjugate Bayesian updating (Beta-Bernoulli, PRML section 2.1), the Dirichlet, the central "
               "limit theorem, the asymmetry of the KL divergence in variational fits (PRML section 10.1.2), "
               "maximum-likelihood fits on real data and a Bayesian A/B test, all computed with "
               "bayesdl.distributions.")
    return Section(title=TITLE, summary=summary, figures=figures, table=table)

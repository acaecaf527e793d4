"""Bayesian deep learning layers, objectives and baselines.

- Bayes by Backprop layers (Blundell et al. 2015): :class:`BayesLinear`, :class:`BayesConv2d`,
  :class:`BayesLSTM` (Fortunato et al. 2017), with Gaussian or scale-mixture priors and
  reparameterisation, local reparameterisation or flipout sampling; :func:`kl_divergence`
  sums their KL terms; :func:`dnn_to_bnn` converts an existing network;
  :func:`signal_to_noise_prune` prunes by |mu| / sigma.
- Objectives: :func:`elbo_loss` (KL scaled per mini-batch), :func:`heteroscedastic_gaussian_nll`,
  :func:`logit_noise_nll` (Kendall & Gal 2017).
- Baselines: :class:`MCDropout` (Gal & Ghahramani 2016) and :class:`DeepEnsemble`
  (Lakshminarayanan et al. 2017).
"""

from ._variational import BayesModule, kl_divergence
from .bayes_conv import BayesConv2d
from .bayes_linear import BayesLinear
from .bayes_rnn import BayesLSTM
from .convert import dnn_to_bnn
from .ensemble import DeepEnsemble
from .losses import blundell_kl_weight, elbo_loss, heteroscedastic_gaussian_nll, logit_noise_nll
from .mc_dropout import MCDropout, mc_dropout_weight_decay, to_mc_dropout
from .priors import GaussianPrior, ScaleMixturePrior, prior_from_config
from .pruning import signal_to_noise, signal_to_noise_prune
from .sampling import function_sampling, independent_per_example, is_stochastic

__all__ = [
    "BayesConv2d", "BayesLSTM", "BayesLinear", "BayesModule", "DeepEnsemble", "GaussianPrior",
    "MCDropout", "ScaleMixturePrior", "blundell_kl_weight", "dnn_to_bnn", "elbo_loss",
    "function_sampling", "heteroscedastic_gaussian_nll", "independent_per_example",
    "is_stochastic", "kl_divergence", "logit_noise_nll", "mc_dropout_weight_decay",
    "prior_from_config", "signal_to_noise", "signal_to_noise_prune", "to_mc_dropout",
]

"""Bayesian multi-layer perceptrons for tabular data, as scikit-learn estimators.

``BayesianMLPRegressor`` and ``BayesianMLPClassifier`` fit one of three approximate Bayesian
networks and answer with a predictive distribution:

- ``method="bbb"``: Bayes by Backprop (Blundell et al. 2015) with :class:`~bayesdl.nn.BayesLinear`
  layers (local reparameterisation while training), KL scaled by :func:`~bayesdl.nn.elbo_loss`;
- ``method="mc_dropout"``: MC dropout (Gal & Ghahramani 2016) with the weight decay of their
  eq. 7 (:func:`~bayesdl.nn.mc_dropout_weight_decay`);
- ``method="ensemble"``: a deep ensemble (Lakshminarayanan et al. 2017) of ``n_estimators``
  networks;
- ``method="laplace"``: a MAP network (weight decay of the prior N(0, prior_sigma^2)) with a
  post-hoc last-layer Laplace approximation (:class:`~bayesdl.nn.laplace.Laplace`, full GGN);
  the MAP is trained to a mode (the whole budget, its step size annealed to zero), and the
  prior precision is the evidence's, raised where the held-out rows find it under-confident
  (``laplace_prior``); predictions sample its linearised outputs.

Regression networks predict a mean and a noise variance: one learnt noise level for all
inputs, or with ``heteroscedastic=True`` a log-variance per input (Kendall & Gal 2017 eq. 8).
Classifiers with ``heteroscedastic=True`` predict a variance for each logit and train with
the logit-noise loss (Kendall & Gal eq. 12). Inputs are standardised internally, each
feature on its own (``input_scaling="feature"``, for tables) or all features with one mean
and one scale (``"global"``, for images: a pixel that is always blank in training stays
near zero when a new image puts ink there, instead of being divided by its tiny spread);
regression targets are standardised too. Predictions average ``n_samples`` sampled networks (each applied to
the whole batch, so a row's prediction does not depend on the other rows) drawn from a
generator seeded by ``random_state``.

Training defaults are chosen to converge on small tables as well as large ones:

- the budget is ``max_steps`` optimiser steps, not epochs: a table of 200 rows gets as many
  Adam steps as one of 200,000 (``max_epochs`` overrides it with a fixed number of epochs);
- the noise variance of a regression starts at ``_NOISE_INIT_FRACTION`` of the (standardised)
  target's variance, not at 1, which would leave small-data fits with far too wide intervals;
- with ``early_stopping=True`` a ``validation_fraction`` of the rows is held out, training
  stops once the held-out predictive NLL has not improved for ``patience`` steps, and the
  weights with the best held-out NLL are kept;
- a :class:`~sklearn.exceptions.ConvergenceWarning` says when the budget ran out while the
  monitored loss was still improving.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_random_state
from torch import nn

from .._base import TorchEstimatorMixin
from ..nn.laplace import Laplace
from ..nn import (BayesLinear, DeepEnsemble, GaussianPrior, MCDropout, ScaleMixturePrior,
                  elbo_loss, heteroscedastic_gaussian_nll, kl_divergence, logit_noise_nll,
                  mc_dropout_weight_decay)
from ..train import Trainer
from ..uncertainty import MonteCarloCategorical, monte_carlo_normal, predict_dist

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
_LOGIT_NOISE_SAMPLES = 10  # T in Kendall & Gal eq. 12 while training
# the noise variance starts at this fraction of var(y) = 1 (the target is standardised)
_NOISE_INIT_FRACTION = 0.1
_VALIDATION_SAMPLES = 10  # sampled networks for the held-out NLL of early stopping
# method="laplace" warns when |grad| of the MAP objective (mean NLL + L2) ends above this
_MAP_GRADIENT_TOLERANCE = 1e-2
_GRADIENT_CHUNK = 8192  # rows per pass of that gradient


class _GaussianHead(nn.Module):
    """Outputs (N, 2) = (mean, log sigma^2): predicted, or a learnt constant log sigma^2.

    Either way log sigma^2 starts at ``log_noise_init`` (the bias of the predicted one).
    """

    def __init__(self, body: nn.Module, heteroscedastic: bool, log_noise_init: float):
        super().__init__()
        self.body, self.heteroscedastic = body, heteroscedastic
        if not heteroscedastic:
            # (1,): log sigma^2 for every input
            self.log_noise = nn.Parameter(torch.full((1,), float(log_noise_init)))
            return
        last = body[-1]  # the output layer: nn.Linear or BayesLinear, outputs (mean, log var)
        with torch.no_grad():
            (last.bias_mu if isinstance(last, BayesLinear) else last.bias)[1] = log_noise_init

    def forward(self, x):
        out = self.body(x)
        if self.heteroscedastic:
            return out
        return torch.cat([out, self.log_noise.expand_as(out)], dim=-1)


class _MeanOutput(nn.Module):
    """The mean column (N, 1) of a :class:`_GaussianHead`'s (mean, log sigma^2) output."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[:, :1]


class _BaseBayesianMLP(TorchEstimatorMixin, BaseEstimator):
    _parameter_constraints: dict = {
        **TorchEstimatorMixin._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"bbb", "mc_dropout", "ensemble", "laplace"})],
        "heteroscedastic": ["boolean"],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "prior": [StrOptions({"gaussian", "scale_mixture"})],
        "prior_sigma": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "length_scale": [Interval(Real, 0, None, closed="neither")],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "input_scaling": [StrOptions({"feature", "global"})],
        "laplace_prior": [StrOptions({"auto", "marglik", "val_nll"})],
        "verbose": ["boolean"],
    }

    def __init__(self, hidden_layer_sizes=(50,), *, method="bbb", heteroscedastic=False,
                 activation="relu", prior="gaussian", prior_sigma=1.0, dropout=0.05,
                 length_scale=1e-2, n_estimators=5, max_steps=2000, max_epochs=None,
                 batch_size=128, learning_rate=1e-2, early_stopping=True,
                 validation_fraction=0.1, patience=300, n_samples=50, input_scaling="feature",
                 laplace_prior="auto", verbose=False, device="cpu", dtype="float64",
                 random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.method = method
        self.heteroscedastic = heteroscedastic
        self.activation = activation
        self.prior = prior
        self.prior_sigma = prior_sigma
        self.dropout = dropout
        self.length_scale = length_scale
        self.n_estimators = n_estimators
        self.max_steps = max_steps
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_samples = n_samples
        self.input_scaling = input_scaling
        self.laplace_prior = laplace_prior
        self.verbose = verbose
        self.device = device
        self.dtype = dtype
        self.random_state = random_state

    # -- the network -------------------------------------------------------------------------
    def _fork_rng(self):
        """Keep the caller's global RNG streams untouched by our seeding (CPU and our GPU)."""
        device = self._torch_device
        if device.type != "cuda":
            return torch.random.fork_rng(devices=[])
        return torch.random.fork_rng(
            devices=[torch.cuda.current_device() if device.index is None else device.index])

    def _hidden_sizes(self) -> list[int]:
        sizes = np.atleast_1d(np.asarray(self.hidden_layer_sizes)).tolist()
        if any(int(h) != h or h < 1 for h in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes}.")
        return [int(h) for h in sizes]

    def _mlp(self, n_in: int, n_out: int, seed: int) -> nn.Module:
        prior = (GaussianPrior(self.prior_sigma) if self.prior == "gaussian"
                 else ScaleMixturePrior(0.5, self.prior_sigma, self.prior_sigma * np.exp(-6)))
        # one generator for all dropout layers: each draws its own masks from the one stream
        generator = torch.Generator().manual_seed(seed)
        layers, width = [], n_in
        for h in [*self._hidden_sizes(), n_out]:
            if self.method == "bbb":
                layers.append(BayesLinear(width, h, prior=prior, sampling="local",
                                          posterior_rho_init=-5.0))
            else:
                layers.append(nn.Linear(width, h))
            layers.append(_ACTIVATIONS[self.activation]())
            if self.method == "mc_dropout":
                layers.append(MCDropout(self.dropout, generator=generator))
            width = h
        return nn.Sequential(*layers[: -2 if self.method == "mc_dropout" else -1])

    def _network(self, n_in: int, seed: int) -> nn.Module:
        def member():
            return self._head(self._mlp(n_in, self._n_network_outputs(), seed))

        if self.method == "ensemble":
            net = DeepEnsemble.from_factory(member, self.n_estimators, seed=seed)
        else:
            with self._fork_rng():
                torch.manual_seed(seed)
                net = member()
        return net.to(dtype=self._torch_dtype, device=self._torch_device)

    # -- fitting -------------------------------------------------------------------------------
    def _standardise(self, X: np.ndarray) -> torch.Tensor:
        return self._to_torch((X - self.x_mean_) / self.x_scale_)

    def _split(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Row indices (train, held out); no held-out rows without early stopping."""
        n_val = round(self.validation_fraction * n) if self.early_stopping else 0
        if n_val < 1 or n - n_val < 1:
            return np.arange(n), None
        order = np.random.default_rng(seed).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def _budget(self, n_train: int) -> tuple[int, int]:
        """(epochs, patience in epochs) from the budget and patience in optimiser steps."""
        steps_per_epoch = math.ceil(n_train / min(self.batch_size, n_train))
        epochs = (self.max_epochs if self.max_epochs is not None
                  else math.ceil(self.max_steps / steps_per_epoch))
        return epochs, math.ceil(self.patience / steps_per_epoch)

    def _heldout_nll(self, model, val_loader) -> float:
        """The Monte-Carlo predictive NLL per held-out row, -1/N sum_n log p(y_n | x_n, D)."""
        total, count = 0.0, 0
        for X, y in val_loader:
            dist = predict_dist(model, X, _VALIDATION_SAMPLES, likelihood=self._likelihood())
            total, count = total - dist.log_prob(y).sum().item(), count + len(y)
        return total / count

    def _fit_network(self, X: np.ndarray, y: torch.Tensor) -> None:
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        # (D,) per feature, or one mean and scale over every entry repeated D times
        axis = 0 if self.input_scaling == "feature" else None
        self.x_mean_ = np.broadcast_to(X.mean(axis=axis), X.shape[1:]).copy()
        scale = np.broadcast_to(X.std(axis=axis), X.shape[1:])
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        train, held_out = self._split(X.shape[0], seed)
        n = len(train)
        epochs, patience = self._budget(n)
        Xs = self._standardise(X)
        val_data = None if held_out is None else (Xs[held_out], y[held_out])
        with self._fork_rng():
            self._net = self._network(X.shape[1], seed)
            decay = (mc_dropout_weight_decay(self.length_scale, self.dropout, n)
                     if self.method == "mc_dropout" else 0.0)
            if self.method == "laplace":  # the MAP of the mean loss under N(0, prior_sigma^2)
                decay = 1.0 / (self.prior_sigma**2 * n)
            weights = [p for name, p in self._net.named_parameters() if "log_noise" not in name]
            others = [p for name, p in self._net.named_parameters() if "log_noise" in name]

            def optimizer(_):
                groups = [{"params": weights, "weight_decay": decay}]
                if others:
                    groups.append({"params": others, "weight_decay": 0.0})
                return torch.optim.Adam(groups, lr=self.learning_rate)

            if self.method == "laplace":
                # a mode of the posterior, where the Laplace expands it (its gradient is zero
                # there): the whole budget, the step size annealed to 0 on a cosine (Loshchilov
                # & Hutter 2017); the held-out rows tune the prior precision, not the epoch
                stopping = dict(patience=None, restore_best=False, scheduler=lambda opt: (
                    torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)))
            else:
                # without held-out rows, training stops when the training loss stops improving,
                # and keeps its last weights
                stopping = dict(patience=patience, restore_best=val_data is not None,
                                val_metric=None if val_data is None else self._heldout_nll)
            trainer = Trainer(self._net, self._loss, optimizer=optimizer, max_epochs=epochs,
                              batch_size=min(self.batch_size, n), seed=seed,
                              progress=self.verbose, device=self._torch_device, amp=False,
                              **stopping)
            trainer.fit((Xs[train], y[train]), None if self.method == "laplace" else val_data)
        self.loss_curve_ = [h["loss"] for h in trainer.history]
        self.validation_scores_ = [h["val"] for h in trainer.history if "val" in h]
        self.best_epoch_ = trainer.best_epoch
        self.n_iter_ = len(trainer.history)
        if self.method == "laplace":  # the Laplace at the MAP, over the rows the MAP was fitted on
            self._fit_laplace(Xs[train], y[train], val_data, decay)
        elif not trainer.stopped_early:
            monitored = "training loss" if val_data is None else "held-out NLL"
            warnings.warn(
                f"{type(self).__name__} used its whole budget ({self.n_iter_} epochs) while the "
                f"{monitored} was still improving (best at epoch {self.best_epoch_ + 1}): the fit "
                "may not have converged. Raise max_steps (or max_epochs, or learning_rate).",
                ConvergenceWarning)

    def _fit_laplace(self, X, y, val_data, decay: float) -> None:
        """The Laplace at the trained MAP, over the rows the MAP was fitted on; its prior
        precision tuned on the held-out rows (``val_data``) with the predictive that
        ``predict_dist`` returns (``n_samples`` Monte-Carlo draws)."""
        # |grad| of the MAP objective, mean NLL + decay/2 |w|^2 (the Adam L2 term), over all
        # the rows in chunks (the NLL is a mean: each chunk weighs its share of the rows)
        names, params = zip(*self._net.named_parameters())
        grads = [decay * p.detach() if "log_noise" not in name else torch.zeros_like(p)
                 for name, p in zip(names, params)]
        for start in range(0, len(y), _GRADIENT_CHUNK):
            Xc, yc = X[start:start + _GRADIENT_CHUNK], y[start:start + _GRADIENT_CHUNK]
            part = self._loss(self._net, (Xc, yc), None) * (len(yc) / len(y))
            for g, d in zip(grads, torch.autograd.grad(part, params)):
                g += d
        self.map_gradient_norm_ = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
        if self.map_gradient_norm_ > _MAP_GRADIENT_TOLERANCE:
            warnings.warn(
                f"{type(self).__name__} ended its budget ({self.n_iter_} epochs) with a gradient "
                f"norm of {self.map_gradient_norm_:.2g} for the MAP objective: the network is not "
                "at a mode, which the Laplace approximation assumes. Raise max_steps (or "
                "max_epochs).", ConvergenceWarning)
        self._laplace = self._make_laplace(self._laplace_prior(val_data)).fit(
            X, y, link_approx="mc", n_samples=self.n_samples,
            **({} if val_data is None else {"X_val": val_data[0], "y_val": val_data[1]}))
        self.prior_precision_ = self._laplace.prior_precision_
        self.prior_method_ = self._laplace.prior_method_

    def _laplace_prior(self, val_data) -> str:
        """How to tune the Laplace's prior precision: ``"auto"`` is the evidence checked on
        the held-out rows (Laplace's ``"auto"``) when rows were held out, else the evidence.

        The evidence uses every training row, but at a MAP that fits its training rows
        closely their GGN is near zero (softmax outputs near one-hot), so it picks a small
        prior precision: a wide posterior and an under-confident predictive (on the bundled
        digits ECE 12% against the MAP's 1.5%, on wine 7% against 4%). Where the held-out
        rows' top-class hits outnumber their confidences, the precision is raised until they
        do not, up to the MAP's limit (a Laplace can only moderate its MAP).
        """
        choice = self.laplace_prior
        if choice == "auto":
            return "marglik" if val_data is None else "auto"
        if choice == "val_nll" and val_data is None:
            raise ValueError("laplace_prior='val_nll' needs held-out rows: set "
                             "early_stopping=True and validation_fraction > 0, or use "
                             "laplace_prior='marglik'.")
        return choice

    def _make_laplace(self, prior_precision: str = "marglik") -> Laplace:
        if self.heteroscedastic:
            raise ValueError("method='laplace' needs heteroscedastic=False (the Laplace "
                             "linearises the network's mean only).")
        regression = isinstance(self, RegressorMixin)
        model = _MeanOutput(self._net) if regression else self._net
        noise = float((0.5 * self._net.log_noise).exp()) if regression else None
        return Laplace(model, "regression" if regression else "classification",
                       prior_precision=prior_precision, sigma_noise=noise)

    def _loss(self, model, batch, step):
        X, y = batch
        out = model(X)
        if self.method == "ensemble":  # (M, N, ...): the members' losses add up
            nll = sum(self._nll(o, y) for o in out)
        else:
            nll = self._nll(out, y)
        if self.method == "bbb":
            return elbo_loss(nll, kl_divergence(model), step.n_train)
        return nll

    # -- prediction ----------------------------------------------------------------------------
    def _sample_dist(self, X):
        """The Monte-Carlo predictive distribution in the network's (standardised) units."""
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        if self.method == "laplace":
            return predict_dist(self._laplace, self._standardise(X), self.n_samples,
                                generator=torch.Generator(self._torch_device).manual_seed(seed))
        with self._fork_rng():
            torch.manual_seed(seed)
            for m in self._net.modules():
                if isinstance(m, MCDropout):
                    m.generator.manual_seed(seed)
            return predict_dist(self._net, self._standardise(X), self.n_samples,
                                likelihood=self._likelihood(), batched=False)

    @property
    def network_(self) -> nn.Module:
        """The fitted torch network (a ``DeepEnsemble`` for ``method="ensemble"``)."""
        check_is_fitted(self, "n_iter_")
        return self._net

    # -- persistence ---------------------------------------------------------------------------
    def _get_state(self):
        json_state, tensors = super()._get_state()
        tensors.update({f"network.{k}": v.detach().cpu().contiguous()
                        for k, v in self._net.state_dict().items()})
        if self.method == "laplace":
            numbers, posterior = self._laplace.state()
            json_state["laplace"] = numbers
            tensors.update({f"laplace.{k}": v for k, v in posterior.items()})
        return json_state, tensors

    def _set_state(self, json_state, tensors):
        own = {k: v for k, v in tensors.items() if not k.startswith(("network.", "laplace."))}
        laplace = json_state.pop("laplace", None)
        super()._set_state(json_state, own)
        self._net = self._network(int(self.n_features_in_), 0)
        self._net.load_state_dict({k[len("network."):]: v for k, v in tensors.items()
                                   if k.startswith("network.")})
        if laplace is not None:
            self._laplace = self._make_laplace().load_state(
                laplace, {k[len("laplace."):]: v for k, v in tensors.items() if k.startswith("laplace.")})

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


class BayesianMLPRegressor(RegressorMixin, _BaseBayesianMLP):
    """Bayesian MLP regression with a Gaussian predictive distribution per input.

    Parameters
    ----------
    hidden_layer_sizes : widths of the hidden layers (default (50,)).
    method : ``"bbb"`` (Bayes by Backprop), ``"mc_dropout"``, ``"ensemble"`` or ``"laplace"``.
    heteroscedastic : predict the noise variance per input (else one learnt noise level).
    activation : ``"relu"`` or ``"tanh"``.
    prior, prior_sigma : BBB weight prior: ``"gaussian"`` N(0, prior_sigma^2) or
        ``"scale_mixture"`` (Blundell eq. 7, sigma1 = prior_sigma, sigma2 = e^-6 prior_sigma).
    dropout, length_scale : MC-dropout rate p (dropout after every hidden layer) and prior
        length-scale l (weight decay l^2 (1 - p) / N).
    n_estimators : ensemble size.
    max_steps : training budget in Adam steps (default 2000), whatever the number of rows:
        ``ceil(max_steps / batches per epoch)`` epochs.
    max_epochs : if set, train for exactly this many epochs instead (``max_steps`` ignored).
    batch_size, learning_rate : Adam training.
    early_stopping, validation_fraction, patience : hold out ``validation_fraction`` of the
        rows, stop once their Monte-Carlo predictive NLL has not improved for ``patience``
        Adam steps, and keep the weights with the best one. Without early stopping (or too
        few rows to hold any out) training stops when the training loss has not improved for
        ``patience`` steps, with its last weights.
    n_samples : sampled networks per prediction (BBB, MC dropout).
    input_scaling : ``"feature"`` (default) standardises each input column on its own;
        ``"global"`` uses one mean and one standard deviation over all entries, as for pixels.
    laplace_prior : how ``method="laplace"`` tunes its prior precision: ``"val_nll"`` (the
        held-out rows' predictive NLL), ``"marglik"`` (the Laplace evidence) or ``"auto"``
        (default: the evidence's, raised just until the held-out rows are not
        under-confident, sum(hit - confidence) <= 0 over their top classes, or to the MAP's
        limit if even the MAP is; the evidence alone when no rows are held out).
        With ``method="laplace"`` the held-out rows (``early_stopping``,
        ``validation_fraction``) tune this prior only: the MAP network trains for the whole
        budget with its step size annealed to zero on a cosine, to a mode of the posterior.
    verbose : show a progress bar while fitting.
    device, dtype, random_state : as every bayesdl estimator.

    Attributes
    ----------
    x_mean_, x_scale_, y_mean_, y_scale_ : standardisation of inputs and targets.
    loss_curve_ : training loss per epoch; ``n_iter_`` epochs run.
    validation_scores_ : held-out predictive NLL per epoch (empty without early stopping);
        ``best_epoch_`` the epoch with the best monitored loss (kept with early stopping).
    prior_precision_, prior_method_ : ``method="laplace"`` only: the Laplace's prior
        precision and the objective that chose it (``"marglik"``, ``"calibrated"``: the
        evidence's raised on the held-out rows, or ``"val_nll"``);
        ``map_gradient_norm_`` the gradient norm of the MAP objective where it was built.

    Examples
    --------
    >>> from bayesdl.neural_network import BayesianMLPRegressor
    >>> from bayesdl.datasets import load_mcycle
    >>> d = load_mcycle()
    >>> reg = BayesianMLPRegressor(method="mc_dropout", heteroscedastic=True, random_state=0)
    >>> mean, std = reg.fit(d.data, d.target).predict(d.data, return_std=True)
    """

    def _n_network_outputs(self) -> int:
        return 2 if self.heteroscedastic else 1

    def _head(self, mlp):
        return _GaussianHead(mlp, self.heteroscedastic, math.log(_NOISE_INIT_FRACTION))

    def _likelihood(self) -> str:
        return "heteroscedastic"

    @staticmethod
    def _nll(out, y):
        return heteroscedastic_gaussian_nll(out[:, 0], out[:, 1], y)

    def fit(self, X, y):
        """Fit on inputs ``X`` (n, d) and real targets ``y`` (n,)."""
        self._validate_params()
        X, y = self._validate_X_y(X, y, reset=True)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) if y.std() > 0 else 1.0
        self._fit_network(X, self._to_torch((y - self.y_mean_) / self.y_scale_))
        return self

    def predict_dist(self, X):
        """The predictive distribution: a uniform mixture of the sampled networks' Normals."""
        d = self._sample_dist(X)
        comp = d.component_distribution
        return monte_carlo_normal(comp.loc * self.y_scale_ + self.y_mean_,
                                  comp.scale * self.y_scale_)

    def predict(self, X, return_std: bool = False):
        """Predictive mean (and standard deviation, aleatoric + epistemic, if asked)."""
        d = self.predict_dist(X)
        mean = self._to_numpy(d.mean)
        return (mean, self._to_numpy(d.stddev)) if return_std else mean


class BayesianMLPClassifier(ClassifierMixin, _BaseBayesianMLP):
    """Bayesian MLP classification: class probabilities averaged over sampled networks.

    Parameters are those of :class:`BayesianMLPRegressor`; ``heteroscedastic=True`` learns a
    noise variance per logit (Kendall & Gal 2017 eq. 12). ``classes_`` holds the labels.
    """

    def _n_network_outputs(self) -> int:
        K = len(self.classes_)
        return 2 * K if self.heteroscedastic else K

    def _head(self, mlp):
        return mlp

    def _likelihood(self) -> str:
        return "logit_noise" if self.heteroscedastic else "categorical"

    def _nll(self, out, y):
        if self.heteroscedastic:
            logits, log_var = out.chunk(2, dim=-1)
            return logit_noise_nll(logits, log_var, y, _LOGIT_NOISE_SAMPLES)
        return nn.functional.cross_entropy(out, y)

    def fit(self, X, y):
        """Fit on inputs ``X`` (n, d) and class labels ``y`` (n,)."""
        self._validate_params()
        X, y = self._validate_X_y(X, y, y_numeric=False)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"a classifier needs at least 2 classes; y has only one class "
                             f"({self.classes_[0]!r}).")
        self._fit_network(X, torch.as_tensor(codes, dtype=torch.long, device=self._torch_device))
        return self

    def predict_dist(self, X) -> MonteCarloCategorical:
        """Categorical over ``classes_`` (indices) averaging the sampled networks."""
        return self._sample_dist(X)

    def predict_proba(self, X):
        return self._to_numpy(self.predict_dist(X).probs)

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

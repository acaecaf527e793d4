"""The Laplace approximation for trained networks (MacKay 1992; Daxberger et al. 2021).

A network trained to its MAP weights ``theta*`` (cross-entropy or squared error plus weight
decay) gets the Gaussian posterior q(theta) = N(theta*, (H + delta I)^{-1}), where H is the
generalised Gauss-Newton (GGN) matrix of the data term

    H = sum_n J_n^T Lambda_n J_n,   J_n = d f(x_n) / d theta  (the network's output Jacobian),

with Lambda_n = diag(p_n) - p_n p_n^T for a softmax output and 1/sigma^2 for a Gaussian one
(Laplace Redux eq. 6; PRML 5.83-5.84 for the outer-product form). ``delta`` is the prior
precision. ``subset_of_weights`` picks the parameters: ``"last_layer"`` (the final
``nn.Linear``; the body is a fixed feature map, Kristiadi et al. 2020) or ``"all"`` (small
networks). ``hessian_structure`` is

- ``"full"``: the P x P GGN, from per-example Jacobians by ``torch.func.vmap(jacrev)``;
- ``"diag"``: its diagonal, from the same Jacobians, never forming P x P;
- ``"kron"``: Kronecker-factored (KFAC, Martens & Grosse 2015) per ``nn.Linear`` layer,
  H_l ~= (sum_n B_n) (x) (sum_n a_n a_n^T) / N with a_n the layer input (plus a 1 for the
  bias) and B_n = G_n^T Lambda_n G_n, G_n the Jacobian of the output with respect to the
  layer's pre-activation; exact for one single-output layer under a Gaussian likelihood
  (Lambda_n constant; a classifier's p_n (1 - p_n) varies by row, so there it is not).

The prior precision is tuned by maximising the Laplace evidence (PRML 4.137 / 5.175,
``prior_precision="marglik"``) or the validation NLL (``"val_nll"``), or given as a number;
``"auto"`` takes the evidence's, raised (a narrower posterior) just until the validation
rows do not find its predictive under-confident.

Predictions (``predict_dist``):

- ``"glm"``: the linearised network f(x, theta) ~ f(x, theta*) + J(x)(theta - theta*) (Immer
  et al. 2021), whose output is Gaussian with covariance J Sigma J^T; classes use the probit
  (PRML 4.153-4.155; over pairwise logit differences for the softmax, Lu et al. 2020),
  regression adds the noise;
- ``"mc"``: Monte-Carlo over the linearised outputs (``link_approx="mc"``), or over sampled
  networks (``pred_type="nn"``) - a :class:`~bayesdl.uncertainty.MonteCarloCategorical` /
  mixture of Normals that :func:`bayesdl.uncertainty.decompose` splits.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.distributions import Categorical, Normal

SUBSETS = ("last_layer", "all")
STRUCTURES = ("full", "diag", "kron")
# the prior precisions searched, log10 delta: the top is the MAP's limit (a posterior so
# narrow that the predictive is the MAP network's)
_LOG10_PRIOR_RANGE = (-4.0, 6.0)


def probit_probs(mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Moderated class probabilities from Gaussian logits N(mean (N, K), cov (N, K, K)): (N, K).

    One logit (K = 1, binary): sigma(kappa(s^2) mu) with kappa = (1 + pi s^2 / 8)^{-1/2}
    (PRML 4.154-4.155), returned as (N, 2) = (1 - p, p). K logits: the softmax is
    p_k = 1 / sum_j exp(-(a_k - a_j)), a function of the logit differences only, and each
    pairwise term is moderated by the variance of its own difference,

        p_k ~ 1 / (1 + sum_{j != k} exp(-(mu_k - mu_j) kappa(v_kj))),
        v_kj = S_kk + S_jj - 2 S_kj,

    then normalised (the mean-field approximation of Lu, Ie & Sha 2020 over pairwise
    differences). Like the softmax it is unchanged by a shift of all logits, so variance along
    that shift (a softmax's unidentified direction) does not moderate it, as it does in the
    per-logit extended probit softmax(mu_k kappa(S_kk)); for K = 2 it is PRML 4.155 on the
    difference. It remains an approximation: with several broad classes it can differ from
    the Monte-Carlo predictive by up to about 0.1 in a class probability (0.015-0.12 in the
    worst class on iris, wine and digits logistic regressions; ``"mc"`` is exact).
    """
    if mean.shape[-1] == 1:
        # kappa(sigma^2) mu = mu / (1 + pi sigma^2 / 8)^(1/2)  (PRML 4.154)
        p = torch.sigmoid(mean / torch.sqrt(1 + math.pi * cov[..., 0] / 8))  # (N, 1)  PRML 4.155
        return torch.cat([1 - p, p], dim=-1)
    var = cov.diagonal(dim1=-2, dim2=-1)  # (N, K)
    v = (var[:, :, None] + var[:, None, :] - 2 * cov).clamp_min(0)  # (N, K, K) Var(a_k - a_j)
    gap = mean[:, :, None] - mean[:, None, :]  # (N, K, K) mu_k - mu_j
    # log p_k = -logsumexp_j(-(mu_k - mu_j) kappa(v_kj)); the j = k term is exp(0) = 1
    log_p = -torch.logsumexp(-gap / torch.sqrt(1 + math.pi * v / 8), dim=-1)  # (N, K)
    return torch.softmax(log_p, dim=-1)


def logit_probs(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities (..., K) from logits: one logit means a binary sigmoid."""
    if logits.shape[-1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=-1)
    return torch.softmax(logits, dim=-1)


def _last_linear(model: nn.Module, X: torch.Tensor | None = None,
                 name: str | None = None) -> tuple[str, nn.Linear]:
    """The network's output ``nn.Linear`` (name, layer): the one named ``name``, else the last
    one called on ``X`` (a module may define its head before its body), else the last defined."""
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    if not linears:
        raise ValueError("last-layer Laplace needs a network whose last layer is an nn.Linear; "
                         f"{type(model).__name__} has none. Use subset_of_weights='all'.")
    if name is None and X is not None:
        called = []
        hooks = [m.register_forward_hook(lambda module, args, out, n=n: called.append(n))
                 for n, m in linears.items()]
        try:
            with torch.no_grad():
                model(X[:1])
        finally:
            for hook in hooks:
                hook.remove()
        name = called[-1] if called else None
    name = list(linears)[-1] if name is None else name
    return name, linears[name]


def _check_rows(X, y, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` as tensors, refusing NaN/infinity and a target count unequal to the rows."""
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    for name, t in ((what, X), ("its targets", y)):
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinity; drop or impute those rows first.")
    if y.dim() == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{what} has {X.shape[0]} rows but its targets have shape "
                         f"{tuple(y.shape)}; give one target per row.")
    return X, y


class Laplace:
    """Post-hoc Laplace approximation of a trained ``nn.Module`` classifier or regressor.

    Parameters
    ----------
    model : the trained network, returning logits (N, K) (``likelihood="classification"``;
        K = 1 is a binary sigmoid) or means (N,) / (N, 1) (``"regression"``).
    likelihood : ``"classification"`` or ``"regression"``.
    subset_of_weights : ``"last_layer"`` or ``"all"``.
    hessian_structure : ``"full"``, ``"diag"`` or ``"kron"``.
    prior_precision : a positive number, ``"marglik"`` (evidence), ``"val_nll"`` or
        ``"auto"`` (the evidence's, raised until the validation rows are not
        under-confident: see :meth:`fit`).
    sigma_noise : the regression noise standard deviation; ``None`` estimates it from the
        training residuals (the MAP of the network's squared error).
    """

    def __init__(self, model: nn.Module, likelihood: str = "classification", *,
                 subset_of_weights: str = "last_layer", hessian_structure: str = "full",
                 prior_precision="marglik", sigma_noise: float | None = None):
        if likelihood not in ("classification", "regression"):
            raise ValueError(f"likelihood must be 'classification' or 'regression', got {likelihood!r}.")
        if subset_of_weights not in SUBSETS:
            raise ValueError(f"subset_of_weights must be one of {SUBSETS}, got {subset_of_weights!r}.")
        if hessian_structure not in STRUCTURES:
            raise ValueError(f"hessian_structure must be one of {STRUCTURES}, got {hessian_structure!r}.")
        if not (prior_precision in ("marglik", "val_nll", "auto") or
                (isinstance(prior_precision, (int, float)) and prior_precision > 0)):
            raise ValueError("prior_precision must be a positive number, 'marglik', 'val_nll' "
                             "or 'auto'; "
                             f"got {prior_precision!r}.")
        self.model, self.likelihood = model, likelihood
        self.subset_of_weights, self.hessian_structure = subset_of_weights, hessian_structure
        self.prior_precision, self.sigma_noise = prior_precision, sigma_noise

    @classmethod
    def from_checkpoint(cls, model: nn.Module, path, likelihood: str = "classification", **kwargs):
        """A Laplace for ``model`` with the weights of a :class:`~bayesdl.train.Trainer`
        checkpoint (``checkpoint_dir/last.safetensors``) loaded into it; then call ``fit``."""
        from ..train.checkpoint import load_checkpoint  # train sits beside nn, not below it

        tensors, _ = load_checkpoint(path)
        weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        if not weights:
            raise ValueError(f"{path} holds no model weights (keys 'model.*').")
        model.load_state_dict(weights)
        return cls(model, likelihood, **kwargs)

    # -- the parameters the posterior is over ---------------------------------------------------
    def _split(self, X: torch.Tensor | None = None) -> dict:
        """The posterior's parameters {name: tensor}, setting the module they belong to (the
        last layer called on ``X``, or the one a restored ``last_layer_name_`` names)."""
        if self.subset_of_weights == "last_layer":
            self.last_layer_name_, layer = _last_linear(
                self.model, X, None if X is not None else getattr(self, "last_layer_name_", None))
            self._head_module = layer
            return dict(layer.named_parameters())
        self._head_module = self.model
        return {k: p for k, p in self.model.named_parameters() if p.requires_grad}

    def _features(self, X: torch.Tensor) -> torch.Tensor:
        """The head's inputs: the last layer's inputs (captured by a hook) or X itself."""
        if self.subset_of_weights == "all":
            return X
        captured = []

        def hook(module, args, output):
            captured.append(args[0])

        handle = self._head_module.register_forward_hook(hook)
        try:
            with torch.no_grad():
                out = self.model(X)
        finally:
            handle.remove()
        self._check_output_is_head(out, captured[-1])
        return captured[-1].detach()

    def _check_output_is_head(self, out, features):
        # compared as (N, K): a regressor may return its head's (N, 1) squeezed to (N,)
        head_out = self._head_module(features).reshape(features.shape[0], -1)
        out = out.reshape(out.shape[0], -1)
        if head_out.shape != out.shape or not torch.allclose(head_out, out):
            raise ValueError("last-layer Laplace needs the network's output to be its last "
                             "nn.Linear's output (no layer after it); use subset_of_weights='all'.")

    def _outputs(self, params: dict, h: torch.Tensor) -> torch.Tensor:
        """f(h; params) as (N, K)."""
        out = functional_call(self._head_module, params, (h,))
        return out.reshape(out.shape[0], -1)

    def _jacobians(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs (N, K) and per-example Jacobians (N, K, P) at the MAP, by vmap(jacrev)."""
        names = list(self._map)
        flat = torch.cat([self._map[k].reshape(-1) for k in names])

        def f(theta, x):  # one example: (P,), (...) -> (K,)
            params, start = {}, 0
            for k in names:
                n = self._map[k].numel()
                params[k] = theta[start:start + n].view_as(self._map[k])
                start += n
            return self._outputs(params, x.unsqueeze(0))[0]

        J = vmap(jacrev(f), in_dims=(None, 0))(flat, h)  # (N, K, P)
        with torch.no_grad():
            out = self._outputs(self._map, h)
        return out, J

    def _output_precision(self, out: torch.Tensor) -> torch.Tensor:
        """Lambda_n (N, K, K): the Hessian of -log p(y | f) with respect to f."""
        if self.likelihood == "regression":
            K = out.shape[1]
            eye = torch.eye(K, dtype=out.dtype, device=out.device)
            return eye.expand(out.shape[0], K, K) / self.sigma_noise_**2
        if out.shape[1] == 1:  # sigmoid: p (1 - p)
            p = torch.sigmoid(out)
            return (p * (1 - p)).unsqueeze(-1)
        p = torch.softmax(out, -1)
        return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)

    def _check_targets(self, y: torch.Tensor, K: int, what: str) -> None:
        """Targets the network's K outputs can score: one regression target per row (one
        output), or class labels 0..K-1 (0/1 for a single logit)."""
        if self.likelihood == "regression":
            if K != 1 or y.numel() != y.shape[0]:
                raise ValueError(f"regression Laplace needs a network with one output and one "
                                 f"target per row; got {K} outputs and {what} of shape "
                                 f"{tuple(y.shape)}.")
            return
        n_classes = 2 if K == 1 else K
        if (y.is_floating_point() and not torch.equal(y, y.round())) or y.dim() != 1 or \
                len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            raise ValueError(f"{what} must hold class labels 0..{n_classes - 1} (the network has "
                             f"{K} output{'s' if K > 1 else ''}), one per row; got shape "
                             f"{tuple(y.shape)}, values {y.min().item()}..{y.max().item()}. "
                             "Encode the labels, e.g. with sklearn's LabelEncoder.")

    def _nll_sum(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "regression":
            r = out.reshape(-1) - y.reshape(-1)
            return (0.5 * r @ r / self.sigma_noise_**2
                    + r.numel() * (math.log(self.sigma_noise_) + 0.5 * math.log(2 * math.pi)))
        if out.shape[1] == 1:
            return nn.functional.binary_cross_entropy_with_logits(
                out[:, 0], y.to(out.dtype), reduction="sum")
        return nn.functional.cross_entropy(out, y.long(), reduction="sum")

    # -- fitting ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _ggn(self, h: torch.Tensor, batch_size: int):
        """The data term of the posterior precision: (P, P), (P,) or KFAC factors per layer."""
        if self.hessian_structure == "kron":
            return self._kfac(h, batch_size)
        P = sum(p.numel() for p in self._map.values())
        H = (torch.zeros(P, P, dtype=h.dtype, device=h.device) if self.hessian_structure == "full"
             else torch.zeros(P, dtype=h.dtype, device=h.device))
        for start in range(0, h.shape[0], batch_size):
            out, J = self._jacobians(h[start:start + batch_size])  # (B, K), (B, K, P)
            L = self._output_precision(out)  # (B, K, K)
            LJ = L @ J  # (B, K, P)
            if self.hessian_structure == "full":
                # H = sum_n J_n^T Lambda_n J_n  (Laplace Redux eq. 6)
                H += torch.einsum("bkp,bkq->pq", J, LJ)
            else:
                H += torch.einsum("bkp,bkp->p", J, LJ)
        return H

    def _kfac_layers(self) -> list:
        """[layer name, layer, weight's name, A, B] for each nn.Linear in the posterior."""
        factors = []
        for name, layer in self._head_module.named_modules():
            wname = f"{name}.weight" if name else "weight"
            if isinstance(layer, nn.Linear) and wname in self._map:
                factors.append([name, layer, wname, None, None])
        return factors

    def _kfac(self, h: torch.Tensor, batch_size: int):
        """KFAC factors (A_l, B_l) for each nn.Linear whose weight is in the posterior."""
        factors = self._kfac_layers()
        param_names = set(self._map)
        covered = {f[2] for f in factors} | {f[2][:-len("weight")] + "bias" for f in factors}
        missing = param_names - covered
        if missing:
            raise ValueError(f"hessian_structure='kron' covers the weights of nn.Linear layers "
                             f"(with their biases) only; the parameters {sorted(missing)} are in "
                             "other layers, or are biases of frozen weights. Use 'diag' or 'full'.")
        inputs, preacts = {}, {}  # each layer's input a_n and pre-activation s_n

        def record(name):
            def hook(module, args, output):
                inputs[name], preacts[name] = args[0], output
            return hook

        hooks = [layer.register_forward_hook(record(name)) for name, layer, *_ in factors]
        N = h.shape[0]
        try:
            for start in range(0, N, batch_size):
                hb = h[start:start + batch_size]
                inputs.clear()
                preacts.clear()
                with torch.enable_grad():
                    out = self._head_module(hb)
                    out = out.reshape(out.shape[0], -1)
                    K = out.shape[1]
                    L = self._output_precision(out.detach())  # (B, K, K)
                    # Lambda_n = R_n R_n^T, so B_n = G_n^T Lambda_n G_n = sum_c g_nc g_nc^T with
                    # g_nc = G_n^T R_n[:, c]: one backward pass per output column c.
                    R = torch.linalg.cholesky(L + 1e-12 * torch.eye(K, dtype=L.dtype, device=L.device)) \
                        if K > 1 else L.sqrt()  # (B, K, K)
                    for c in range(K):
                        gs = torch.autograd.grad(out, [preacts[f[0]] for f in factors],
                                                 grad_outputs=R[:, :, c], retain_graph=c < K - 1)
                        for f, g in zip(factors, gs):
                            f[4] = (0 if f[4] is None else f[4]) + g.T @ g  # sum_n B_n (out, out)
                for f in factors:
                    a = inputs[f[0]].detach()
                    if f[1].bias is not None:
                        a = torch.cat([a, a.new_ones(a.shape[0], 1)], dim=1)  # (B, in + 1)
                    f[3] = (0 if f[3] is None else f[3]) + a.T @ a  # sum_n a_n a_n^T
        finally:
            for hook in hooks:
                hook.remove()
        # H_l ~= B (x) A / N with B = sum_n B_n, A = sum_n a_n a_n^T (Martens & Grosse 2015)
        return [(f[0], f[2], f[1].bias is not None, f[3] / N, f[4].detach()) for f in factors]

    def fit(self, X, y, *, batch_size: int = 256, X_val=None, y_val=None,
            link_approx: str = "probit", n_samples: int = 100):
        """Compute the GGN at the trained weights on ``(X, y)`` and tune the prior precision.

        ``X``, ``y`` are tensors on the model's device and dtype (integer labels, or the
        regression targets); ``X_val``, ``y_val`` are needed for ``prior_precision="val_nll"``
        and ``"auto"``, which score the predictive that will be used: ``link_approx="probit"``
        or ``"mc"`` (``n_samples`` fixed Gaussian logit draws, the same for every delta;
        classification only, a regression's Gaussian predictive is exact either way).

        ``"auto"`` starts from the evidence's prior precision, which uses every training row
        (a few validation rows rarely hold the confident errors that dominate an NLL, so
        tuning on their NLL drifts to the MAP). Where the validation rows find its predictive
        under-confident (:meth:`_under_confidence` above 0: more top-class hits than their
        confidences sum to) it raises the precision just until they do not (bisection on
        log delta), or to the MAP's limit if even the MAP is under-confident on them: a
        Laplace can only moderate its MAP. The evidence errs that way where the MAP fits its
        training rows so closely that their GGN is near zero and its posterior keeps almost
        the prior's width (the digits, wine and iris networks of docs/benchmarks.md). The
        search narrows the evidence's posterior, never widens it: the failure it corrects
        is under-confidence.
        """
        if link_approx not in ("probit", "mc"):
            raise ValueError(f"link_approx must be 'probit' or 'mc', got {link_approx!r}.")
        X, y = _check_rows(X, y, "X")
        for cached in ("_H_eig", "_kron"):  # decompositions of a previous fit's GGN
            self.__dict__.pop(cached, None)
        was_training = self.model.training
        self.model.eval()
        try:
            self._map = {k: p.detach().clone() for k, p in self._split(X).items()}
            h = self._features(X)
            with torch.no_grad():
                out = self._outputs(self._map, h)
            self._check_targets(y, out.shape[1], "y")
            if self.likelihood == "regression":
                r = out.reshape(-1) - y.reshape(-1).to(out.dtype)
                self.sigma_noise_ = (float(self.sigma_noise) if self.sigma_noise is not None
                                     else float(r.pow(2).mean().sqrt().clamp_min(1e-12)))
            self.n_train_ = X.shape[0]
            self.n_params_ = sum(p.numel() for p in self._map.values())
            self.loss_ = float(self._nll_sum(out, y))  # -log p(D | theta*)
            self.H_ = self._ggn(h, batch_size)
            self.theta_map_ = torch.cat([p.reshape(-1) for p in self._map.values()])
            # which objective chose the prior precision: "marglik", "val_nll", "fixed" or
            # "calibrated" (the evidence's, raised until the validation rows are not
            # under-confident)
            self.prior_method_ = ("fixed" if not isinstance(self.prior_precision, str)
                                  else "val_nll" if self.prior_precision == "val_nll"
                                  else "marglik")
            if self.prior_precision == "marglik":
                self._set_prior(self._optimise_prior(self.log_marginal_likelihood))
            elif self.prior_precision in ("val_nll", "auto"):
                if X_val is None or y_val is None:
                    raise ValueError(f"prior_precision={self.prior_precision!r} needs X_val "
                                     "and y_val in fit.")
                X_val, y_val = _check_rows(X_val, y_val, "X_val")
                self._check_targets(y_val, out.shape[1], "y_val")
                dist = self._val_dist(X_val, link_approx, n_samples)
                if self.prior_precision == "auto":  # the evidence's, narrowed if under-confident
                    evidence = self._optimise_prior(self.log_marginal_likelihood)
                    delta = self._calibrated_prior(
                        lambda d: self._under_confidence(dist(d), y_val), evidence)
                    if delta > evidence:
                        self.prior_method_ = "calibrated"
                else:  # maximise the validation log-likelihood
                    target = self._target(y_val)
                    delta = self._optimise_prior(lambda d: float(dist(d).log_prob(target).mean()))
                self._set_prior(delta)
            else:
                self._set_prior(float(self.prior_precision))
        finally:
            self.model.train(was_training)
        return self

    # -- persistence (the network's own weights are saved by its owner) --------------------------
    def state(self) -> tuple[dict, dict]:
        """``(numbers, tensors)`` that, with the same trained network, restore the posterior."""
        numbers = {k: getattr(self, k) for k in ("prior_precision_", "prior_method_", "loss_",
                                                 "n_train_", "n_params_")}
        if self.likelihood == "regression":
            numbers["sigma_noise_"] = self.sigma_noise_
        if self.subset_of_weights == "last_layer":
            numbers["last_layer_name_"] = self.last_layer_name_
        if self.hessian_structure == "kron":
            tensors = {f"{i}.{ab}": f[3 + j] for i, f in enumerate(self.H_) for j, ab in enumerate("AB")}
        else:
            tensors = {"H": self.H_}
        return numbers, {k: v.detach().cpu().contiguous() for k, v in tensors.items()}

    def load_state(self, numbers: dict, tensors: dict) -> "Laplace":
        """Inverse of :meth:`state` (for the network this Laplace was built with)."""
        for cached in ("_H_eig", "_kron", "last_layer_name_"):  # another GGN's, another layer
            self.__dict__.pop(cached, None)
        for k, v in numbers.items():
            setattr(self, k, v)
        self._map = {k: p.detach().clone() for k, p in self._split().items()}
        self.theta_map_ = torch.cat([p.reshape(-1) for p in self._map.values()])
        like = self.theta_map_
        if self.hessian_structure == "kron":
            self.H_ = [(f[0], f[2], f[1].bias is not None, tensors[f"{i}.A"].to(like),
                        tensors[f"{i}.B"].to(like)) for i, f in enumerate(self._kfac_layers())]
        else:
            self.H_ = tensors["H"].to(like)
        self._set_prior(self.prior_precision_)
        return self

    def _optimise_prior(self, objective) -> float:
        """Maximise objective(delta) over log delta on a grid, then golden-section refine."""
        grid = torch.linspace(*_LOG10_PRIOR_RANGE, 41, dtype=torch.float64)  # log10 delta
        values = [float(objective(10 ** float(g))) for g in grid]
        i = max(range(len(values)), key=values.__getitem__)
        lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])
        phi = (math.sqrt(5) - 1) / 2
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        fa, fb = objective(10 ** a), objective(10 ** b)
        for _ in range(30):  # golden section on [lo, hi] in log10 delta: one new point a step
            if fa >= fb:
                hi, b, fb = b, a, fa
                a = hi - phi * (hi - lo)
                fa = objective(10 ** a)
            else:
                lo, a, fa = a, b, fb
                b = lo + phi * (hi - lo)
                fb = objective(10 ** b)
        return 10 ** ((lo + hi) / 2)

    @staticmethod
    def _calibrated_prior(under_confidence, lowest: float) -> float:
        """The smallest delta >= ``lowest`` with under_confidence(delta) <= 0, by bisection on
        log10 delta up to the top of the search range (returned if even it is under-confident).

        A larger precision narrows the posterior and moderates less, so the predictive's
        confidence rises, and its under-confidence falls, with delta.
        """
        lo, hi = math.log10(lowest), _LOG10_PRIOR_RANGE[1]
        if lo >= hi or under_confidence(lowest) <= 0:
            return lowest
        if under_confidence(10 ** hi) > 0:
            return 10 ** hi
        for _ in range(30):  # under-confident at 10^lo, not at 10^hi
            mid = (lo + hi) / 2
            if under_confidence(10 ** mid) > 0:
                lo = mid
            else:
                hi = mid
        return 10 ** hi

    def _set_prior(self, delta: float) -> None:
        self.prior_precision_ = float(delta)
        if self.hessian_structure == "kron":
            if not hasattr(self, "_kron"):
                self._kron_eigen()
        elif self.hessian_structure == "full":
            A = self.H_ + delta * torch.eye(self.n_params_, dtype=self.H_.dtype, device=self.H_.device)
            self.posterior_covariance_ = torch.cholesky_inverse(torch.linalg.cholesky(A))
        else:
            self.posterior_variance_ = 1.0 / (self.H_ + delta)

    def _full_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """H = Q diag(lambda) Q^T, decomposed once per fit: (P,), (P, P)."""
        if not hasattr(self, "_H_eig"):
            lam, Q = torch.linalg.eigh(self.H_)
            self._H_eig = (lam.clamp_min(0), Q)
        return self._H_eig

    def _kron_eigen(self):
        """Eigen-decompose each factor once: (B (x) A + delta I)^{-1} is then diagonal."""
        self._kron = []
        for name, wname, bias, A, B in self.H_:
            la, Qa = torch.linalg.eigh(A)
            lb, Qb = torch.linalg.eigh(B)
            self._kron.append((name, wname, bias, la.clamp_min(0), Qa, lb.clamp_min(0), Qb))

    def _log_det_precision(self, delta: float) -> torch.Tensor:
        """log |H + delta I| for the chosen structure."""
        if self.hessian_structure == "full":
            lam, _ = self._full_eigen()
            return torch.log(lam + delta).sum()
        if self.hessian_structure == "diag":
            return torch.log(self.H_ + delta).sum()
        if not hasattr(self, "_kron"):
            self._kron_eigen()
        total = 0.0
        for *_, la, Qa, lb, Qb in self._kron:
            # eigenvalues of B (x) A are lb_i la_j  (Martens & Grosse 2015)
            total = total + torch.log(torch.outer(lb, la) + delta).sum()
        return total

    def log_marginal_likelihood(self, prior_precision: float | None = None) -> float:
        """The Laplace evidence (PRML 4.137 with an isotropic prior, cf. 5.175):

        log p(D | delta) ~= log p(D | theta*) - delta/2 |theta*|^2 + P/2 log delta
                            - 1/2 log |H + delta I|.
        """
        delta = self.prior_precision_ if prior_precision is None else float(prior_precision)
        m2 = float(self.theta_map_ @ self.theta_map_)
        return float(-self.loss_ - 0.5 * delta * m2 + 0.5 * self.n_params_ * math.log(delta)
                     - 0.5 * self._log_det_precision(delta))

    def _val_dist(self, X, link_approx: str = "probit", n_samples: int = 100):
        """``delta -> `` the GLM predictive at X: probit, or Monte Carlo over ``n_samples``
        logit draws fixed once (so a score of it is smooth in delta).

        The Jacobians are rotated into the eigenbasis of H once, where (H + delta I)^-1 is
        diagonal; each delta then costs O(N K^2 P) (the logits' covariance), not a P x P inverse
        and a P^2 contraction.
        """
        from ..uncertainty import MonteCarloCategorical

        h = self._features(X)
        with torch.no_grad():
            mean, J = self._jacobians(h)  # (N, K), (N, K, P)
            terms = self._eigen_jacobians(J)
        mc = link_approx == "mc" and self.likelihood == "classification"
        eps = torch.randn(n_samples, mean.shape[1], dtype=mean.dtype, device=mean.device,
                          generator=torch.Generator(mean.device).manual_seed(0)) if mc else None

        def dist(delta: float):
            # J Sigma J^T = sum_m R_km R_lm / (lambda_m + delta)  (N, K, K)
            cov = sum((R / (lam + delta)) @ R.transpose(1, 2) for R, lam in terms)
            if mc:
                return MonteCarloCategorical(  # (N, S, K)
                    logit_probs(self._mc_outputs(mean, cov, eps)).transpose(0, 1))
            return self._glm_dist(mean, cov)

        return dist

    def _target(self, y: torch.Tensor) -> torch.Tensor:
        return y.reshape(-1).to(self.theta_map_.dtype) if self.likelihood == "regression" else y.long()

    def _under_confidence(self, dist, y: torch.Tensor) -> float:
        """z-score of under-confidence of a predictive on rows (X, y), 0 in expectation and
        about standard normal when it is calibrated; positive when it is under-confident.

        Classes: the top-class hits minus their probabilities, sum_n (1[y_n = argmax p_n] -
        max p_n) / sqrt(sum_n max p_n (1 - max p_n)) (each hit is Bernoulli(max p_n) under
        calibration). Regression: -(sum_n r_n^2 - N) / sqrt(2 N) with r_n the standardised
        residual (chi^2_N under calibration): too-wide intervals make it positive.
        """
        y = self._target(y)
        if self.likelihood == "regression":
            r2 = ((y - dist.mean) / dist.stddev) ** 2  # (N,)
            return float(-(r2.sum() - len(r2)) / math.sqrt(2 * len(r2)))
        conf, label = dist.probs.max(-1)  # (N,), (N,)
        hits = (label == y).to(conf.dtype)
        return float((hits - conf).sum() / (conf * (1 - conf)).sum().clamp_min(1e-12).sqrt())

    def _eigen_jacobians(self, J: torch.Tensor) -> list:
        """``[(R (N, K, m), lambda (m,))]`` with R = J in the eigenbasis of each block of H."""
        if self.hessian_structure == "full":
            lam, Q = self._full_eigen()
            return [(J @ Q, lam)]
        if self.hessian_structure == "diag":
            return [(J, self.H_)]
        return [(R.flatten(2), lam.flatten()) for R, lam in self._kron_rotated(J)]

    def _kron_rotated(self, J: torch.Tensor):
        """Per KFAC layer, its Jacobian block in the eigenbasis Qb (x) Qa of B (x) A, where
        (B (x) A + delta I)^-1 is diagonal: ``(R (N, K, out, in+1), lb la^T (out, in+1))``."""
        if not hasattr(self, "_kron"):
            self._kron_eigen()
        offsets = self._param_offsets()
        for name, wname, bias, la, Qa, lb, Qb in self._kron:
            s, e = offsets[wname]
            Jw = J[:, :, s:e].reshape(J.shape[0], J.shape[1], Qb.shape[0], -1)  # (N, K, out, in)
            if bias:
                bs, be = offsets[wname[:-len("weight")] + "bias"]
                Jw = torch.cat([Jw, J[:, :, bs:be].unsqueeze(-1)], dim=-1)  # (N, K, out, in+1)
            yield Qb.T @ Jw @ Qa, torch.outer(lb, la)

    def _glm_dist(self, mean: torch.Tensor, cov: torch.Tensor):
        """The GLM predictive from the linearised outputs' mean (N, K) and covariance
        (N, K, K): Normal(f, sqrt(var + sigma^2)) for regression, the probit for classes."""
        if self.likelihood == "regression":
            return Normal(mean[:, 0], (cov[:, 0, 0] + self.sigma_noise_**2).sqrt())
        return Categorical(probs=probit_probs(mean, cov))

    @staticmethod
    def _mc_outputs(mean: torch.Tensor, cov: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Draws f_s = mean + chol(cov) eps_s of the linearised outputs: (S, N, K)."""
        K = mean.shape[1]
        chol = torch.linalg.cholesky(cov + 1e-10 * torch.eye(K, dtype=cov.dtype, device=cov.device)
                                     * cov.diagonal(dim1=-2, dim2=-1).mean().clamp_min(1e-30))
        return mean + torch.einsum("nkl,sl->snk", chol, eps)

    # -- the linearised predictive ---------------------------------------------------------------
    def _functional_variance(self, J: torch.Tensor) -> torch.Tensor:
        """J Sigma J^T per example: (N, K, P) -> (N, K, K)."""
        if self.hessian_structure == "full":
            return torch.einsum("nkp,pq,nlq->nkl", J, self.posterior_covariance_, J)
        if self.hessian_structure == "diag":
            return torch.einsum("nkp,p,nlp->nkl", J, self.posterior_variance_, J)
        # kron: per layer, rotate J into the eigenbasis Qb (x) Qa, where Sigma is diagonal
        out = 0
        for R, lam in self._kron_rotated(J):
            inv = 1.0 / (lam + self.prior_precision_)  # (out, in+1)
            out = out + torch.einsum("nkab,ab,nlab->nkl", R, inv, R)
        return out

    def _param_offsets(self) -> dict:
        offsets, start = {}, 0
        for k, p in self._map.items():
            offsets[k] = (start, start + p.numel())
            start += p.numel()
        return offsets

    def predictive_moments(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The linearised network's output mean f(x, theta*) (N, K) and covariance (N, K, K)."""
        if not hasattr(self, "prior_precision_"):
            raise ValueError("This Laplace is not fitted yet; call fit(X, y) first.")
        was_training = self.model.training
        self.model.eval()
        try:
            h = self._features(torch.as_tensor(X))
            with torch.no_grad():
                out, J = self._jacobians(h)
                return out, self._functional_variance(J)
        finally:
            self.model.train(was_training)

    def predict_dist(self, X, *, link_approx: str = "probit", pred_type: str = "glm",
                     n_samples: int = 100, generator: torch.Generator | None = None):
        """The predictive distribution at ``X``.

        Classification: ``link_approx="probit"`` -> ``Categorical`` (PRML 4.155, the
        pairwise probit of :func:`probit_probs`); ``"mc"`` ->
        :class:`~bayesdl.uncertainty.MonteCarloCategorical` of ``n_samples`` Gaussian logit
        draws (``pred_type="glm"``) or sampled networks (``"nn"``). Regression:
        ``Normal(f, sqrt(J Sigma J^T + sigma^2))`` (``"probit"`` is the exact Gaussian here)
        or the Monte-Carlo mixture for ``"mc"``.
        """
        from ..uncertainty import MonteCarloCategorical, monte_carlo_normal

        if link_approx not in ("probit", "mc"):
            raise ValueError(f"link_approx must be 'probit' or 'mc', got {link_approx!r}.")
        if pred_type not in ("glm", "nn"):
            raise ValueError(f"pred_type must be 'glm' or 'nn', got {pred_type!r}.")
        X = torch.as_tensor(X)
        if pred_type == "nn":
            outs = self._sample_networks(X, n_samples, generator)  # (S, N, K)
        else:
            mean, cov = self.predictive_moments(X)  # (N, K), (N, K, K)
            if link_approx == "probit":
                return self._glm_dist(mean, cov)
            # one standard-normal draw per sample s, shared by the rows (each row still gets
            # iid draws across s), so a row's prediction does not depend on the other rows
            eps = torch.randn(n_samples, mean.shape[1], dtype=mean.dtype, device=mean.device,
                              generator=generator)  # (S, K)
            outs = self._mc_outputs(mean, cov, eps)  # (S, N, K)
        if self.likelihood == "regression":
            return monte_carlo_normal(outs[..., 0].T, self.sigma_noise_)
        return MonteCarloCategorical(logit_probs(outs).transpose(0, 1))  # (N, S, K)

    @torch.no_grad()
    def _sample_networks(self, X, n_samples, generator):
        """Outputs (S, N, K) of networks with weights drawn from the Laplace posterior."""
        h = self._features(X)
        P = self.n_params_
        eps = torch.randn(n_samples, P, dtype=self.theta_map_.dtype, device=self.theta_map_.device,
                          generator=generator)
        if self.hessian_structure == "full":
            draws = eps @ torch.linalg.cholesky(self.posterior_covariance_).T
        elif self.hessian_structure == "diag":
            draws = eps * self.posterior_variance_.sqrt()
        else:
            draws = torch.zeros_like(eps)
            offsets = self._param_offsets()
            for name, wname, bias, la, Qa, lb, Qb in self._kron:
                s, e = offsets[wname]
                n_out, n_in = Qb.shape[0], Qa.shape[0]
                z = torch.randn(n_samples, n_out, n_in, dtype=eps.dtype, device=eps.device,
                                generator=generator)
                # Sigma^{1/2} z = (Qb (x) Qa) diag(lambda)^{-1/2} z
                W = Qb @ (z / (torch.outer(lb, la) + self.prior_precision_).sqrt()) @ Qa.T
                draws[:, s:e] = W[:, :, : n_in - bias].reshape(n_samples, -1)
                if bias:
                    bs, be = offsets[wname[:-len("weight")] + "bias"]
                    draws[:, bs:be] = W[:, :, -1]
        theta = self.theta_map_ + draws  # (S, P)
        outs = []
        offsets = self._param_offsets()
        for t in theta:
            params = {k: t[s:e].view_as(self._map[k]) for k, (s, e) in offsets.items()}
            outs.append(self._outputs(params, h))
        return torch.stack(outs)

"""Sparse input is refused everywhere with one line that names the problem and the fix."""


import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.utils import get_tags

from bayesdl._base import DenseDataRequired, TorchEstimatorMixin, check_dense
from tests._estimators import example_inputs, registered_estimators, small_instance

METHODS = ["predict", "predict_dist", "predict_proba", "transform", "score_samples", "score",
           "partial_fit"]


def _sparse_forms(X):
    yield "csr_matrix", sp.csr_matrix(X), "X.toarray()"
    yield "csc_array", sp.csc_array(X), "X.toarray()"
    yield "coo_matrix", sp.coo_matrix(X), "X.toarray()"
    yield "torch sparse", torch.as_tensor(X).to_sparse(), "X.to_dense()"
    yield "torch csr", torch.as_tensor(X).to_sparse_csr(), "X.to_dense()"


def _assert_refused(call, fix, ours):
    with pytest.raises((TypeError, ValueError)) as e:
        call()
    text = str(e.value)
    assert "\n" not in text and "sparse" in text.lower(), text
    if ours:  # bayesdl's own validation: a ValueError too, and the exact fix
        assert isinstance(e.value, DenseDataRequired) and isinstance(e.value, ValueError)
        assert "need dense data" in text and fix in text, text
    else:  # scikit-learn's validate_data (the basis transformers): its own clear message
        assert "toarray" in text, text


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("cls", registered_estimators(), ids=lambda c: c.__name__)
def test_every_estimator_refuses_sparse_input(cls):
    rng = np.random.default_rng(0)
    X = example_inputs(cls, np.r_[rng.normal(-2, 1, size=(20, 3)), rng.normal(2, 1, size=(20, 3))])
    needs_y = get_tags(cls()).target_tags.required  # e.g. a class-conditional generative model
    y = np.r_[np.zeros(20), np.ones(20)] if is_classifier(cls()) or needs_y else X.sum(1)
    supervised = is_classifier(cls()) or is_regressor(cls()) or needs_y
    ours = issubclass(cls, TorchEstimatorMixin)
    for form, Xs, fix in _sparse_forms(X):
        if not ours and form.startswith("torch"):
            continue  # torch tensors are bayesdl's input type, not the scikit-learn bases'
        _assert_refused(lambda: small_instance(cls).fit(Xs, *([y] if supervised else [])), fix, ours)
    fitted = small_instance(cls).fit(X, *([y] if supervised else []))
    tried = 0
    for method in METHODS:
        if not hasattr(fitted, method):
            continue
        for form, Xs, fix in _sparse_forms(X):
            if not ours and form.startswith("torch"):
                continue
            args = [y] if supervised and method in ("score", "partial_fit") else []
            _assert_refused(lambda: getattr(fitted, method)(Xs, *args), fix, ours)
            tried += 1
    # every X-taking method was tried (a GAN's only one is fit: sample takes no data)
    assert tried >= 3 or not any(hasattr(fitted, m) for m in METHODS)


def test_sparse_target_is_named_as_y():
    from bayesdl.linear_model import BayesianLinearRegression

    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"^y is a sparse csr_matrix; .* y\.toarray\(\)"):
        BayesianLinearRegression().fit(X, sp.csr_matrix(X[:, :1]))


def test_check_dense_passes_dense_input_through_unchanged():
    X = np.zeros((2, 2))
    t = torch.zeros(2, 2)
    assert check_dense(X) is X and check_dense(t) is t and check_dense([[1.0]]) == [[1.0]]

"""scikit-learn's estimator checks for the RBM (Gaussian visibles: any real rows, as the
checks generate; Bernoulli visibles refuse values outside [0, 1] by design)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.generative import RBM
from tests._estimators import small_instance


@parametrize_with_checks([small_instance(RBM).set_params(visible="gaussian")])
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's estimator checks for DDPM (rows: the DenoisingMLP), with tiny T and epochs."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.generative import DDPM
from tests._estimators import small_instance


@parametrize_with_checks([small_instance(DDPM)])
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's estimator checks for the autoencoder and VAE estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.generative import AutoEncoder, ConditionalVAE, VAE
from tests._estimators import small_instance


@parametrize_with_checks([small_instance(AutoEncoder), small_instance(VAE),
                          small_instance(ConditionalVAE)])
def test_sklearn_compatible(estimator, check):
    check(estimator)

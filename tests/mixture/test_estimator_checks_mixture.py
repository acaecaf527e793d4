"""scikit-learn's estimator checks for KMeans, GaussianMixture and BayesianGaussianMixture."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.cluster import KMeans
from bayesdl.mixture import BayesianGaussianMixture, GaussianMixture


@parametrize_with_checks([
    KMeans(n_clusters=2, random_state=0),
    GaussianMixture(random_state=0),
    BayesianGaussianMixture(random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)

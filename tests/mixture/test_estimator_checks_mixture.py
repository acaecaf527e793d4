"""scikit-learn's estimator checks for KMeans, GaussianMixture and BayesianGaussianMixture."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.cluster import KMeans
from bayesdl.mixture import BayesianGaussianMixture, GaussianMixture


def _expected_failures(estimator):
    if isinstance(estimator, KMeans):  # as scikit-learn marks its own KMeans
        return {"check_sample_weight_equivalence_on_dense_data":
                "k-means++ draws rows with probability ~ weight, which is not the same draw as "
                "on repeated rows; from the same initial centres the equivalence holds "
                "(tests/cluster/test_kmeans.py::test_integer_weights_equal_repeated_rows)."}
    return {}


@parametrize_with_checks([
    KMeans(n_clusters=2, random_state=0),
    GaussianMixture(random_state=0),
    BayesianGaussianMixture(random_state=0),
], expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)

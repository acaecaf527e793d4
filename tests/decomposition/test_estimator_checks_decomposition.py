"""scikit-learn's estimator checks for PCA, ProbabilisticPCA, FactorAnalysis and BayesianPCA."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.decomposition import PCA, BayesianPCA, FactorAnalysis, ProbabilisticPCA


@parametrize_with_checks([
    PCA(),
    PCA(dtype="float32"),
    ProbabilisticPCA(random_state=0),
    # EM on the checks' unstructured data: a few iterations keep the checks fast
    ProbabilisticPCA(solver="em", max_iter=20, random_state=0),
    FactorAnalysis(max_iter=20, random_state=0),
    BayesianPCA(max_iter=20, random_state=0),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)

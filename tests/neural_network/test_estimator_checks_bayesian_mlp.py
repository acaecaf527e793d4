"""scikit-learn's estimator checks for the Bayesian MLP estimators (small fast configurations)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.neural_network import BayesianMLPClassifier, BayesianMLPRegressor

FAST = dict(hidden_layer_sizes=(16,), max_epochs=25, n_samples=8, random_state=0)


@parametrize_with_checks([
    BayesianMLPRegressor(method="bbb", **FAST),
    BayesianMLPRegressor(method="mc_dropout", heteroscedastic=True, **FAST),
    BayesianMLPRegressor(method="ensemble", n_estimators=3, **FAST),
    BayesianMLPClassifier(method="bbb", **FAST),
    BayesianMLPClassifier(method="mc_dropout", **FAST),
    BayesianMLPClassifier(method="ensemble", n_estimators=3, heteroscedastic=True, **FAST),
    BayesianMLPRegressor(method="laplace", **FAST),
    BayesianMLPClassifier(method="laplace", **FAST),
])
def test_sklearn_compatible(estimator, check):
    check(estimator)

"""scikit-learn's estimator checks for the HMMs and the linear dynamical system.

``fit(X, lengths)`` follows hmmlearn: the second positional argument is the sequence
lengths, so the checks that pass a target ``y`` there are expected to fail with our clear
"lengths must ..." error. CategoricalHMM (symbols) and PoissonHMM (counts) reject the
checks' real-valued data by design, so they are not listed.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesdl.hmm import GaussianHMM
from bayesdl.state_space import LinearGaussianStateSpace

LENGTHS_AS_Y = "y is passed as lengths (hmmlearn's fit(X, lengths)); rejected with a clear error"


# Checks that call fit(X, y) with a target y, which lands in lengths.
Y_AS_LENGTHS_CHECKS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
)


def _expected_failures(estimator):
    failures = {name: LENGTHS_AS_Y for name in Y_AS_LENGTHS_CHECKS}
    # NaN marks a missing observation here (marginalised), so NaN input is accepted
    failures["check_estimators_nan_inf"] += "; NaN entries are missing values, by design"
    return failures


@parametrize_with_checks([GaussianHMM(2, n_iter=2), LinearGaussianStateSpace(n_iter=2)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_compatible(estimator, check):
    check(estimator)

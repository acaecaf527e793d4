"""The usage examples in the distributions docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["bayesdl.distributions.ab_testing", "bayesdl.distributions.conjugate", "bayesdl.distributions.gaussian_priors",
           "bayesdl.distributions.info", "bayesdl.distributions.mle", "bayesdl.distributions.predictive"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

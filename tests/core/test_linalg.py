"""cholesky_inverse_tril (LAPACK potri through scipy) against numpy's inverse."""

import numpy as np
import pytest
import torch

from bayesdl.core.linalg import cholesky_inverse_tril


@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("n", [150, 40])  # LAPACK potri from n = 128, torch below
def test_cholesky_inverse_tril_is_the_lower_triangle_of_the_inverse(dtype, rtol, n):
    rng = np.random.default_rng(0)
    A = rng.normal(size=(2, 3, n, n))
    K = A @ np.swapaxes(A, -1, -2) + n * np.eye(n)  # (2, 3, n, n) positive definite
    L = torch.linalg.cholesky(torch.tensor(K, dtype=dtype))  # column-major strides from LAPACK
    out = cholesky_inverse_tril(L)
    assert out.shape == L.shape and out.dtype == dtype
    expected = np.tril(np.linalg.inv(K))
    np.testing.assert_allclose(out.numpy(), expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    np.testing.assert_array_equal(np.triu(out.numpy(), 1), 0.0)
    single = cholesky_inverse_tril(L[1, 2])  # one matrix, no batch dimensions
    np.testing.assert_allclose(single.numpy(), out[1, 2].numpy(), rtol=rtol)

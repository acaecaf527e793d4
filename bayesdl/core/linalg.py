"""Linear-algebra helpers with clear errors: Cholesky factors, log-determinants, log-sum-exp.

The Gaussian models here are parameterised by the Cholesky factor of the *precision*
(``U`` upper triangular with ``Lambda = U U^T``), as scikit-learn's mixtures are: a Gaussian
log-density then needs no inverse and ``log|Lambda| = 2 sum_i log U_ii``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from .threads import blas_threads


def cholesky(A: torch.Tensor, *, error: str) -> torch.Tensor:
    """Lower Cholesky factor of the (batched) symmetric matrix ``A``.

    Raises ``ValueError(error)`` naming the failing matrices when ``A`` is not positive
    definite, instead of torch's bare ``LinAlgError`` (or a silent NaN).
    """
    L, info = torch.linalg.cholesky_ex(A)
    failed = torch.nonzero(info.reshape(-1)).reshape(-1)
    if failed.numel():
        where = f" (matrix {failed.tolist()})" if A.dim() > 2 else ""
        raise ValueError(error + where)
    return L


def jittered_cholesky(A: torch.Tensor, *, max_tries: int = 6) -> torch.Tensor:
    """Cholesky of ``A + eps I`` with the smallest ``eps`` in 0, 1e-10, 1e-9, ... that works.

    The jitter is relative to the mean diagonal of ``A``; raises ``ValueError`` when even
    the largest jitter fails (``A`` is then far from positive definite).
    """
    scale = A.diagonal(dim1=-2, dim2=-1).mean().abs().clamp_min(torch.finfo(A.dtype).tiny)
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    for k in range(max_tries):
        jitter = 0.0 if k == 0 else scale * 10.0 ** (k - 11)
        L, info = torch.linalg.cholesky_ex(A + jitter * eye)
        if not info.any():
            return L
    raise ValueError(
        f"The matrix is not positive definite even with a jitter of {float(jitter):.1e}; "
        "check it for NaN, negative variances or linearly dependent columns."
    )


def inverse_cholesky_transpose(L: torch.Tensor) -> torch.Tensor:
    """``U = L^{-T}`` for the lower Cholesky factor ``L`` of ``Sigma``: ``Sigma^{-1} = U U^T``."""
    eye = torch.eye(L.shape[-1], dtype=L.dtype, device=L.device).expand_as(L)
    return torch.linalg.solve_triangular(L, eye, upper=False).mT


def cholesky_inverse_tril(L: torch.Tensor) -> torch.Tensor:
    """The lower triangle of ``(L L^T)^-1`` (zeros above it) for lower Cholesky factors ``L``
    (..., n, n) whose upper triangle is zero (as ``torch.linalg.cholesky`` returns them).

    On CPU through LAPACK ``potri`` (scipy's OpenBLAS, on torch's number of threads), which
    writes one triangle in place: at n = 3,000 in float64 on this project's AMD hosts it took
    1.1 s against 3.5-8 s for ``torch.cholesky_inverse`` (MKL), and leaving out the other
    triangle saves the (n, n) passes that would mirror it. Elsewhere, for tensors that need
    gradients, or below n = 128 (where the per-call set-up, ~60 us, outweighs the saving:
    1.07 against 1.31 ms for 4 matrices at n = 100), ``torch.cholesky_inverse(L).tril()``.
    """
    if (L.device.type != "cpu" or L.requires_grad or L.shape[-1] < 128
            or L.dtype not in (torch.float32, torch.float64)):
        return torch.cholesky_inverse(L).tril()
    potri = scipy.linalg.lapack.dpotri if L.dtype == torch.float64 else scipy.linalg.lapack.spotri
    out = L.clone(memory_format=torch.contiguous_format)  # (..., n, n), C order
    with blas_threads(torch.get_num_threads()):
        for index in np.ndindex(*L.shape[:-2]):
            # out[index]^T in Fortran order is the upper factor U = L^T (K = U^T U) with no
            # copy; potri overwrites U's triangle with that of K^-1 and leaves the zeros
            _, info = potri(out[index].numpy().T, lower=0, overwrite_c=1)
            if info != 0:
                raise ValueError(f"The Cholesky factor is singular (LAPACK potri info={info}).")
    return out


def logdet_from_cholesky(L: torch.Tensor) -> torch.Tensor:
    """``log|A| = 2 sum_i log L_ii`` for ``A = L L^T`` (batched over leading dimensions)."""
    return 2.0 * torch.log(L.diagonal(dim1=-2, dim2=-1)).sum(-1)


def log_normalize(log_p: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log sum_k exp a_k, a - log sum_k exp a_k)``: normaliser and log-probabilities.

    Rows that are all ``-inf`` give a normaliser of ``-inf`` and log-probabilities of NaN-free
    ``-inf`` rather than NaN.
    """
    log_norm = torch.logsumexp(log_p, dim=dim, keepdim=True)
    safe = torch.where(torch.isfinite(log_norm), log_norm, torch.zeros_like(log_norm))
    return log_norm.squeeze(dim), log_p - safe


def host_matmul(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``A @ B``; on CPU through numpy's BLAS.

    The chunked passes' GEMMs are thin (e.g. (2048, 152) by (152, 16) in a GMM E-step), and
    there numpy's OpenBLAS ran at about twice the speed of torch's MKL on this project's AMD
    hosts (26.9 against 13.7 GFLOPS on one thread). Tensors that need gradients stay in torch.
    """
    if A.device.type != "cpu" or A.requires_grad or B.requires_grad:
        return A @ B
    return torch.from_numpy(np.matmul(A.numpy(), B.numpy()))


def host_gram(R: torch.Tensor) -> torch.Tensor:
    """``R^T R`` (P, P) for R (B, P); on CPU through numpy, which sees that one operand is the
    other transposed and calls BLAS ``syrk`` (half the flops of a GEMM): 2-3x torch's time for
    the Hessian blocks of a Newton pass (B ~ 2500, P ~ 100)."""
    if R.device.type != "cpu" or R.requires_grad:
        return R.T @ R
    Rn = R.numpy()
    return torch.from_numpy(Rn.T @ Rn)

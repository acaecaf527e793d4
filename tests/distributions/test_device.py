"""On a CUDA device the results equal the CPU ones (skipped where torch sees no GPU)."""

import numpy as np
import pytest
import torch

from bayesdl.distributions import fit_mle, info
from bayesdl.distributions.conjugate import GammaPoissonModel, NormalWishartModel

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_fit_mle_and_conjugate_updates_on_cuda_match_cpu():
    x = torch.as_tensor(np.random.default_rng(0).dirichlet([0.5, 2.0, 3.0], size=500))
    cpu, gpu = fit_mle("dirichlet", x), fit_mle("dirichlet", x.cuda())
    assert gpu.concentration.is_cuda
    torch.testing.assert_close(gpu.concentration.cpu(), cpu.concentration, rtol=1e-10, atol=0)
    counts = torch.as_tensor(np.random.default_rng(1).poisson(3.0, size=50), dtype=torch.float64)
    gpu_model = GammaPoissonModel(torch.tensor(2.0, device="cuda", dtype=torch.float64), 1.0).update(counts)
    assert gpu_model.posterior.concentration.is_cuda
    cpu_model = GammaPoissonModel(2.0, 1.0).update(counts)
    torch.testing.assert_close(gpu_model.log_marginal_likelihood(counts).cpu(), cpu_model.log_marginal_likelihood(counts))
    mv = torch.as_tensor(np.random.default_rng(2).normal(size=(40, 3)))
    nw = NormalWishartModel(torch.zeros(3, dtype=torch.float64, device="cuda")).update(mv)
    assert nw.posterior_predictive().loc.is_cuda
    kl = info.kl_divergence(nw.posterior, nw.prior)
    torch.testing.assert_close(kl.cpu(), info.kl_divergence(NormalWishartModel(torch.zeros(3, dtype=torch.float64)).update(mv).posterior,
                                                            NormalWishartModel(torch.zeros(3, dtype=torch.float64)).prior))

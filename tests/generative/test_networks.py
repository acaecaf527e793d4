"""Encoder/decoder networks: shapes for any image size from 8x8, conditioning, clear errors;
the autoencoder module and its corruption."""

import pytest
import torch

from bayesdl.generative.autoencoder import AutoencoderNetwork, corrupt
from bayesdl.generative.likelihoods import BernoulliLikelihood, GaussianLikelihood
from bayesdl.generative.networks import (ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder,
                                         make_networks)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 10, 13), (2, 9, 32)])
def test_conv_networks_take_any_image_size_from_8x8(shape):
    enc, dec = ConvEncoder(shape, 6, n_context=2), ConvDecoder(3, shape, n_params=4, n_context=2)
    x, ctx = torch.rand(5, *shape), torch.eye(2)[[0, 1, 1, 0, 1]]
    assert enc(x, ctx).shape == (5, 6)
    params = dec(torch.randn(5, 3), ctx)
    assert params.shape == (5, *shape, 4)
    # every output pixel depends on z (the crop keeps the part the convolutions reach)
    z = torch.randn(1, 3, requires_grad=True)
    grads = torch.autograd.functional.jacobian(lambda v: dec(v, ctx[:1]).sum((-1,)), z)
    assert (grads.abs().sum((-1, -2)) > 0).all()


def test_decoder_parameter_layout_is_pixels_then_parameters():
    # the MLP decoder's flat output reshapes to (N, *shape, P): P varies fastest
    dec = MLPDecoder(2, (3, 4), n_params=2, hidden_sizes=())
    z = torch.randn(2, 2)
    flat = dec.net(z)
    torch.testing.assert_close(dec(z)[:, 1, 2, 1], flat[:, (1 * 4 + 2) * 2 + 1])


def test_wrong_sizes_and_missing_context_give_clear_errors():
    with pytest.raises(ValueError, match="at least 8x8"):
        ConvEncoder((1, 7, 8), 4)
    with pytest.raises(ValueError, match="architecture='mlp' for table rows"):
        make_networks("conv", (10,), 2, 4, 1)
    with pytest.raises(ValueError, match="'mlp' or 'conv'"):
        make_networks("resnet", (1, 8, 8), 2, 4, 1)
    enc = ConvEncoder((1, 8, 8), 4)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 8, 8\).*got \(2, 1, 28, 28\)"):
        enc(torch.rand(2, 1, 28, 28))
    cond = MLPEncoder((4,), 2, (3,), n_context=3)
    with pytest.raises(ValueError, match="conditional"):
        cond(torch.rand(2, 4))


def test_corruption_levels():
    x = torch.ones(20000, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    masked = corrupt(x, "masking", 0.3, g)
    assert set(masked.unique().tolist()) == {0.0, 1.0}
    assert abs((masked == 0).double().mean().item() - 0.3) < 4 * (0.3 * 0.7 / 20000) ** 0.5
    noisy = corrupt(x, "gaussian", 0.5, g)
    assert abs(noisy.std().item() - 0.5) < 0.02
    assert corrupt(x, None, 0.5) is x
    with pytest.raises(ValueError, match="noise must be"):
        corrupt(x, "salt", 0.1)


def test_autoencoder_network_reconstructs_the_clean_input_from_a_corrupted_one():
    enc, dec = make_networks("mlp", (6,), 2, 2, 1, hidden_sizes=(8,))
    ae = AutoencoderNetwork(enc, dec, GaussianLikelihood(1.0), noise="masking", noise_level=0.5)
    x = torch.rand(4, 6)
    ae.eval()  # no corruption: forward is log N(x | g(f(x)), I) summed over the row
    expected = torch.distributions.Normal(ae.reconstruct(x), 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(ae(x), expected)
    ae.train()
    torch.manual_seed(0)
    x_tilde = corrupt(x, "masking", 0.5)
    torch.manual_seed(0)
    noisy = ae(x)
    target_clean = torch.distributions.Normal(ae.reconstruct(x_tilde), 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(noisy, target_clean)
    with pytest.raises(ValueError, match="noise must be"):
        AutoencoderNetwork(enc, dec, BernoulliLikelihood(), noise="salt")

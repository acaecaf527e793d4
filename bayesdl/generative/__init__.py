"""Deep generative models: autoencoders and VAEs (and their objectives)."""

from .autoencoder import AutoencoderNetwork, corrupt
from .likelihoods import (BernoulliLikelihood, CategoricalLikelihood, ContinuousBernoulliLikelihood,
                          GaussianLikelihood)
from .networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from .vae import VAENetwork, elbo, gaussian_kl, iwae_bound, kl_warmup_weight

__all__ = ["AutoencoderNetwork", "BernoulliLikelihood", "CategoricalLikelihood",
           "ContinuousBernoulliLikelihood", "ConvDecoder", "ConvEncoder", "GaussianLikelihood",
           "MLPDecoder", "MLPEncoder", "VAENetwork", "corrupt", "elbo", "gaussian_kl",
           "iwae_bound", "kl_warmup_weight"]

"""Deep generative models: autoencoders and VAEs, RBMs, GANs and diffusion models.

The networks (``nn.Module``) and their objectives (plain functions: the ELBO, the IWAE bound,
CD-k, the GAN losses, the diffusion loss) are public, so a user may pair any architecture with
any objective. Estimator wrappers (``fit(X, y=None)``, ``sample(n)``, ``score_samples``, ...)
train them through :class:`bayesdl.train.Trainer` for users who do not want to write a loop;
they share the plumbing in :mod:`bayesdl.generative._base` and read images ``(N, H, W)`` or
rows ``(N, D)``; :mod:`bayesdl.datasets.images` loads and transforms image data.
"""

from .autoencoder import AutoEncoder, AutoencoderNetwork, corrupt
from .diffusion import DDPM
from .gan import DCGAN, GAN, WGANGP
from .likelihoods import (BernoulliLikelihood, CategoricalLikelihood, ContinuousBernoulliLikelihood,
                          GaussianLikelihood)
from .networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from .rbm import (RBM, BernoulliRBM, GaussianBernoulliRBM, LogPartition, ais_schedule, cd_loss,
                  pcd_loss)
from .vae import VAE, ConditionalVAE, VAENetwork, elbo, gaussian_kl, iwae_bound, kl_warmup_weight

__all__ = [
    "AutoEncoder", "AutoencoderNetwork", "BernoulliLikelihood", "BernoulliRBM",
    "CategoricalLikelihood", "ConditionalVAE", "ContinuousBernoulliLikelihood", "ConvDecoder",
    "ConvEncoder", "DCGAN", "DDPM", "GAN", "GaussianBernoulliRBM", "GaussianLikelihood",
    "LogPartition", "MLPDecoder", "MLPEncoder", "RBM", "VAE", "VAENetwork", "WGANGP",
    "ais_schedule", "cd_loss", "corrupt", "elbo", "gaussian_kl", "iwae_bound", "kl_warmup_weight",
    "pcd_loss",
]

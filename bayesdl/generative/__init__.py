"""Deep generative models: autoencoders and VAEs, RBMs, GANs and diffusion models.

The networks (``nn.Module``) and their objectives (plain functions: the ELBO, the IWAE bound,
CD-k, the GAN losses, the diffusion loss) are public, so a user may pair any architecture with
any objective. Estimator wrappers (``fit(X, y=None)``, ``sample(n)``, ``score_samples``, ...)
train them through :class:`bayesdl.train.Trainer` for users who do not want to write a loop;
they share the plumbing in :mod:`bayesdl.generative._base` and read images ``(N, H, W)`` or
rows ``(N, D)``; :mod:`bayesdl.datasets.images` loads and transforms image data.
"""

from .diffusion import DDPM

__all__: list[str] = ["DDPM"]

"""Deep latent-variable generative models: nn.Modules, their objectives, estimator wrappers."""

from .rbm import (BernoulliRBM, GaussianBernoulliRBM, LogPartition, ais_schedule, cd_loss,
                  pcd_loss)

__all__ = ["BernoulliRBM", "GaussianBernoulliRBM", "LogPartition", "ais_schedule", "cd_loss",
           "pcd_loss"]

"""Deep latent-variable generative models: nn.Modules, their objectives, estimator wrappers."""

from .rbm import (RBM, BernoulliRBM, GaussianBernoulliRBM, LogPartition, ais_schedule, cd_loss,
                  pcd_loss)

__all__ = ["RBM", "BernoulliRBM", "GaussianBernoulliRBM", "LogPartition", "ais_schedule",
           "cd_loss", "pcd_loss"]

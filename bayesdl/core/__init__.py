"""Numerical building blocks shared by the model families: linear algebra, the EM driver,
and ``torch.distributed`` helpers. Nothing here imports a model family."""

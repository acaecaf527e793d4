"""State-space models: the linear dynamical system (Kalman filter, RTS smoother, EM;
PRML 13.3), the continuous-state counterpart of :mod:`bayesdl.hmm`."""

from .lds import Forecast, LinearGaussianStateSpace

__all__ = ["Forecast", "LinearGaussianStateSpace"]

"""Clustering: :class:`KMeans` (Lloyd's iterations, accelerated by Hamerly's bounds, on the
sufficient-statistics EM engine)."""

from .kmeans import KMeans, kmeans_plusplus

__all__ = ["KMeans", "kmeans_plusplus"]

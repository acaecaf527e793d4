"""Clustering: :class:`KMeans` (Lloyd's algorithm on the sufficient-statistics EM engine)."""

from .kmeans import KMeans, kmeans_plusplus

__all__ = ["KMeans", "kmeans_plusplus"]

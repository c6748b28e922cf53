"""Representation evaluation (kNN, linear probe); see the transfer issue."""
from .knn import extract_features, knn_accuracy, weighted_knn_scores  # noqa


"""Representation evaluation (kNN, linear probe); see the transfer issue."""

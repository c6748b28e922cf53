"""Mask generators (registered in ``mmmask.registry.MASK_GENERATORS``).

The generators themselves arrive with the masked methods (issue: mask
generators); the registry exists from the start so that plugins can add to it.
"""

from .masked_vit import MaskedViT

__all__ = ['MaskedViT']

"""Add a hook to a config's ``custom_hooks`` unless it is there."""
from typing import Any

__all__ = ['ensure_custom_hook']


def ensure_custom_hook(cfg: Any, hook_type: str, **kwargs) -> Any:
    """Append ``dict(type=hook_type, **kwargs)`` to ``cfg.custom_hooks``
    unless the list holds a hook of that type (by name, with or without the
    ``mmmask.`` scope, or as a built object). ``custom_hooks`` may be
    missing or None. Returns ``cfg``, changed in place."""
    names = (hook_type, f'mmmask.{hook_type}')
    hooks = list(cfg.get('custom_hooks', None) or [])

    def same(hook) -> bool:
        if isinstance(hook, dict):
            kind = hook.get('type')
            return kind in names or getattr(kind, '__name__', '') == hook_type
        return type(hook).__name__ == hook_type

    if not any(same(h) for h in hooks):
        hooks.append(dict(type=hook_type, **kwargs))
    cfg['custom_hooks'] = hooks
    return cfg

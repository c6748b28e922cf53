"""Run mmengine's ``init_weights`` without its per-tensor log lines."""
import logging

from mmengine.logging import MMLogger


def init_weights_quietly(model) -> None:
    """``model.init_weights()`` with the current MMLogger at WARNING
    (mmengine logs every initialised tensor at INFO)."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)

"""Training machinery around the models: hooks (:mod:`.hooks`), optimizer
wrapper constructors (:mod:`.optimizers`) and the checkpoint room
(:mod:`.checkpoint`).

Nothing is imported here: the downstream launchers use
``mmmask.engine.checkpoint`` without registering mmmask's hooks or models.
mmmask's registries import ``mmmask.engine.hooks`` and
``mmmask.engine.optimizers`` when a config names one of their parts.
"""

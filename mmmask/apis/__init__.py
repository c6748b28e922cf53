"""Launching runs from a config: the policy behind ``tools/train.py``
(:mod:`mmmask.apis.train`) and the downstream fine-tuning launchers
(:mod:`mmmask.apis.downstream`), with what they share in
:mod:`mmmask.apis.launch`.

Nothing is imported here, so ``import mmmask.apis.downstream`` does not pull
in mmmask's models, datasets or registries.
"""

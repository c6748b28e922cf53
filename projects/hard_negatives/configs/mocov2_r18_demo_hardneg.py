# MoCo v2 demo with the hard-negative-weighted InfoNCE head of this project:
# everything but the head comes from mmmask's config.
_base_ = ['../../../configs/demo/mocov2_r18_demo.py']

# The plugin is imported by the config, not by mmmask (run from the
# repository root, or put it on PYTHONPATH; tools/train.py adds the root).
custom_imports = dict(imports=['projects.hard_negatives.hard_negatives'],
                      allow_failed_imports=False)

model = dict(
    head=dict(_delete_=True, type='HardNegativeInfoNCEHead',
              temperature=0.2,  # t, as MoCo v2
              beta=1.0))        # concentration on hard negatives

"""``weights_only_check.py SAFE OLD``: plain torch only (no mmmask, no
mmengine) loads ``SAFE`` with ``weights_only=True`` and refuses ``OLD``;
prints one JSON line (tests/test_engine/test_checkpoint_safety.py)."""
import json
import pickle
import sys

import torch

out = {}
ck = torch.load(sys.argv[1], weights_only=True)
out['keys'] = sorted(ck)
out['iter'] = ck['meta']['iter']
hub = ck['message_hub']
out['loss_len'] = len(hub['log_scalars']['train/loss']['log_history'])
try:
    torch.load(sys.argv[2], weights_only=True)
    out['old'] = 'loaded'
except pickle.UnpicklingError:
    out['old'] = 'refused'
# mmengine 0.10.7 (e.g. PretrainedInit of a stock mmdet / mmseg
# config) calls torch.load without weights_only: torch's default
ck = torch.load(sys.argv[1], map_location='cpu')
out['default_load'] = sorted(ck['state_dict'])
out['modules'] = sorted(m for m in sys.modules
                        if m.split('.')[0] in ('mmmask', 'mmengine'))
print(json.dumps(out))

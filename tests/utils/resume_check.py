"""``resume_check.py CKPT TRAIN_ARGS...``: build the runner of tools/train.py
for ``TRAIN_ARGS``, resume, and print ``RESUME_REPORT {...}``: how the
restored model, optimizer and iteration compare with ``CKPT``
(tests/test_apis/test_train_tools.py)."""
import json, sys
import torch

from mmmask.apis import train
ckpt_path = sys.argv[1]
args = train.parse_args(sys.argv[2:])
cfg = train.build_cfg(args)
from mmmask.engine.checkpoint import register_safe_loading
register_safe_loading()
runner = train.build_runner(cfg)
runner.load_or_resume()

ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)


def same(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


model_sd = runner.model.state_dict()
ckpt_sd = ckpt['state_dict']
report = dict(
    iter=runner.iter,
    keys=sorted(model_sd),
    key_diff=sorted(set(model_sd) ^ set(ckpt_sd)),
    mismatch=sorted(k for k in ckpt_sd
                    if k in model_sd and not same(model_sd[k], ckpt_sd[k])),
    queue_ptr=int(runner.model.queue.ptr),
    optimizer_same=same(runner.optim_wrapper.state_dict(), ckpt['optimizer']),
    optimizer_states=len(ckpt['optimizer']['state']),
)
print('RESUME_REPORT ' + json.dumps(report))

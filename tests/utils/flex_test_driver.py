"""tools/train.py's main for each (config, work dir) pair, in turn."""
import sys

from mmmask.apis import train
pairs = sys.argv[1:]
for config, work_dir in zip(pairs[0::2], pairs[1::2]):
    code = train.main([config, '--work-dir', work_dir, '--launcher',
                       'pytorch'])
    if code:
        sys.exit(code)

"""Convert a MoCo v2 / DenseCL checkpoint between mmpretrain and mmmask.

    python tools/model_converters/mmpretrain2mmmask.py SRC DST \
        [--reverse] [--method densecl|mocov2] [--no-strict] \
        [--keep-training-state]

Without --reverse, SRC is an mmpretrain checkpoint (``MoCo`` with
``MoCoV2Neck`` or ``DenseCL``) and DST an mmmask one (``MoCoV2`` /
``DenseCL``); --reverse converts back. The method is detected from the keys
when omitted (a second queue / dense neck branch -> densecl). The optimizer,
message_hub and param_schedulers are dropped unless --keep-training-state.

Config values need converting too: mmpretrain's ``momentum=0.001`` is
``1 - m``; mmmask's ``momentum`` is m (0.999).
"""
import argparse
import sys

from mmmask.engine.checkpoint.convert_mmpretrain import (
    METHODS, convert_checkpoint, detect_method, momentum_from_mmpretrain)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert MoCo v2 / DenseCL checkpoints between mmpretrain '
        'and mmmask layouts.')
    parser.add_argument('src', help='source checkpoint')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    parser.add_argument('--reverse', action='store_true',
                        help='convert mmmask -> mmpretrain')
    parser.add_argument('--method', choices=METHODS, default=None,
                        help='detected from the keys when omitted')
    parser.add_argument('--no-strict', dest='strict', action='store_false',
                        help='keep keys with no counterpart unchanged '
                        'instead of failing')
    parser.add_argument('--keep-training-state', action='store_true',
                        help='keep optimizer / message_hub / param_schedulers')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    direction = 'mmmask2mmpretrain' if args.reverse else 'mmpretrain2mmmask'
    try:
        ckpt = convert_checkpoint(
            args.src, args.dst, direction, method=args.method,
            strict=args.strict, keep_training_state=args.keep_training_state)
    except (KeyError, ValueError, RuntimeError, TypeError,
            FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 1
    state_dict = ckpt.get('state_dict', ckpt)
    method = args.method or detect_method(state_dict)
    print(f'{direction} (method={method}): {len(state_dict)} entries '
          f'-> {args.dst}')
    if not args.reverse:
        print('note: in the config, mmmask momentum = 1 - mmpretrain momentum '
              f'(0.001 -> {momentum_from_mmpretrain(0.001):g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())

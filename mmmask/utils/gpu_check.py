"""One-GPU check of the whole CUDA path, in at most ``--budget`` seconds.

    bash tools/gpu_check.sh [--budget 600] [--batch 64] [--out table.md]
    python -m mmmask.utils.gpu_check ...      # the same, from a checkout

Runs, on ``cuda:0`` of a CUDA host, and prints one markdown table:

1. mmcv's CUDA ops: ``roi_align`` and ``nms`` on CUDA tensors equal their
   CPU results (an mmcv built without CUDA ops fails here: rebuild it with
   ``bash tools/install.sh`` on the GPU host);
2. ``pytest -m cuda tests/`` (tests/test_cuda.py: every method's losses on
   CUDA equal the CPU ones, AMP and channels_last, the SyncBN key encoder in
   one NCCL process, the device-side view augmentation, a one-GPU NCCL
   ``tools/dist_train.sh`` DenseCL run whose checkpoint then trains one
   Mask R-CNN and one FCN step through the benchmark launchers): one row
   per test;
3. ``tools/benchmarks/train_speed.py --device cuda`` in float32 and with
   ``--amp --channels-last --supervised``: the DenseCL / MoCo v2 step
   ratio, the AMP + channels_last speed-up and the images/s against a
   supervised ResNet-50 AMP step, each next to issue 17's goal;
4. ``tools/benchmarks/view_augment_speed.py --device cuda``: the device
   stage of the split pipeline (two 224 px views, the MoCo v2 ops) in ms
   per image, as a share of the DenseCL AMP step per image (issue 14's
   goal: < 5 %); with time left, again with ``--compile`` (the hue and the
   blur as ``torch.compile`` d kernels), a row of its own.

On a machine without CUDA it prints one line saying so and exits 0. The exit
status is 1 when a check failed (a goal that is missed is reported in the
table, not as a failure).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

GOALS = dict(densecl_vs_mocov2=1.05, amp_speedup=1.6, vs_supervised=0.7,
             stage_share=0.05)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog='gpu_check', description=__doc__.split('\n\n')[0])
    p.add_argument('--budget', type=float, default=600.0,
                   help='seconds for everything (default 600)')
    p.add_argument('--batch', type=int, default=64,
                   help='images per step of the speed runs')
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--skip-tests', action='store_true')
    p.add_argument('--skip-speed', action='store_true')
    p.add_argument('--work-dir', default=None,
                   help='where the runs write (default: a temp folder)')
    p.add_argument('--out', default=None, help='also write the table here')
    return p.parse_args(argv)


class Table:
    """Rows of (check, result, value, goal, seconds)."""

    def __init__(self):
        self.rows = []
        self.failed = False

    def add(self, check, result, value='', goal='', seconds=None):
        self.failed |= result == 'FAIL'
        self.rows.append((check, result, str(value), goal,
                          '' if seconds is None else f'{seconds:.0f}'))

    def text(self, header):
        lines = [header, '', '| check | result | value | goal | s |',
                 '|---|---|---|---|---|']
        for row in self.rows:
            lines.append('| ' + ' | '.join(
                c.replace('|', '/').replace('\n', ' ') for c in row) + ' |')
        return '\n'.join(lines)


def _goal_result(value, goal, at_most):
    ok = value <= goal if at_most else value >= goal
    return 'meets goal' if ok else 'misses goal'


def check_mmcv_ops(table):
    import torch
    t0 = time.perf_counter()
    try:
        from mmcv.ops import nms, roi_align
        g = torch.Generator().manual_seed(0)
        feat = torch.randn(2, 16, 32, 32, generator=g)
        xy = torch.rand(64, 2, generator=g) * 100
        wh = torch.rand(64, 2, generator=g) * 28 + 4
        rois = torch.cat([torch.randint(0, 2, (64, 1), generator=g).float(),
                          xy, xy + wh], 1)
        cpu = roi_align(feat, rois, (7, 7), 0.25, 2, 'avg', True)
        gpu = roi_align(feat.cuda(), rois.cuda(), (7, 7), 0.25, 2, 'avg',
                        True).cpu()
        diff = float((cpu - gpu).abs().max())
        table.add('mmcv roi_align CUDA = CPU', 'ok' if diff < 1e-4 else
                  'FAIL', f'max diff {diff:.1e}', '< 1e-4',
                  time.perf_counter() - t0)
    except Exception as e:  # an mmcv without CUDA ops raises here
        table.add('mmcv roi_align CUDA = CPU', 'FAIL',
                  f'{type(e).__name__}: {str(e).splitlines()[0][:120]} '
                  '(rebuild mmcv: bash tools/install.sh on this host)')
    t0 = time.perf_counter()
    try:
        g = torch.Generator().manual_seed(1)
        xy = torch.rand(300, 2, generator=g) * 200
        boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 60 + 1],
                          1)
        scores = torch.rand(300, generator=g)
        _, keep_cpu = nms(boxes, scores, 0.5)
        _, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
        same = torch.equal(keep_cpu, keep_gpu.cpu())
        table.add('mmcv nms CUDA = CPU', 'ok' if same else 'FAIL',
                  f'{len(keep_cpu)} of 300 kept' + ('' if same else
                                                    f' vs {len(keep_gpu)}'),
                  'same indices', time.perf_counter() - t0)
    except Exception as e:
        table.add('mmcv nms CUDA = CPU', 'FAIL',
                  f'{type(e).__name__}: {str(e).splitlines()[0][:120]}')


def _env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    env.setdefault('PYTHON', sys.executable)
    return env


def run_cuda_tests(table, work, timeout):
    xml = osp.join(work, 'pytest_cuda.xml')
    t0 = time.perf_counter()
    cmd = [sys.executable, '-m', 'pytest', '-m', 'cuda', 'tests', '-q',
           '-p', 'no:cacheprovider', f'--junitxml={xml}',
           f'--basetemp={osp.join(work, "pytest")}']
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), timeout=timeout,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        table.add('pytest -m cuda', 'FAIL', f'timed out after {timeout:.0f} s',
                  seconds=time.perf_counter() - t0)
        return
    if not osp.isfile(xml):
        table.add('pytest -m cuda', 'FAIL',
                  f'exit {proc.returncode}: {proc.stdout[-300:]}',
                  seconds=time.perf_counter() - t0)
        return
    if junit_rows(table, xml) == 0:
        table.add('pytest -m cuda', 'FAIL', 'no test collected',
                  seconds=time.perf_counter() - t0)


def junit_rows(table, xml):
    """One row per test case of the JUnit file ``xml``; returns how many."""
    cases = ET.parse(xml).getroot().iter('testcase')
    n = 0
    for case in cases:
        n += 1
        name = case.get('name')
        seconds = float(case.get('time') or 0)
        bad = case.find('failure') if case.find('failure') is not None \
            else case.find('error')
        skip = case.find('skipped')
        if bad is not None:
            msg = (bad.get('message') or '').splitlines()
            table.add(f'test {name}', 'FAIL', (msg[0] if msg else '')[:150],
                      'passes', seconds)
        elif skip is not None:
            table.add(f'test {name}', 'skipped',
                      (skip.get('message') or '')[:150], 'passes', seconds)
        else:
            table.add(f'test {name}', 'ok', '', 'passes', seconds)
    return n


def _run_json(cmd, out, timeout):
    """Run the benchmark ``cmd`` (which writes JSON to ``out``); the JSON,
    or an error string."""
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), timeout=timeout,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired:
        return f'timed out after {timeout:.0f} s'
    if proc.returncode != 0 or not osp.isfile(out):
        return f'exit {proc.returncode}: {proc.stdout[-300:]}'
    with open(out) as f:
        return json.load(f)


def run_speed(args, work, extra, timeout):
    """One train_speed.py run; its JSON results, or an error string."""
    out = osp.join(work, f'train_speed{"_".join([""] + extra)}.json')
    return _run_json(
        [sys.executable, osp.join(ROOT, 'tools', 'benchmarks',
                                  'train_speed.py'),
         '--device', 'cuda', '--batch', str(args.batch), '--repeats',
         str(args.repeats), '--warmup', '2', '--skip-data', '--json', out,
         *extra], out, timeout)


def speed_rows(table, fp32, amp, seconds):
    tag = f'batch {fp32["args"]["batch"] if isinstance(fp32, dict) else "?"}'
    for name, res in (('fp32', fp32), ('AMP + channels_last', amp)):
        if isinstance(res, str):
            table.add(f'train_speed {name}', 'FAIL', res, seconds=seconds)
            continue
        r = res['ratios'].get('densecl_vs_mocov2')
        if r is not None:
            table.add(f'DenseCL / MoCo v2 step, {name}',
                      _goal_result(r, GOALS['densecl_vs_mocov2'], True),
                      f'{r:.3f}x ({tag})', '<= 1.05x')
    if isinstance(fp32, str) or isinstance(amp, str):
        return
    for m in ('mocov2', 'densecl'):
        key = f'{m}/mmmask'
        if key in fp32['median_s'] and key in amp['median_s']:
            up = fp32['median_s'][key] / amp['median_s'][key]
            table.add(f'{m} AMP + channels_last speed-up',
                      _goal_result(up, GOALS['amp_speedup'], False),
                      f'{up:.2f}x ({fp32["median_s"][key]:.3f} -> '
                      f'{amp["median_s"][key]:.3f} s/step)', '>= 1.6x')
    sup = amp['ratios'].get('supervised_img_s')
    for m in ('mocov2', 'densecl'):
        row = amp['ratios'].get(m, {})
        if sup and 'vs_supervised' in row:
            table.add(f'{m} img/s vs supervised R50 AMP / 1.3',
                      _goal_result(row['vs_supervised'],
                                   GOALS['vs_supervised'], False),
                      f"{row['vs_supervised']:.2f} ({row['model']:.0f} vs "
                      f'{sup:.0f} img/s)', '>= 0.7')


def run_view_stage(args, work, timeout, compile=False):
    """One view_augment_speed.py run on CUDA (``compile``: also the
    ``compile=True`` stage); its JSON results, or an error string."""
    out = osp.join(work, 'view_augment_speed%s.json' %
                   ('_compile' if compile else ''))
    return _run_json(
        [sys.executable, osp.join(ROOT, 'tools', 'benchmarks',
                                  'view_augment_speed.py'),
         '--device', 'cuda', '--batch', str(args.batch), '--rounds', '5',
         '--json', out] + (['--compile'] if compile else []), out, timeout)


def stage_rows(table, stage, amp, seconds, mode='eager'):
    """The device stage's ms per image in ``mode`` (``'eager'`` or
    ``'compile=True'``), and its share of the DenseCL AMP + channels_last
    step per image when that run gave one."""
    label = 'view augmentation stage' + (
        '' if mode == 'eager' else f' ({mode})')
    if isinstance(stage, str):
        table.add(f'{label} on CUDA', 'FAIL', stage, seconds=seconds)
        return
    ms = next(r['ms_per_img'] for r in stage['stage'] if r['mode'] == mode)
    views = stage['args']['views']
    size = stage['args']['size']
    if isinstance(amp, dict) and 'densecl/mmmask' in amp['median_s']:
        step_ms = 1000 * amp['median_s']['densecl/mmmask'] / \
            amp['args']['batch']
        share = ms / step_ms
        table.add(f'{label} / DenseCL AMP step',
                  _goal_result(share, GOALS['stage_share'], True),
                  f'{100 * share:.1f} % ({ms:.3f} vs {step_ms:.3f} ms per '
                  f'image, {views} views of {size} px)', '< 5 %', seconds)
    else:
        table.add(f'{label} on CUDA', 'ok',
                  f'{ms:.3f} ms per image ({views} views of {size} px; no '
                  'DenseCL AMP step to compare)', '< 5 % of the step',
                  seconds)


def main(argv=None):
    args = parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print('gpu_check: no CUDA device on this machine '
              '(torch.cuda.is_available() is False): nothing to check.')
        return 0
    start = time.perf_counter()

    def left():
        return args.budget - (time.perf_counter() - start)

    import tempfile
    work = args.work_dir or tempfile.mkdtemp(prefix='mmmask_gpu_check_')
    os.makedirs(work, exist_ok=True)
    table = Table()
    import mmcv
    header = (f'## gpu_check: {torch.cuda.get_device_name(0)}, torch '
              f'{torch.__version__} (CUDA {torch.version.cuda}), mmcv '
              f'{mmcv.__version__}, {time.strftime("%Y-%m-%d %H:%M")}')
    check_mmcv_ops(table)
    if not args.skip_tests:
        # the tests get what the speed runs leave (about 3 min of 10)
        reserve = 0 if args.skip_speed else min(200.0, 0.35 * left())
        run_cuda_tests(table, work, max(30.0, left() - reserve))
    if not args.skip_speed:
        t0 = time.perf_counter()
        fp32 = run_speed(args, work, [], max(20.0, left() / 2)) \
            if left() > 20 else 'not run: time budget spent'
        amp = run_speed(args, work, ['--amp', '--channels-last',
                                     '--supervised'], max(20.0, left())) \
            if left() > 20 else 'not run: time budget spent'
        speed_rows(table, fp32, amp, time.perf_counter() - t0)
        t0 = time.perf_counter()
        stage = run_view_stage(args, work, max(20.0, left())) \
            if left() > 20 else 'not run: time budget spent'
        stage_rows(table, stage, amp, time.perf_counter() - t0)
        if left() > 120:  # the compiled kernels (the hue, the blur)
            t0 = time.perf_counter()
            stage = run_view_stage(args, work, left(), compile=True)
            stage_rows(table, stage, amp, time.perf_counter() - t0,
                       mode='compile=True')
    text = table.text(header) + \
        f'\n\ntotal {time.perf_counter() - start:.0f} s; runs in {work}'
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')
    return 1 if table.failed else 0


if __name__ == '__main__':
    sys.exit(main())

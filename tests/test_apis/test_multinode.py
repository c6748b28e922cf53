"""``tools/dist_train.sh`` across two nodes, both on this machine.

Two launcher invocations, ``NNODES=2`` with ``NODE_RANK`` 0 and 1, one
process each, ``MASTER_ADDR=127.0.0.1`` and one free ``MASTER_PORT``, train
a few iterations of the tiny DenseCL demo run with gloo (as two real nodes
would, see the README's multi-node commands): the two ranks' queues are
identical and hold the keys of both nodes, and exactly one checkpoint (node
0's rank 0) is written. The launcher hands ``MASTER_PORT`` (or ``PORT``) and
the node settings to torchrun.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
from helpers import (ROOT, check_queue_dumps, env, free_port, torch_load,
                     write_queue_dump_config)


@pytest.mark.timeout(600)
def test_two_nodes_on_one_machine(demo_data, tmp_path):
    import torch

    batch, iters = 4, 3
    cfg_file = str(tmp_path / 'densecl_two_nodes.py')
    write_queue_dump_config(cfg_file, demo_data, batch, iters)
    work_dir = str(tmp_path / 'work')  # a shared file system's folder
    port = str(free_port())
    procs = []
    for node in (0, 1):
        log = open(tmp_path / f'node{node}.log', 'w')
        procs.append((subprocess.Popen(
            ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_file,
             '1', '--work-dir', work_dir], cwd=ROOT, env=env(
                 PYTHON=sys.executable, NNODES='2', NODE_RANK=str(node),
                 MASTER_ADDR='127.0.0.1', MASTER_PORT=port),
            stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    for proc, log in procs:
        try:
            codes.append(proc.wait(timeout=540))
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / f'node{n}.log').read_text() for n in (0, 1)]
    assert codes == [0, 0], '\n'.join(
        f'--- node {n} (exit {c})\n{t[-4000:]}'
        for n, (c, t) in enumerate(zip(codes, logs)))

    # every enqueue holds the keys of both nodes
    r0 = check_queue_dumps(work_dir, batch, iters)
    # one checkpoint, written once, holding the same queues
    ckpts = sorted(f for f in os.listdir(work_dir) if f.endswith('.pth'))
    assert ckpts == [f'iter_{iters}.pth'], ckpts
    saved = torch_load(osp.join(work_dir, ckpts[0]))
    assert saved['meta']['iter'] == iters
    for name in ('queue.feats', 'dense_queue.feats'):
        key = name if name in saved['state_dict'] else 'module.' + name
        assert torch.equal(saved['state_dict'][key], r0[name]), name


@pytest.mark.parametrize('env,port', [
    (dict(MASTER_PORT='23456'), '23456'),
    (dict(PORT='23457', MASTER_PORT='23456'), '23457'),  # PORT first
    ({}, '29500')])  # several nodes: a fixed default, the same on each
def test_master_port_reaches_torchrun(tmp_path, env, port):
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\necho "$@"\n')  # prints torchrun's arguments
    fake.chmod(0o755)
    run_env = {k: v for k, v in os.environ.items()
               if k not in ('PORT', 'MASTER_PORT')}
    run_env.update(PYTHON=str(fake), NNODES='2', NODE_RANK='1',
                   MASTER_ADDR='10.0.0.1', **env)
    proc = subprocess.run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
                           'cfg.py', '8'], env=run_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = proc.stdout.split()
    for expected in ('--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1',
                     f'--master_port={port}', '--nproc_per_node=8'):
        assert expected in args, (expected, args)

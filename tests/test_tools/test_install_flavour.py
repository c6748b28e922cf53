"""tools/install.sh picks the mmcv flavour and its cache key
(``--print-key``: no environment is built).

* no working ``nvidia-smi``: the CPU flavour under today's key (the cached
  CPU environments stay valid);
* a GPU (a stand-in ``nvidia-smi``) or ``MMMASK_CUDA_OPS=1``: the CUDA
  flavour, keyed by torch's CUDA version and the arch list (the visible
  GPUs' compute capabilities, else the documented default, else
  ``TORCH_CUDA_ARCH_LIST``), so CPU and CUDA environments never share a
  folder; ``MMMASK_CUDA_OPS=0`` forces the CPU flavour;
* a bad ``MMMASK_CUDA_OPS`` or argument is one clear error line.
"""
import os
import os.path as osp
import subprocess

import pytest
from helpers import ROOT

CPU_KEY = 'py3.11-torch2.14.1-mmcv2.1.0'


def fake_smi(tmp_path, gpus):
    """A stand-in ``nvidia-smi``: lists ``gpus`` (compute capabilities), or
    fails like a machine without a driver when ``gpus`` is empty."""
    d = tmp_path / 'bin'
    d.mkdir(exist_ok=True)
    caps = '\\n'.join(gpus)
    body = ('#!/bin/sh\nexit 9\n' if not gpus else
            '#!/bin/sh\ncase "$*" in\n'
            '  -L) echo "GPU 0: NVIDIA Stand-in";;\n'
            f'  *compute_cap*) printf \'{caps}\\n\';;\n'
            '  *) exit 3;;\nesac\n')
    (d / 'nvidia-smi').write_text(body)
    (d / 'nvidia-smi').chmod(0o755)
    return str(d)


def key(tmp_path, gpus=(), *args, **env_vars):
    env = {k: v for k, v in os.environ.items()
           if k not in ('MMMASK_CUDA_OPS', 'TORCH_CUDA_ARCH_LIST')}
    env['PATH'] = fake_smi(tmp_path, list(gpus)) + os.pathsep + env['PATH']
    env.update(env_vars)
    return subprocess.run(['bash', osp.join(ROOT, 'tools', 'install.sh'),
                           '--print-key', *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cpu_machine_keeps_the_cpu_key(tmp_path):
    proc = key(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == CPU_KEY


def test_visible_gpus_choose_cuda_and_their_archs(tmp_path):
    proc = key(tmp_path, ['9.0', '8.0', '9.0'])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == CPU_KEY + '-cu130-arch8.0_9.0'


def test_forced_cuda_without_gpu_uses_the_default_archs(tmp_path):
    proc = key(tmp_path, MMMASK_CUDA_OPS='1')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == CPU_KEY + '-cu130-arch7.5_8.0_8.6_9.0_10.0+PTX'


def test_arch_list_from_the_environment(tmp_path):
    proc = key(tmp_path, ['9.0'], TORCH_CUDA_ARCH_LIST='9.0;10.0+PTX')
    assert proc.stdout.strip() == CPU_KEY + '-cu130-arch9.0_10.0+PTX'


def test_forced_cpu_on_a_gpu_machine(tmp_path):
    proc = key(tmp_path, ['9.0'], MMMASK_CUDA_OPS='0')
    assert proc.stdout.strip() == CPU_KEY


@pytest.mark.parametrize('args,env,needle', [
    ((), dict(MMMASK_CUDA_OPS='yes'), 'MMMASK_CUDA_OPS must be 0 or 1'),
    (('--gpu',), {}, "unknown argument '--gpu'")])
def test_bad_settings_are_one_clear_error(tmp_path, args, env, needle):
    proc = key(tmp_path, (), *args, **env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        ln for ln in proc.stderr.strip().splitlines() if needle in ln]

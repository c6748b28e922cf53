"""mmmask: masked and dense contrastive self-supervised pretraining."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    scope = {}
    with open(osp.join(HERE, 'mmmask', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(osp.join(HERE, 'requirements', name)) as f:
        return [ln.split('#')[0].strip() for ln in f
                if ln.split('#')[0].strip()]


setup(
    name='mmmask',
    version=read_version(),
    description='Masked and dense contrastive self-supervised pretraining '
    'for vision backbones, on OpenMMLab',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmmask', 'mmmask.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require=dict(tests=read_requirements('tests.txt')),
    license='Apache License 2.0',
    zip_safe=False,
)

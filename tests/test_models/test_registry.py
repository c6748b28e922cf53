"""Registries: mmpretrain parts by name, mmmask parts by name, clear errors."""
import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.registry import MODELS as ENGINE_MODELS

from mmmask.registry import (DATASETS, HOOKS, MASK_GENERATORS, MODELS,
                             TRANSFORMS, UnknownTypeError)

TINY_R18 = dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                out_indices=(3, ))


def test_mmpretrain_part_by_name():
    backbone = MODELS.build(TINY_R18)
    assert type(backbone).__module__.startswith('mmpretrain.')
    out = backbone(torch.randn(2, 3, 32, 32))
    assert out[-1].shape == (2, 64, 1, 1)


def test_mmmask_part_by_name_and_shadowing():
    neck = MODELS.build(dict(type='DenseProjectionNeck', in_channels=64,
                             hid_channels=32, out_channels=16))
    assert type(neck).__module__.startswith('mmmask.')
    g, d, p = neck((torch.randn(2, 64, 3, 3), ))
    assert g.shape == (2, 16) and d.shape == (2, 16, 9) and p.shape == (2, 16)
    # mmmask's DenseCL shadows mmpretrain's in the mmmask scope; the parent's
    # stays reachable with its scope prefix.
    assert MODELS.get('DenseCL').__module__.startswith('mmmask.')
    assert MODELS.get('mmpretrain.DenseCL').__module__.startswith('mmpretrain.')


def test_other_registries_see_their_parents():
    assert HOOKS.get('LossWeightWarmupHook').__module__.startswith('mmmask.')
    assert HOOKS.get('CheckpointHook') is not None  # mmengine's
    assert DATASETS.get('ImageNet').__module__.startswith('mmpretrain.')
    assert TRANSFORMS.get('MultiView').__module__.startswith('mmpretrain.')
    assert TRANSFORMS.get('LoadImageFromFile').__module__.startswith('mmmask.')
    assert MASK_GENERATORS.scope == 'mmmask'


def test_runner_style_build_through_default_scope():
    """The Runner builds from mmengine's root registries with the config's
    default_scope; that must resolve to mmmask's tree."""
    with DefaultScope.overwrite_default_scope('mmmask'):
        model = ENGINE_MODELS.build(dict(
            type='MoCoV2', backbone=TINY_R18, queue_len=16, feat_dim=8,
            neck=dict(type='MLPProjectionNeck', in_channels=64,
                      hid_channels=16, out_channels=8),
            head=dict(type='InfoNCEHead')))
    assert type(model).__name__ == 'MoCoV2'
    assert type(model).__module__.startswith('mmmask.')


def test_mmmask_registry_builds_in_its_scope_under_another_default_scope():
    """A tool that set default_scope='mmpretrain' (mmpretrain's own tools
    do) must not hide mmmask's parts from mmmask's registry."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        neck = MODELS.build(dict(type='DenseProjectionNeck', in_channels=8,
                                 hid_channels=8, out_channels=4))
        model = MODELS.build(dict(
            type='DenseCL', backbone=TINY_R18, queue_len=8, feat_dim=4,
            neck=dict(type='DenseProjectionNeck', in_channels=64,
                      hid_channels=8, out_channels=4),
            head=dict(type='InfoNCEHead')))
    assert type(neck).__module__.startswith('mmmask.')
    assert type(model).__module__.startswith('mmmask.')


def test_misspelt_type_names_registry_type_and_closest():
    with pytest.raises(UnknownTypeError) as info:
        MODELS.build(dict(type='DenseCLL', backbone=TINY_R18))
    msg = str(info.value)
    assert "'DenseCLL'" in msg
    assert 'mmmask::model' in msg
    assert 'DenseCL' in msg.split('Did you mean:')[1]


def test_misspelt_nested_type_through_root_registry():
    init_default_scope('mmmask')
    with pytest.raises(KeyError) as info:
        ENGINE_MODELS.build(dict(
            type='MoCoV2', queue_len=16, feat_dim=8,
            backbone=dict(type='ResNett', depth=18),
            neck=dict(type='MLPProjectionNeck', in_channels=512),
            head=dict(type='InfoNCEHead')))
    msg = str(info.value)
    assert "'ResNett'" in msg and 'Did you mean:' in msg and 'ResNet' in msg


def test_argument_the_class_does_not_accept_names_class_and_argument():
    with pytest.raises(TypeError) as info:
        MODELS.build(dict(type='InfoNCEHead', temprature=0.2))
    msg = str(info.value)
    assert 'InfoNCEHead' in msg and 'temprature' in msg

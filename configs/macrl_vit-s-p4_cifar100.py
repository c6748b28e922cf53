# MACRL on CIFAR-100 (data/cifar100/cifar-100-python/): everything of
# configs/macrl_vit-s-p4_cifar10.py, the CIFAR-100 statistics and set.
_base_ = 'macrl_vit-s-p4_cifar10.py'

model = dict(data_preprocessor=dict(mean=[129.304, 124.070, 112.434],
                                    std=[68.170, 65.392, 70.418]))
train_dataloader = dict(dataset=dict(type='CIFAR100',
                                     data_root='data/cifar100'))

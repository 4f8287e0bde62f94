"""Which family file registers each model name.

It lets ``cnnscope params resnet50`` import one family file instead of all of them. A
name missing here still works (every family file is then imported); a stale entry is
caught by tests/zoo/test_index.py. Regenerate with ``python -m cnnscope.zoo._index``.
"""

MODULE_OF: dict[str, str] = {
    'alexnet': 'alexnet',
    'capsnet': 'capsnet',
    'cmpe_se_resnet164': 'cmpe_senet',
    'cmpe_se_wrn28_10': 'cmpe_senet',
    'densenet121': 'densenet',
    'densenet161': 'densenet',
    'densenet169': 'densenet',
    'densenet201': 'densenet',
    'densenet264': 'densenet',
    'densenet_bc_100_12': 'densenet',
    'fractalnet': 'fractalnet',
    'fractalnet20': 'fractalnet',
    'googlenet': 'googlenet',
    'highway': 'highway',
    'highway32': 'highway',
    'hrnetv2_w18': 'hrnet',
    'hrnetv2_w32': 'hrnet',
    'hrnetv2_w48': 'hrnet',
    'inception_resnet_v2': 'inception_v4',
    'inception_v3': 'inception',
    'inception_v4': 'inception_v4',
    'lenet5': 'lenet',
    'mobilenet_v2': 'mobilenet',
    'nin': 'nin',
    'residual_attention_56': 'residual_attention',
    'residual_attention_92': 'residual_attention',
    'residual_attention_92_cifar': 'residual_attention',
    'resnet18': 'resnet',
    'resnet34': 'resnet',
    'resnet50': 'resnet',
    'resnet50_v1': 'resnet',
    'resnet101': 'resnet',
    'resnet101_v1': 'resnet',
    'resnet152': 'resnet',
    'resnet152_v1': 'resnet',
    'resnext50_32x4d': 'resnet',
    'resnext101_32x8d': 'resnet',
    'se_resnet50': 'senet',
    'se_resnet101': 'senet',
    'se_resnet152': 'senet',
    'se_resnext50_32x4d': 'senet',
    'se_resnext101_32x4d': 'senet',
    'senet154': 'senet',
    'unet': 'unet',
    'vgg11': 'vgg',
    'vgg11_bn': 'vgg',
    'vgg13': 'vgg',
    'vgg13_bn': 'vgg',
    'vgg16': 'vgg',
    'vgg16_bn': 'vgg',
    'vgg19': 'vgg',
    'vgg19_bn': 'vgg',
    'wide_resnet50_2': 'resnet',
    'wide_resnet101_2': 'resnet',
    'wrn28_10': 'wide_resnet_cifar',
    'xception': 'xception',
    'zfnet': 'zfnet',
}


def _generate() -> str:
    from cnnscope.zoo import all_models

    lines = [f"    {info.name!r}: {info.factory.__module__.rsplit('.', 1)[1]!r},"
             for info in all_models()]
    return "MODULE_OF: dict[str, str] = {\n" + "\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    import pathlib
    import re

    path = pathlib.Path(__file__)
    text = path.read_text()
    path.write_text(re.sub(r"MODULE_OF: dict\[str, str\] = \{.*?\n\}\n|MODULE_OF: dict\[str, str\] = \{\}\n",
                           lambda _: _generate(), text, count=1, flags=re.S))

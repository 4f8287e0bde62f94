"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), the paper's two-GPU network on one device.

The paper splits the network over two GPUs that exchange data only at conv3 and the fully
connected layers. On one device that is exactly a grouped convolution with ``groups=2``
for conv2, conv4 and conv5 (each half sees only its own GPU's maps), a full convolution
for conv3, and dense fully connected layers. conv1's two halves both read the whole image,
so conv1 is an ordinary convolution. This reproduces Caffe's ``bvlc_alexnet`` layer
shapes and its 60,965,224 parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cnnscope.zoo._registry import register_model

__all__ = ["AlexNet", "alexnet"]

PAPER = ("Krizhevsky et al., ImageNet Classification with Deep Convolutional Neural "
         "Networks, NeurIPS 2012")

# Sec. 3.3: k = 2, n = 5, alpha = 1e-4, beta = 0.75, for b = a / (k + alpha * sum a^2)^beta.
# torch.nn.LocalResponseNorm (like Caffe) divides alpha by n, so the paper's alpha is
# passed multiplied by n to compute the paper's formula.
LRN_SIZE = 5
LRN_ALPHA = 1e-4
LRN_BETA = 0.75
LRN_K = 2.0


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA * LRN_SIZE, beta=LRN_BETA, k=LRN_K)


class AlexNet(nn.Module):
    """Five convolutions (two with response normalisation) and three fully connected layers."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),  # 227 -> 55
            nn.ReLU(),
            _lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # overlapping pooling (Sec. 3.4): 55 -> 27
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(),
            _lrn(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 27 -> 13
            nn.Conv2d(256, 384, kernel_size=3, padding=1),  # the layer where the GPUs talk
            nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 13 -> 6
        )
        # Dropout on the outputs of the first two fully connected layers (Sec. 4.2).
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            # Sec. 5: weights N(0, 0.01); the paper's constant-1 biases are not reproduced.
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


@register_model(family="AlexNet", paper=PAPER, year=2012, input_size=(3, 227, 227),
                num_classes=1000, dataset="ImageNet",
                reference_params=60_965_224,
                reference_source="Caffe bvlc_alexnet deploy.prototxt layer shapes (same layers)")
def alexnet(**kwargs) -> nn.Module:
    """AlexNet (Krizhevsky et al. 2012): 3x227x227 ImageNet, 1000 classes, 60,965,224 params.

    The paper's figure and text say 224x224, but conv1 (11x11, stride 4, no padding) only
    gives the stated 55x55 maps from 227x227 ((227 - 11) / 4 + 1 = 55); 227 is what Caffe
    and the course notes use. There is no adaptive pooling, so the classifier needs the
    6x6x256 maps of a 227x227 input: with 224 the maps are 5x5 and the model rejects it.

    Order per the paper: conv -> ReLU -> LRN -> overlapping max pool (3/2) for conv1 and
    conv2; dropout 0.5 after fc6 and fc7. LRN uses the paper's k=2, n=5, alpha=1e-4,
    beta=0.75 (Caffe's bvlc_alexnet uses k=1).

    torchvision's ``alexnet`` (61,100,840 params) follows the "one weird trick" variant
    (Krizhevsky 2014) instead: 64 conv1 filters (11x11, stride 4, padding 2), 192/384/256/256
    filters, no groups, no LRN, an adaptive 6x6 average pool, and dropout before fc6/fc7.
    Options: ``num_classes``, ``dropout``.
    """
    return AlexNet(**kwargs)

"""Networks for the deep-learning experiments (CIFAR-10/100, MNIST-like inputs).

``build_model(name, num_classes, in_channels, width)`` (width 1: the paper's network) returns an ``nn.Module``
mapping a float batch (B, in_channels, H, W) to logits (B, num_classes):

- ``"resnet18"``: the CIFAR ResNet-18 of the paper (kuangliu-style): 3x3 stem conv,
  no max-pool, BasicBlocks [2, 2, 2, 2] with widths 64w, 128w, 256w, 512w, strides
  1, 2, 2, 2, global average pool, linear head.
- ``"wrn16_8"``: WideResNet-16-8 (Zagoruyko & Komodakis): pre-activation wide basic
  blocks, 2 per group, widths 16w, 128w, 256w, 512w, no dropout.
- ``"small_cnn"``: three conv-BN-ReLU layers with max-pools (widths 32w, 64w, 128w),
  global average pool, linear head. Quick on CPU; used in tests and laptop-scale grids.

Every model ends in a global average pool, so any input size >= 8x8 works
(32x32 CIFAR, 28x28 MNIST). Only standard layers are used (Conv2d, BatchNorm2d,
ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear), so ``model.to(memory_format=
torch.channels_last)`` keeps the whole forward pass in channels_last.
Parameter initialisation uses the global torch RNG: build under
``torch.random.fork_rng`` + ``torch.manual_seed`` for a seeded model
(:func:`igrm.train.train` does this).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODELS = ("resnet18", "wrn16_8", "small_cnn")


def _w(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        widths = [_w(64, width), _w(128, width), _w(256, width), _w(512, width)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers, in_planes = [], widths[0]
        for i, (planes, stride) in enumerate(zip(widths, (1, 2, 2, 2))):
            blocks = [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(torch.flatten(self.pool(out), 1))


class WideBasic(nn.Module):
    """Pre-activation wide basic block (BN-ReLU-conv twice), 1x1 conv shortcut on shape change."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, widen: int, num_classes: int, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [_w(16, width), _w(16 * widen, width), _w(32 * widen, width), _w(64 * widen, width)]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        groups, in_planes = [], widths[0]
        for planes, stride in zip(widths[1:], (1, 2, 2)):
            blocks = []
            for i in range(n):
                blocks.append(WideBasic(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            groups.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = groups
        self.bn = nn.BatchNorm2d(widths[3])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        out = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        out = F.relu(self.bn(out))
        return self.linear(torch.flatten(self.pool(out), 1))


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = _w(32, width), _w(64, width), _w(128, width)

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, c1),
            nn.MaxPool2d(2),
            *block(c1, c2),
            nn.MaxPool2d(2),
            *block(c2, c3),
            nn.AdaptiveAvgPool2d(1),
        )
        self.linear = nn.Linear(c3, num_classes)

    def forward(self, x):
        return self.linear(torch.flatten(self.features(x), 1))


def build_model(name: str, num_classes: int, in_channels: int, width: float) -> nn.Module:
    """The network called ``name`` (one of :data:`MODELS`), widths scaled by ``width``."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if name == "resnet18":
        return ResNet18(num_classes, in_channels, width)
    if name == "wrn16_8":
        return WideResNet(16, 8, num_classes, in_channels, width)
    if name == "small_cnn":
        return SmallCNN(num_classes, in_channels, width)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

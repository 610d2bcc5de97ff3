"""The paper's two architectures, with input normalisation as their first layer.

Because normalisation lives inside the model, attacks, ε and the saliency mask all work on [0, 1] pixels.
``width`` scales every channel count, so the fast presets train narrower versions of the same architectures.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock

#: Per-channel mean and std of the training splits (MNIST; CIFAR-10 as commonly used).
NORMALIZATION = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
INPUT_SHAPE = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


class Normalize(nn.Module):
    """(x - mean) / std with fixed buffers, so the model takes [0, 1] pixels."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _ch(n: int, width: float) -> int:
    return max(4, int(round(n * width)))


class AlexNet28(nn.Module):
    """AlexNet-style network for 1x28x28 inputs: five 3x3 conv layers and three fully connected layers.

    The paper names AlexNet without its variant. This keeps AlexNet's layer pattern and channel counts
    (64-192-384-256-256, max-pools after conv 1, 2 and 5, ReLU) with 3x3 kernels sized for 28x28 inputs,
    and 1024-unit hidden FC layers in place of 4096. It has no dropout, LRN or batch norm, so it computes the
    same function in train and eval mode (which lets ASGT reuse forward passes exactly, see ``methods``).
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0, in_channels: int = 1):
        super().__init__()
        c = [_ch(n, width) for n in (64, 192, 384, 256, 256)]
        hidden = _ch(1024, width)

        def conv(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv(in_channels, c[0]), nn.MaxPool2d(2),          # 28 -> 14
            *conv(c[0], c[1]), nn.MaxPool2d(2),                  # 14 -> 7
            *conv(c[1], c[2]), *conv(c[2], c[3]), *conv(c[3], c[4]),
            nn.MaxPool2d(2),                                     # 7 -> 3
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c[4] * 3 * 3, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        # He initialisation for the ReLU layers (PyTorch's default stalls this 8-layer net without BN), and a
        # small output layer so the initial logits are near zero.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.classifier[-1].weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class CifarResNet18(torchvision.models.ResNet):
    """torchvision's ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool) and scalable width.

    ``width=1`` gives the standard 64-128-256-512 channels (11.2 M parameters).
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        w = _ch(64, width)
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = self._norm_layer(w)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, w, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * w, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * w, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * w, 2, stride=2)
        self.fc = nn.Linear(8 * w, num_classes)
        for m in self.modules():  # torchvision's initialisation, re-applied to the rebuilt layers
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def build_model(dataset: str, model: str, width: float = 1.0, num_classes: int = 10) -> nn.Sequential:
    """``Normalize`` followed by the network; the caller seeds torch before calling for reproducible weights."""
    if model == "alexnet":
        net: nn.Module = AlexNet28(num_classes, width, in_channels=INPUT_SHAPE[dataset][0])
    elif model == "resnet18":
        net = CifarResNet18(num_classes, width)
    else:
        raise ValueError(f"model '{model}' is unknown; allowed values: alexnet, resnet18")
    return nn.Sequential(Normalize(*NORMALIZATION[dataset]), net)


def is_mode_invariant(model: nn.Module) -> bool:
    """True when train() and eval() compute the same function (no batch norm, no dropout)."""
    mode_dependent = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
    return not any(isinstance(m, mode_dependent) for m in model.modules())


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its previous mode (the SGT code's convention for
    saliency, and torchattacks' default for attacks)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted classes (on the CPU) of ``x`` in batches, in eval mode; an empty ``x`` gives an empty tensor."""
    if len(x) == 0:
        return torch.zeros(0, dtype=torch.long)
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])

"""A small CNN for scikit-learn's 8×8 handwritten digits (input [batch, 1, 8, 8], 10 classes).

Module names matter for mixed precision: `features.0` is the first convolution, `classifier.4` the last
linear layer (see `skip:` in suites/digits.yaml).
"""

import torch
from torch import nn


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def digits_cnn() -> nn.Module:
    torch.manual_seed(0)  # the weights come from `weights:`; this only fixes the untrained start
    return DigitsCNN()

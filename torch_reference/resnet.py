"""TransT's ResNet-50 trunk in torch.nn (no torchvision), cut after layer3.

Key names equal torchvision's (`conv1`, `bn1`, `layer{1,2,3}.{i}.conv{1,2,3}`,
`bn{1,2,3}`, `downsample.{0,1}`), so torchvision ImageNet weights and TransT's
`backbone.0.body.*` tensors load into it. Fact sheet §1: v1.5 bottlenecks
(stride on the 3x3 conv), layer2 stride 2, layer3 stride 1 with only its
first block dilated (d=2, padding 2), plain BatchNorm2d (eps 1e-5, momentum
0.1: batch statistics in train mode, running averages in eval mode).
"""

from torch import nn


class Bottleneck(nn.Module):
  """torchvision Bottleneck, expansion 4."""

  expansion = 4

  def __init__(self, inplanes, planes, stride=1, dilation=1, downsample=None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(
        planes,
        planes,
        3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=False,
    )
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU(inplace=True)
    self.downsample = downsample

  def forward(self, x):
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return self.relu(out + identity)


class ResNet(nn.Module):
  """Stem + layer1..3; `blocks=(3, 4, 6), width=64` is TransT's ResNet-50."""

  def __init__(self, blocks=(3, 4, 6), width=64):
    super().__init__()
    self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
    self.bn1 = nn.BatchNorm2d(width)
    self.relu = nn.ReLU(inplace=True)
    self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
    self.inplanes = width
    # (planes, stride, dilation of block 0), as TransT hard-codes them.
    stages = ((width, 1, 1), (width * 2, 2, 1), (width * 4, 1, 2))
    for index, ((planes, stride, dilation), num) in enumerate(
        zip(stages, blocks)
    ):
      self.add_module(
          f'layer{index + 1}', self._make_layer(planes, num, stride, dilation)
      )

  def _make_layer(self, planes, num, stride, dilation):
    """Only block 0 gets the stride, the dilation and the downsample."""
    downsample = None
    if stride != 1 or self.inplanes != planes * 4:
      downsample = nn.Sequential(
          nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False),
          nn.BatchNorm2d(planes * 4),
      )
    layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
    self.inplanes = planes * 4
    layers += [Bottleneck(self.inplanes, planes) for _ in range(1, num)]
    return nn.Sequential(*layers)

  def forward(self, x):
    """Normalised NCHW images -> layer3 features (stride 8)."""
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    return self.layer3(self.layer2(self.layer1(x)))

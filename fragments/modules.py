"""Torch modules of the blocks in ``fragments.blocks`` (the only module of the library that
imports torch), and the module that runs a whole fragment graph.

NAS-Bench-201's operations follow its reference implementation (``xautodl``'s
``ReLUConvBN``, ``Pooling``, ``Zero``, ``ResNetBasicblock``), so a network built here has
the structure, parameter count and FLOPs of the benchmark's.
"""

from __future__ import annotations

import torch
from torch import nn

from fragments import blocks as b

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def _norm1d(norm: str, width: int) -> nn.Module:
    return nn.BatchNorm1d(width) if norm == "batch" else nn.LayerNorm(width)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), _conv(c_in, c_out, kernel, stride), nn.BatchNorm2d(c_out))


class _Residual(nn.Module):
    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()

    def forward(self, x):
        return self.shortcut(x) + self.body(x)


class _Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class _Sum(nn.Module):
    def forward(self, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


def build_module(block: b.Block, shape: tuple[int, ...]) -> nn.Module:
    """A fresh module of ``block`` for inputs of ``shape`` (checked by the caller)."""
    builder = _BUILDERS[block.kind]
    return builder(block, shape)


def _linear_act(block: b.LinearAct, shape):
    return nn.Sequential(nn.Linear(shape[0], block.out), _ACTIVATIONS[block.activation]())


def _linear_norm_act_dropout(block: b.LinearNormActDropout, shape):
    return nn.Sequential(nn.Linear(shape[0], block.out), _norm1d(block.norm, block.out),
                         _ACTIVATIONS[block.activation](), nn.Dropout(block.dropout))


def _residual_mlp(block: b.ResidualMLP, shape):
    return _Residual(nn.Sequential(
        nn.Linear(shape[0], block.hidden), _norm1d(block.norm, block.hidden),
        _ACTIVATIONS[block.activation](), nn.Dropout(block.dropout),
        nn.Linear(block.hidden, shape[0])))


def _mlp_head(block: b.MLPHead, shape):
    linear = nn.Linear(shape[0], block.out)
    return nn.Sequential(linear, nn.Softmax(dim=1)) if block.softmax else linear


def _conv_bn_relu(block: b.ConvBnRelu, shape):
    layers = [_conv(shape[0], block.out, block.kernel, block.stride), nn.BatchNorm2d(block.out)]
    return nn.Sequential(*layers, *([nn.ReLU()] if block.relu else []))


def _dw_separable(block: b.DepthwiseSeparable, shape):
    c = shape[0]
    return nn.Sequential(
        _conv(c, c, block.kernel, block.stride, groups=c), nn.BatchNorm2d(c), nn.ReLU(),
        _conv(c, block.out, 1), nn.BatchNorm2d(block.out), nn.ReLU())


def _mbconv(block: b.MBConv, shape):
    hidden = shape[0] * block.expand
    expansion = ([_conv(shape[0], hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU6()]
                 if block.expand != 1 else [])
    body = nn.Sequential(
        *expansion,
        _conv(hidden, hidden, block.kernel, block.stride, groups=hidden), nn.BatchNorm2d(hidden),
        nn.ReLU6(), _conv(hidden, block.out, 1), nn.BatchNorm2d(block.out))
    return _Residual(body) if block.residual(shape) else body


def _pool(block: b.Pool, shape):
    padding = (block.kernel - 1) // 2
    if block.op == "max":
        return nn.MaxPool2d(block.kernel, block.stride, padding)
    return nn.AvgPool2d(block.kernel, block.stride, padding, count_include_pad=False)


def _cnn_head(block: b.CNNHead, shape):
    pre = [nn.BatchNorm2d(shape[0]), nn.ReLU()] if block.pre_activation else []
    return nn.Sequential(*pre, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], block.classes))


def _nor_conv(block: b.NB201Conv3x3, shape):
    return _relu_conv_bn(shape[0], shape[0], block.kernel)


def _resnet_basic(block: b.ResNetBasic, shape):
    body = nn.Sequential(_relu_conv_bn(shape[0], block.out, 3, block.stride),
                         _relu_conv_bn(block.out, block.out, 3))
    if block.stride == 2:
        shortcut = nn.Sequential(nn.AvgPool2d(2, 2), _conv(shape[0], block.out, 1))
    elif shape[0] != block.out:
        shortcut = _relu_conv_bn(shape[0], block.out, 1)
    else:
        shortcut = None
    return _Residual(body, shortcut)


_BUILDERS = {
    "linear_act": _linear_act,
    "linear_norm_act_dropout": _linear_norm_act_dropout,
    "residual_mlp": _residual_mlp,
    "mlp_head": _mlp_head,
    "conv_bn_relu": _conv_bn_relu,
    "conv_bn": _conv_bn_relu,
    "dw_separable": _dw_separable,
    "mbconv": _mbconv,
    "pool": _pool,
    "cnn_head": _cnn_head,
    "none": lambda block, shape: _Zero(),
    "skip_connect": lambda block, shape: nn.Identity(),
    "avg_pool_3x3": lambda block, shape: nn.AvgPool2d(3, 1, 1, count_include_pad=False),
    "nor_conv_3x3": _nor_conv,
    "nor_conv_1x1": _nor_conv,
    "resnet_basic": _resnet_basic,
    "add": lambda block, shape: _Sum(),
    "identity": lambda block, shape: nn.Identity(),
}


class GraphModule(nn.Module):
    """Runs fragment modules in a topological ``order``; a node with no predecessors takes the
    network input, a node with several (an ``add``) takes all of theirs."""

    def __init__(self, modules: dict[int, nn.Module], order: list[int],
                 predecessors: dict[int, list[int]], output: int):
        super().__init__()
        self.nodes = nn.ModuleDict({str(n): modules[n] for n in order})
        self.order = list(order)
        self.predecessors = {n: list(p) for n, p in predecessors.items()}
        self.output = output

    def forward(self, x):
        values: dict[int, torch.Tensor] = {}
        for node in self.order:
            inputs = [values[p] for p in self.predecessors[node]] or [x]
            values[node] = self.nodes[str(node)](*inputs)
        return values[self.output]

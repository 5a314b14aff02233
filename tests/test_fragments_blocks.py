"""The block library: shapes, parameter counts and FLOPs computed without torch agree with the
torch modules, and stored parameters are checked when read back."""

from __future__ import annotations

import pytest

from fragments import blocks as b
from fragments.graph import FragmentInstance
from fragments.spaces import SPACES

EXTRA = [
    FragmentInstance(b.LinearNormActDropout(out=7, norm="layer", activation="gelu", dropout=0.3), (5,)),
    FragmentInstance(b.ResidualMLP(hidden=12, activation="tanh", norm="batch"), (9,)),
    FragmentInstance(b.MLPHead(out=1, softmax=False), (9,)),
    FragmentInstance(b.ConvBnRelu(out=8, kernel=5, stride=2), (3, 15, 15)),
    FragmentInstance(b.ConvBn(out=8, kernel=7), (3, 9, 9)),
    FragmentInstance(b.DepthwiseSeparable(out=12, kernel=5, stride=2), (6, 11, 11)),
    FragmentInstance(b.MBConv(out=6, kernel=3, expand=1), (6, 8, 8)),  # residual, no expansion
    FragmentInstance(b.MBConv(out=10, kernel=5, stride=2, expand=4), (6, 9, 9)),
    FragmentInstance(b.Pool(op="avg", kernel=3, stride=2), (4, 7, 7)),
    FragmentInstance(b.Pool(op="max", kernel=3, stride=1), (4, 7, 7)),
    FragmentInstance(b.CNNHead(classes=3, pre_activation=True), (8, 4, 4)),
    FragmentInstance(b.ResNetBasic(out=8, stride=1), (4, 6, 6)),  # width change: conv shortcut
    FragmentInstance(b.ResNetBasic(out=4, stride=1), (4, 6, 6)),  # identity shortcut
    FragmentInstance(b.Identity(), (3, 2, 2)),
]
FRAGMENTS = [f for s in SPACES.values() for f in s.fragments()] + EXTRA


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda f: f"{f.block.kind}{list(f.in_shape)}")
def test_torch_module_matches_shape_parameters_and_flops(fragment):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fragments.build import fragment_inputs, fragment_module

    module = fragment_module(fragment)
    inputs = [torch.randn(1, *shape) for shape in fragment_inputs(fragment)]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        output = module(*inputs)
    assert tuple(output.shape[1:]) == fragment.out_shape
    assert sum(p.numel() for p in module.parameters()) == fragment.block.n_parameters(fragment.in_shape)
    assert counter.get_total_flops() == fragment.block.flops(fragment.in_shape)


def test_space_fragments_cover_every_block_family():
    kinds = {f.block.kind for f in FRAGMENTS}
    assert kinds == set(b.BLOCKS)


@pytest.mark.parametrize("kind, params, words", [
    ("conv_7x7", {}, "unknown fragment kind 'conv_7x7'"),
    ("conv_bn_relu", {"out": 8, "dilation": 2}, "unknown parameter 'dilation'"),
    ("conv_bn_relu", {"out": 8, "kernel": 4}, "kernel must be one of 1, 3, 5, 7"),
    ("linear_act", {"out": "8"}, "out must be int"),
    ("linear_act", {"out": True}, "out must be int"),
    ("linear_act", {"out": 0}, "out must be >= 1"),
    ("linear_norm_act_dropout", {"out": 8, "dropout": 1.5}, "dropout must be <= 0.9"),
    ("mlp_head", {}, "missing parameter(s) out"),
])
def test_stored_parameters_are_checked(kind, params, words):
    with pytest.raises(b.FragmentError) as caught:
        b.block_from(kind, params)
    assert words in str(caught.value)


def test_equal_parameters_are_one_fragment():
    whole = b.block_from("linear_norm_act_dropout", {"out": 8, "dropout": 0})
    assert whole == b.LinearNormActDropout(out=8, dropout=0.0)
    assert FragmentInstance(whole, (4,)).key == FragmentInstance(b.LinearNormActDropout(out=8), (4,)).key
    assert b.block_from(whole.kind, whole.params()) == whole


@pytest.mark.parametrize("block, shape, words", [
    (b.ConvBnRelu(out=4), (16,), "takes inputs shaped (channels, height, width)"),
    (b.LinearAct(out=4), (3, 8, 8), "takes inputs shaped (features,)"),
    (b.Pool(kernel=3), (4, 2, 2), "too small"),
    (b.ResNetBasic(out=8), (4, 7, 7), "odd 7x7 input"),
])
def test_inputs_a_block_cannot_take_are_refused(block, shape, words):
    with pytest.raises(b.FragmentError) as caught:
        block.out_shape(shape)
    assert words in str(caught.value)

"""The block library: every kind of network fragment, its parameters, and what follows from
them and an input shape (output shape, parameter count, FLOPs), computed without torch.

A block is a frozen dataclass whose fields are its parameters; ``BLOCKS`` maps each kind to
its class and ``block_from(kind, params)`` rebuilds one from stored JSON, checking every
value. Shapes exclude the batch: ``(features,)`` for tabular blocks, ``(channels, height,
width)`` for convolutional ones. ``block.build(in_shape)`` gives the torch module too
(``fragments.modules``; torch is imported only there).

FLOPs are counted as ``torch.utils.flop_counter`` counts them: two per multiply-add of
convolutions and matrix products, nothing for norms, activations, pooling and sums (the tests
hold the two counts equal). Parameter counts are torch's ``numel`` of trainable parameters.

Kinds: tabular ``linear_act``, ``linear_norm_act_dropout``, ``residual_mlp``, ``mlp_head``;
convolutional ``conv_bn_relu``, ``conv_bn``, ``dw_separable``, ``mbconv``, ``pool``,
``cnn_head``; NAS-Bench-201's five edge operations under their own names (``none``,
``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``, ``avg_pool_3x3``) and the
``resnet_basic`` block between its stages; ``add``, which sums its inputs (a DAG's joins),
and ``identity``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from kb.errors import KBError

if TYPE_CHECKING:
    from torch import nn

Shape = tuple[int, ...]

ACTIVATIONS = ("relu", "gelu", "silu", "tanh")
NORMS = ("batch", "layer")
POOLS = ("max", "avg")
KERNELS = (1, 3, 5, 7)


class FragmentError(KBError):
    """A block's parameters, or an input shape it cannot take; the message says which."""


def _param(*, choices: tuple | None = None, minimum: float | None = None,
           maximum: float | None = None, default=dataclasses.MISSING):
    return field(default=default, metadata={"choices": choices, "minimum": minimum,
                                            "maximum": maximum})


@dataclass(frozen=True)
class Built:
    module: "nn.Module"
    out_shape: Shape
    n_parameters: int
    flops: int


@dataclass(frozen=True)
class Block:
    """One kind of fragment with its parameters; subclasses say how shapes and costs follow."""

    kind: ClassVar[str]
    rank: ClassVar[int | None]  # dimensions of the input without the batch; None: any

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = f.type if isinstance(f.type, type) else {"int": int, "float": float,
                                                                  "bool": bool, "str": str}[f.type]
            number = expected in (int, float) and not isinstance(value, bool) and (
                isinstance(value, int) or (expected is float and isinstance(value, float)))
            if not (number or (expected in (bool, str) and isinstance(value, expected))):
                raise FragmentError(f"{self.kind}: {f.name} must be {expected.__name__}, "
                                    f"not {value!r}")
            if expected is float:  # 1 and 1.0 are one parameter value, hence one fragment id
                object.__setattr__(self, f.name, float(value))
            meta = f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                raise FragmentError(f"{self.kind}: {f.name} must be one of "
                                    f"{', '.join(map(str, meta['choices']))}, not {value!r}")
            if meta.get("minimum") is not None and value < meta["minimum"]:
                raise FragmentError(f"{self.kind}: {f.name} must be >= {meta['minimum']}, not {value!r}")
            if meta.get("maximum") is not None and value > meta["maximum"]:
                raise FragmentError(f"{self.kind}: {f.name} must be <= {meta['maximum']}, not {value!r}")

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check_input(self, in_shape: Shape) -> Shape:
        """``in_shape`` as a tuple, or a FragmentError saying why this block cannot take it."""
        shape = tuple(in_shape)
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                for d in shape):
            raise FragmentError(f"{self.kind}: an input shape is a list of positive integers, "
                                f"not {list(in_shape)!r}")
        if self.rank is not None and len(shape) != self.rank:
            wanted = "(features,)" if self.rank == 1 else "(channels, height, width)"
            raise FragmentError(f"{self.kind}: takes inputs shaped {wanted}, not {list(shape)}")
        return shape

    def out_shape(self, in_shape: Shape) -> Shape:
        return self._out_shape(self.check_input(in_shape))

    def n_parameters(self, in_shape: Shape) -> int:
        return self._n_parameters(self.check_input(in_shape))

    def flops(self, in_shape: Shape) -> int:
        return self._flops(self.check_input(in_shape))

    def module(self, in_shape: Shape) -> "nn.Module":
        """A fresh torch module (random weights) for inputs of ``in_shape``."""
        from fragments import modules

        return modules.build_module(self, self.check_input(in_shape))

    def build(self, in_shape: Shape) -> Built:
        return Built(self.module(in_shape), self.out_shape(in_shape),
                     self.n_parameters(in_shape), self.flops(in_shape))

    # Subclasses: shapes arrive checked.
    def _out_shape(self, shape: Shape) -> Shape:
        return shape

    def _n_parameters(self, shape: Shape) -> int:
        return 0

    def _flops(self, shape: Shape) -> int:
        return 0


def _linear_parameters(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def _conv(shape: Shape, out: int, kernel: int, stride: int, groups: int = 1) -> tuple[Shape, int, int]:
    """Output shape, weights and FLOPs of a bias-free ``kernel``x``kernel`` convolution,
    padded to keep the size at stride 1."""
    channels, height, width = shape
    out_shape = (out, _conv_out(height, kernel, stride), _conv_out(width, kernel, stride))
    weights = channels // groups * kernel * kernel * out
    return out_shape, weights, 2 * weights * out_shape[1] * out_shape[2]


def _check_spatial(kind: str, shape: Shape, kernel: int) -> None:
    if shape[1] < kernel // 2 + 1 or shape[2] < kernel // 2 + 1:
        raise FragmentError(f"{kind}: a {shape[1]}x{shape[2]} input is too small for a "
                            f"{kernel}x{kernel} kernel")


# -- tabular ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Linear(Block):
    """What every block that starts with one linear layer to ``out`` features shares."""

    rank: ClassVar[int | None] = 1
    out: int = _param(minimum=1)

    def _out_shape(self, shape):
        return (self.out,)

    def _n_parameters(self, shape):
        return _linear_parameters(shape[0], self.out)

    def _flops(self, shape):
        return 2 * shape[0] * self.out


@dataclass(frozen=True)
class LinearAct(_Linear):
    """Linear layer, then an activation."""

    kind: ClassVar[str] = "linear_act"
    activation: str = _param(choices=ACTIVATIONS, default="relu")


@dataclass(frozen=True)
class LinearNormActDropout(LinearAct):
    """Linear layer, batch or layer norm, activation, dropout (a no-op at inference)."""

    kind: ClassVar[str] = "linear_norm_act_dropout"
    norm: str = _param(choices=NORMS, default="batch")
    dropout: float = _param(minimum=0.0, maximum=0.9, default=0.0)

    def _n_parameters(self, shape):
        return super()._n_parameters(shape) + 2 * self.out


@dataclass(frozen=True)
class ResidualMLP(Block):
    """x + Linear(Dropout(Act(Norm(Linear(x))))): width in = width out."""

    kind: ClassVar[str] = "residual_mlp"
    rank: ClassVar[int | None] = 1
    hidden: int = _param(minimum=1)
    activation: str = _param(choices=ACTIVATIONS, default="relu")
    norm: str = _param(choices=NORMS, default="layer")
    dropout: float = _param(minimum=0.0, maximum=0.9, default=0.0)

    def _n_parameters(self, shape):
        return (_linear_parameters(shape[0], self.hidden) + 2 * self.hidden
                + _linear_parameters(self.hidden, shape[0]))

    def _flops(self, shape):
        return 4 * shape[0] * self.hidden


@dataclass(frozen=True)
class MLPHead(_Linear):
    """The output layer: linear, with a softmax for class probabilities."""

    kind: ClassVar[str] = "mlp_head"
    softmax: bool = _param(default=True)


# -- convolutional ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvBnRelu(Block):
    """Convolution (no bias; padded to keep the size at stride 1), batch norm, ReLU."""

    kind: ClassVar[str] = "conv_bn_relu"
    rank: ClassVar[int | None] = 3
    relu: ClassVar[bool] = True
    out: int = _param(minimum=1)
    kernel: int = _param(choices=KERNELS, default=3)
    stride: int = _param(choices=(1, 2), default=1)

    def _out_shape(self, shape):
        _check_spatial(self.kind, shape, self.kernel)
        return _conv(shape, self.out, self.kernel, self.stride)[0]

    def _n_parameters(self, shape):
        return _conv(shape, self.out, self.kernel, self.stride)[1] + 2 * self.out

    def _flops(self, shape):
        return _conv(shape, self.out, self.kernel, self.stride)[2]


@dataclass(frozen=True)
class ConvBn(ConvBnRelu):
    """Convolution and batch norm without an activation (NAS-Bench-201's stem)."""

    kind: ClassVar[str] = "conv_bn"
    relu: ClassVar[bool] = False


@dataclass(frozen=True)
class DepthwiseSeparable(Block):
    """Depthwise kxk conv-BN-ReLU (carrying the stride), then pointwise 1x1 conv-BN-ReLU."""

    kind: ClassVar[str] = "dw_separable"
    rank: ClassVar[int | None] = 3
    out: int = _param(minimum=1)
    kernel: int = _param(choices=KERNELS, default=3)
    stride: int = _param(choices=(1, 2), default=1)

    def _parts(self, shape):
        _check_spatial(self.kind, shape, self.kernel)
        depthwise = _conv(shape, shape[0], self.kernel, self.stride, groups=shape[0])
        pointwise = _conv(depthwise[0], self.out, 1, 1)
        return depthwise, pointwise

    def _out_shape(self, shape):
        return self._parts(shape)[1][0]

    def _n_parameters(self, shape):
        depthwise, pointwise = self._parts(shape)
        return depthwise[1] + 2 * shape[0] + pointwise[1] + 2 * self.out

    def _flops(self, shape):
        depthwise, pointwise = self._parts(shape)
        return depthwise[2] + pointwise[2]


@dataclass(frozen=True)
class MBConv(Block):
    """MobileNetV2 inverted residual: 1x1 expansion (skipped at expand 1), depthwise kxk with
    the stride, 1x1 linear projection; input added back when stride is 1 and widths match."""

    kind: ClassVar[str] = "mbconv"
    rank: ClassVar[int | None] = 3
    out: int = _param(minimum=1)
    kernel: int = _param(choices=KERNELS, default=3)
    stride: int = _param(choices=(1, 2), default=1)
    expand: int = _param(minimum=1, maximum=8, default=6)

    def residual(self, shape: Shape) -> bool:
        return self.stride == 1 and shape[0] == self.out

    def _parts(self, shape):
        _check_spatial(self.kind, shape, self.kernel)
        hidden = shape[0] * self.expand
        expansion = _conv(shape, hidden, 1, 1) if self.expand != 1 else ((hidden, *shape[1:]), 0, 0)
        depthwise = _conv(expansion[0], hidden, self.kernel, self.stride, groups=hidden)
        projection = _conv(depthwise[0], self.out, 1, 1)
        return hidden, (expansion, depthwise, projection)

    def _out_shape(self, shape):
        return self._parts(shape)[1][2][0]

    def _n_parameters(self, shape):
        hidden, parts = self._parts(shape)
        norms = (2 * hidden if self.expand != 1 else 0) + 2 * hidden + 2 * self.out
        return sum(p[1] for p in parts) + norms

    def _flops(self, shape):
        return sum(p[2] for p in self._parts(shape)[1])


@dataclass(frozen=True)
class Pool(Block):
    """Max or average pooling (padding (kernel-1)//2; average excludes the padding)."""

    kind: ClassVar[str] = "pool"
    rank: ClassVar[int | None] = 3
    op: str = _param(choices=POOLS, default="max")
    kernel: int = _param(choices=(2, 3), default=2)
    stride: int = _param(choices=(1, 2), default=2)

    def _out_shape(self, shape):
        if shape[1] < self.kernel or shape[2] < self.kernel:
            raise FragmentError(f"{self.kind}: a {shape[1]}x{shape[2]} input is too small for "
                                f"a {self.kernel}x{self.kernel} window")
        padding = (self.kernel - 1) // 2
        return (shape[0], *((s + 2 * padding - self.kernel) // self.stride + 1 for s in shape[1:]))


@dataclass(frozen=True)
class CNNHead(Block):
    """Global average pooling and a linear classifier; with ``pre_activation`` a BN-ReLU first
    (NAS-Bench-201's last activation)."""

    kind: ClassVar[str] = "cnn_head"
    rank: ClassVar[int | None] = 3
    classes: int = _param(minimum=1)
    pre_activation: bool = _param(default=False)

    def _out_shape(self, shape):
        return (self.classes,)

    def _n_parameters(self, shape):
        return _linear_parameters(shape[0], self.classes) + (2 * shape[0] if self.pre_activation else 0)

    def _flops(self, shape):
        return 2 * shape[0] * self.classes


# -- NAS-Bench-201 ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NB201None(Block):
    """NAS-Bench-201 ``none``: zeros of the input's shape (the edge is cut)."""

    kind: ClassVar[str] = "none"
    rank: ClassVar[int | None] = 3


@dataclass(frozen=True)
class NB201Skip(NB201None):
    """NAS-Bench-201 ``skip_connect``: the identity."""

    kind: ClassVar[str] = "skip_connect"


@dataclass(frozen=True)
class NB201AvgPool(NB201None):
    """NAS-Bench-201 ``avg_pool_3x3``: 3x3 average, stride 1, padding excluded."""

    kind: ClassVar[str] = "avg_pool_3x3"


@dataclass(frozen=True)
class NB201Conv3x3(Block):
    """NAS-Bench-201 ``nor_conv_3x3``: ReLU, 3x3 convolution (no bias), batch norm; same width."""

    kind: ClassVar[str] = "nor_conv_3x3"
    rank: ClassVar[int | None] = 3
    kernel: ClassVar[int] = 3

    def _n_parameters(self, shape):
        return _conv(shape, shape[0], self.kernel, 1)[1] + 2 * shape[0]

    def _flops(self, shape):
        return _conv(shape, shape[0], self.kernel, 1)[2]


@dataclass(frozen=True)
class NB201Conv1x1(NB201Conv3x3):
    """NAS-Bench-201 ``nor_conv_1x1``: ReLU, 1x1 convolution (no bias), batch norm."""

    kind: ClassVar[str] = "nor_conv_1x1"
    kernel: ClassVar[int] = 1


@dataclass(frozen=True)
class ResNetBasic(Block):
    """NAS-Bench-201's block between stages: two ReLU-conv3x3-BN (the first with the stride)
    plus a shortcut: 2x2 average pool and 1x1 conv at stride 2, ReLU-conv1x1-BN when only the
    width changes, the identity otherwise."""

    kind: ClassVar[str] = "resnet_basic"
    rank: ClassVar[int | None] = 3
    out: int = _param(minimum=1)
    stride: int = _param(choices=(1, 2), default=2)

    def _parts(self, shape):
        _check_spatial(self.kind, shape, 3)
        first = _conv(shape, self.out, 3, self.stride)
        second = _conv(first[0], self.out, 3, 1)
        if self.stride == 2:
            shortcut = _conv((shape[0], shape[1] // 2, shape[2] // 2), self.out, 1, 1)
            shortcut_norm = 0
        elif shape[0] != self.out:
            shortcut, shortcut_norm = _conv(shape, self.out, 1, 1), 2 * self.out
        else:
            shortcut, shortcut_norm = (shape, 0, 0), 0
        if shortcut[0] != second[0]:
            raise FragmentError(f"{self.kind}: an odd {shape[1]}x{shape[2]} input gives a "
                                f"shortcut of another size than the main path")
        return first, second, shortcut, shortcut_norm

    def _out_shape(self, shape):
        return self._parts(shape)[1][0]

    def _n_parameters(self, shape):
        first, second, shortcut, shortcut_norm = self._parts(shape)
        return first[1] + second[1] + 4 * self.out + shortcut[1] + shortcut_norm

    def _flops(self, shape):
        first, second, shortcut, _ = self._parts(shape)
        return first[2] + second[2] + shortcut[2]


# -- plumbing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Add(Block):
    """The sum of ``inputs`` tensors of one shape: where a DAG's paths join."""

    kind: ClassVar[str] = "add"
    rank: ClassVar[int | None] = None
    inputs: int = _param(minimum=2)


@dataclass(frozen=True)
class Identity(Block):
    """Returns its input. Alone, its latency is what one call of a model costs however little
    the model does (the per-call overhead subtracted from every fragment's time)."""

    kind: ClassVar[str] = "identity"
    rank: ClassVar[int | None] = None


BLOCKS: dict[str, type[Block]] = {
    cls.kind: cls
    for cls in (LinearAct, LinearNormActDropout, ResidualMLP, MLPHead, ConvBnRelu, ConvBn,
                DepthwiseSeparable, MBConv, Pool, CNNHead, NB201None, NB201Skip, NB201AvgPool,
                NB201Conv3x3, NB201Conv1x1, ResNetBasic, Add, Identity)
}


def block_from(kind: str, params: dict) -> Block:
    """The block of ``kind`` with ``params`` (as stored), or a FragmentError naming the problem."""
    try:
        cls = BLOCKS[kind]
    except KeyError:
        raise FragmentError(f"unknown fragment kind {kind!r}; the kinds are: "
                            f"{', '.join(BLOCKS)}") from None
    if not isinstance(params, dict):
        raise FragmentError(f"{kind}: parameters are a JSON object, not {params!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise FragmentError(f"{kind}: unknown parameter {unknown[0]!r}; it takes: "
                            f"{', '.join(sorted(names)) or 'none'}")
    try:
        return cls(**params)
    except TypeError:
        missing = sorted(n for n in names if n not in params)
        raise FragmentError(f"{kind}: missing parameter(s) {', '.join(missing)}") from None


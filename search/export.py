"""Fitted pipelines to ONNX: scikit-learn with skl2onnx, torch MLPs with ``torch.onnx``.

Every exported model takes the inputs of ``search.preprocess`` and gives classifiers'
``label`` and ``probabilities`` (ZipMap off: a plain [N, classes] tensor) or regressors'
``variable`` ([N, 1]). A torch MLP's preprocessing is converted by skl2onnx and its network by
``torch.onnx``, then the two graphs are joined into one model, so what is measured is what a
user ships: raw columns in, predictions out.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx

from kb.errors import first_line
from kb.keys import canonical_json
from search.preprocess import CATEGORICAL_INPUT, NUMERIC_INPUT, FeatureLayout

# Opset 17 runs on every ONNX Runtime from 1.13 on, mobile builds included; nothing the
# families need is newer.
ONNX_OPSET = 17
ML_OPSET = 3
PROBABILITIES = "probabilities"
PREDICTION = "variable"
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}
_INT8_TYPES = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}


class ExportError(Exception):
    """The fitted model does not convert to ONNX; the message says why and what to do."""


def output_name(task: str) -> str:
    """The output compared for parity: probabilities of classifiers, values of regressors."""
    return PREDICTION if task == "regression" else PROBABILITIES


def to_onnx(pipeline, layout: FeatureLayout, task: str, config: dict,
            classes: list[str] | None = None) -> onnx.ModelProto:
    """``pipeline`` (a fitted ``preprocess`` + ``model`` Pipeline) as one ONNX model.

    The model's metadata names its configuration, its input columns and, for classifiers,
    the labels that its class codes (``label``, the columns of ``probabilities``) stand for.
    """
    model = pipeline[-1]
    try:
        with warnings.catch_warnings():
            # protobuf 6 only warns about the bool that protobuf 7 refuses (see families.py).
            warnings.filterwarnings("ignore", message=".*Expected an int, got a boolean",
                                    category=DeprecationWarning)
            if hasattr(model, "inference_module"):  # a torch network (not imported otherwise)
                onx = _join(_from_sklearn(pipeline[:-1], layout, None), _from_torch(model, task))
            else:
                pipeline = _float32_exact(pipeline)
                classifier = pipeline[-1] if task != "regression" else None
                onx = _from_sklearn(pipeline, layout, classifier)
                if task == "regression":
                    onx = _named_prediction(onx)
        onx = _tidy(onx)
        onnx.checker.check_model(onx)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(_explain(e, config["family"])) from e
    # The configuration as trials.config holds it, so a model file finds its trial.
    metadata = {"metakb.config": canonical_json(config),
                "metakb.numeric_columns": json.dumps(list(layout.numeric)),
                "metakb.categorical_columns": json.dumps(list(layout.categorical))}
    if classes is not None:
        metadata["metakb.classes"] = json.dumps(classes)
    onnx.helper.set_model_props(onx, metadata)
    return onx


def _float32_exact(pipeline):
    """``pipeline``, or a copy whose HistGradientBoosting thresholds are rounded down to
    float32, which ONNX's tree operator holds them in.

    The model sees float32 features (``search.preprocess``), and for a float32 ``x`` and a
    float64 threshold ``t``, ``x <= t`` exactly when ``x <= t`` rounded down to float32: the
    copy predicts as the fitted model does. Rounded to the nearest float32 instead, as
    skl2onnx does, ``t`` can land on a feature value and send rows equal to it down the other
    branch (0.19 standard deviations on 547_no2).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if not isinstance(pipeline[-1], (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        return pipeline
    pipeline = copy.deepcopy(pipeline)
    for per_iteration in pipeline[-1]._predictors:
        for predictor in per_iteration:
            thresholds = predictor.nodes["num_threshold"]
            rounded = thresholds.astype(np.float32)
            above = rounded > thresholds
            rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
            predictor.nodes["num_threshold"] = rounded
    return pipeline


def _from_sklearn(estimator, layout: FeatureLayout, classifier) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.preprocessing import StandardScaler

    inputs = []
    if layout.numeric:
        inputs.append((NUMERIC_INPUT, FloatTensorType([None, len(layout.numeric)])))
    if layout.categorical:
        inputs.append((CATEGORICAL_INPUT, StringTensorType([None, len(layout.categorical)])))
    # skl2onnx's default ``Scaler`` operator multiplies by 1/std in float32 where scikit-learn
    # divides: a third of the values then differ in the last bit, and a tree whose threshold
    # sits exactly on a value sends those rows down the other branch (a default random forest
    # failed parity on 17 of the 21 bundled datasets). Sub and Div match scikit-learn bit for
    # bit.
    options: dict = {StandardScaler: {"div": "div"}}
    if classifier is not None:
        options[id(classifier)] = {"zipmap": False}
    return convert_sklearn(estimator, initial_types=inputs, options=options,
                           target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET})


def _named_prediction(onx: onnx.ModelProto) -> onnx.ModelProto:
    """A regressor's one output named ``variable``: skl2onnx names k-NN's ``variable1`` when
    its graph already uses ``variable`` inside, which is renamed out of the way first."""
    (output,) = onx.graph.output
    if output.name == PREDICTION:
        return onx
    renames = {PREDICTION: "metakb_inner_" + PREDICTION, output.name: PREDICTION}
    for node in onx.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    output.name = PREDICTION
    return onx


def _from_torch(model, task: str) -> onnx.ModelProto:
    import torch

    outputs = [PREDICTION] if task == "regression" else ["label", PROBABILITIES]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of one that needs onnxscript; it
        # is kept because it handles these plain networks fully and needs nothing more.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.inference_module(), (torch.zeros(2, model.n_features_in_),), buffer,
            dynamo=False, opset_version=ONNX_OPSET, input_names=["features"],
            output_names=outputs, dynamic_axes={n: {0: "N"} for n in ["features", *outputs]})
    return onnx.load_from_string(buffer.getvalue())


def _join(preprocess: onnx.ModelProto, network: onnx.ModelProto) -> onnx.ModelProto:
    """One model: the preprocessing graph's output feeds the network's input."""
    from onnx import compose, version_converter

    # skl2onnx declares the lowest opset its operators need, torch the one it was asked for;
    # merging needs one, so the older graph is upgraded (never relabelled: semantics change).
    opset = max(_default_opset(preprocess), _default_opset(network))
    preprocess, network = (m if _default_opset(m) == opset else
                           version_converter.convert_version(m, opset)
                           for m in (_tidy(preprocess), _tidy(network)))
    # Names are prefixed so the two graphs cannot collide (both may call an edge "variable");
    # the joined model keeps the preprocessing's inputs and the network's outputs as named.
    preprocess = compose.add_prefix(preprocess, "pre_", rename_inputs=False)
    network = compose.add_prefix(network, "net_", rename_outputs=False)
    version = max(preprocess.ir_version, network.ir_version)
    preprocess.ir_version = network.ir_version = version
    return compose.merge_models(
        preprocess, network,
        io_map=[(preprocess.graph.output[0].name, network.graph.input[0].name)])


def _default_opset(model: onnx.ModelProto) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _tidy(model: onnx.ModelProto) -> onnx.ModelProto:
    """One opset import per domain: skl2onnx can list a domain twice, which ONNX Runtime's
    quantizer (and strict checkers) refuse."""
    versions: dict[str, int] = {}
    for opset in model.opset_import:
        versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in versions.items())
    return model


def _explain(error: Exception, family: str) -> str:
    if "Expected an int, got a boolean" in str(error):
        import google.protobuf

        return (f"{family} does not convert to ONNX: skl2onnx writes a bool into an integer "
                f"attribute, which protobuf {google.protobuf.__version__} refuses; install "
                f"protobuf<7 (pip install 'protobuf<7'), as pyproject.toml pins")
    return f"{family} does not convert to ONNX ({first_line(error, with_type=True, limit=300)})"


def quantize_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """ONNX Runtime dynamic int8 quantization; returns the model and how many weight tensors
    became int8 (0 for models with nothing the quantizer handles, e.g. tree ensembles)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with tempfile.TemporaryDirectory() as folder, _quiet_root_logger():
            path = Path(folder) / "int8.onnx"
            quantize_dynamic(model, path, weight_type=QuantType.QInt8)
            quantized = onnx.load(path)
    except Exception as e:
        raise ExportError(f"dynamic int8 quantization failed "
                          f"({first_line(e, with_type=True, limit=300)})") from e
    return quantized, _int8_weights(quantized) - _int8_weights(model)


@contextlib.contextmanager
def _quiet_root_logger():
    # The quantizer logs advice ("consider pre-processing") on the root logger at WARNING.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _int8_weights(model: onnx.ModelProto) -> int:
    # Tensors of more than one value: weights, not the scalar zero points stored beside them.
    return sum(1 for t in model.graph.initializer
               if t.data_type in _INT8_TYPES and math.prod(t.dims) > 1)


def count_parameters(model: onnx.ModelProto) -> int:
    """The learned numbers a model stores: float weights, thresholds, leaf values, support
    vectors, stored neighbours and preprocessing statistics; one definition for all families."""
    return _count_graph(model.graph)


def _count_graph(graph: onnx.GraphProto) -> int:
    n = sum(math.prod(t.dims) for t in graph.initializer if t.data_type in _FLOAT_TYPES)
    for node in graph.node:
        for attribute in node.attribute:
            if "hitrates" in attribute.name:  # tree node weights for the runtime, not learned
                continue
            if attribute.type == onnx.AttributeProto.FLOATS:
                n += len(attribute.floats)
            elif attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type in _FLOAT_TYPES:
                n += math.prod(attribute.t.dims)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                n += _count_graph(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                n += sum(_count_graph(g) for g in attribute.graphs)
    return n

"""The ONNX graph of the notebook CNN written directly from its Keras weights, in the layout ONNX Runtime's
CPU kernels are fastest with (NCHW conv padded to 32 filters, so conv+relu+pool run blocked; see benchmarks/).

Used by training.export.write_onnx for models of training.model's shape; anything else goes through tf2onnx.
layer_weights gives the same weights as serving.layers.Layers, from which training.scan_graph builds the scan graph.
The export's parity check (ONNX vs SavedModel, <= 1e-5) guards this graph like any other.
"""
from __future__ import annotations

import numpy as np

from serving.layers import Layers
from training.model import INPUT_NAME, LOGIT_LAYER

CHANNEL_BLOCK = 16  # ONNX Runtime's NCHWc block on AVX-512 (8 on AVX2): filters are padded to a multiple of it


class Unsupported(ValueError):
    """The Keras model is not of the shape this writer knows; use tf2onnx instead."""


def _layers(model) -> dict:
    """The conv, pool and dense layers of training.model.build_model's architecture, or Unsupported."""
    kinds = [type(layer).__name__ for layer in model.layers]
    expected = ["InputLayer", "Conv1D", "MaxPooling1D", "Dropout", "Flatten", "Dense", "Dropout", "Dense",
                "Activation"]
    if kinds != expected:
        raise Unsupported(f"layers {kinds}")
    conv, pool, dense, logit, prob = (model.layers[i] for i in (1, 2, 5, 7, 8))
    cc, pc = conv.get_config(), pool.get_config()
    checks = {
        "conv activation relu": cc["activation"] == "relu",
        "conv padding same": cc["padding"] == "same",
        "conv stride 1": tuple(cc["strides"]) == (1,) and tuple(cc["dilation_rate"]) == (1,),
        "conv channels_last": cc.get("data_format", "channels_last") == "channels_last",
        "conv groups 1": cc.get("groups", 1) == 1,
        "conv has bias": cc["use_bias"],
        "pool valid": pc["padding"] == "valid" and pc.get("data_format", "channels_last") == "channels_last",
        "pool stride = size": tuple(pc["strides"] or pc["pool_size"]) == tuple(pc["pool_size"]),
        "dense relu": dense.get_config()["activation"] == "relu" and dense.get_config()["use_bias"],
        "logit linear": logit.name == LOGIT_LAYER and logit.get_config()["activation"] == "linear"
        and logit.get_config()["use_bias"] and logit.get_config()["units"] == 1,
        "prob sigmoid": prob.get_config()["activation"] == "sigmoid",
    }
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        raise Unsupported(", ".join(failed))
    return {"conv": conv, "pool": pool, "dense": dense, "logit": logit}


def layer_weights(model) -> Layers:
    """The weights of a training.model-shaped Keras model as serving.layers.Layers (float32), or Unsupported."""
    parts = _layers(model)
    kernel, bias = (np.asarray(w, np.float32) for w in parts["conv"].get_weights())  # (K, C, F), (F,)
    d_w, d_b = (np.asarray(w, np.float32) for w in parts["dense"].get_weights())  # (T * F, D), (D,)
    o_w, o_b = (np.asarray(w, np.float32) for w in parts["logit"].get_weights())  # (D, 1), (1,)
    layers = Layers(kernel=kernel, bias=bias, pool=int(parts["pool"].get_config()["pool_size"][0]), dense_w=d_w,
                    dense_b=d_b, logit_w=o_w, logit_b=o_b, length=int(model.input_shape[1]))
    try:
        layers.check()
    except ValueError as exc:
        raise Unsupported(str(exc)) from None
    return layers


def build(model, opset: int = 17, channel_block: int = CHANNEL_BLOCK):
    """onnx.ModelProto of a Keras model of training.model's shape (build_from_layers); raises Unsupported."""
    return build_from_layers(layer_weights(model), opset, channel_block)


def build_from_layers(layers: Layers, opset: int = 17, channel_block: int = CHANNEL_BLOCK):
    """onnx.ModelProto: input `dna` (batch, L, 4) float32 -> `prob`, `logit` (batch, 1) float32.

    dna -> Reshape (batch, 1, L, 4) -> Transpose (batch, 4, 1, L) -> Conv (F' filters, 1 x K, 'same')
    -> Relu -> MaxPool (1 x P) -> Flatten (batch, F' * T) -> Gemm+Relu (dense rows permuted from Keras'
    (T, F) flatten order, zero rows for padding filters) -> Gemm (logit) -> Sigmoid (prob).
    F' = F rounded up to channel_block: with whole blocks ONNX Runtime keeps conv, relu and pool in its
    blocked NCHWc layout and reorders only the small pooled tensor."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    length, kernel, bias, pool = layers.length, layers.kernel, layers.bias, layers.pool
    k, c, f = kernel.shape
    t = layers.bins
    d_w, d_b, o_w, o_b = layers.dense_w, layers.dense_b, layers.logit_w, layers.logit_b
    units = d_w.shape[1]
    fp = -(-f // channel_block) * channel_block
    w4 = np.zeros((fp, c, 1, k), np.float32)
    w4[:f] = kernel.transpose(2, 1, 0)[:, :, None, :]
    b4 = np.zeros(fp, np.float32)
    b4[:f] = bias
    dense = np.zeros((fp, t, units), np.float32)  # ONNX flattens (F', 1, T) as f * T + t; Keras as t * F + f
    dense[:f] = d_w.reshape(t, f, units).transpose(1, 0, 2)
    left = layers.pad_left  # Keras 'same' padding

    node = helper.make_node
    nodes = [
        node("Reshape", [INPUT_NAME, "shape_n1lc"], ["x_n1lc"], name="to_4d"),
        node("Transpose", ["x_n1lc"], ["x_nc1l"], perm=[0, 3, 1, 2], name="to_nchw"),
        node("Conv", ["x_nc1l", "conv_w", "conv_b"], ["conv"], kernel_shape=[1, k], pads=[0, left, 0, k - 1 - left],
             name="conv"),
        node("Relu", ["conv"], ["conv_relu"], name="conv_relu"),
        node("MaxPool", ["conv_relu"], ["pool"], kernel_shape=[1, pool], strides=[1, pool], name="pool"),
        node("Flatten", ["pool"], ["flat"], axis=1, name="flatten"),
        node("Gemm", ["flat", "dense_w", "dense_b"], ["dense"], name="dense"),
        node("Relu", ["dense"], ["dense_relu"], name="dense_relu"),
        node("Gemm", ["dense_relu", "logit_w", "logit_b"], ["logit"], name="logit"),
        node("Sigmoid", ["logit"], ["prob"], name="prob"),
    ]
    inits = {"shape_n1lc": np.array([-1, 1, length, c], np.int64), "conv_w": w4, "conv_b": b4,
             "dense_w": dense.reshape(fp * t, units), "dense_b": d_b, "logit_w": o_w, "logit_b": o_b}
    graph = helper.make_graph(
        nodes, "bindcnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", length, c])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 1]),
         helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(v, name) for name, v in inits.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="bindcnn")
    proto.ir_version = min(proto.ir_version, 8)  # readable by older ONNX Runtime builds too
    onnx.checker.check_model(proto)
    return proto

"""Train the bundled demo model and write it as an int8 .tflite file.

A 64-32-10 MLP on scikit-learn's bundled digits (8x8 images, values 0..16),
trained on the first 1,437 images (the last 360 are the demo's test set),
quantized by this script with TFLite's int8 scheme: per-channel symmetric
weights, int32 biases, per-tensor asymmetric activations calibrated on the
training images. The file is written with tflite-micro's model editor and
checked with the TFLite Micro interpreter.

usage: python tools/make_digits_model.py [OUT]   (needs: pip install .[test])
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier
from tflite_micro.python.tflite_micro import runtime as tflm
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

TRAIN = 1437
IN_SCALE, IN_ZP = 16.0 / 255.0, -128  # pixel p (0..16) -> round(p / scale) - 128


def quantize_pixels(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x / IN_SCALE) + IN_ZP, -128, 127).astype(np.int8)


def act_params(values: np.ndarray) -> tuple[float, int]:
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def main(out: Path) -> None:
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=600, random_state=0)
    clf.fit(x[:TRAIN], y[:TRAIN])
    w1, w2 = clf.coefs_
    b1, b2 = clf.intercepts_
    xq = quantize_pixels(x[:TRAIN]).astype(np.float32)
    x_real = (xq - IN_ZP) * IN_SCALE
    h = np.maximum(x_real @ w1 + b1, 0)
    logits = h @ w2 + b2
    h_scale, h_zp = act_params(h)
    l_scale, l_zp = act_params(logits)

    sg = me.Subgraph()

    def weights(w: np.ndarray, in_scale: float, name: str):
        wt = w.T.astype(np.float32)  # TFLite FC weights are [out, in]
        w_scale = np.maximum(np.abs(wt).max(axis=1), 1e-8) / 127.0
        q = np.clip(np.round(wt / w_scale[:, None]), -127, 127).astype(np.int8)
        t = sg.add_tensor(
            shape=q.shape,
            dtype=schema.TensorType.INT8,
            name=name,
            data=q,
            quantization=me.Quantization(list(map(float, w_scale)), [0] * len(w_scale), axis=0),
        )
        return t, w_scale * in_scale

    def bias(b: np.ndarray, scale: np.ndarray, name: str):
        q = np.round(b / scale).astype(np.int32)
        return sg.add_tensor(
            shape=q.shape,
            dtype=schema.TensorType.INT32,
            name=name,
            data=q,
            quantization=me.Quantization(list(map(float, scale)), [0] * len(scale), axis=0),
        )

    def act(shape, scale, zp, name):
        return sg.add_tensor(
            shape=shape,
            dtype=schema.TensorType.INT8,
            name=name,
            quantization=me.Quantization(float(scale), int(zp)),
        )

    inp = act((1, 64), IN_SCALE, IN_ZP, "pixels")
    w1t, s1 = weights(w1, IN_SCALE, "dense1/weights")
    hid = act((1, 32), h_scale, h_zp, "dense1")
    w2t, s2 = weights(w2, h_scale, "dense2/weights")
    logit = act((1, 10), l_scale, l_zp, "logits")
    prob = act((1, 10), 1.0 / 256, -128, "probabilities")

    def fc(inputs, output, relu):
        op = sg.add_operator(
            opcode=schema.BuiltinOperator.FULLY_CONNECTED, inputs=inputs, outputs=[output]
        )
        opts = schema.FullyConnectedOptionsT()
        opts.fusedActivationFunction = 1 if relu else 0
        op._fb.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        op._fb.builtinOptions = opts

    fc([inp, w1t, bias(b1, s1, "dense1/bias")], hid, relu=True)
    fc([hid, w2t, bias(b2, s2, "dense2/bias")], logit, relu=False)
    sm = sg.add_operator(opcode=schema.BuiltinOperator.SOFTMAX, inputs=[logit], outputs=[prob])
    sm_opts = schema.SoftmaxOptionsT()
    sm_opts.beta = 1.0
    sm._fb.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
    sm._fb.builtinOptions = sm_opts
    sg.inputs, sg.outputs = [inp], [prob]
    data = bytes(me.Model(subgraphs=[sg], description="dtmm digits demo").build())

    interp = tflm.Interpreter.from_bytes(data)
    test_q = quantize_pixels(x[TRAIN:])
    correct = 0
    for xi, yi in zip(test_q, y[TRAIN:]):
        interp.set_input(xi[None], 0)
        interp.invoke()
        correct += int(interp.get_output(0).argmax() == yi)
    print(
        f"float accuracy {clf.score(x[TRAIN:], y[TRAIN:]):.3f}, "
        f"int8 (TFLM) accuracy {correct / len(test_q):.3f}, {len(data)} bytes"
    )
    out.write_bytes(data)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "python" / "dtmm" / "data" / "digits_int8.tflite"
    )

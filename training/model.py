"""The notebook's regularized CNN, built functionally so the pre-sigmoid output is reachable by name.

Input (L, 4) -> Conv1D(24, 19, relu, same) -> MaxPool1D(25) -> Dropout(0.2) -> Flatten
-> Dense(64, relu) -> Dropout(0.5) -> Dense(1, linear) "logit" -> sigmoid "prob"; 14,265 parameters at L=200.
"""
from __future__ import annotations

INPUT_NAME = "dna"
LOGIT_LAYER = "logit"
PROB_LAYER = "prob"


def build_model(length: int = 200, conv_dropout: float = 0.2, dense_dropout: float = 0.5):
    """Return an uncompiled keras.Model: (batch, length, 4) float32 -> (batch, 1) probability."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(length, 4), name=INPUT_NAME)
    h = layers.Conv1D(filters=24, kernel_size=19, activation="relu", padding="same", name="conv")(inputs)
    h = layers.MaxPool1D(pool_size=25, name="pool")(h)
    h = layers.Dropout(conv_dropout, name="conv_dropout")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(units=64, activation="relu", name="dense")(h)
    h = layers.Dropout(dense_dropout, name="dense_dropout")(h)
    logit = layers.Dense(units=1, activation="linear", name=LOGIT_LAYER)(h)
    prob = layers.Activation("sigmoid", name=PROB_LAYER)(logit)
    return keras.Model(inputs, prob, name="bindcnn")


def logit_model(model):
    """The same weights, output = the pre-sigmoid logit (batch, 1)."""
    import keras

    return keras.Model(model.inputs, model.get_layer(LOGIT_LAYER).output, name="bindcnn_logit")

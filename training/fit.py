"""Fit the CNN: Adam(1e-3), binary cross-entropy, batch 128, up to 100 epochs, early stopping,
a seeded tf.data pipeline with prefetch, one progress line per epoch on stderr."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from training.hooks import interrupt_point
from training.model import build_model


@dataclass
class FitResult:
    model: object  # keras.Model
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    seconds: float
    settings: dict


def set_seeds(seed: int) -> None:
    """Python, numpy and TensorFlow seeds plus deterministic TF ops: the same seed, the same model."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _progress_callback(max_epochs: int, stream=sys.stderr):
    import keras

    class EpochLine(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            keys = ("loss", "auroc", "val_loss", "val_auroc", "val_aupr")
            parts = " ".join(f"{k} {logs[k]:.4f}" for k in keys if k in logs)
            print(f"epoch {epoch + 1:3d}/{max_epochs}  {parts}  ({time.perf_counter() - self.t0:.1f} s)",
                  file=stream, flush=True)
            interrupt_point(f"epoch-{epoch + 1}")

    return EpochLine()


def fit(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
        epochs: int = 100, batch_size: int = 128, learning_rate: float = 1e-3, patience: int = 5,
        notebook_early_stopping: bool = False, seed: int = 0, verbose: bool = True,
        rc_augment: bool = False) -> FitResult:
    """Train the notebook's regularized CNN.

    x_*: (N, L, 4) float32, y_*: (N, 1) float32. Early stopping monitors validation AUROC with
    restore_best_weights (default), or, with notebook_early_stopping, the notebook's exact
    EarlyStopping(monitor='loss', patience=5) (training loss, last weights kept). rc_augment adds the
    reverse complement of every training sequence (same label): 2N training sequences per epoch.
    """
    import keras

    from serving.dna import reverse_complement

    set_seeds(seed)
    if rc_augment:
        x_train = np.concatenate([x_train, reverse_complement(x_train)])
        y_train = np.concatenate([y_train, y_train])
    model = build_model(x_train.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=["accuracy", keras.metrics.AUC(name="auroc"), keras.metrics.AUC(curve="PR", name="aupr")],
    )
    if notebook_early_stopping:
        stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=patience)
        monitor, mode = "loss", "min"
    else:
        stopper = keras.callbacks.EarlyStopping(monitor="val_auroc", mode="max", patience=patience,
                                                restore_best_weights=True)
        monitor, mode = "val_auroc", "max"
    callbacks = [stopper] + ([_progress_callback(epochs)] if verbose else [])
    t0 = time.perf_counter()
    hist = model.fit(
        _dataset(x_train, y_train, batch_size, shuffle_seed=seed),
        validation_data=_dataset(x_valid, y_valid, 1024, shuffle_seed=None),
        epochs=epochs, callbacks=callbacks, verbose=0, shuffle=False,  # tf.data shuffles
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    epochs_run = len(history["loss"])
    values = np.array(history[monitor])
    best_epoch = int(np.argmax(values) if mode == "max" else np.argmin(values)) + 1
    if notebook_early_stopping:
        best_epoch = epochs_run  # the notebook keeps the last weights
    settings = {
        "optimizer": "adam", "learning_rate": learning_rate, "loss": "binary_crossentropy",
        "batch_size": batch_size, "max_epochs": epochs, "seed": seed, "rc_augment": rc_augment,
        "early_stopping": {"monitor": monitor, "mode": mode, "patience": patience,
                           "restore_best_weights": not notebook_early_stopping,
                           "notebook_setting": notebook_early_stopping},
    }
    return FitResult(model, history, epochs_run, best_epoch, epochs_run < epochs, seconds, settings)

"""Seconds per training epoch: the project's fit (training.fit.fit: tf.data, shuffle, prefetch) against a plain
notebook-style `model.fit(x, y, batch_size=128)` on numpy arrays, same model, optimiser, metrics and data.

    python -m benchmarks.bench_training [--data data/ctcf_synthetic.h5] [--epochs 2] [--limit N]   (prints JSON)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


class _EpochTimer:
    """A Keras callback factory recording seconds per epoch (epoch begin -> end, validation included)."""

    def __init__(self):
        self.times: list[float] = []

    def callback(self):
        import keras

        times = self.times

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        return Timer()


def project_fit(ds, epochs: int, dataset=None) -> list[float]:
    """Per-epoch seconds of training.fit.fit (its progress-line callback swapped for a timer); `dataset`
    optionally replaces training.fit._dataset (to time an alternative input pipeline)."""
    import training.fit as train

    timer = _EpochTimer()
    saved = train._progress_callback, train._dataset
    train._progress_callback = lambda max_epochs: timer.callback()
    if dataset is not None:
        train._dataset = dataset
    try:
        train.fit(ds.x["train"], ds.y["train"], ds.x["valid"], ds.y["valid"], epochs=epochs, patience=epochs + 1)
    finally:
        train._progress_callback, train._dataset = saved
    return timer.times


def batch_gather_dataset(x, y, batch_size: int, shuffle_seed):
    """A proposal: shuffle indices, batch them, gather whole batches (one op per batch, not per example)."""
    import tensorflow as tf

    xt, yt = tf.constant(x), tf.constant(y)
    ds = tf.data.Dataset.range(len(x))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def notebook_fit(ds, epochs: int) -> list[float]:
    """Per-epoch seconds of the seed notebook's style: model.fit on numpy arrays, Keras' own shuffling."""
    import keras

    from training.model import build_model
    from training.fit import set_seeds

    set_seeds(0)
    model = build_model(ds.x["train"].shape[1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=["accuracy", keras.metrics.AUC(name="auroc"), keras.metrics.AUC(curve="PR", name="aupr")])
    timer = _EpochTimer()
    model.fit(ds.x["train"], ds.y["train"], batch_size=128, epochs=epochs, shuffle=True,
              validation_data=(ds.x["valid"], ds.y["valid"]), callbacks=[timer.callback()], verbose=0)
    return timer.times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="HDF5 dataset (default: the built-in synthetic set)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per method (the first includes tracing)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training sequences")
    args = p.parse_args(argv)

    from serving.attribution import quiet_tensorflow

    quiet_tensorflow()
    from training.datasets import load_h5
    from training.pipeline import default_dataset

    source = args.data or default_dataset()
    ds = load_h5(source)
    if args.limit:
        ds.x["train"], ds.y["train"] = ds.x["train"][: args.limit], ds.y["train"][: args.limit]
    out = {"data": str(source), "train": int(len(ds.x["train"])), "valid": int(len(ds.x["valid"])),
           "notebook": notebook_fit(ds, args.epochs), "project": project_fit(ds, args.epochs),
           "batch_gather": project_fit(ds, args.epochs, dataset=batch_gather_dataset)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

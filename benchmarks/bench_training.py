"""Seconds per training epoch: the project's fit (training.train.fit: tf.data, shuffle, prefetch) against a plain
notebook-style `model.fit(x, y, batch_size=128)` on numpy arrays, same model, optimiser, metrics and data.

    python -m benchmarks.bench_training [--data data/ctcf_synthetic.h5] [--epochs 2] [--limit N]   (prints JSON)
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
from pathlib import Path


def project_fit(ds, epochs: int) -> list[float]:
    """Per-epoch seconds of training.train.fit, read from its own progress lines ('... (12.3 s)')."""
    import training.train as train

    err = io.StringIO()
    original = train._progress_callback  # its stream defaults to the sys.stderr of import time: pass ours
    train._progress_callback = lambda max_epochs: original(max_epochs, stream=err)
    try:
        train.fit(ds.x["train"], ds.y["train"], ds.x["valid"], ds.y["valid"], epochs=epochs, patience=epochs + 1)
    finally:
        train._progress_callback = original
    return [float(s) for s in re.findall(r"\(([0-9.]+) s\)", err.getvalue())]


def notebook_fit(ds, epochs: int) -> list[float]:
    """Per-epoch seconds of the seed notebook's style: model.fit on numpy arrays, Keras' own shuffling."""
    import keras

    from training.model import build_model
    from training.train import set_seeds

    set_seeds(0)
    model = build_model(ds.x["train"].shape[1])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=["accuracy", keras.metrics.AUC(name="auroc"), keras.metrics.AUC(curve="PR", name="aupr")])
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(ds.x["train"], ds.y["train"], batch_size=128, epochs=epochs, shuffle=True,
              validation_data=(ds.x["valid"], ds.y["valid"]), callbacks=[Timer()], verbose=0)
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="HDF5 dataset (default: the built-in synthetic set)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per method (the first includes tracing)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training sequences")
    args = p.parse_args(argv)

    from training import quiet_tensorflow

    quiet_tensorflow()
    from training.data import load_h5
    from training.pipeline import default_dataset

    source = args.data or default_dataset()
    ds = load_h5(source)
    if args.limit:
        ds.x["train"], ds.y["train"] = ds.x["train"][: args.limit], ds.y["train"][: args.limit]
    out = {"data": str(source), "train": int(len(ds.x["train"])), "valid": int(len(ds.x["valid"])),
           "notebook": notebook_fit(ds, args.epochs), "project": project_fit(ds, args.epochs)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

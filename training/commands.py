"""What each training command does (`bindcnn <command>`; `python -m training <command>`): data sets, training,
re-export, registration, evaluation and the saliency report. TensorFlow is imported only by the ones that need it.
"""
from __future__ import annotations

import json
from pathlib import Path

from serving.artifact import METADATA_FILE
from serving.attribution import quiet_tensorflow
from serving.console import say
from serving.store import register

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def cmd_synthetic(args) -> int:
    from training.datasets import load_h5
    from training.datasets.synthetic import write_synthetic

    path = write_synthetic(args.out, n=args.n, length=args.length, seed=args.seed)
    ds = load_h5(path)
    say(f"wrote {path}: {ds.description}; splits {ds.sizes()}")
    return EXIT_OK


def cmd_fasta(args) -> int:
    from training.datasets import write_h5
    from training.datasets.fasta import fasta_dataset

    ds = fasta_dataset(args.positives, args.negatives, length=args.length, seed=args.seed)
    path = write_h5(args.out, ds.x, {s: v[:, 0] for s, v in ds.y.items()}, None, ds.description)
    say(f"wrote {path}: {ds.description}; splits {ds.sizes()}")
    return EXIT_OK


def cmd_download(args) -> int:
    from training.datasets.download import download

    path = download(args.tf, args.out, url=args.url)
    say(f"wrote {path}")
    return EXIT_OK


def cmd_train(args) -> int:
    if args.if_missing and (args.models / args.name / METADATA_FILE).is_file():
        say(f"{args.models / args.name} exists; not retraining (--if-missing)")
        if not args.no_register:
            say(f"registered as {register(args.models / args.name)}")
        return EXIT_OK
    quiet_tensorflow()
    from training.pipeline import train_and_export

    train_and_export(args.data, args.name, args.models, epochs=args.epochs,
                     notebook_early_stopping=args.notebook_early_stopping, seed=args.seed,
                     patience=args.patience, register=not args.no_register, onnx_converter=args.onnx_converter)
    return EXIT_OK


def cmd_export(args) -> int:
    quiet_tensorflow()
    import keras

    from serving.artifact import read_metadata
    from training.datasets import load_h5
    from training.export import KERAS_FILE, export
    from training.pipeline import DEFAULT_DATA, PARITY_SAMPLES

    old = read_metadata(args.model)
    model = keras.models.load_model(Path(args.model) / KERAS_FILE)
    data = args.data or old.get("data", {}).get("source") or DEFAULT_DATA
    ds = load_h5(data)
    keep = {k: old[k] for k in ("data", "training", "metrics") if k in old}
    plots = {p.name: p for p in Path(args.model).glob("*.png")}
    out = Path(args.out) if args.out else Path(args.model)
    name = args.name or old["name"]
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # copies: out may be the model's own directory
        plots = {n: Path(shutil.copy2(p, Path(tmp) / n)) for n, p in plots.items()}
        meta = export(model, out, name, ds.x["test"][:PARITY_SAMPLES], keep, extra_files=plots,
                      onnx_converter=args.onnx_converter)
    say(f"exported {out} version {meta['version']}; parity {json.dumps(meta['parity'])}")
    if not args.no_register:
        say(f"registered as {register(out)}")
    return EXIT_OK


def cmd_register(args) -> int:
    say(f"registered {args.model} as {register(args.model)}")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from serving.predictor import Predictor
    from training.datasets import load_h5
    from training.evaluate import metrics, plot_curves

    predictor = Predictor(args.model, device="cpu")
    ds = load_h5(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {}
    for split in args.splits:
        prob = predictor.predict_onehot(ds.x[split])["probability"]
        result[split] = metrics(ds.y[split], prob)
        if split == "test":
            plot_curves(ds.y[split], prob, out / "roc_pr.png")
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    for split, m in result.items():
        print(f"{split}\taccuracy {m['accuracy']:.4f}\tAUROC {m['auroc']:.4f}\tAUPR {m['aupr']:.4f}\tn {m['n']}")
    say(f"wrote {out / 'metrics.json'}" + (f" and {out / 'roc_pr.png'}" if "test" in result else ""))
    return EXIT_OK


def cmd_saliency(args) -> int:
    quiet_tensorflow()
    from training.explain import saliency_report

    out, scores = saliency_report(args.model, args.data, args.out, args.split, args.top, args.corrected)
    say(f"wrote {len(scores)} logos, heatmap.png, scores.npy ({scores.shape}) and top.tsv to {out}/")
    return EXIT_OK

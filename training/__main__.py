"""Command line of the training side: `python -m training <command> --help` (also `bindcnn-train`).

Exit codes: 0 success; 1 the work failed (e.g. ONNX/TensorFlow parity); 2 bad arguments or input
(a missing or malformed dataset, FASTA or model); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training import quiet_tensorflow

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_synthetic(args) -> int:
    from training.data import load_h5, write_synthetic

    path = write_synthetic(args.out, n=args.n, length=args.length, seed=args.seed)
    ds = load_h5(path)
    _say(f"wrote {path}: {ds.description}; splits {ds.sizes()}")
    return EXIT_OK


def cmd_fasta(args) -> int:
    from training.data import fasta_dataset, write_h5

    ds = fasta_dataset(args.positives, args.negatives, length=args.length, seed=args.seed)
    path = write_h5(args.out, ds.x, {s: v[:, 0] for s, v in ds.y.items()}, None, ds.description)
    _say(f"wrote {path}: {ds.description}; splits {ds.sizes()}")
    return EXIT_OK


def cmd_download(args) -> int:
    from training.data import download

    path = download(args.tf, args.out, url=args.url)
    _say(f"wrote {path}")
    return EXIT_OK


def cmd_train(args) -> int:
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
    from serving.store import register
    from training.data import load_h5
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
    _say(f"exported {out} version {meta['version']}; parity {json.dumps(meta['parity'])}")
    if not args.no_register:
        _say(f"registered as {register(out)}")
    return EXIT_OK


def cmd_register(args) -> int:
    from serving.store import register

    _say(f"registered {args.model} as {register(args.model)}")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from serving.predictor import Predictor
    from training.data import load_h5
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
    _say(f"wrote {out / 'metrics.json'}" + (f" and {out / 'roc_pr.png'}" if "test" in result else ""))
    return EXIT_OK


def cmd_saliency(args) -> int:
    quiet_tensorflow()
    import numpy as np

    from serving.artifact import verify_model_dir
    from serving.predictor import Predictor
    from training.data import load_h5
    from training.saliency import load_logits_fn, motif_auroc, plot_heatmap, plot_logo, saliency, top_indices

    verify_model_dir(args.model, need=("saved_model",))
    ds = load_h5(args.data)
    x = ds.x[args.split]
    pred = Predictor(args.model, device="cpu").predict_onehot(x)
    idx = top_indices(pred["probability"], args.top)
    scores = saliency(load_logits_fn(args.model), x[idx], corrected=args.corrected)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    motif = ds.motif.get(args.split)
    rows = ["rank\tindex\tprobability\tlogit\tmotif_start\tmotif_end\tmotif_strand\tmotif_auroc\tlogo"]
    labels = []
    for rank, (i, s) in enumerate(zip(idx, scores), start=1):
        logo = out / f"logo_{rank:02d}_{args.split}{i}.png"
        plot_logo(s, logo, title=f"#{rank} {args.split}[{i}] p={pred['probability'][i]:.3f}")
        m = motif[i] if motif is not None else np.array([-1, -1, 0])
        m_auc = motif_auroc(s[None], m[None]) if m[0] >= 0 else []
        rows.append(f"{rank}\t{i}\t{pred['probability'][i]:.6f}\t{pred['logit'][i]:.6f}\t"
                    f"{m[0] if m[0] >= 0 else ''}\t{m[1] if m[0] >= 0 else ''}\t{m[2] or ''}\t"
                    f"{f'{m_auc[0]:.4f}' if len(m_auc) else ''}\t{logo.name}")
        labels.append(f"#{rank} {args.split}[{i}]")
    plot_heatmap(scores, out / "heatmap.png", labels)
    np.save(out / "scores.npy", scores)
    (out / "top.tsv").write_text("\n".join(rows) + "\n")
    _say(f"wrote {len(idx)} logos, heatmap.png, scores.npy ({scores.shape}) and top.tsv to {out}/")
    return EXIT_OK


def _export_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `export`."""
    parser.add_argument("--onnx-converter", default="direct", choices=["direct", "tf2onnx"],
                        help="direct: write the CNN's ONNX graph in ONNX Runtime's fastest layout (default); "
                        "tf2onnx: convert with tf2onnx. Both are parity-checked against the SavedModel")
    parser.add_argument("--no-register", action="store_true", help="do not add it to the BentoML model store")


def build_parser() -> argparse.ArgumentParser:
    from training.data import DEFAULT_SYNTHETIC_N, ZENODO_TFS

    p = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synthetic", help="write the built-in synthetic CTCF dataset (HDF5)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--n", type=int, default=DEFAULT_SYNTHETIC_N, help="number of sequences (default %(default)s)")
    s.add_argument("--length", type=int, default=200, help="sequence length (default %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.set_defaults(func=cmd_synthetic)

    s = sub.add_parser("fasta", help="build a dataset from FASTA (negatives: a file or dinucleotide shuffles)")
    s.add_argument("--positives", type=Path, required=True, help="FASTA of bound sequences (plain or .gz)")
    s.add_argument("--negatives", type=Path, help="FASTA of unbound sequences (default: shuffled positives)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--length", type=int, help="sequence length; longer records are centre-cropped, shorter "
                   "skipped (default: the first record's length)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.set_defaults(func=cmd_fasta)

    s = sub.add_parser("download", help="download the real <TF>_200.h5 from Zenodo 7265991 (needs internet)")
    s.add_argument("--tf", default="CTCF", choices=ZENODO_TFS, help="transcription factor (default %(default)s)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--url", help="download from this URL instead (a mirror)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("train", help="train, evaluate, export to models/NAME and register it")
    s.add_argument("--data", type=Path, help="dataset .h5 (default: the built-in synthetic set, written to "
                   "data/ctcf_synthetic.h5 on first use)")
    s.add_argument("--name", default="ctcf", help="model name (default %(default)s)")
    s.add_argument("--models", type=Path, default=Path("models"), help="models folder (default %(default)s)")
    s.add_argument("--epochs", type=int, default=100, help="maximum epochs (default %(default)s)")
    s.add_argument("--patience", type=int, default=5, help="early-stopping patience (default %(default)s)")
    s.add_argument("--notebook-early-stopping", action="store_true",
                   help="the notebook's exact setting: monitor training loss, keep the last weights")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    _export_options(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", help="re-export models/NAME from its model.keras (new version, parity checked)")
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--data", type=Path, help="dataset for the parity check (default: the one it was trained on)")
    s.add_argument("--out", type=Path, help="output folder (default: the model folder itself)")
    s.add_argument("--name", help="model name (default: the current one)")
    _export_options(s)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("register", help="add an exported model folder to the BentoML model store")
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.set_defaults(func=cmd_register)

    s = sub.add_parser("evaluate", help="metrics of an exported model (ONNX Runtime) on a dataset")
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--data", type=Path, required=True, help="dataset .h5")
    s.add_argument("--splits", nargs="+", default=["test"], choices=["train", "valid", "test"],
                   help="splits to evaluate (default: test)")
    s.add_argument("--out", type=Path, default=Path("runs/evaluate"), help="output folder (default %(default)s)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("saliency", help="saliency logos (grad x input) for the top predictions")
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--data", type=Path, required=True, help="dataset .h5")
    s.add_argument("--split", default="test", choices=["train", "valid", "test"], help="(default %(default)s)")
    s.add_argument("--top", type=int, default=10, help="number of top predictions (default %(default)s)")
    s.add_argument("--corrected", action="store_true", help="gradient correction (subtract the per-position mean)")
    s.add_argument("--out", type=Path, default=Path("runs/saliency"), help="output folder (default %(default)s)")
    s.set_defaults(func=cmd_saliency)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from serving.artifact import ArtifactError
    from serving.fasta import FastaError
    from training.data import DatasetError

    try:
        return args.func(args)
    except (DatasetError, FastaError, ArtifactError, ValueError, FileNotFoundError) as exc:
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("interrupted: nothing partial was left in the models folder")
        return EXIT_INTERRUPTED
    except Exception as exc:  # ParityError, network errors, ...
        _say(f"failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

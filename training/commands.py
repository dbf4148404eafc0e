"""What each training command does (`bindcnn <command>`; `python -m training <command>`): data sets, training,
re-export, registration, evaluation, attribution reports, motif discovery and judging over seeds. TensorFlow is
imported only by the ones that need it.
"""
from __future__ import annotations

import json
from pathlib import Path

from serving.artifact import METADATA_FILE
from serving.attribution import quiet_tensorflow
from serving.cli.parsers import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK  # the exit codes, defined once there
from serving.cli.parsers import EXIT_USAGE as EXIT_BAD_INPUT
from serving.console import say
from serving.store import DEFAULT_MODEL_NAME, register


def cmd_synthetic(args) -> int:
    from training.datasets import load_h5
    from training.datasets.jaspar import fetch_jaspar
    from training.datasets.synthetic import write_synthetic
    from training.pipeline import DEFAULT_DATA, motif_data_path

    matrix = fetch_jaspar(args.motif) if args.motif else None
    out = args.out or (DEFAULT_DATA if matrix is None else motif_data_path(matrix[0]))
    path = write_synthetic(out, n=args.n, length=args.length, seed=args.seed, background=args.background,
                           matrix=matrix)
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


def cmd_peaks(args) -> int:
    from training.datasets import write_h5
    from training.datasets.peaks import peaks_dataset, write_windows

    ds, windows = peaks_dataset(args.peaks, args.genome, length=args.length,
                                negatives_per_positive=args.negatives_per_positive, shuffles=args.shuffles,
                                valid_chroms=args.valid_chroms, test_chroms=args.test_chroms, seed=args.seed)
    path = write_h5(args.out, ds.x, {s: v[:, 0] for s, v in ds.y.items()}, None, ds.description)
    bed = write_windows(windows, Path(str(args.out) + ".windows.bed"))
    say(f"wrote {path}: {ds.description}; splits {ds.sizes()}; windows in {bed}")
    return EXIT_OK


def cmd_download(args) -> int:
    from training.datasets.download import download

    path = download(args.tf, args.out, url=args.url)
    say(f"wrote {path}")
    return EXIT_OK


def motif_model_name(matrix_name: str) -> str:
    """"MA0138.3 REST" -> "rest": a valid model name from a matrix's factor (ID if the factor's name has none)."""
    import re

    matrix_id, _, factor = matrix_name.partition(" ")
    name = re.sub(r"[^a-z0-9._-]+", "-", factor.lower()).strip("-._")
    return name[:63] or matrix_id.lower()


def cmd_train(args) -> int:
    matrix = None
    if args.motif:
        if args.data:
            raise ValueError("give --data or --motif, not both: --motif trains on the built-in set planted with "
                             "that matrix (bindcnn synthetic --motif ID --out X.h5 writes it, --data X.h5 trains on it)")
        from training.datasets.jaspar import fetch_jaspar

        matrix = fetch_jaspar(args.motif)
    args.name = args.name or (motif_model_name(matrix[0]) if matrix else DEFAULT_MODEL_NAME)
    if args.if_missing and (args.models / args.name / METADATA_FILE).is_file():
        say(f"{args.models / args.name} exists; not retraining (--if-missing)")
        if not args.no_register:
            say(f"registered as {register(args.models / args.name)}")
        return EXIT_OK
    quiet_tensorflow()
    from training.pipeline import train_and_export

    train_and_export(args.data, args.name, args.models, epochs=args.epochs,
                     notebook_early_stopping=args.notebook_early_stopping, seed=args.seed,
                     patience=args.patience, register=not args.no_register, onnx_converter=args.onnx_converter,
                     rc_augment=args.rc_augment, matrix=matrix)
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
    keep = {k: old[k] for k in ("data", "factor", "training", "metrics", "baseline") if k in old}
    if "baseline" not in keep:  # exported before the baseline existed: measure it on this data's test split
        from training.pipeline import baseline_check, report_baseline

        keep["baseline"] = baseline_check(ds, model.predict(ds.x["test"], batch_size=1024, verbose=0).reshape(-1))
        report_baseline(keep["baseline"])
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
    from training.baseline import pwm_baseline
    from training.datasets import load_h5
    from training.evaluate import metrics, plot_curves

    predictor = Predictor(args.model, device="cpu")
    ds = load_h5(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result, both, pwm = {}, {}, {}
    for split in args.splits:
        prob = predictor.predict_onehot(ds.x[split])["probability"]
        result[split] = metrics(ds.y[split], prob)
        rc_prob = predictor.predict_onehot(ds.x[split], reverse_complement_average=True)["probability"]
        both[split] = metrics(ds.y[split], rc_prob)
        pwm[split] = pwm_baseline(ds.x[split], ds.y[split], matrix_text=ds.matrix)
        if split == "test":
            plot_curves(ds.y[split], prob, out / "roc_pr.png")
    (out / "metrics.json").write_text(json.dumps({**result, "strand_average": both, "pwm_baseline": pwm},
                                                 indent=2) + "\n")
    for split, m in result.items():
        print(f"{split}\taccuracy {m['accuracy']:.4f}\tAUROC {m['auroc']:.4f}\tAUPR {m['aupr']:.4f}\tn {m['n']}")
        print(f"{split}\tboth strands averaged\tAUROC {both[split]['auroc']:.4f}\tAUPR {both[split]['aupr']:.4f}")
        print(f"{split}\tPWM baseline ({pwm[split]['matrix']})\tAUROC {pwm[split]['auroc']:.4f}\t"
              f"AUPR {pwm[split]['aupr']:.4f}\tCNN - PWM AUROC {m['auroc'] - pwm[split]['auroc']:+.4f}")
    say(f"wrote {out / 'metrics.json'}" + (f" and {out / 'roc_pr.png'}" if "test" in result else ""))
    return EXIT_OK


def cmd_saliency(args) -> int:
    quiet_tensorflow()
    from serving.attribution import DEFAULT_METHOD
    from training.explain import fasta_report, saliency_report

    if args.corrected and args.method not in (None, "corrected"):
        raise ValueError(f"--corrected contradicts --method {args.method}: give one of them")
    method = "corrected" if args.corrected else (args.method or DEFAULT_METHOD)
    if args.top is not None and args.top < 1:
        raise ValueError("--top must be at least 1")
    if args.fasta is not None:
        out, scores, ids = fasta_report(args.model, args.fasta, args.out, args.top, method, args.max_logos)
        say(f"{method}: wrote scores.npy {scores.shape} (input order), ids.txt, records.tsv, "
            f"{min(len(ids), args.max_logos)} logos and heatmap.png to {out}/")
        return EXIT_OK
    out, scores = saliency_report(args.model, args.data, args.out, args.split, args.top or 10, method)
    say(f"{method}: wrote {len(scores)} logos, heatmap.png, scores.npy ({scores.shape}) and top.tsv to {out}/")
    return EXIT_OK


def cmd_motifs(args) -> int:
    quiet_tensorflow()
    from training.motifs import motifs_report

    out, rows = motifs_report(args.model, args.out, data=args.data, fasta=args.fasta, split=args.split,
                              called_only=not args.all, n=args.n, max_seqlets=args.max_seqlets,
                              release=args.jaspar_release, seed=args.seed)
    for r in rows[:5]:
        print(f"{r['pattern']}\t{r['seqlets']} seqlets\tbest match {r['match_id']} {r['match_name']}\t"
              f"q {r['q_value']:.2e}")
    say(f"wrote motifs.tsv ({len(rows)} patterns), logos and summary.md to {out}/")
    return EXIT_OK if rows else EXIT_FAILED


def cmd_judge(args) -> int:
    quiet_tensorflow()
    if args.attribution:
        return _judge_attribution(args)
    from serving.attribution import METHODS
    from training.datasets.synthetic import DEFAULT_SYNTHETIC_N
    from training.judge import judge

    if args.methods and not set(args.methods) <= set(METHODS):
        raise ValueError(f"--methods {' '.join(args.methods)}: without --attribution only {', '.join(METHODS)}")
    out = args.out or Path("runs/judge")
    methods = tuple(METHODS if args.methods is None else args.methods)
    _, md = judge(args.seeds, args.n or DEFAULT_SYNTHETIC_N, args.background, args.rc_augment, args.epochs or 100,
                  args.patience or 5, args.attribution_n or 300, methods, out=out)
    print(md)
    say(f"wrote {out}/judge.md and judge.json")
    return EXIT_OK


def _judge_attribution(args) -> int:
    from training import judge_attribution as ja

    if args.rc_augment:
        raise ValueError("--rc-augment is not judged with --attribution (its models train on one strand)")
    n, epochs = args.n or ja.ATTRIBUTION_N, args.epochs or ja.ATTRIBUTION_EPOCHS
    patience, carriers = args.patience or ja.ATTRIBUTION_PATIENCE, args.attribution_n or ja.ATTRIBUTION_CARRIERS
    methods, out = tuple(args.methods or ja.JUDGED), args.out or Path("runs/judge-attribution")
    command = (f"bindcnn judge --attribution --seeds {' '.join(map(str, args.seeds))} --n {n} --background "
               f"{args.background} --epochs {epochs} --patience {patience} --attribution-n {carriers} --methods "
               f"{' '.join(methods)} --out {out}")
    _, md = ja.judge_attribution(args.seeds, n, args.background, epochs, patience, carriers, methods, out=out,
                                 command=command)
    print(md)
    say(f"wrote {out}/attribution.md and attribution.tsv")
    return EXIT_OK

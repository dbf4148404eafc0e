"""The training commands (synthetic, fasta, peaks, download, train, export, register, null, evaluate, saliency,
motifs, judge): their parsers and how they run. serving/cli adds them to the one command line, `bindcnn` (also
`python -m training` and `python -m serving`), where training's extra is installed.

Exit codes (serving/cli/parsers.py): 0 success; 1 the work failed (e.g. ONNX/TensorFlow parity); 2 bad arguments or
input; 130 interrupted.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from serving.cli.parsers import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from serving.cli.parsers import EXIT_USAGE as EXIT_BAD_INPUT
from serving.store import DEFAULT_MODEL_NAME
from training.commands import (cmd_download, cmd_evaluate, cmd_export, cmd_fasta, cmd_judge, cmd_motifs, cmd_peaks,
                               cmd_register, cmd_saliency, cmd_synthetic, cmd_train)

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "add_commands", "main", "run"]

EPILOG = "exit codes: 0 done; 1 the work failed (e.g. ONNX and TensorFlow disagree); 2 bad arguments or input; " \
         "130 interrupted (nothing partial is left in the models folder)."
DESCRIPTIONS = {
    "synthetic": "Write the built-in synthetic CTCF dataset (HDF5, the notebook's layout): genome-like background "
                 "(human dinucleotide frequencies, CpG islands, repeats) with JASPAR MA0139.1 instances near the "
                 "centre of the positives, decoys and weak instances in both classes. --motif plants another JASPAR "
                 "CORE vertebrate matrix instead (pyjaspar's offline database), recorded in the file.",
    "peaks": "Build a training set (HDF5, the notebook's layout) from ChIP-seq peaks and a genome: positives are "
             "windows at the summits; negatives are genomic windows overlapping no peak, matched to the positives' "
             "GC distribution (optionally plus dinucleotide shuffles); split by chromosome.",
    "fasta": "Build a training set (HDF5) from FASTA: positives from one file, negatives from another or, without "
             "one, dinucleotide-shuffled positives. Longer records are centre-cropped to the length.",
    "download": "Download the real <TF>_200.h5 of the course notebook (Zenodo record 7265991; needs internet) and "
                "validate its layout.",
    "train": "Train the notebook's regularized CNN with early stopping, evaluate it, export the SavedModel and "
             "the ONNX model from the same weights (export fails unless they agree), write models/NAME/ and "
             "register it in the BentoML model store. Without --data, the built-in synthetic set.",
    "export": "Re-export an exported model's weights (model.keras) as a new version: SavedModel + ONNX, "
              "parity-checked, metadata and checksums rewritten.",
    "register": "Add an exported model folder to the BentoML model store (what bentoml serve / build use).",
    "null": "Draw the model's null of substitution effects (what variant p-values are measured against): random "
            "single-base substitutions at the centre of windows of the built-in genome-like background, scored by "
            "the folder's model.onnx, stored as null_effects.npy and described in metadata.json; the folder gets a "
            "new version (checksums rewritten) and is registered. train and export do this already; this is for "
            "folders exported before.",
    "evaluate": "Accuracy, AUROC and AUPR of an exported model (ONNX Runtime) on a dataset's splits, one strand and "
                "both strands averaged, beside the PWM baseline (best JASPAR MA0139.1 match per sequence); "
                "metrics.json and the ROC/PR plot.",
    "saliency": "Attribution maps of the logit (TensorFlow): the top predictions of a dataset split (--data), or "
                "every record of a FASTA file (--fasta, in input order): one logo PNG each, a heat map, scores.npy "
                "and a TSV (with, where the true motif is known, whether each map's top 19-nt window finds it).",
    "motifs": "Motif discovery from the model: expected-gradients attributions of the sequences the model calls "
              "bound, TF-MoDISco (modisco-lite) patterns, each matched by TomTom (memelite) against JASPAR CORE "
              "vertebrates (pyjaspar, offline); motifs.tsv, a logo per pattern beside its best match, summary.md.",
    "judge": "Judge the built-in set and training options over several seeds: per seed a fresh synthetic set and "
             "model; mean and spread of test AUROC (one strand, both strands), PWM-baseline AUROC and the "
             "attribution-on-motif rate. Slow: one full training per seed. With --attribution: per seed a small "
             "set and model, and per attribution method (gradient, corrected, expected_gradients, ism) the "
             "per-sequence AUROC and AUPR of attribution magnitude at the planted motif positions (a few minutes).",
}


def _export_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `export`."""
    parser.add_argument("--onnx-converter", default="direct", choices=["direct", "tf2onnx"],
                        help="direct: write the CNN's ONNX graph in ONNX Runtime's fastest layout (default); "
                        "tf2onnx: convert with tf2onnx. Both are parity-checked against the SavedModel")
    parser.add_argument("--no-register", action="store_true", help="do not add it to the BentoML model store")


def add_commands(sub) -> None:
    """Add the training commands to an argparse subparsers object; each parser's description says what the
    command does."""
    from training.datasets.download import ZENODO_TFS
    from serving.attribution import DEFAULT_METHOD, METHODS
    from training.datasets.peaks import DEFAULT_TEST_CHROMS, DEFAULT_VALID_CHROMS
    from training.datasets.synthetic import BACKGROUNDS, DEFAULT_SYNTHETIC_N
    from training.judge_attribution import (ATTRIBUTION_CARRIERS, ATTRIBUTION_EPOCHS, ATTRIBUTION_N,
                                            ATTRIBUTION_PATIENCE, ISM, JUDGED)

    s = sub.add_parser("synthetic", help="write the built-in synthetic CTCF dataset (HDF5)",
                       description=DESCRIPTIONS["synthetic"], epilog=EPILOG)
    s.add_argument("--out", type=Path, help="output .h5 path (default data/ctcf_synthetic.h5, with --motif "
                   "data/<matrix ID>_synthetic.h5)")
    s.add_argument("--motif", metavar="ID", help="plant this JASPAR CORE vertebrate matrix instead of CTCF MA0139.1: "
                   "an ID with or without version (MA0138 = its latest in JASPAR2024, MA0138.2)")
    s.add_argument("--n", type=int, default=DEFAULT_SYNTHETIC_N, help="number of sequences (default %(default)s)")
    s.add_argument("--length", type=int, default=200, help="sequence length (default %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.add_argument("--background", default="genome", choices=BACKGROUNDS,
                   help="genome: human dinucleotide Markov chain with CpG islands; iid: independent letters (the "
                   "first built-in set) (default %(default)s)")
    s.set_defaults(func=cmd_synthetic)

    s = sub.add_parser("fasta", help="build a dataset from FASTA (negatives: a file or dinucleotide shuffles)",
                       description=DESCRIPTIONS["fasta"], epilog=EPILOG)
    s.add_argument("--positives", type=Path, required=True, help="FASTA of bound sequences (plain or .gz)")
    s.add_argument("--negatives", type=Path, help="FASTA of unbound sequences (default: shuffled positives)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--length", type=int, help="sequence length; longer records are centre-cropped, shorter "
                   "skipped (default: the first record's length)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.set_defaults(func=cmd_fasta)

    s = sub.add_parser("peaks", help="build a dataset from a narrowPeak file and a genome (GC-matched negatives)",
                       description=DESCRIPTIONS["peaks"], epilog=EPILOG)
    s.add_argument("--peaks", type=Path, required=True, help="narrowPeak (summit in column 10) or BED (centre) file")
    s.add_argument("--genome", type=Path, required=True, help="genome FASTA (plain or bgzip; .fai made if missing)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--length", type=int, default=200, help="window length (default %(default)s)")
    s.add_argument("--negatives-per-positive", type=float, default=1.0,
                   help="GC-matched genomic negatives per positive (default %(default)s)")
    s.add_argument("--shuffles", type=int, default=0,
                   help="also this many dinucleotide shuffles of each positive as negatives (default %(default)s)")
    s.add_argument("--valid-chroms", nargs="+", default=list(DEFAULT_VALID_CHROMS),
                   help=f"validation chromosomes (default: {' '.join(DEFAULT_VALID_CHROMS)})")
    s.add_argument("--test-chroms", nargs="+", default=list(DEFAULT_TEST_CHROMS),
                   help=f"test chromosomes (default: {' '.join(DEFAULT_TEST_CHROMS)}, DeepSEA's split; the rest "
                   "train)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.set_defaults(func=cmd_peaks)

    s = sub.add_parser("download", help="download the real <TF>_200.h5 from Zenodo 7265991 (needs internet)",
                       description=DESCRIPTIONS["download"], epilog=EPILOG)
    s.add_argument("--tf", default="CTCF", choices=ZENODO_TFS, help="transcription factor (default %(default)s)")
    s.add_argument("--out", type=Path, required=True, help="output .h5 path")
    s.add_argument("--url", help="download from this URL instead (a mirror)")
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("train", help="train, evaluate, export to models/NAME and register it",
                       description=DESCRIPTIONS["train"], epilog=EPILOG)
    s.add_argument("--data", type=Path, help="dataset .h5 (default: the built-in synthetic set, written to "
                   "data/ctcf_synthetic.h5 on first use)")
    s.add_argument("--motif", metavar="ID", help="without --data: the built-in set planted with this JASPAR CORE "
                   "vertebrate matrix (e.g. MA0138 for REST; written to data/<matrix ID>_synthetic.h5 on first use)")
    s.add_argument("--name", help=f"model name (default {DEFAULT_MODEL_NAME}; with --motif the factor's name in "
                   "lowercase, e.g. rest)")
    s.add_argument("--models", type=Path, default=Path("models"), help="models folder (default %(default)s)")
    s.add_argument("--epochs", type=int, default=100, help="maximum epochs (default %(default)s)")
    s.add_argument("--patience", type=int, default=5, help="early-stopping patience (default %(default)s)")
    s.add_argument("--notebook-early-stopping", action="store_true",
                   help="the notebook's exact setting: monitor training loss, keep the last weights")
    s.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    s.add_argument("--rc-augment", action="store_true",
                   help="also train on the reverse complement of every training sequence (2x per epoch; off by "
                   "default, as in the notebook)")
    s.add_argument("--if-missing", action="store_true",
                   help="do nothing (but register) when MODELS/NAME already holds an export (what make serve uses)")
    _export_options(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("export", help="re-export models/NAME from its model.keras (new version, parity checked)",
                       description=DESCRIPTIONS["export"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--data", type=Path, help="dataset for the parity check (default: the one it was trained on)")
    s.add_argument("--out", type=Path, help="output folder (default: the model folder itself)")
    s.add_argument("--name", help="model name (default: the current one)")
    _export_options(s)
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("register", help="add an exported model folder to the BentoML model store",
                       description=DESCRIPTIONS["register"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.set_defaults(func=cmd_register)

    from training.null_effects import NULL_DRAWS, NULL_SEED, cmd_null

    s = sub.add_parser("null", help="add the null of substitution effects (variant p-values) to a model folder",
                       description=DESCRIPTIONS["null"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--n", type=int, default=NULL_DRAWS, help="substitutions to draw (default %(default)s)")
    s.add_argument("--seed", type=int, default=NULL_SEED, help="random seed (default %(default)s)")
    s.add_argument("--no-register", action="store_true", help="do not add the new version to the BentoML model store")
    s.set_defaults(func=cmd_null)

    s = sub.add_parser("evaluate", help="metrics of an exported model (ONNX Runtime) on a dataset",
                       description=DESCRIPTIONS["evaluate"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    s.add_argument("--data", type=Path, required=True, help="dataset .h5")
    s.add_argument("--splits", nargs="+", default=["test"], choices=["train", "valid", "test"],
                   help="splits to evaluate (default: test)")
    s.add_argument("--out", type=Path, default=Path("runs/evaluate"), help="output folder (default %(default)s)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("saliency", help="attribution logos of a split's top predictions or of a FASTA's records",
                       description=DESCRIPTIONS["saliency"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="dataset .h5: explain the --top predictions of --split")
    src.add_argument("--fasta", type=Path, help="FASTA of model-length records: explain every record (or the --top "
                     "most confident); scores.npy in input order, ids.txt and records.tsv beside it")
    s.add_argument("--split", default="test", choices=["train", "valid", "test"], help="(default %(default)s)")
    s.add_argument("--top", type=int, help="the N highest predictions only (default: 10 with --data, every record "
                   "with --fasta)")
    s.add_argument("--method", choices=METHODS, default=None,
                   help=f"gradient: grad x input; corrected: gradient minus its per-position mean, x input; "
                   f"expected_gradients: integrated gradients averaged over dinucleotide-shuffled references "
                   f"(default {DEFAULT_METHOD}: it recovers planted motifs best, docs/explaining.md)")
    s.add_argument("--corrected", action="store_true", help="same as --method corrected (kept for scripts)")
    s.add_argument("--max-logos", type=int, default=100, help="--fasta: draw at most this many logos "
                   "(default %(default)s)")
    s.add_argument("--out", type=Path, default=Path("runs/saliency"), help="output folder (default %(default)s)")
    s.set_defaults(func=cmd_saliency)

    s = sub.add_parser("motifs", help="TF-MoDISco patterns of the model's attributions, matched to JASPAR",
                       description=DESCRIPTIONS["motifs"], epilog=EPILOG)
    s.add_argument("--model", type=Path, required=True, help="an exported model folder, e.g. models/ctcf")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="dataset .h5: the positives of --split the model calls bound")
    src.add_argument("--fasta", type=Path, help="FASTA of model-length records: those the model calls bound")
    s.add_argument("--split", default="test", choices=["train", "valid", "test"], help="(default %(default)s)")
    s.add_argument("--all", action="store_true", help="every sequence, not only those called bound (p >= 0.5)")
    s.add_argument("--n", type=int, default=2000, help="at most this many sequences, the most confident "
                   "(default %(default)s)")
    s.add_argument("--max-seqlets", type=int, default=5000, help="TF-MoDISco seqlets per metacluster "
                   "(default %(default)s)")
    s.add_argument("--jaspar-release", default="JASPAR2024", help="pyjaspar's offline release (default "
                   "%(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the shuffled references (default %(default)s)")
    s.add_argument("--out", type=Path, default=Path("runs/motifs"), help="output folder (default %(default)s)")
    s.set_defaults(func=cmd_motifs)

    s = sub.add_parser("judge", help="train over several seeds: mean/spread of CNN vs PWM AUROC and on-motif rate; "
                       "--attribution: AUROC/AUPR of each attribution method on planted motif positions",
                       description=DESCRIPTIONS["judge"], epilog=EPILOG)
    s.add_argument("--attribution", action="store_true",
                   help="judge the attribution methods instead: per seed a small set and model, per method the "
                   "per-sequence AUROC and AUPR of attribution magnitude at the planted motif positions (Majdandzic, "
                   "Rajesh & Koo 2023); attribution.tsv and attribution.md in --out")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default %(default)s)")
    s.add_argument("--n", type=int, help=f"sequences per set (default {DEFAULT_SYNTHETIC_N}; --attribution: "
                   f"{ATTRIBUTION_N})")
    s.add_argument("--background", default="genome", choices=BACKGROUNDS, help="(default %(default)s)")
    s.add_argument("--rc-augment", action="store_true", help="train with reverse-complement copies")
    s.add_argument("--epochs", type=int, help=f"maximum epochs (default 100; --attribution: {ATTRIBUTION_EPOCHS})")
    s.add_argument("--patience", type=int, help=f"early-stopping patience (default 5; --attribution: "
                   f"{ATTRIBUTION_PATIENCE})")
    s.add_argument("--methods", nargs="*", choices=JUDGED,
                   help=f"attribution methods to measure (default: {', '.join(METHODS)}; --attribution: also "
                   f"{ISM}, in-silico mutagenesis)")
    s.add_argument("--attribution-n", type=int, help="test instance carriers attributed per seed (default 300; "
                   f"--attribution: {ATTRIBUTION_CARRIERS})")
    s.add_argument("--out", type=Path, help="output folder (default runs/judge; --attribution: "
                   "runs/judge-attribution)")
    s.set_defaults(func=cmd_judge)


def main(argv: list[str] | None = None) -> int:
    """The whole command line (serving.cli.main), kept under this name for scripts and tests that call it."""
    from serving.cli import main as bindcnn

    return bindcnn(argv)


def run(args) -> int:
    """Run a parsed training command (serving.cli.main parses); returns its exit code."""
    from serving.artifact import ArtifactError
    from serving.console import say
    from serving.fasta import FastaError

    try:
        return args.func(args)
    except (FastaError, ArtifactError, ValueError, FileNotFoundError) as exc:  # training's DatasetError is a ValueError
        say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("interrupted: nothing partial was left in the models folder")
        return EXIT_INTERRUPTED
    except Exception as exc:  # ParityError, network errors, ...
        say(f"failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILED

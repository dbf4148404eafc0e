"""The null of substitution effects a model folder carries, so that every variant's delta_logit gets an empirical
p-value (serving/scoring/pvalues.py): NULL_DRAWS random single-base substitutions, each at the centre of a window of
the built-in generator's genome-like background (where a variant sits in the window it is scored on), scored once at
export (training/export.py) or by `bindcnn null --model DIR` for a folder exported before nulls existed.

Why the generator's background, not the model's test negatives: the test split is not kept in the model folder (an
old folder could not get a null), and a model trained on peaks or FASTA has no negatives generator of its own; the
built-in background (training/datasets/background.py: human dinucleotide frequencies, GC varying along the
sequence, CpG islands, simple repeats, no planted motif) is reproducible from one seed for every model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from serving.artifact import read_metadata, write_metadata
from serving.scoring.pvalues import METADATA_KEY, NULL_FILE, ROWS

NULL_DRAWS = 100_000
NULL_SEED = 20261210
WINDOWS_PER_STRETCH = 100  # each background stretch of L + 99 bases gives 100 windows, one substitution each
QUANTILES = (0.5, 0.9, 0.99, 0.999)


def background_substitutions(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n background windows and one random substitution at each one's centre (index length // 2, as variants):
    (reference codes (n, length) uint8, the substituted base's code (n,) uint8, never the reference's). Windows
    are the consecutive windows of ceil(n / 100) genome-like stretches (serving.dna codes; no N)."""
    from training.datasets.background import add_repeats, genome_like

    rng = np.random.default_rng(seed)
    stretches = -(-n // WINDOWS_PER_STRETCH)
    long = genome_like(stretches, length + WINDOWS_PER_STRETCH - 1, rng)
    add_repeats(long, rng)
    windows = np.lib.stride_tricks.sliding_window_view(long, length, axis=1).reshape(-1, length)[:n].copy()
    alt = ((windows[:, length // 2] + rng.integers(1, 4, size=n)) % 4).astype(np.uint8)
    return windows, alt


def draw_null(predictor, n: int = NULL_DRAWS, seed: int = NULL_SEED) -> np.ndarray:
    """|delta_logit| of n random centre substitutions on background windows, scored by predictor.predict_codes:
    (2, n) float32, each row sorted ascending; row 0 on the forward strand, row 1 with both strands' logits averaged
    (what `--rc` scores); rows named by serving.scoring.pvalues.ROWS."""
    from serving.substitutions import reverse_strand

    ref, alt = background_substitutions(n, predictor.length, seed)
    mutant = ref.copy()
    mutant[:, predictor.length // 2] = alt
    both = np.concatenate([ref, mutant])
    forward = predictor.predict_codes(both)["logit"].astype(np.float32)
    backward = predictor.predict_codes(reverse_strand(both))["logit"].astype(np.float32)
    delta = forward[n:] - forward[:n]
    delta_rc = (forward[n:] + backward[n:]) / 2 - (forward[:n] + backward[:n]) / 2
    return np.sort(np.abs(np.stack([delta, delta_rc])), axis=1).astype(np.float32)


def describe_null(null: np.ndarray, seed: int, length: int) -> dict[str, Any]:
    """metadata.json's 'null_effects' entry for a (2, n) null: file, count, seed, source, quantiles per row."""
    return {
        "file": NULL_FILE,
        "count": int(null.shape[1]),
        "seed": int(seed),
        "array": f"(2, {null.shape[1]}) float32 |delta_logit|, each row sorted ascending; rows: {', '.join(ROWS)}",
        "source": f"training/null_effects.py: one random substitution at the centre (index {length // 2}) of each "
                  "window of the built-in genome-like background (training/datasets/background.py genome_like + "
                  f"add_repeats; {WINDOWS_PER_STRETCH} consecutive windows per stretch), scored by model.onnx",
        "p_value": "(1 + #{null >= |delta_logit|}) / (1 + count): a model-relative rarity, not a clinical "
                   "significance (serving/scoring/pvalues.py)",
        "quantiles": {row: {str(q): float(np.quantile(null[i], q)) for q in QUANTILES} for i, row in enumerate(ROWS)},
    }


def add_null(model_dir: str | os.PathLike, n: int = NULL_DRAWS, seed: int = NULL_SEED,
             version: str | None = None) -> dict[str, Any]:
    """Draw the folder's null with its own model.onnx (CPU), write null_effects.npy, and rewrite metadata.json with
    its description and every file's checksum (version: a new version string, else the folder's is kept). The
    folder is verified first (serving.predictor.Predictor). Returns the metadata written."""
    from serving.predictor import Predictor

    model_dir = Path(model_dir)
    predictor = Predictor(model_dir, device="cpu")
    try:
        null = draw_null(predictor, n, seed)
    finally:
        predictor.close()
    np.save(model_dir / NULL_FILE, null)
    meta = read_metadata(model_dir)
    meta[METADATA_KEY] = describe_null(null, seed, int(meta["sequence_length"]))
    if version is not None:
        meta["version"] = version
    return write_metadata(model_dir, meta)


def cmd_null(args) -> int:
    """`bindcnn null --model DIR`: add (or redraw) the null of an exported model folder, as a new version."""
    import time

    from serving.cli.parsers import EXIT_OK
    from serving.console import say
    from training.export import new_version

    if args.n < 1000:
        raise ValueError(f"--n must be at least 1000 (p-values finer than 1/1000), got {args.n}")
    old = read_metadata(args.model)
    t0 = time.perf_counter()
    meta = add_null(args.model, args.n, args.seed, version=new_version())
    q = meta[METADATA_KEY]["quantiles"][ROWS[0]]
    say(f"{args.model}: null of {args.n:,} substitutions (seed {args.seed}) in {time.perf_counter() - t0:.1f} s; "
        f"median |delta_logit| {q['0.5']:.3g}, 99th percentile {q['0.99']:.3g}; version {old['version']} -> "
        f"{meta['version']}")
    if not args.no_register:
        from serving.store import register

        say(f"registered as {register(args.model)}")
    return EXIT_OK

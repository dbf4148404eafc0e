"""Scoring BED/narrowPeak regions on an indexed genome: each region's model-length window is cut from the genome
and scored; TSV rows `chrom start end name probability logit` in input order, bad lines in the rejects file.

score_intervals is the unit of work (a batch of Intervals + a predictor + a genome -> scores); score_regions
drives it over a file in chunks, so memory is bounded by the chunk, never by the file or the genome.
"""
from __future__ import annotations

import os
import time
from typing import IO, Iterable, Iterator

import numpy as np

from serving.dna import SequenceError, codes_to_onehot
from serving.genome import Genome
from serving.intervals import Interval, LineReject, read_intervals
from serving.scoring.score import Summary, tsv_rows

HEADER = "chrom\tstart\tend\tname\tprobability\tlogit\n"
CHUNK = 4096  # regions read, cut and scored at a time


def interval_chunks(items: Iterable[Interval | LineReject], chunk: int = CHUNK
                    ) -> Iterator[tuple[list[Interval], list[LineReject]]]:
    """Group read_intervals' stream into (intervals, rejects) of at most `chunk` lines, in file order."""
    ivs: list[Interval] = []
    bad: list[LineReject] = []
    for item in items:
        (ivs if isinstance(item, Interval) else bad).append(item)  # type: ignore[arg-type]
        if len(ivs) + len(bad) >= chunk:
            yield ivs, bad
            ivs, bad = [], []
    if ivs or bad:
        yield ivs, bad


def score_intervals(predictor, genome: Genome, intervals: list[Interval], rc: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, list[LineReject]]:
    """Score windows cut from the genome: intervals of the model's length L (read_intervals(..., length=L)).

    Returns (probability (n,), logit (n,)) float32 ((n, M) for M models: serving.model_set.ModelSet), NaN for a
    window with a non-nucleotide character, and the LineRejects saying so. One predictor call on x: (n_ok, L, 4)."""
    L = predictor.length
    codes = np.full((len(intervals), L), 4, np.uint8)
    ok = np.ones(len(intervals), bool)
    rejects = []
    for i, iv in enumerate(intervals):
        if iv.end - iv.start != L:
            raise ValueError(f"interval {iv.label} is {iv.end - iv.start} bp; the model's windows are {L} bp")
        try:
            codes[i] = genome.codes(iv.chrom, iv.start, iv.end)
        except SequenceError as exc:
            ok[i] = False
            rejects.append(LineReject(iv.line - 1, iv.label, str(exc)))
    shape = (len(intervals), len(predictor.names)) if hasattr(predictor, "names") else (len(intervals),)
    prob = np.full(shape, np.nan, np.float32)
    logit = prob.copy()
    if ok.any():
        out = predictor.predict_onehot(codes_to_onehot(codes[ok]), reverse_complement_average=rc)
        prob[ok], logit[ok] = out["probability"], out["logit"]
    return prob, logit, rejects


def header(predictor) -> str:
    """HEADER, or for several models (a ModelSet) a probability_NAME, logit_NAME pair per model."""
    columns = getattr(predictor, "columns", None)
    return HEADER if columns is None else "\t".join(["chrom", "start", "end", "name", *columns("probability", "logit")]) + "\n"


def format_rows(intervals: list[Interval], prob: np.ndarray, logit: np.ndarray) -> str:
    """TSV rows (header()) of scored intervals, numbers as score's TSV writes them; windows that could not be scored
    (NaN) are left out. prob, logit: (n,) or (n, M) for M models."""
    keep = ~np.isnan(prob if prob.ndim == 1 else prob[:, 0])
    labels = [f"{iv.chrom}\t{iv.start}\t{iv.end}\t{iv.label}" for iv, k in zip(intervals, keep) if k]
    return tsv_rows(labels, prob[keep], logit[keep])


def region_rows(predictor, genome: Genome, intervals: list[Interval], rc: bool = False
                ) -> tuple[str, list[LineReject]]:
    """The unit of work, as text: (TSV rows of the scored intervals, rejects). Engines map this over chunks."""
    prob, logit, rejects = score_intervals(predictor, genome, intervals, rc)
    return format_rows(intervals, prob, logit), rejects


def score_regions(predictor, genome: Genome, regions: str | os.PathLike, out: IO[str], rejects_out=None,
                  rc: bool = False, progress=None, chunk: int = CHUNK, engine=None) -> Summary:
    """Score every region of a BED/narrowPeak file (resized to the model's length around its summit/centre) and
    write rows to `out` chunk by chunk in file order; rejected lines go to `rejects_out` (a RejectsFile with
    LINE_REJECTS_HEADER). Returns a Summary (records = data lines). engine: a
    serving.scoring.distributed.RayEngine runs region_rows in its actors (default: here, a chunk at a time)."""
    summary = Summary()
    t0 = time.perf_counter()
    chunks = interval_chunks(read_intervals(regions, genome, predictor.length), chunk)
    if engine is None:
        done = (((ivs, bad), region_rows(predictor, genome, ivs, rc) if ivs else ("", [])) for ivs, bad in chunks)
    else:
        done = engine.pairs("regions", chunks, work=lambda c: c[0], rc=rc)
    for (ivs, bad), (rows, more) in done:
        out.write(rows)
        out.flush()
        bad = sorted(bad + more, key=lambda r: r.index)
        if rejects_out is not None:
            rejects_out.write(bad)
        summary.records += len(ivs) + len(bad) - len(more)
        summary.scored += len(ivs) - len(more)
        summary.add_rejects(bad)
        if progress is not None:
            progress.update(len(ivs) + len(bad) - len(more))
    summary.seconds = time.perf_counter() - t0
    return summary


def line_summary(summary: Summary, rejects_path: str | None, what: str = "line", limit: int = 10) -> str:
    """Person-readable list of the first `limit` rejected lines (number, id, reason)."""
    lines = [f"{summary.rejected:,} {what}(s) not scored (left out of the output)"
             + (f"; all listed in {rejects_path}" if rejects_path else "") + ":"]
    lines += [f"  line {r.index + 1} ({r.id}): {r.reason}" for r in summary.rejects[:limit]]
    if summary.rejected > limit:
        lines.append(f"  ... and {summary.rejected - limit:,} more")
    return "\n".join(lines)


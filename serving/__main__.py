"""Command line of the serving side: `python -m serving <command> --help` (also `bindcnn-serve`).

score (FASTA/.npy/HDF5 -> TSV, or --scan -> bedGraph/BED), variants (alt - ref effects), mutagenesis (ISM).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1  # the run stopped part-way (service unreachable after retries, malformed file at a line)
EXIT_USAGE = 2  # bad arguments, unreadable input or model: nothing was scored
EXIT_REJECTS = 3  # finished, but some records/variants could not be scored (listed; NA in the output)
EXIT_INTERRUPTED = 130

EPILOG = """exit codes: 0 every record scored; 1 the run stopped part-way (the message names the first
record not scored; re-run with --resume to continue); 2 bad arguments, input or model (nothing
scored); 3 finished, but some records could not be scored (NA rows in the output, reasons in the
rejects file / on stderr); 130 interrupted."""


def _backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("back end (default: --local)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running service, e.g. http://127.0.0.1:3000 (bentoml serve)")
    where.add_argument("--local", action="store_true", help="ONNX Runtime in this process, no server")
    g.add_argument("--model", default="models/ctcf", help="exported model folder for --local (default models/ctcf)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="--local execution provider: auto = CUDA when an NVIDIA device is present, else CPU "
                   "(default auto)")
    g.add_argument("--threads", type=int, default=None, help="--local ONNX Runtime threads (default: all cores)")
    g.add_argument("--batch-size", type=int, default=1000,
                   help="--url: sequences per request (default 1000)")
    g.add_argument("--workers", type=int, default=4, help="--url: requests in flight at once (default 4)")
    g.add_argument("--retries", type=int, default=3,
                   help="--url: retries of a request after a connection error or 5xx/429 (default 3)")
    g.add_argument("--timeout", type=float, default=300.0, help="--url: seconds per request (default 300)")
    g.add_argument("--rc", action="store_true",
                   help="reverse-complement averaging: score both strands, average the logits")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("score", help="score a FASTA / .npy / HDF5 file (TSV), or scan long sequences (--scan)",
                       description="Score every record of INPUT (FASTA or gzipped FASTA, streamed; a one-hot .npy "
                       "(N, L, 4) or (N, 4, L); or an HDF5 file with x_* datasets) and write a TSV "
                       "`id probability logit` in input order. Records that cannot be scored get NA and a reason "
                       "in the rejects file. With --scan, every window of the model length is scored instead "
                       "(bedGraph / BED / windows TSV).", epilog=EPILOG)
    p.add_argument("input", help="FASTA(.gz), .npy or .h5 file; '-' reads FASTA from stdin")
    p.add_argument("-o", "--output", help="output TSV (default: stdout); with --scan, a TSV of every window")
    p.add_argument("--rejects", help="TSV of records not scored: record (1-based), id, reason "
                   "(default: OUTPUT.rejects.tsv when -o is given; otherwise only on stderr)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: keep the rows already in -o and score the rest")
    p.add_argument("--key", action="append", help="HDF5 dataset(s) to score (default: every x_* dataset)")
    p.add_argument("--chunk", type=int, default=4096, help="records read and scored at a time (default 4096)")
    s = p.add_argument_group("scanning (--scan)")
    s.add_argument("--scan", action="store_true", help="score every window of the model length in each sequence")
    s.add_argument("--stride", type=int, default=1, help="bp between window starts (default 1)")
    s.add_argument("--bedgraph", help="bedGraph of window probabilities (default: stdout when no other output)")
    s.add_argument("--bed", help="BED6 of called sites: windows >= --threshold, overlapping ones merged; "
                   "name = max probability, score = round(1000 * max)")
    s.add_argument("--threshold", type=float, default=0.5, help="probability that calls a site (default 0.5)")
    s.add_argument("--short", choices=("reject", "pad"), default="reject",
                   help="sequences shorter than the model: reject, or pad with N on both sides (default reject)")
    s.add_argument("--coords", choices=("auto", "bed", "one-based", "none"), default="auto",
                   help="ids like chr1:1000-5000 are genome regions: 'bed' = 0-based start (bedtools getfasta), "
                   "'one-based' = 1-based inclusive (samtools faidx), 'auto' = whichever matches the "
                   "sequence length, 'none' = ids are names (default auto)")
    s.add_argument("--track-line", metavar="NAME", help="start bedGraph/BED with a UCSC track line named NAME")
    _backend_args(p)

    v = sub.add_parser("variants", help="effect of each variant (alt - ref) on the window centred on it",
                       description="For each variant (TSV `chrom pos ref alt [id]`, 1-based pos; or VCF), cut the "
                       "model-length window centred on it from the reference FASTA, check `ref` against the "
                       "sequence, and report ref/alt probability and logit and their alt - ref deltas. Variants "
                       "that cannot be scored (ref mismatch, outside every sequence) get NA and a status.",
                       epilog=EPILOG)
    v.add_argument("--fasta", required=True, help="reference FASTA(.gz): records named chrom or chrom:start-end")
    v.add_argument("--variants", required=True, help="TSV (chrom pos ref alt [id]) or VCF(.gz)")
    v.add_argument("-o", "--output", help="output TSV (default: stdout)")
    v.add_argument("--coords", choices=("auto", "bed", "one-based", "none"), default="auto",
                   help="how chrom:start-end FASTA ids are read (see `score --help`)")
    _backend_args(v)

    m = sub.add_parser("mutagenesis", help="in silico saturation mutagenesis of one sequence (TSV + logo PNG)",
                       description="Logit change of every single-base substitution (L x 4) of one sequence of the "
                       "model's length, all mutants in one batch; TSV and a logo PNG mean-centred per position.",
                       epilog=EPILOG)
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--sequence", help="the DNA sequence")
    src.add_argument("--fasta", help="a FASTA file: its first record, or --id")
    m.add_argument("--id", help="record id in --fasta")
    m.add_argument("-o", "--output", help="TSV: position, ref, delta_logit_A..T (default: stdout)")
    m.add_argument("--png", help="logo PNG of the mean-centred logit changes")
    _backend_args(m)
    return parser


def make_predictor(args):
    if args.url:
        from serving.client import HttpPredictor

        return HttpPredictor(args.url, batch_size=args.batch_size, workers=args.workers, retries=args.retries,
                             timeout=args.timeout)
    from serving.predictor import Predictor

    return Predictor(args.model, device=args.device, threads=args.threads)


def _say(args, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr)


def _progress(args, label: str, total=None, unit: str = "records"):
    from serving.score import Progress

    return Progress(label, total=total, unit=unit, enabled=False if args.quiet else None)


def cmd_score(args, predictor) -> int:
    from serving import score as sc

    fmt = sc.detect_format(args.input)
    if args.resume and not args.output:
        raise ValueError("--resume needs -o OUTPUT (the file to continue)")
    skip = sc.rows_done(args.output) if args.resume else 0
    rejects_path = args.rejects or (f"{args.output}.rejects.tsv" if args.output and args.output != "-" else None)
    chunk = max(args.chunk, getattr(predictor, "batch_size", 0) * getattr(predictor, "workers", 0))
    batches = (sc.fasta_batches(args.input, chunk, skip) if fmt == "fasta"
               else sc.array_batches(args.input, chunk, skip, args.key))
    total = sc.count_hint(args.input, args.key) if fmt != "fasta" else None
    out = sc.open_output(args.output, sc.HEADER, append=args.resume)
    rej = sc.open_output(rejects_path, sc.REJECTS_HEADER, append=args.resume) if rejects_path else None
    progress = _progress(args, "scoring", total)
    progress.done = skip
    summary = sc.Summary(skipped=skip)
    try:
        summary = sc.score(predictor, batches, out, rej, rc=args.rc, progress=progress, skipped=skip)
    except (KeyboardInterrupt, Exception) as exc:
        progress.close()
        done = progress.done
        where = f"; rows 1-{done} are in {args.output}, re-run with --resume to continue" if args.output else ""
        msg = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(f"error: stopped at record {done + 1} (records from {done + 1} on were not scored){where}: {msg}",
              file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_FAILED
    finally:
        for fh in (out, rej):
            if fh is not None and fh is not sys.stdout:
                fh.close()
    progress.close()
    resumed = f" (after {skip:,} already in the output)" if skip else ""
    _say(args, f"scored {summary.scored:,} of {summary.records:,} records{resumed} in {summary.seconds:.1f} s "
               f"({summary.rate:,.0f} records/s) -> {args.output or 'stdout'}")
    if summary.rejected:
        print(sc.reject_summary(summary, rejects_path), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_scan(args, predictor) -> int:
    import time

    from serving import scan
    from serving.fasta import read_fasta
    from serving.score import REJECTS_HEADER, Reject, Summary, open_output, reject_summary

    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    if args.resume:
        raise ValueError("--resume continues a scoring TSV; a scan is re-run whole")
    bedgraph_path = args.bedgraph or (None if (args.bed or args.output) else "-")
    outs = {}
    try:
        if bedgraph_path:
            outs["bedgraph"] = open_output(bedgraph_path, scan.bedgraph_track_line(args.track_line)
                                           if args.track_line else "", False)
        if args.bed:
            outs["bed"] = open_output(args.bed, scan.bed_track_line(args.track_line + " sites")
                                      if args.track_line else "", False)
        if args.output:
            outs["windows"] = open_output(args.output, scan.WINDOWS_HEADER, False)
        rejects_path = args.rejects or (f"{args.output}.rejects.tsv" if args.output and args.output != "-" else None)
        rej = open_output(rejects_path, REJECTS_HEADER, False) if rejects_path else None
        summary = Summary()
        progress = _progress(args, "scanning", unit="windows")
        t0 = time.perf_counter()
        lines = sites = 0
        records = read_fasta(sys.stdin.buffer if args.input == "-" else args.input, allow_empty=True)
        for i, rec, result, error in scan.scan_records(predictor, records, args.stride, args.short, args.rc,
                                                       on_batch=progress.update):
            summary.records += 1
            if result is None:
                r = Reject(i, rec.id, error)
                summary.rejected += 1
                summary.rejects.append(r)
                if rej is not None:
                    rej.write(f"{i + 1}\t{rec.id}\t{error}\n")
                continue
            summary.scored += 1
            region = scan.parse_region(rec.id, result.length, args.coords)
            if region.note:
                _say(args, f"note: {region.note}")
            if "bedgraph" in outs:
                lines += scan.write_bedgraph(outs["bedgraph"], result, region)
            if "bed" in outs:
                sites += scan.write_bed(outs["bed"], result, region, args.threshold)
            if "windows" in outs:
                scan.write_windows(outs["windows"], result, region)
        progress.close()
        summary.seconds = time.perf_counter() - t0
    finally:
        for fh in outs.values():
            if fh is not sys.stdout:
                fh.close()
    bp_rate = progress.done * args.stride / summary.seconds if summary.seconds else 0
    wrote = ", ".join(filter(None, [
        f"bedGraph {bedgraph_path if bedgraph_path != '-' else 'stdout'} ({lines:,} intervals)" if bedgraph_path else "",
        f"BED {args.bed} ({sites:,} sites >= {args.threshold})" if args.bed else "",
        f"windows {args.output}" if args.output else ""]))
    _say(args, f"scanned {summary.scored:,} sequence(s), {progress.done:,} windows at stride {args.stride} in "
               f"{summary.seconds:.1f} s ({progress.done / max(summary.seconds, 1e-9):,.0f} windows/s, "
               f"{bp_rate:,.0f} bp/s) -> {wrote}")
    if summary.rejected:
        print(reject_summary(summary, rejects_path, note="not in the tracks"), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_variants(args, predictor) -> int:
    from serving import variants as va

    vs = va.read_variants(args.variants)
    va.locate(vs, args.fasta, predictor.length, args.coords)
    eff = va.variant_effects(predictor, vs, rc=args.rc)
    out = sys.stdout if not args.output or args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        va.write_effects(out, vs, eff)
    finally:
        if out is not sys.stdout:
            out.close()
    scored, bad = va.summarise(vs)
    _say(args, f"scored {scored:,} of {len(vs):,} variants -> {args.output or 'stdout'}")
    if bad:
        lines = [f"{len(bad):,} variant(s) not scored (NA, reason in the status column):"]
        lines += [f"  line {v.line} ({v.name}): {v.status}" for v in bad[:10]]
        if len(bad) > 10:
            lines.append(f"  ... and {len(bad) - 10:,} more")
        print("\n".join(lines), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_mutagenesis(args, predictor) -> int:
    from serving import variants as va

    rid, seq = ("sequence", args.sequence) if args.sequence else va.first_record(args.fasta, args.id)
    delta, ref_logit = va.saturation_mutagenesis(predictor, seq, rc=args.rc)
    out = sys.stdout if not args.output or args.output == "-" else open(args.output, "w", encoding="utf-8")
    try:
        va.write_mutagenesis(out, delta, seq, predictor.alphabet)
    finally:
        if out is not sys.stdout:
            out.close()
    if args.png:
        va.plot_mutagenesis(delta, args.png, title=f"{rid}: ISM, logit {ref_logit:.3g}")
    _say(args, f"{rid}: logit {ref_logit:.4g}; {delta.size} substitutions -> {args.output or 'stdout'}"
               + (f", logo {args.png}" if args.png else ""))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Heavy imports (numpy, onnxruntime, httpx) only after the arguments are known.
    from serving.artifact import ArtifactError
    from serving.encoding import SequenceError
    from serving.fasta import FastaError

    for name in ("input", "fasta", "variants"):
        path = getattr(args, name, None)
        if path and path != "-" and not Path(path).is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return EXIT_USAGE
    try:
        predictor = make_predictor(args)
    except (ArtifactError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the service cannot be reached or answers nonsense
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if args.command == "score":
            return (cmd_scan if args.scan else cmd_score)(args, predictor)
        if args.command == "variants":
            return cmd_variants(args, predictor)
        return cmd_mutagenesis(args, predictor)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FastaError, SequenceError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        close = getattr(predictor, "close", None)
        if close is not None:
            close()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())

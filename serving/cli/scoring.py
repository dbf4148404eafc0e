"""The score and scan commands: files in, TSV / bedGraph / BED out, with progress, rejects and resume."""
from __future__ import annotations

import sys
import time

from serving.cli.parsers import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_REJECTS, EXIT_USAGE
from serving.console import Progress, say
from serving.fasta import FastaError
from serving.scoring import inputs, outputs
from serving.scoring import score as sc


def _progress(args, label: str, total=None, unit: str = "records") -> Progress:
    return Progress(label, total=total, unit=unit, enabled=False if args.quiet else None)


def cmd_score_or_scan(args, predictor) -> int:
    return (cmd_scan if args.scan else cmd_score)(args, predictor)


def cmd_score(args, predictor) -> int:
    if args.genome or args.regions:
        from serving.cli.genome import cmd_score_regions

        return cmd_score_regions(args, predictor)
    if args.input is None:
        raise ValueError("give INPUT (FASTA, .npy or .h5), or --genome G.fa --regions R.bed")
    fmt = inputs.detect_format(args.input)
    if args.resume and not args.output:
        raise ValueError("--resume needs -o OUTPUT (the file to continue)")
    header = sc.header(predictor)  # one model: id probability logit; several: a pair of columns per model
    skip = outputs.rows_done(args.output, header) if args.resume else 0
    rejects_path = args.rejects or outputs.default_rejects_path(args.output)
    # Through a service: whole waves of requests, 4 per chunk, so the service's workers seldom wait between chunks.
    wave = getattr(predictor, "batch_size", 0) * getattr(predictor, "workers", 0)
    chunk = max(args.chunk or inputs.CHUNK, 4 * wave)
    batches = (inputs.fasta_batches(args.input, chunk, skip) if fmt == "fasta"
               else inputs.array_batches(args.input, chunk, skip, args.key))
    total = inputs.count_hint(args.input, args.key) if fmt != "fasta" else None
    out = outputs.open_output(args.output, header, append=args.resume)
    rejects = outputs.RejectsFile(rejects_path, append=args.resume)
    progress = _progress(args, "scoring", total)
    progress.done = skip
    try:
        summary = sc.score(predictor, batches, out, rejects, rc=args.rc, progress=progress, skipped=skip)
    except (FastaError, ValueError) as exc:  # malformed input: resume cannot fix it
        progress.close()
        print(f"error: {args.input}: {exc} (records before it are in {args.output or 'stdout'}; fix the file "
              "and re-run)", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader of stdout is gone (`| head`): serving.cli.main ends quietly
        raise
    except (KeyboardInterrupt, Exception) as exc:
        progress.close()
        done = progress.done
        where = f"; rows 1-{done} are in {args.output}, re-run with --resume to continue" if args.output else ""
        msg = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        print(f"error: stopped at record {done + 1} (records from {done + 1} on were not scored){where}: {msg}",
              file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_FAILED
    finally:
        outputs.close_output(out)
        rejects.close()
    progress.close()
    if summary.records == 0 and skip == 0:
        print(f"error: {args.input}: the file holds no records (expected '>id' lines followed by sequence lines)",
              file=sys.stderr)
        return EXIT_USAGE
    resumed = f" (after {skip:,} already in the output)" if skip else ""
    say(f"scored {summary.scored:,} of {summary.records:,} records{resumed} in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} records/s) -> {args.output or 'stdout'}", args.quiet)
    if summary.rejected:
        print(outputs.reject_summary(summary, rejects_path), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_scan(args, predictor) -> int:
    from serving.fasta import read_fasta
    from serving.scoring import scan
    from serving.scoring.regions import parse_region

    if args.stride < 1:
        raise ValueError(f"--stride must be >= 1, got {args.stride}")
    if args.genome:
        from serving.cli.genome import cmd_scan_genome

        return cmd_scan_genome(args, predictor)
    if args.input is None:
        raise ValueError("give INPUT (a FASTA of long sequences), or --genome G.fa")
    for flag in ("regions", "chroms", "bigwig"):
        if getattr(args, flag, None):
            raise ValueError(f"--{flag} needs --genome (chromosome names and sizes come from its index)")
    if args.resume:
        raise ValueError("--resume continues a scoring TSV; a scan is re-run whole")
    bedgraph_path = args.bedgraph or (None if (args.bed or args.output) else "-")
    track = args.track_line
    models = list(zip(predictor.names, predictor.predictors)) if hasattr(predictor, "names") else [(None, predictor)]
    if len(models) > 1 and bedgraph_path == "-":
        raise ValueError("several --model arguments write a file per model (NAME before the extension): give "
                         "--bedgraph, --bed or -o paths instead of stdout")
    outs = {}  # (model name or None, "bedgraph"/"bed"/"windows") -> open file
    rejects_path = args.rejects or outputs.default_rejects_path(args.output)
    rejects = outputs.RejectsFile(rejects_path)
    summary = sc.Summary()
    progress = _progress(args, "scanning", unit="windows")
    lines = sites = 0
    try:
        for name, _ in models:
            opened = outputs.open_scan_outputs(*(suffixed(p, name) for p in (bedgraph_path, args.bed, args.output)),
                                               track and (f"{track} {name}" if name else track))
            outs.update({(name, kind): fh for kind, fh in opened.items()})
        t0 = time.perf_counter()
        records = read_fasta(sys.stdin.buffer if args.input == "-" else args.input, allow_empty=True)
        scanned = (scan.scan_records(predictor, records, args.stride, args.short, args.rc, on_batch=progress.update)
                   if len(models) == 1 else scan_with_models(models, records, args, progress.update))
        for i, rec, result, error in scanned:
            summary.records += 1
            if result is None:
                reject = sc.Reject(i, rec.id, error)
                summary.add_rejects([reject])
                rejects.write([reject])
                continue
            summary.scored += 1
            results = result if isinstance(result, list) else [result]
            region = parse_region(rec.id, results[0].length, args.coords)
            if region.note:
                say(f"note: {region.note}", args.quiet)
            for (name, _), one in zip(models, results):
                if (name, "bedgraph") in outs:
                    lines += outputs.write_bedgraph(outs[name, "bedgraph"], one, region)
                if (name, "bed") in outs:
                    sites += outputs.write_bed(outs[name, "bed"], one, region, args.threshold)
                if (name, "windows") in outs:
                    outputs.write_windows(outs[name, "windows"], one, region)
        progress.close()
        summary.seconds = time.perf_counter() - t0
    finally:
        for fh in outs.values():
            outputs.close_output(fh)
        rejects.close()
    if summary.records == 0:
        print(f"error: {args.input}: the file holds no records", file=sys.stderr)
        return EXIT_USAGE
    done = progress.done // len(models)  # each model scored every window
    bp_rate = done * args.stride / summary.seconds if summary.seconds else 0
    several = " per model: " + ", ".join(str(n) for n, _ in models) if len(models) > 1 else ""
    named = (lambda p: suffixed(p, "NAME")) if len(models) > 1 else (lambda p: p)
    wrote = ", ".join(filter(None, [
        f"bedGraph {named(bedgraph_path) if bedgraph_path != '-' else 'stdout'} ({lines:,} intervals)" if bedgraph_path else "",
        f"BED {named(args.bed)} ({sites:,} sites >= {args.threshold})" if args.bed else "",
        f"windows {named(args.output)}" if args.output else ""])) + several
    say(f"scanned {summary.scored:,} sequence(s), {done:,} windows at stride {args.stride}"
        f"{f' with {len(models)} models' if len(models) > 1 else ''} in "
        f"{summary.seconds:.1f} s ({done / max(summary.seconds, 1e-9):,.0f} windows/s, "
        f"{bp_rate:,.0f} bp/s) -> {wrote}", args.quiet)
    if summary.rejected:
        print(outputs.reject_summary(summary, rejects_path, note="not in the tracks"), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def suffixed(path: str | None, name: str | None) -> str | None:
    """A model's own output file: scan.bedgraph -> scan.NAME.bedgraph (None and '-' stay; name None: path)."""
    if not path or path == "-" or name is None:
        return path
    from pathlib import Path

    p = Path(path)
    stem, dot, ext = p.name.partition(".")
    return str(p.with_name(f"{stem}.{name}{dot}{ext}"))


def scan_with_models(models: list, records, args, on_batch):
    """scan.scan_records for several models: each record is read and encoded (to codes) once and every model
    scans the same codes. Yields (index, record, [ScanResult per model] or None, error message)."""
    import numpy as np

    from serving.dna import SequenceError, to_codes
    from serving.scoring import scan

    first = models[0][1]
    for i, rec in enumerate(records):
        try:
            if len(rec.sequence) < first.length:  # empty or short: scan_sequence's checks and padding (one window)
                yield i, rec, [scan.scan_sequence(p, rec.sequence, args.stride, args.short, args.rc, rid=rec.id,
                                                  index=i, on_batch=on_batch) for _, p in models], ""
                continue
            codes = to_codes(rec.sequence, i, first.alphabet)
        except SequenceError as exc:
            yield i, rec, None, exc.reason
            continue
        starts = np.arange(scan.n_windows(len(codes), first.length, args.stride), dtype=np.int64) * args.stride
        results = []
        for _, p in models:
            prob, logit = scan.scan_codes(p, codes, args.stride, scan.BATCH, args.rc, on_batch)
            results.append(scan.ScanResult(rec.id, len(codes), first.length, args.stride, starts, prob, logit))
        yield i, rec, results, ""

"""The genome-scale forms of score, scan and variants (`--genome G.fa`): regions from BED/narrowPeak, whole-genome
scans to bedGraph/bigWig/BED, VCFs in chunks; each drives one unit-of-work function of serving.scoring per chunk."""
from __future__ import annotations

import sys
import time
from itertools import islice

from serving.cli.parsers import EXIT_OK, EXIT_REJECTS, EXIT_USAGE
from serving.cli.scoring import _progress, suffixed
from serving.console import say
from serving.genome import Genome
from serving.scoring import outputs


def _genome(args, predictor, path: str | None = None) -> Genome:
    """The indexed genome (--genome, or `path`: the variants command's --fasta), records named chrom:start-end
    read as pieces of chrom by --coords."""
    path = path or args.genome
    if not path:
        raise ValueError("this form needs --genome G.fa (an indexed FASTA, plain or bgzip)")
    if getattr(args, "input", None):
        raise ValueError(f"give either INPUT ({args.input}) or --genome, not both")
    return Genome(path, quiet=args.quiet, alphabet=predictor.alphabet, coords=getattr(args, "coords", "auto"))


def _engine(args, genome: Genome):
    """--engine ray: a serving.scoring.distributed.RayEngine (joins or starts Ray); --engine local: None."""
    if getattr(args, "engine", "local") != "ray":
        return None
    from serving.scoring import distributed

    return distributed.RayEngine(genome, distributed.predictor_factory(args), args.ray_address, args.device,
                                 args.threads, args.quiet)


def _ambiguous(genome: Genome) -> str:
    return f"; {genome.ambiguous:,} IUPAC ambiguity code(s) scored as N" if genome.ambiguous else ""


def cmd_score_regions(args, predictor) -> int:
    from serving.intervals import count_lines
    from serving.scoring.genome_regions import CHUNK, header, line_summary, score_regions

    if not (args.genome and args.regions):
        raise ValueError("scoring regions needs both --genome G.fa and --regions R.bed (or narrowPeak)")
    if args.resume:
        raise ValueError("--resume continues a FASTA scoring TSV; scoring regions is re-run whole")
    genome = _genome(args, predictor)
    engine = _engine(args, genome)
    rejects_path = args.rejects or outputs.default_rejects_path(args.output)
    rejects = outputs.RejectsFile(rejects_path, header=outputs.LINE_REJECTS_HEADER)
    progress = _progress(args, "scoring regions", count_lines(args.regions), unit="regions")
    out = outputs.open_output(args.output, header(predictor))
    try:
        summary = score_regions(predictor, genome, args.regions, out, rejects, args.rc, progress, args.chunk or CHUNK,
                                engine=engine)
    finally:
        if engine is not None:
            engine.close()
        progress.close()
        outputs.close_output(out)
        rejects.close()
    if summary.records == 0:
        print(f"error: {args.regions}: no regions (expected BED lines: chrom, start, end, ...)", file=sys.stderr)
        return EXIT_USAGE
    say(f"scored {summary.scored:,} of {summary.records:,} regions in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} regions/s) -> {args.output or 'stdout'}{_ambiguous(genome)}", args.quiet)
    if summary.rejected:
        print(line_summary(summary, rejects_path, "region line"), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def _scan_spans(args, genome: Genome, length: int, rejects) -> tuple[list, int]:
    """The spans to scan (genome order) and the number of rejected --regions lines."""
    from serving.intervals import Interval, merge_spans, read_intervals
    from serving.scoring.genome_scan import whole_chromosomes

    chroms_arg = getattr(args, "chroms", None)  # (score --scan has no --chroms)
    if args.regions and chroms_arg:
        raise ValueError("give --regions or --chroms, not both")
    if not args.regions:
        chroms = [c.strip() for c in chroms_arg.split(",") if c.strip()] if chroms_arg else None
        return whole_chromosomes(genome, chroms), 0
    items = list(read_intervals(args.regions, genome))
    bad = [r for r in items if not isinstance(r, Interval)]
    rejects.write(bad)
    if bad:
        print(f"{len(bad):,} region line(s) not scanned, e.g. line {bad[0].index + 1} ({bad[0].id}): "
              f"{bad[0].reason}", file=sys.stderr)
    return merge_spans([r for r in items if isinstance(r, Interval)], genome, length), len(bad)


def cmd_scan_genome(args, predictor) -> int:
    from serving.scoring.bigwig import BigWigWriter
    from serving.scoring.genome_scan import SiteStream, count_windows, scan_genome, too_short
    from serving.scoring.regions import Region

    genome = _genome(args, predictor)
    L, stride, bigwig_path = predictor.length, args.stride, getattr(args, "bigwig", None)
    rejects_path = args.rejects or outputs.default_rejects_path(args.output or bigwig_path or args.bedgraph)
    rejects = outputs.RejectsFile(rejects_path, header=outputs.LINE_REJECTS_HEADER)
    try:
        spans, n_bad = _scan_spans(args, genome, L, rejects)
    finally:
        rejects.close()
    short = too_short(spans, L)
    spans = [s for s in spans if s.end - s.start >= L]
    if short:
        names = ", ".join(f"{s.chrom}:{s.start}-{s.end}" for s in short[:5]) + (", ..." if len(short) > 5 else "")
        say(f"note: {len(short):,} sequence(s) shorter than the model's {L} bp not scanned: {names}", args.quiet)
    if not spans:
        print("error: nothing to scan (no chromosome or region of at least the model's length)", file=sys.stderr)
        return EXIT_USAGE
    bedgraph_path = args.bedgraph or (None if (args.bed or args.output or bigwig_path) else "-")
    track = args.track_line
    models = list(zip(predictor.names, predictor.predictors)) if hasattr(predictor, "names") else [(None, predictor)]
    if len(models) > 1 and bedgraph_path == "-":
        raise ValueError("several --model arguments write a file per model (NAME before the extension): give "
                         "--bedgraph, --bigwig, --bed or -o paths instead of stdout")
    if len(models) > 1 and getattr(args, "engine", "local") != "local":
        raise ValueError("several --model arguments scan here (--engine local) for now; give one model for "
                         "--engine ray")
    outs: dict = {}  # (model name or None, "bedgraph"/"bed"/"windows") -> open file
    bigwigs: dict = {}
    sites = {name: SiteStream(args.threshold) for name, _ in models} if args.bed else None
    counts = {"bedgraph": 0, "sites": 0, "windows": 0}
    engine = _engine(args, genome)
    windows = count_windows(spans, L, stride)
    progress = _progress(args, "scanning", windows * len(models), unit="windows")
    t0 = time.perf_counter()
    try:
        for name, _ in models:
            opened = outputs.open_scan_outputs(*(suffixed(p, name) for p in (bedgraph_path, args.bed, args.output)),
                                               track and (f"{track} {name}" if name else track))
            outs.update({(name, kind): fh for kind, fh in opened.items()})
            if bigwig_path:
                bigwigs[name] = BigWigWriter(suffixed(bigwig_path, name), genome.sizes, intervals=windows)
        if bigwigs and not next(iter(bigwigs.values())).zooms:
            say(f"note: {bigwig_path} is written without zoom levels ({windows:,} "
                "intervals; libBigWig would hold ~8 bytes each in memory for them): complete values, slower "
                "zoomed-out views. For zoom levels use a larger --stride, or bedGraphToBigWig on --bedgraph",
                args.quiet)
        if len(models) > 1:
            results = _scan_genome_models(models, genome, spans, stride, args.rc, progress.update)
        else:
            results = ([r] for r in (scan_genome(predictor, genome, spans, stride, args.rc, on_batch=progress.update)
                                     if engine is None else engine.scan(spans, L, stride, args.rc,
                                                                        on_tile=progress.update)))
        for per_model in results:
            counts["windows"] += len(per_model[0].starts)
            for (name, _), result in zip(models, per_model):
                region = Region(result.id)
                if (name, "bedgraph") in outs:
                    counts["bedgraph"] += outputs.write_bedgraph(outs[name, "bedgraph"], result, region)
                if name in bigwigs:
                    bigwigs[name].add(result, region)
                if sites is not None:
                    done = sites[name].add(result)
                    outs[name, "bed"].write(outputs.format_sites(done))
                    counts["sites"] += len(done)
                if (name, "windows") in outs:
                    outputs.write_windows(outs[name, "windows"], result, region)
        for name, stream in (sites or {}).items():
            done = stream.flush()
            outs[name, "bed"].write(outputs.format_sites(done))
            counts["sites"] += len(done)
    finally:
        if engine is not None:
            engine.close()
        progress.close()
        for fh in outs.values():
            outputs.close_output(fh)
        for bw in bigwigs.values():
            bw.close()
    seconds = time.perf_counter() - t0
    named = (lambda p: suffixed(p, "NAME")) if len(models) > 1 else (lambda p: p)
    wrote = ", ".join(filter(None, [
        f"bedGraph {named(bedgraph_path) if bedgraph_path != '-' else 'stdout'}" if bedgraph_path else "",
        f"bigWig {named(bigwig_path)}" if bigwig_path else "",
        f"BED {named(args.bed)} ({counts['sites']:,} sites >= {args.threshold})" if args.bed else "",
        f"windows {named(args.output)}" if args.output else ""]))
    if len(models) > 1:
        wrote += " per model: " + ", ".join(name for name, _ in models)
    bp = sum(s.end - s.start for s in spans)
    say(f"scanned {len(spans):,} span(s), {bp:,} bp, {counts['windows']:,} windows at stride {stride} in "
        f"{seconds:.1f} s ({counts['windows'] / max(seconds, 1e-9):,.0f} windows/s) -> {wrote}"
        f"{_ambiguous(genome)}", args.quiet)
    if n_bad:
        print(f"{n_bad:,} region line(s) not scanned; listed in {rejects_path or 'stderr above'}", file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def _scan_genome_models(models: list, genome: Genome, spans: list, stride: int, rc: bool, on_batch):
    """scan_genome for several models: each tile's bases read from the genome once, every model scanning the same
    codes. Yields [ScanResult per model] tile by tile."""
    import numpy as np

    from serving.scoring.genome_scan import plan_tiles
    from serving.scoring.scan import BATCH, ScanResult, scan_codes

    L = models[0][1].length
    for tile in plan_tiles(spans, genome, L, stride):
        codes = genome.codes(tile.chrom, tile.start, tile.end(L, stride))
        starts = tile.start + np.arange(tile.windows, dtype=np.int64) * stride
        yield [ScanResult(tile.chrom, tile.size, L, stride, starts, *scan_codes(p, codes, stride, BATCH, rc, on_batch))
               for _, p in models]


def _records(args, skipped: list[int]):
    """(chunks of VcfRecords, the VcfInput or None, total records or None) for --vcf, or --variants (a VCF/BCF
    read as --vcf is, else a TSV)."""
    from serving.scoring import vcf as vc
    from serving.scoring.variants import iter_variants

    path = args.vcf or args.variants
    if args.vcf or vc.is_vcf(path):
        source = vc.VcfInput(path)
        records = source.records(args.pass_only, bool(args.vcf_out), skipped)
        return vc.chunked(records, args.chunk), source, vc.count_records(path)
    if args.vcf_out or args.pass_only:
        raise ValueError(f"--vcf-out and --pass-only need a VCF or BCF ({path} is read as a TSV of variants)")
    records = (vc.VcfRecord([v]) for v in iter_variants(path))
    return vc.chunked(records, args.chunk), None, vc.count_records(path)


def _scored_chunks(predictor, genome: Genome, chunks, rc: bool, engine):
    """(VcfRecords, effect rows) per chunk, in order: here one chunk at a time, or on Ray (--engine ray). Several
    models (a ModelSet): each chunk placed and cut once, then (VcfRecords, [each model's effect rows])."""
    from serving.scoring import variants as va
    from serving.scoring.vcf import chunk_effects, place_chunk, score_variant_chunk

    if engine is not None:
        yield from engine.variants(chunks, rc)
        return
    if hasattr(predictor, "names"):
        for records in chunks:
            variants = [v for rec in records for v in rec.variants]
            placed = place_chunk(genome, variants, predictor.length, predictor.alphabet)
            yield records, [va.effect_rows(variants, chunk_effects(p, len(variants), placed, rc))
                            for p in predictor.predictors]
        return
    for records in chunks:
        yield records, score_variant_chunk(predictor, genome, [v for rec in records for v in rec.variants], rc)


def _explain(args, predictor, genome: Genome, chosen: list) -> None:
    """--explain N: the attribution of the chosen variants' ref and alt windows (cut again here: an engine's rows
    may come without them) into --explain-dir or the folder beside the output."""
    from serving.scoring.variant_explain import default_folder, explain_top
    from serving.scoring.vcf import place_in_genome

    if not chosen:
        say("note: --explain: no variant was scored, nothing to explain", args.quiet)
        return
    for v, _ in chosen:
        if v.ref_window is None:
            place_in_genome(v, genome, predictor.length)
    folder = args.explain_dir or default_folder(args.output)
    t0 = time.perf_counter()
    index = explain_top(predictor, chosen, folder, args.quiet)
    say(f"explained the {len(chosen):,} variant(s) with the largest |delta_logit| in {time.perf_counter() - t0:.1f} s "
        f"-> {folder}/ (ref, alt and alt - ref attribution: a PNG and a .npy each; {index.name} lists them)",
        args.quiet)


def cmd_variants_genome(args, predictor) -> int:
    """variants: --vcf/--variants against --genome, or against --fasta (the same indexed reader, .fai built on first
    use): TSV rows (and --vcf-out) written chunk by chunk."""
    from serving.scoring import variants as va
    from serving.scoring.variant_explain import TopEffects
    from serving.scoring.vcf_out import VcfOut

    if getattr(args, "all_snvs", False):  # its options were checked before the model loaded (cli.run)
        return cmd_all_snvs(args, predictor)
    if args.fasta and args.genome:
        raise ValueError("give --genome or --fasta (the same: an indexed FASTA read by interval), not both")
    if not (args.fasta or args.genome) or bool(args.vcf) == bool(args.variants):
        raise ValueError("give --genome G.fa (or --fasta REF.fa) and one of --vcf V.vcf[.gz|.bcf] or --variants "
                         "V.tsv (or --all-snvs with --regions R.bed or --chroms: every possible SNV)")
    if args.chunk < 1:
        raise ValueError(f"--chunk must be >= 1, got {args.chunk}")
    explain = getattr(args, "explain", 0) or 0
    if explain < 0:
        raise ValueError(f"--explain must be >= 0, got {explain}")
    if explain and getattr(predictor, "model_dir", None) is None:
        raise ValueError("--explain needs a local model folder (--model DIR: its TensorFlow SavedModel), not --url")
    names = getattr(predictor, "names", None)  # several --model: each model's columns and INFO fields
    if names and (explain or getattr(args, "engine", "local") != "local"):
        raise ValueError("several --model arguments: variants runs them here (--engine local) without --explain "
                         "for now; give one model for --explain or --engine ray")
    skipped = [0]
    chunks, source, total = _records(args, skipped)
    genome = _genome(args, predictor, args.fasta or args.genome)
    unit = source.unit if source is not None else "line"
    out = outputs.open_output(args.output, va.models_header(names) if names else va.HEADER)
    vcf_out = VcfOut(args.vcf_out, source.header, source.path, names) if args.vcf_out else None
    engine = _engine(args, genome)
    progress = _progress(args, "variants", total, unit="records")
    top = TopEffects(explain) if explain else None
    n = scored = seen_skipped = 0
    bad: list = []
    t0 = time.perf_counter()
    try:
        for records, rows in _scored_chunks(predictor, genome, chunks, args.rc, engine):
            variants = [v for rec in records for v in rec.variants]
            per_model, rows = (rows, rows[0]) if names else (None, rows)
            out.write(va.format_model_effects(per_model) if names else va.format_effects(rows))
            out.flush()
            if vcf_out is not None:
                vcf_out.write(records, rows, per_model)
            if top is not None:
                top.add(variants, rows)
            n += len(variants)
            ok = sum(1 for v in variants if v.status == "ok")
            scored += ok
            if ok < len(variants) and len(bad) < 10:
                bad.extend(islice((v for v in variants if v.status != "ok"), 10 - len(bad)))
            progress.update(len(records) + skipped[0] - seen_skipped)
            seen_skipped = skipped[0]
    finally:
        if engine is not None:
            engine.close()
        progress.close()
        outputs.close_output(out)
        if vcf_out is not None:
            vcf_out.close()
    seconds = time.perf_counter() - t0
    filtered = f"; {skipped[0]:,} record(s) failing FILTER left out (--pass-only)" if skipped[0] else ""
    say(f"scored {scored:,} of {n:,} variants in {seconds:.1f} s ({n / max(seconds, 1e-9):,.0f} variants/s) -> "
        f"{args.output or 'stdout'}" + (f", annotated VCF {args.vcf_out}" if args.vcf_out else "") + filtered
        + _ambiguous(genome), args.quiet)
    if n == 0 and not skipped[0]:
        print(f"error: {args.vcf or args.variants}: no variants", file=sys.stderr)
        return EXIT_USAGE
    if top is not None:
        _explain(args, predictor, genome, top.chosen())
    if scored < n:
        lines = [f"{n - scored:,} variant(s) not scored (NA, reason in the status column), e.g.:"]
        lines += [f"  {unit} {v.line} ({v.name}): {v.status}" for v in bad[:10]]
        print("\n".join(lines), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_all_snvs(args, predictor) -> int:
    """variants --all-snvs: every possible SNV of --regions/--chroms (serving.scoring.all_snvs) into -o, tile by
    tile, and the strongest delta per base into --bigwig."""
    from serving.scoring import all_snvs as al
    from serving.scoring.bigwig import BigWigWriter

    genome = _genome(args, predictor, args.fasta or args.genome)
    L = predictor.length
    rejects_path = outputs.default_rejects_path(args.output)
    rejects = outputs.RejectsFile(rejects_path, header=outputs.LINE_REJECTS_HEADER)
    try:
        spans, n_bad = _scan_spans(args, genome, 0, rejects)  # merged, genome order, not widened
    finally:
        rejects.close()
    centres = al.centre_spans(genome, spans, L)
    if not centres:
        print(f"error: no position of the {'regions' if args.regions else 'chromosomes'} has its centred {L} bp "
              "window inside its chromosome (positions closer than half a window to an end are not scored)",
              file=sys.stderr)
        return EXIT_USAGE
    bases = sum(c.end - c.start for c in centres)
    out = al.EffectsFile(args.output)
    bigwig = BigWigWriter(args.bigwig, genome.sizes, intervals=bases) if args.bigwig else None
    progress = _progress(args, "all SNVs", bases, unit="bases")
    try:
        summary = al.write_all_snvs(predictor, genome, centres, out, bigwig, args.rc, progress.update)
    finally:
        progress.close()
        out.close()
        if bigwig is not None:
            bigwig.close()
    skipped = f"; {summary.skipped:,} position(s) with an N or IUPAC reference skipped" if summary.skipped else ""
    say(f"scored {summary.snvs:,} SNVs at {summary.positions:,} positions{skipped} in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} SNVs/s) -> {args.output}" + (f", bigWig {args.bigwig}" if args.bigwig else "")
        + (f" (index: tabix -s1 -b2 -e2 {args.output})" if al.is_bgzf_name(args.output) else ""), args.quiet)
    if n_bad:
        print(f"{n_bad:,} region line(s) not scored; listed in {rejects_path}", file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK

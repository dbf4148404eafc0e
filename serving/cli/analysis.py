"""The variants and mutagenesis commands: effects of changes to a sequence, as TSV (and a logo PNG)."""
from __future__ import annotations

from serving.cli.parsers import EXIT_OK
from serving.console import say
from serving.scoring import outputs


def cmd_variants(args, predictor) -> int:
    """variants: --fasta REF.fa and --genome G.fa are the same indexed reader (serving.genome, the .fai built on
    first use), so the reference is read by interval whichever is given; see serving.cli.genome."""
    from serving.cli.genome import cmd_variants_genome

    return cmd_variants_genome(args, predictor)


def cmd_mutagenesis(args, predictor) -> int:
    """mutagenesis: --sequence S, or every record of --fasta F (only the one named by --id), into one TSV
    (serving.scoring.mutagenesis.header) and optionally --npy (N, L, 4) float32 in the TSV's record order; --png draws
    the first record scored. Records that cannot be scored are listed on stderr (exit 3)."""
    import sys

    import numpy as np

    from serving.cli.parsers import EXIT_REJECTS
    from serving.fasta import Record, read_fasta
    from serving.scoring import mutagenesis as mu

    records = [Record("sequence", args.sequence)] if args.sequence else read_fasta(args.fasta)
    rid = None if args.sequence else args.id
    deltas, bad, first, scored = [], [], None, 0
    out = outputs.open_output(args.output, mu.header(predictor.alphabet))
    try:
        for rec, delta, ref_logit, reason in mu.mutagenesis_records(predictor, records, args.rc, rid):
            if delta is None:
                bad.append((rec.id, reason))
                continue
            mu.write_mutagenesis(out, delta, rec.sequence, rec.id)
            scored += 1
            if args.npy:
                deltas.append(delta)
            if first is None:
                first = (rec, delta, ref_logit)
    finally:
        outputs.close_output(out)
    if first is None and not bad:
        raise ValueError(f"{args.fasta}: no record {rid!r}" if rid else f"{args.fasta}: no records")
    if args.npy and deltas:
        np.save(args.npy, np.stack(deltas))
    if first is not None:
        rec, delta, ref_logit = first
        if args.png:
            mu.plot_mutagenesis(delta, rec.sequence, args.png, title=f"{rec.id}: ISM, logit {ref_logit:.3g}",
                                alphabet=predictor.alphabet)
        what = (f"{rec.id}: logit {ref_logit:.4g}; {3 * predictor.length} substitutions" if scored == 1
                else f"{scored:,} records, {3 * predictor.length} substitutions each")
        say(f"{what} -> {args.output or 'stdout'}" + (f", {args.npy}" if args.npy and deltas else "")
            + (f", logo {args.png} ({rec.id})" if args.png else ""), args.quiet)
    if bad:
        lines = [f"{len(bad):,} record(s) not scored:"] + [f"  {i}: {reason}" for i, reason in bad[:10]]
        print("\n".join(lines + ([f"  ... and {len(bad) - 10:,} more"] if len(bad) > 10 else [])), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK

"""The variants and mutagenesis commands: effects of changes to a sequence, as TSV (and a logo PNG)."""
from __future__ import annotations

import sys

from serving.cli.parsers import EXIT_OK, EXIT_REJECTS
from serving.console import say
from serving.scoring import outputs


def cmd_variants(args, predictor) -> int:
    from serving.scoring import variants as va

    if args.genome or args.vcf:
        from serving.cli.genome import cmd_variants_genome

        return cmd_variants_genome(args, predictor)
    if not (args.fasta and args.variants):
        raise ValueError("give --fasta REF.fa --variants V.tsv, or --genome G.fa --vcf V.vcf.gz")
    for flag in ("vcf_out", "pass_only"):
        if getattr(args, flag):
            raise ValueError(f"--{flag.replace('_', '-')} needs --genome and --vcf")
    vs = va.read_variants(args.variants)
    va.locate(vs, args.fasta, predictor.length, args.coords)
    rows = va.effect_rows(vs, va.variant_effects(predictor, vs, rc=args.rc))
    out = outputs.open_output(args.output)
    try:
        va.write_effects(out, rows)
    finally:
        outputs.close_output(out)
    scored, bad = va.summarise(vs)
    say(f"scored {scored:,} of {len(vs):,} variants -> {args.output or 'stdout'}", args.quiet)
    if bad:
        lines = [f"{len(bad):,} variant(s) not scored (NA, reason in the status column):"]
        lines += [f"  line {v.line} ({v.name}): {v.status}" for v in bad[:10]]
        if len(bad) > 10:
            lines.append(f"  ... and {len(bad) - 10:,} more")
        print("\n".join(lines), file=sys.stderr)
        return EXIT_REJECTS
    return EXIT_OK


def cmd_mutagenesis(args, predictor) -> int:
    from serving.scoring import mutagenesis as mu

    rid, seq = ("sequence", args.sequence) if args.sequence else mu.first_record(args.fasta, args.id)
    delta, ref_logit = mu.saturation_mutagenesis(predictor, seq, rc=args.rc)
    out = outputs.open_output(args.output)
    try:
        mu.write_mutagenesis(out, delta, seq, predictor.alphabet)
    finally:
        outputs.close_output(out)
    if args.png:
        mu.plot_mutagenesis(delta, seq, args.png, title=f"{rid}: ISM, logit {ref_logit:.3g}",
                            alphabet=predictor.alphabet)
    say(f"{rid}: logit {ref_logit:.4g}; {3 * len(seq)} substitutions -> {args.output or 'stdout'}"
        + (f", logo {args.png}" if args.png else ""), args.quiet)
    return EXIT_OK

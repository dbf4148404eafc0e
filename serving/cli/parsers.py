"""The command line's parts that hold for every command: the exit codes (defined here once, for the serving and the
training commands alike), the list of training commands (so `bindcnn --help` names them where training is not
installed), and the arguments of the serving commands (score, scan, variants, mutagenesis, tune, serve); each
command's description says what it does before listing its options."""
from __future__ import annotations

import argparse

from serving.store import DEFAULT_MODEL_DIR, DEFAULT_MODEL_TAG

EXIT_OK = 0
EXIT_FAILED = 1  # the run stopped part-way (service unreachable after retries): re-run with --resume
EXIT_USAGE = 2  # bad arguments, unreadable or malformed input, no model, a command whose extra is not installed
EXIT_REJECTS = 3  # finished, but some records/variants could not be scored (listed; NA in the output)
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # stdout was closed early (`bindcnn score ... | head`): 128 + SIGPIPE, as a shell reports it

INSTALL_TRAIN = "pip install 'bindcnn[train]'"
# The training commands, added by training/cli.py where TensorFlow and training/ are installed; their names are here
# so that `bindcnn --help` lists them and `bindcnn train` can say what to install where they are not.
TRAINING_COMMANDS = ("synthetic", "fasta", "peaks", "download", "train", "export", "register", "null", "evaluate",
                     "saliency", "motifs", "judge")

EPILOG = """exit codes: 0 every record scored; 1 the run stopped part-way (the message names the first
record not scored; re-run with --resume to continue); 2 bad arguments, input or model (a malformed file
names its line; fix it and re-run); 3 finished, but some records could not be scored (NA rows in the
output, reasons in the rejects file / on stderr); 130 interrupted."""


def _handler(module: str, name: str):
    def call(args, predictor):
        import importlib

        return getattr(importlib.import_module(module), name)(args, predictor)

    return call


def _backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("back end (default: --local)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--url", help="a running service, e.g. http://127.0.0.1:3000 (bindcnn serve)")
    where.add_argument("--local", action="store_true", help="ONNX Runtime in this process, no server")
    g.add_argument("--model", action="append", default=None,
                   help=f"exported model folder for --local (default {DEFAULT_MODEL_DIR}); score, scan and variants "
                   "take it more than once: the input is read once and each model gets its columns "
                   "(probability_NAME, delta_logit_NAME, ...), VCF INFO fields or scan files (NAME before the extension)")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="--local execution provider: auto = CUDA when an NVIDIA device is present, else CPU "
                   "(default auto)")
    g.add_argument("--threads", type=int, default=None, help="--local ONNX Runtime threads (default: all cores)")
    g.add_argument("--batch-size", type=int, default=1000, help="--url: sequences per request (default 1000)")
    g.add_argument("--workers", type=int, default=4, help="--url: requests in flight at once (default 4)")
    g.add_argument("--retries", type=int, default=3,
                   help="--url: retries of a request after a connection error or 5xx/429 (default 3)")
    g.add_argument("--timeout", type=float, default=300.0, help="--url: seconds per request (default 300)")
    g.add_argument("--rc", action="store_true",
                   help="reverse-complement averaging: score both strands, average the logits")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary on stderr")


def _scan_args(p: argparse.ArgumentParser, group_title: str) -> None:
    s = p.add_argument_group(group_title)
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


def _score_args(p: argparse.ArgumentParser, scan: bool) -> None:
    p.add_argument("input", nargs="?", help="FASTA(.gz), .npy or .h5 file; '-' reads FASTA from stdin (or --genome "
                   "with --regions)" if not scan else "FASTA(.gz) of sequences of any length; '-' reads stdin (or --genome)")
    p.add_argument("-o", "--output", help="output TSV (default: stdout)" if not scan else
                   "TSV of every window: chrom, start, end, probability, logit")
    p.add_argument("--rejects", help="TSV of records not scored: record (1-based), id, reason "
                   "(default: OUTPUT.rejects.tsv when -o is given and something was rejected; else stderr only)")


def _engine_args(g) -> None:
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: the same work in one pool of Ray actors, one model per "
                   "actor (one per GPU, else per node), on a local Ray or the cluster at --ray-address; needs "
                   "pip install 'bindcnn[distributed]'")
    g.add_argument("--ray-address", metavar="ADDR", help="--engine ray: join this Ray cluster (host:6379, 'auto', "
                   "ray://host:10001; default $RAY_ADDRESS, else start a local Ray on this machine's cores)")


def _genome_args(p: argparse.ArgumentParser, scan: bool) -> None:
    g = p.add_argument_group("genome (instead of INPUT; see docs/genome.md)")
    g.add_argument("--genome", help="indexed genome FASTA, plain or bgzip (.fai/.gzi are built beside it when missing); "
                   "IUPAC ambiguity codes in it are scored as N")
    if scan:
        g.add_argument("--regions", help="BED/narrowPeak: scan only these regions (sorted and merged; a region shorter "
                       "than the model is widened to its length); default: the whole genome")
        g.add_argument("--chroms", help="comma-separated chromosomes to scan (aliases such as 1 / chr1 resolved)")
        g.add_argument("--bigwig", help="bigWig of window probabilities: the bedGraph's values, sizes from the index")
    else:
        g.add_argument("--regions", help="BED3+ or ENCODE narrowPeak (plain or gzip): each region's model-length "
                       "window around its summit (narrowPeak column 10) or centre is scored; TSV `chrom start end "
                       "name probability logit`; bad lines go to the rejects with their line number")
    _engine_args(g)


def add_commands(sub) -> None:
    """Add score, scan, variants, mutagenesis, tune and serve to an argparse subparsers object."""
    p = sub.add_parser("score", help="score every record of a FASTA / .npy / HDF5 file (TSV)",
                       description="Score every record of INPUT (FASTA or gzipped FASTA, streamed; a one-hot .npy "
                       "(N, L, 4) or (N, 4, L); or an HDF5 file with x_* datasets) and write a TSV "
                       "`id probability logit` in input order. Records that cannot be scored get NA and a reason "
                       "in the rejects file. With --genome G.fa --regions R.bed instead: the model-length window "
                       "of each BED/narrowPeak region, cut from the indexed genome, one row per region in input order. "
                       "(--scan is the old spelling of the scan command.)", epilog=EPILOG)
    _score_args(p, scan=False)
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run: keep the rows already in -o and score the rest")
    p.add_argument("--key", action="append", help="HDF5 dataset(s) to score (default: every x_* dataset)")
    p.add_argument("--chunk", type=int, default=None,
                   help="records read and scored at a time (default 16384; regions with --genome: 4096)")
    p.add_argument("--scan", action="store_true", help="same as the scan command (kept for scripts)")
    _genome_args(p, scan=False)
    _scan_args(p, "scanning (--scan; see the scan command)")
    _backend_args(p)
    p.set_defaults(handler=_handler("serving.cli.scoring", "cmd_score_or_scan"))

    p = sub.add_parser("scan", help="score every window of long sequences (bedGraph, BED of sites, TSV)",
                       description="Slide a window of the model's length along every sequence of INPUT at "
                       "--stride and score each window: a bedGraph track of probabilities (each window's value on "
                       "the min(stride, L) bp at its centre), a BED6 of called sites (windows >= --threshold, "
                       "overlapping ones merged) and/or a TSV of every window. Coordinates are BED-style; ids "
                       "like chr1:1000-5000 place the output on the genome. With --genome G.fa instead of INPUT: the "
                       "whole genome (or --chroms / --regions), streamed chromosome by chromosome in tiles, and "
                       "--bigwig too.", epilog=EPILOG)
    _score_args(p, scan=True)
    _genome_args(p, scan=True)
    _scan_args(p, "scanning")
    _backend_args(p)
    p.set_defaults(handler=_handler("serving.cli.scoring", "cmd_scan"), resume=False)

    v = sub.add_parser("variants", help="effect of each variant (alt - ref) on the window centred on it",
                       description="For each variant (TSV `chrom pos ref alt [id]`, 1-based pos; VCF; or BCF), cut "
                       "the model-length window centred on it from the reference (an indexed FASTA read by interval: "
                       "--genome or --fasta, the same), check `ref` against it, and report ref/alt probability and "
                       "logit, their alt - ref deltas and the delta's p_value against the model's null of random "
                       "substitutions (NA without one: `bindcnn null`). Variants that cannot be scored get NA and a "
                       "status: ref "
                       "mismatch, unknown chromosome, or window_off_chromosome (the centred window does not fit inside "
                       "the chromosome; windows are never shifted). Records named chrom:start-end are that piece of "
                       "chrom (--coords). --vcf-out writes an annotated VCF; input is read in chunks, memory bounded.",
                       epilog=EPILOG)
    v.add_argument("--fasta", help="reference FASTA, plain or bgzip: the same as --genome (read by interval; its .fai "
                   "is built beside it on first use); records named chrom or chrom:start-end")
    v.add_argument("--variants", help="TSV (chrom pos ref alt [id]), or a VCF/BCF (read as --vcf)")
    g = v.add_argument_group("genome scale (instead of --fasta): streamed in chunks, memory bounded")
    g.add_argument("--genome", help="indexed genome FASTA, plain or bgzip (.fai/.gzi built when missing)")
    g.add_argument("--vcf", help="VCF (plain, gzip or bgzip; messages name its lines) or BCF (indexed or not; "
                   "messages name its records): one row per ALT allele; symbolic alleles, '*' and breakends keep "
                   "their row with a status")
    g.add_argument("--vcf-out", help="annotated copy of the VCF (.vcf or bgzip .vcf.gz) with INFO BINDCNN_STATUS, "
                   "BINDCNN_REF_PROB, BINDCNN_ALT_PROB, BINDCNN_DELTA_LOGIT and BINDCNN_P")
    g.add_argument("--pass-only", action="store_true",
                   help="score only records whose FILTER is PASS or '.'; the others are left out (and counted)")
    g.add_argument("--chunk", type=int, default=4096, help="records read and scored at a time (default 4096)")
    _engine_args(g)
    a = v.add_argument_group("every possible SNV (--all-snvs; see docs/engine.md)")
    a.add_argument("--all-snvs", action="store_true",
                   help="instead of --vcf/--variants: the 3 alternative bases of every position of --regions or "
                   "--chroms whose centred window fits, into -o (bgzip when .gz: `tabix -s1 -b2 -e2` indexes it): "
                   "chrom pos ref alt ref_probability alt_probability delta_logit p_value")
    a.add_argument("--regions", help="--all-snvs: BED of the regions (overlapping ones merged)")
    a.add_argument("--chroms", help="--all-snvs: comma-separated whole chromosomes (aliases such as 1 / chr1 resolved)")
    a.add_argument("--bigwig", help="--all-snvs: bigWig of each base's strongest signed delta_logit")
    v.add_argument("-o", "--output", help="output TSV (default: stdout; a file with --all-snvs)")
    v.add_argument("--coords", choices=("auto", "bed", "one-based", "none"), default="auto",
                   help="how chrom:start-end FASTA ids are read (see `scan --help`)")
    v.add_argument("--explain", type=int, default=0, metavar="N",
                   help="for the N variants with the largest |delta_logit|: attribution logos of the ref and alt "
                   "windows and their difference (PNG) and arrays (.npy), and explained.tsv; TensorFlow is loaded "
                   "(default 0: none)")
    v.add_argument("--explain-dir", help="folder for --explain (default: beside the output, effects.tsv -> "
                   "effects.explain/; ./variants.explain for stdout)")
    _backend_args(v)
    v.set_defaults(handler=_handler("serving.cli.analysis", "cmd_variants"))

    m = sub.add_parser("mutagenesis", help="in silico saturation mutagenesis of sequences (TSV, .npy, logo PNG)",
                       description="Logit change of every single-base substitution (L x 3, shown as an L x 4 "
                       "table with 0 at the reference base) of a sequence of the model's length, or of every record "
                       "of a FASTA, into one TSV `id position ref delta_logit_A..T`. Computed incrementally where the "
                       "model folder has layers.npz (a substitution changes 19 convolution positions and at most two "
                       "pooled bins; docs/engine.md), else every mutant is scored whole. Records that cannot be "
                       "scored are listed on stderr (exit 3).", epilog=EPILOG)
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--sequence", help="the DNA sequence")
    src.add_argument("--fasta", help="a FASTA file (gzip too): every record, or only --id")
    m.add_argument("--id", help="only this record of --fasta")
    m.add_argument("-o", "--output", help="TSV: id, position, ref, delta_logit_A..T (default: stdout)")
    m.add_argument("--npy", help="also save the changes as a .npy (N, L, 4) float32, records in the TSV's order")
    m.add_argument("--png", help="logo PNG of the mean-centred logit changes of the first record scored")
    _backend_args(m)
    m.set_defaults(handler=_handler("serving.cli.analysis", "cmd_mutagenesis"))

    m = sub.add_parser("models", help="list the exported model folders and the BentoML store's models, with cards",
                       description="List the models you can score or serve: every MODELS/*/ folder with a "
                       "metadata.json and the BentoML store's bindcnn models, each with its card (name, version, "
                       "factor and JASPAR matrix, training data, test AUROC/AUPR beside the PWM baseline's, "
                       "ONNX/TensorFlow parity, input length). Exit code 0.")
    m.add_argument("--models", default="models", help="folder of exported models (default models)")
    m.add_argument("--no-store", action="store_true", help="only the folders, not the BentoML store")
    m.add_argument("--json", action="store_true", help="one JSON list of cards instead of text")

    t = sub.add_parser("tune", help="time a few ONNX Runtime settings here and store the fastest in metadata.json",
                       description="Time the predictor's CPU settings (its fixed defaults and a few others: run "
                       "sizes, Python threads or intra-op threads) on this machine, in interleaved rounds at batches "
                       "of 1000 and 4096, and store the fastest in the model's metadata.json as runtime_plan, with "
                       "what it was tuned for (model.onnx's sha256, the CPU, the threads, ONNX Runtime's version). "
                       "Every later predictor of this model that matches uses it; one that does not says so and "
                       "uses the fixed defaults. Optional: nothing runs it implicitly. Exit codes: 0 done; 2 no "
                       "such model or a model that fails its checks.")
    t.add_argument("--model", default=DEFAULT_MODEL_DIR, help=f"exported model folder (default {DEFAULT_MODEL_DIR})")
    t.add_argument("--threads", type=int, default=None,
                   help="tune for this many threads (default: the cores given; the service's workers use "
                   "BINDCNN_THREADS, 1 each by default)")
    t.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    t.add_argument("--dry-run", action="store_true", help="print the timings and the choice, write nothing")

    s = sub.add_parser("serve", help="serve a model over HTTP (bentoml serve; Ctrl-C stops it and its workers)",
                       description="Run the HTTP service (`bentoml serve serving.service.app:BindCNN`) for a model "
                       "in the BentoML store, in the foreground. Ctrl-C or SIGTERM stops the server and all its "
                       "workers within seconds. Exit codes: 0 stopped by a signal or cleanly; 2 no such model; "
                       "otherwise bentoml's own code.")
    s.add_argument("--model", action="append", default=None, help=f"model tag in the BentoML store, or an "
                   "exported model folder (registered first); give it more than once to serve several models side "
                   "by side, the first answering requests that name none (default: $BINDCNN_MODELS, $BINDCNN_MODEL "
                   f"or {DEFAULT_MODEL_TAG})")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=3000, help="port (default 3000)")
    e = s.add_argument_group("explainer (saliency; docs/deploying.md)")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--explainer-only", action="store_true",
                       help="serve the TensorFlow explainer alone (serving.service.explainer:Explainer), for "
                       "predictors started with --explainer-url")
    where.add_argument("--explainer-url", metavar="URL",
                       help="serve the predictor and send saliency to the explainer at URL (sets "
                       "BINDCNN_EXPLAINER_URL); no worker of this server loads TensorFlow")
    s.add_argument("--workers", type=int, default=None,
                   help="predictor workers (sets BINDCNN_WORKERS; default: one per CPU core, one per GPU on GPU)")

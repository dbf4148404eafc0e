"""`bindcnn variants --all-snvs` (serving/scoring/all_snvs.py): every possible SNV of regions or chromosomes, each
row equal to scoring the same SNV from a VCF, at exactly the positions whose centred window fits (N and IUPAC refs
skipped, soft-masked refs uppercased), sorted and unique across overlapping regions, valid BGZF that tabix indexes,
the strongest signed delta per base as a bigWig, --rc, and the refusals (exit 2) that say what to run instead."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from serving.cli import EXIT_OK, EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import random_dna
from serving.genome import Genome
from serving.intervals import Interval
from serving.scoring import all_snvs as al
from serving.scoring.pvalues import load_null, p_values
from tests.genome_files import write_genome

L = 200
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def _seqs() -> dict[str, str]:
    chr1 = random_dna(1, 2600, seed=11)[0]
    chr1 = chr1[:700] + "NNNNNN" + chr1[706:900] + "R" + chr1[901:1200] + chr1[1200:1300].lower() + chr1[1300:]
    return {"chr1": chr1, "chr2": random_dna(1, 700, seed=12)[0], "chr3": random_dna(1, 150, seed=13)[0]}


@pytest.fixture(scope="module")
def seqs() -> dict[str, str]:
    return _seqs()


@pytest.fixture(scope="module")
def genome(tmp_path_factory, seqs) -> Path:
    return write_genome(tmp_path_factory.mktemp("genome"), seqs)[0]


@pytest.fixture(scope="module")
def regions(genome) -> Path:
    """Overlapping, touching and out-of-order regions, one reaching the start of chr1 and one its end."""
    bed = genome.parent / "regions.bed"
    bed.write_text("chr2\t0\t700\nchr1\t600\t1000\nchr1\t0\t450\nchr1\t400\t650\nchr1\t1000\t1400\n"
                   "chr1\t2350\t2600\n")
    return bed


def read_rows(path: Path) -> tuple[str, list[list[str]]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = fh.read().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def expected_positions(seqs: dict[str, str], spans: list[tuple[str, int, int]]) -> list[tuple[str, int, str]]:
    """(chrom, 1-based pos, REF) of every position in the merged spans whose window fits and whose base is ACGT."""
    out = []
    for chrom, start, end in spans:
        seq = seqs[chrom]
        for p in range(start, end):
            if p - L // 2 >= 0 and p - L // 2 + L <= len(seq) and seq[p].upper() in "ACGT":
                out.append((chrom, p + 1, seq[p].upper()))
    return out


@pytest.fixture(scope="module")
def effects(trained, genome, regions, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("all") / "effects.tsv.gz"
    bw = out.with_name("strongest.bw")
    code = main(["variants", "--genome", str(genome), "--all-snvs", "--regions", str(regions), "-o", str(out),
                 "--bigwig", str(bw), "--model", str(trained["dir"]), "--device", "cpu"])
    assert code == EXIT_OK
    return out, bw


def vcf_of(rows: list[list[str]], path: Path) -> Path:
    path.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                    + "".join(f"{r[0]}\t{r[1]}\t.\t{r[2]}\t{r[3]}\t.\tPASS\t.\n" for r in rows))
    return path


def assert_rows_equal_vcf_scoring(rows, trained, genome, tmp_path, rc: bool) -> None:
    """Each row equals `variants --genome --vcf` of the same SNV: probabilities within 1e-5, delta_logit within 1e-5
    of max(1, |logit|), the same p-value (or both NA)."""
    vcf, tsv = vcf_of(rows, tmp_path / "sample.vcf"), tmp_path / "sample.tsv"
    args = ["variants", "--genome", str(genome), "--vcf", str(vcf), "-o", str(tsv), "--model", str(trained["dir"]),
            "--device", "cpu", "-q"] + (["--rc"] if rc else [])
    assert main(args) == EXIT_OK
    head, *lines = tsv.read_text().splitlines()
    col = {name: i for i, name in enumerate(head.split("\t"))}
    want = [line.split("\t") for line in lines]
    assert [(w[col["chrom"]], w[col["pos"]], w[col["ref"]], w[col["alt"]]) for w in want] == [tuple(r[:4]) for r in rows]
    null = load_null(trained["dir"], json.loads((trained["dir"] / "metadata.json").read_text()))[int(rc)]
    for r, w in zip(rows, want):
        scale = max(1.0, abs(float(w[col["ref_logit"]])), abs(float(w[col["alt_logit"]])))
        assert abs(float(r[4]) - float(w[col["ref_probability"]])) <= 1e-5
        assert abs(float(r[5]) - float(w[col["alt_probability"]])) <= 1e-5
        assert abs(float(r[6]) - float(w[col["delta_logit"]])) <= 1e-5 * scale
        if w[col["p_value"]] == "NA":
            assert r[7] == "NA"
        else:  # the p-value of a delta within the tolerance of the VCF's (null draws may lie in between)
            d, tol = abs(float(w[col["delta_logit"]])), 1e-5 * scale
            hi, lo = p_values(null, np.array([max(d - tol, 0.0), d + tol]))
            assert lo * (1 - 1e-6) <= float(r[7]) <= hi * (1 + 1e-6)


def test_rows_equal_scoring_the_same_snvs_from_a_vcf(effects, trained, genome, tmp_path):
    header, rows = read_rows(effects[0])
    assert header == al.HEADER.rstrip("\n")
    rng = np.random.default_rng(0)
    sample = sorted(set(rng.choice(len(rows), 250, replace=False).tolist()) | {0, 1, 2, len(rows) - 1})
    assert_rows_equal_vcf_scoring([rows[i] for i in sample], trained, genome, tmp_path, rc=False)
    assert all(r[7] != "NA" for r in rows)  # the test model has a null: every SNV has its p-value


def test_exactly_the_positions_whose_window_fits_with_acgt_refs(effects, seqs, capsys):
    _, rows = read_rows(effects[0])
    merged = [("chr1", 0, 1400), ("chr1", 2350, 2600), ("chr2", 0, 700)]
    want = expected_positions(seqs, merged)
    got = [(r[0], int(r[1]), r[2]) for r in rows[::3]]
    assert got == want
    for i, r in enumerate(rows):  # 3 rows per position: the other bases in A, C, G, T order
        assert r[3] == [b for b in "ACGT" if b != r[2]][i % 3] and rows[i - i % 3][:3] == r[:3]
    positions = {(c, p) for c, p, _ in got}
    assert ("chr1", 101) in positions and ("chr1", 100) not in positions  # first window that fits: bases 0-199
    assert ("chr1", 2501) in positions and ("chr1", 2502) not in positions  # the last one: the chromosome's end
    assert ("chr2", 601) in positions and ("chr2", 602) not in positions
    assert not any(("chr1", p) in positions for p in (701, 706, 901))  # N and IUPAC (R) references: no rows
    soft = [r for r in rows if r[0] == "chr1" and 1201 <= int(r[1]) <= 1300]
    assert len(soft) == 300 and all(r[2] in "ACGT" for r in soft)  # soft-masked bases: their uppercase base


def test_sorted_and_unique_across_overlapping_regions_and_tabix_indexes_it(effects):
    _, rows = read_rows(effects[0])
    order = {"chr1": 0, "chr2": 1}
    keys = [(order[r[0]], int(r[1]), r[3]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    tabix = shutil.which("tabix")
    if tabix:  # htslib's own reading of the file, where it is installed
        subprocess.run([tabix, "-f", "-s1", "-b2", "-e2", str(effects[0])], check=True)
        got = subprocess.run([tabix, str(effects[0]), "chr1:1250-1251"], check=True, capture_output=True,
                             text=True).stdout.splitlines()
        assert [line.split("\t") for line in got] == [r for r in rows if r[0] == "chr1" and r[1] in ("1250", "1251")]


def test_the_output_is_bgzf_and_a_plain_name_gets_plain_text(effects, trained, genome, regions, tmp_path):
    from Bio import bgzf

    path = effects[0]
    assert path.read_bytes().endswith(BGZF_EOF)
    with bgzf.BgzfReader(str(path), "rt") as fh:
        text = "".join(fh)
    with open(path, "rb") as fh:
        blocks = list(bgzf.BgzfBlocks(fh))  # (start, raw length, data start, data length) of every block
    assert len(blocks) >= 2 and blocks[-1][3] == 0 and all(b[3] <= 65536 for b in blocks)
    assert text == gzip.open(path, "rt").read() and text.startswith("#chrom\tpos\tref\talt\t")
    plain = tmp_path / "effects.tsv"
    assert main(["variants", "--genome", str(genome), "--all-snvs", "--regions", str(regions), "-o", str(plain),
                 "--model", str(trained["dir"]), "--device", "cpu", "-q"]) == EXIT_OK
    assert plain.read_text() == text


def test_bigwig_holds_each_positions_strongest_signed_delta(effects):
    import pyBigWig

    _, rows = read_rows(effects[0])
    want: dict[tuple[str, int], float] = {}
    for r in rows:
        key, d = (r[0], int(r[1]) - 1), float(r[6])
        if key not in want or abs(d) > abs(want[key]):
            want[key] = d
    bw = pyBigWig.open(str(effects[1]))
    try:
        assert bw.chroms() == {"chr1": 2600, "chr2": 700, "chr3": 150}
        got = {(c, s): v for c in ("chr1", "chr2") for s, e, v in bw.intervals(c) if e == s + 1}
        assert sum(len(bw.intervals(c)) for c in ("chr1", "chr2")) == len(got)
    finally:
        bw.close()
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) / max(1.0, abs(want[k])) for k in want) <= 1e-6
    assert any(v < 0 for v in want.values()) and any(v > 0 for v in want.values())  # signed, not |delta|


def test_rc_and_whole_chromosomes(trained, genome, seqs, tmp_path):
    out, fwd = tmp_path / "rc.tsv.gz", tmp_path / "fwd.tsv.gz"
    base = ["variants", "--genome", str(genome), "--all-snvs", "--chroms", "chr2", "--model", str(trained["dir"]),
            "--device", "cpu", "-q"]
    assert main([*base, "--rc", "-o", str(out)]) == EXIT_OK
    assert main([*base, "-o", str(fwd)]) == EXIT_OK
    _, rows = read_rows(out)
    assert [(r[0], int(r[1]), r[2]) for r in rows[::3]] == expected_positions(seqs, [("chr2", 0, 700)])
    assert_rows_equal_vcf_scoring(rows[::17] + rows[-1:], trained, genome, tmp_path, rc=True)
    assert [r[6] for r in rows] != [r[6] for r in read_rows(fwd)[1]]  # both strands averaged: other values


def test_tiles_give_the_rows_of_one_tile(trained, genome, seqs):
    from serving.predictor import Predictor

    predictor = Predictor(trained["dir"], device="cpu")
    g = Genome(genome, quiet=True)
    centres = al.centre_spans(g, [Interval("chr1", 0, 1400)], L)
    assert centres == [Interval("chr1", 100, 1400)]
    whole = list(al.all_snv_effects(predictor, g, centres))
    tiled = list(al.all_snv_effects(predictor, g, centres, tile=97))
    assert len(whole) == 1 and len(tiled) == 14
    assert sum(t.bases for t in tiled) == 1300 and sum(t.skipped for t in tiled) == whole[0].skipped == 7
    one = whole[0]
    assert np.array_equal(np.concatenate([t.positions for t in tiled]), one.positions)
    assert np.array_equal(np.concatenate([t.ref for t in tiled]), one.ref)
    for name in ("ref_logit", "alt_logit"):  # the same within float32 rounding (batches of other sizes)
        got, want = np.concatenate([getattr(t, name) for t in tiled]), getattr(one, name)
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


def test_p_value_is_na_without_a_null(trained, genome, tmp_path):
    from serving.artifact import METADATA_FILE, write_metadata

    folder = tmp_path / "nonull"
    shutil.copytree(trained["dir"], folder)
    meta = json.loads((folder / METADATA_FILE).read_text())
    (folder / meta.pop("null_effects")["file"]).unlink()
    meta.pop("files")
    write_metadata(folder, meta)
    out = tmp_path / "na.tsv"
    assert main(["variants", "--genome", str(genome), "--all-snvs", "--chroms", "chr2", "-o", str(out),
                 "--model", str(folder), "--device", "cpu", "-q"]) == EXIT_OK
    _, rows = read_rows(out)
    assert rows and all(r[7] == "NA" for r in rows) and all(r[6] != "NA" for r in rows)


def test_region_lines_that_cannot_be_used_are_listed(trained, genome, tmp_path, capsys):
    bed = tmp_path / "bad.bed"
    bed.write_text("chr2\t100\t130\nchrQ\t1\t50\n")
    out = tmp_path / "x.tsv"
    assert main(["variants", "--genome", str(genome), "--all-snvs", "--regions", str(bed), "-o", str(out),
                 "--model", str(trained["dir"]), "--device", "cpu"]) == EXIT_REJECTS
    err = capsys.readouterr().err
    assert "1 region line(s) not scored" in err and "scored 90 SNVs at 30 positions" in err
    assert "chrQ" in Path(f"{out}.rejects.tsv").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--vcf", "{vcf}"], "run them as two commands"),
    (["--genome", None], "--all-snvs needs --genome G.fa"),
    (["--regions", None], "--all-snvs needs --regions R.bed or --chroms"),
    (["--regions", None, "--chroms", "chrQ"], "'chrQ' is not in genome.fa"),
    (["--regions", None, "--chroms", "chr3"], "no position of the chromosomes has its centred 200 bp window"),
    (["--model", "{model}"], "--all-snvs scores one model per run"),
    (["--url", "http://127.0.0.1:9"], "drop --url"),
    (["--engine", "ray"], "Ray is not supported for it: drop --engine ray"),
    (["--explain", "3"], "--explain explains the strongest variants of a VCF"),
    (["-o", None], "--all-snvs needs -o FILE"),
    (["-o", "{genome}"], "-o {genome} would overwrite an input"),
    (["--bigwig", "{regions}"], "--bigwig {regions} would overwrite an input"),
])
def test_refusals_say_what_to_run_instead(extra, message, trained, genome, regions, tmp_path, capsys):
    subs = {"{vcf}": str(vcf_of([["chr2", "300", "A", "C"]], tmp_path / "v.vcf")), "{model}": str(trained["dir"]),
            "{genome}": str(genome), "{regions}": str(regions)}
    args = {"--genome": str(genome), "--regions": str(regions), "-o": str(tmp_path / "out.tsv.gz"),
            "--model": str(trained["dir"])}
    flags = []
    for flag, value in zip(extra[::2], extra[1::2]):
        if value is None:
            args.pop(flag)
        elif flag in args and flag != "--model":
            args[flag] = subs.get(value, value)
        else:
            flags += [flag, subs.get(value, value)]
    argv = ["variants", "--all-snvs", "--device", "cpu"] + [x for kv in args.items() for x in kv] + flags
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message.format(**{k.strip("{}"): v for k, v in subs.items()}) in err.replace("\n", " ")
    assert not (tmp_path / "out.tsv.gz").exists()


def test_all_snvs_options_need_all_snvs(genome, regions, tmp_path, capsys):
    assert main(["variants", "--genome", str(genome), "--regions", str(regions), "-o", str(tmp_path / "x.tsv")]
                ) == EXIT_USAGE
    assert "--regions go with --all-snvs" in capsys.readouterr().err

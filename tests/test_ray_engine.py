"""`--engine ray` gives the same outputs as `--engine local` on a small genome, in a local Ray started once for the
module: region TSV and rejects bytes, scan bedGraph/BED bytes and bigWig values, variant TSV and annotated VCF; and
one actor pool per command (each actor loads its model once), results and errors in input order, no actor left."""
from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from serving.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import random_dna
from tests.conftest import ToyPredictor
from tests.genome_files import plant, write_genome

pytest.importorskip("ray", reason="the [distributed] extra (pip install 'bindcnn[distributed]')")
from serving.scoring import distributed  # noqa: E402 (needs ray)

L = 10
REPO = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module, started the way the CLI starts it; its actors import tests.conftest."""
    import ray

    with pytest.MonkeyPatch.context() as mp:
        paths = [REPO, str(Path(__file__).parent), os.environ.get("PYTHONPATH")]  # + this module: counted_toy
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
        mp.delenv("RAY_ADDRESS", raising=False)
        assert distributed.connect() is True
        assert distributed.connect() is False  # already up: the CLI reuses it and leaves it running
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def seqs() -> dict[str, str]:
    chr1 = random_dna(1, 3000, 41)[0]
    for at in (500, 1200, 1207, 2990):  # C runs: the toy predictor's sites (two touch; one at the end)
        chr1 = plant(chr1, at, "C" * 10)
    chr2 = plant(plant(random_dna(1, 1517, 42)[0], 3, "CCCCCCCCCC"), 700, "acgtRYKMnnccgg")  # IUPAC, soft-masked
    return {"chr1": chr1, "chr2": chr2, "tiny": "ACGTA"}


@pytest.fixture(scope="module")
def genome_path(tmp_path_factory, seqs) -> Path:
    return write_genome(tmp_path_factory.mktemp("raygenome"), seqs, width=70)[1]  # bgzip


@pytest.fixture
def toy(monkeypatch, ray_local) -> None:
    """The toy predictor here and in every actor (built there from tests.conftest), many tiles."""
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: ToyPredictor(L))
    monkeypatch.setattr(distributed, "predictor_factory", lambda args: functools.partial(ToyPredictor, L))
    monkeypatch.setattr("serving.scoring.genome_scan.TILE_BP", 211)


def both(argv: list[str], out_flags: dict[str, str], tmp_path: Path, capsys) -> dict[str, tuple]:
    """Run argv with --engine local and --engine ray (--threads 1: two actors on the module's 2-CPU Ray), outputs in
    separate folders: {engine: (code, folder, err)}."""
    runs = {}
    for engine in ("local", "ray"):
        folder = tmp_path / engine
        folder.mkdir()
        outs = [x for flag, name in out_flags.items() for x in (flag, str(folder / name))]
        code = main(argv + outs + ["--engine", engine, "--threads", "1"])
        runs[engine] = (code, folder, capsys.readouterr().err)
    return runs


def test_score_regions_same_tsv_and_rejects(genome_path, toy, tmp_path, capsys):
    lines = [f"chr1\t{s}\t{s + 30}\tr{s}" for s in range(0, 2900, 97)]
    odd = ["1\t1195\t1225\talias", "chrZ\t5\t50\tunknown", "chr2\t1500\t1600\tpast_end", "chr1\tx\t9\tbad",
           "chr2\t690\t720\tiupac", "chr1\t0\t4\toff_start"]  # 4 rejects; a 1 <-> chr1 alias; IUPAC codes
    lines[20:20] = odd
    bed = tmp_path / "r.bed"
    bed.write_text("\n".join(lines) + "\n")
    argv = ["score", "--genome", str(genome_path), "--regions", str(bed), "--chunk", "3", "-q"]
    runs = both(argv, {"-o": "out.tsv", "--rejects": "rejects.tsv"}, tmp_path, capsys)
    (lc, local, lerr), (rc, ray, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_REJECTS
    assert (ray / "out.tsv").read_bytes() == (local / "out.tsv").read_bytes()
    assert (ray / "rejects.tsv").read_bytes() == (local / "rejects.tsv").read_bytes()
    rows = (local / "out.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(lines) - 4 and rows[1].split("\t")[3] == "r0"  # input order, 4 lines rejected
    assert lerr == rerr.replace(str(ray), str(local))


@pytest.mark.parametrize("stride", [1, 7])
def test_scan_same_bedgraph_bed_and_bigwig(genome_path, toy, tmp_path, capsys, stride):
    import pyBigWig

    argv = ["scan", "--genome", str(genome_path), "--stride", str(stride), "--threshold", "0.6"]
    runs = both(argv, {"--bedgraph": "w.bedGraph", "--bed": "sites.bed", "--bigwig": "w.bw"}, tmp_path, capsys)
    (lc, local, lerr), (rc, ray, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_OK
    for name in ("w.bedGraph", "sites.bed"):
        assert (ray / name).read_bytes() == (local / name).read_bytes(), name
    assert len((local / "sites.bed").read_text().splitlines()) >= 3
    bw_local, bw_ray = pyBigWig.open(str(local / "w.bw")), pyBigWig.open(str(ray / "w.bw"))
    assert bw_ray.chroms() == bw_local.chroms()
    for chrom in ("chr1", "chr2"):
        assert bw_ray.intervals(chrom) == bw_local.intervals(chrom)
        np.testing.assert_array_equal(bw_ray.values(chrom, 0, 1517), bw_local.values(chrom, 0, 1517))
    assert "4 IUPAC ambiguity code(s) scored as N" in lerr and "4 IUPAC ambiguity code(s) scored as N" in rerr
    assert "ray: 1 node(s)" in rerr and "ray:" not in lerr  # the Ray engine ran (the module's local Ray)


def test_variants_same_tsv_and_annotated_vcf(genome_path, seqs, toy, tmp_path, capsys):
    from cyvcf2 import VCF

    c1, c2 = seqs["chr1"], seqs["chr2"]
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    head = ["##fileformat=VCFv4.2", '##FILTER=<ID=LowQual,Description="low quality">',
            "##contig=<ID=chr1,length=3000>", "##contig=<ID=chr2,length=1517>",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    recs = [f"chr1\t{p}\tv{p}\t{c1[p - 1]}\t{alt[c1[p - 1]]}\t50\tPASS\t." for p in range(1, 3001, 61)]
    recs[3:3] = [f"chr1\t1201\tmulti\t{c1[1200]}\tA,G,T\t50\tPASS\t.",
                 f"chr1\t301\tdel\t{c1[300:304]}\t{c1[300]}\t50\tPASS\t.",
                 f"chr1\t401\tsv\t{c1[400]}\t<DEL>\t50\tPASS\t.",
                 f"chr1\t801\tlowq\t{c1[800]}\t{alt[c1[800]]}\t5\tLowQual\t.",
                 f"2\t702\tiupac\t{c2[701].upper()}\tA\t50\tPASS\t.",
                 "chrZ\t5\tunknown\tA\tG\t50\tPASS\t."]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(head + recs) + "\n")
    argv = ["variants", "--genome", str(genome_path), "--vcf", str(vcf), "--chunk", "5", "-q"]
    runs = both(argv, {"-o": "effects.tsv", "--vcf-out": "annotated.vcf"}, tmp_path, capsys)
    (lc, local, lerr), (rc, ray, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_REJECTS
    assert (ray / "effects.tsv").read_bytes() == (local / "effects.tsv").read_bytes()
    records = {e: [str(r) for r in VCF(str(folder / "annotated.vcf"))] for e, (_, folder, _) in runs.items()}
    assert records["ray"] == records["local"] and len(records["local"]) == len(recs)
    assert sum("BINDCNN_DELTA_LOGIT" in r for r in records["local"]) >= len(recs) - 3
    assert lerr == rerr.replace(str(ray), str(local))  # same statuses, same counts (and the 'iupac' count)


def test_an_error_in_an_actor_is_said_as_the_local_engine_says_it(tmp_path, toy, capsys):
    bad = tmp_path / "bad.fa"
    bad.write_text(">c1\n" + random_dna(1, 400, 5)[0][:250] + "X" + "A" * 149 + "\n")
    argv = ["scan", "--genome", str(bad), "--stride", "5"]
    runs = both(argv, {"--bedgraph": "w.bedGraph"}, tmp_path, capsys)
    (lc, _, lerr), (rc, _, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_USAGE
    assert "'X' at 0-based position 250" in lerr and lerr.splitlines()[-1] == rerr.splitlines()[-1]


def test_without_ray_engine_ray_says_how_to_install(tmp_path, monkeypatch, capsys):
    genome = write_genome(tmp_path, {"chr1": "ACGT" * 10})[0]
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert main(["scan", "--genome", str(genome), "--engine", "ray", "--model", str(tmp_path / "none")]) == EXIT_USAGE
    assert "pip install 'bindcnn[distributed]'" in capsys.readouterr().err


def test_engine_ray_refuses_what_it_cannot_run(tmp_path, capsys):
    fa = tmp_path / "s.fa"
    fa.write_text(">s\nACGTACGTAC\n")
    assert main(["score", str(fa), "--engine", "ray"]) == EXIT_USAGE
    assert "--genome" in capsys.readouterr().err
    genome = write_genome(tmp_path, {"chr1": "ACGT" * 10})[0]
    assert main(["scan", "--genome", str(genome), "--engine", "ray", "--url", "http://127.0.0.1:9"]) == EXIT_USAGE
    assert "--url" in capsys.readouterr().err


@pytest.mark.parametrize("nodes, device, threads, want", [
    ([{"CPU": 16.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 1.0}], "auto", None, {"size": 3, "num_cpus": 1, "num_gpus": 1}),
    ([{"CPU": 16.0, "GPU": 2.0}], "cpu", None, {"size": 1, "num_cpus": 16, "num_gpus": None}),
    ([{"CPU": 0.0}, {"CPU": 16.0}, {"CPU": 8.0}], "auto", None, {"size": 3, "num_cpus": 8, "num_gpus": None}),
    ([{"CPU": 16.0}, {"CPU": 8.0}], "auto", 4, {"size": 6, "num_cpus": 4, "num_gpus": None}),
    ([{"CPU": 2.0}], "auto", 64, {"size": 1, "num_cpus": 2, "num_gpus": None}),
])
def test_actor_pool_follows_the_cluster(monkeypatch, nodes, device, threads, want):
    engine = distributed.RayEngine.__new__(distributed.RayEngine)
    engine.device, engine.threads = device, threads
    monkeypatch.setattr(engine, "_nodes", lambda: nodes)
    assert engine.pool(100) == want
    assert engine.pool(1)["size"] == 1  # never more actors than work items


def test_a_malformed_vcf_line_stops_both_engines_after_the_same_rows(genome_path, seqs, toy, tmp_path, capsys):
    c1 = seqs["chr1"]
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    good = [f"chr1\t{p}\tv{p}\t{c1[p - 1]}\t{alt[c1[p - 1]]}\t.\tPASS\t." for p in range(101, 2000, 97)]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"] + good
                             + ["chr1\tnot_a_number\tbroken\tA\tC\t.\tPASS\t."] + good) + "\n")
    argv = ["variants", "--genome", str(genome_path), "--vcf", str(vcf), "--chunk", "3", "-q"]
    runs = both(argv, {"-o": "effects.tsv"}, tmp_path, capsys)  # the error comes while items are in flight
    (lc, local, lerr), (rc, ray, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_USAGE
    line = 3 + len(good)
    assert f"line {line}: POS 'not_a_number' is not a number" in lerr and lerr.splitlines()[-1] == rerr.splitlines()[-1]
    assert (ray / "effects.tsv").read_bytes() == (local / "effects.tsv").read_bytes()
    assert len((local / "effects.tsv").read_text().splitlines()) == 1 + len(good)


# ------------------------------------------------------------------ one actor pool per command
def counted_toy(length: int, folder: str) -> ToyPredictor:
    """ToyPredictor(length), leaving one file per load in `folder` named by the loading process's id."""
    Path(folder, f"{os.getpid()}-{time.monotonic_ns()}").touch()
    return ToyPredictor(length)


def _loads(folder: Path) -> list[int]:
    """The process id of each model load counted by counted_toy."""
    return [int(f.name.split("-")[0]) for f in folder.iterdir()]


def _all_cpus_free(ray, seconds: float = 20) -> bool:
    """True once no actor holds CPUs in the module's Ray any more (killing actors is asynchronous)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources().get("CPU", -1):
            return True
        time.sleep(0.2)
    return False


def test_one_actor_pool_for_a_command_of_many_items(genome_path, toy, tmp_path, monkeypatch, capsys, ray_local):
    marks = tmp_path / "loads"
    marks.mkdir()
    monkeypatch.setattr(distributed, "predictor_factory", lambda args: functools.partial(counted_toy, L, str(marks)))
    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"chr{1 + i % 2}\t{(i * 37) % 1400}\t{(i * 37) % 1400 + 20}\tr{i}\n" for i in range(600)))
    argv = ["score", "--genome", str(genome_path), "--regions", str(bed), "--chunk", "1", "-q"]
    runs = both(argv, {"-o": "out.tsv"}, tmp_path, capsys)  # 600 chunks of 1 region: 600 work items
    (lc, local, _), (rc, ray, _) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_OK
    assert (ray / "out.tsv").read_bytes() == (local / "out.tsv").read_bytes()  # input order kept
    assert len((local / "out.tsv").read_text().splitlines()) == 601
    loads = _loads(marks)
    assert len(loads) == len(set(loads)) == 2  # two actors (2 CPUs, --threads 1), each loaded its model once
    assert os.getpid() not in loads
    assert _all_cpus_free(ray_local)  # the command's close() killed its actors; the joined Ray stays up


def test_pairs_keeps_order_and_o_actors_items_in_flight(genome_path, seqs, ray_local, tmp_path):
    from serving.genome import Genome
    from serving.intervals import Interval
    from serving.scoring.genome_scan import plan_tiles, scan_tile

    genome = Genome(str(genome_path), quiet=True, alphabet="ACGT")
    marks = tmp_path / "loads"
    marks.mkdir()
    engine = distributed.RayEngine(genome, functools.partial(counted_toy, L, str(marks)), threads=1, quiet=True)
    spans = [Interval(c, 0, len(seqs[c])) for c in ("chr1", "chr2")]
    tiles = list(plan_tiles(spans, genome, L, 1, tile_bp=40))
    drawn, ahead = [], []

    def lazily():
        for tile in tiles:
            drawn.append(tile)
            yield tile

    try:
        got = []
        for tile, result in engine.pairs("tiles", lazily(), stride=1):
            ahead.append(len(drawn) - len(got))  # items drawn and not yet given back, this one included
            got.append((tile, result))
        handles = list(engine.actors)  # held here: only close() can end these actors
        pids = sorted(distributed.require_ray().get([a.pid.remote() for a in handles]))
    finally:
        engine.close()
    assert len(tiles) > 100 and [t for t, _ in got] == tiles
    assert max(ahead) <= distributed.IN_FLIGHT * 2  # two actors: the driver never holds more than that
    here = ToyPredictor(L)
    for tile, result in got[::17]:  # each result is that tile's, as scored here
        want = scan_tile(here, genome, tile, stride=1)
        np.testing.assert_array_equal(result.starts, want.starts)
        np.testing.assert_array_equal(result.probability, want.probability)
    assert sorted(_loads(marks)) == pids and len(pids) == 2  # the pool's two actors, one model load each
    assert engine.actors == [] and _all_cpus_free(ray_local)
    for pid in pids:  # the actors' processes end
        end = time.monotonic() + 20
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.2)
        assert not _alive(pid), pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_first_error_in_input_order_is_said(tmp_path, toy, capsys):
    seq = list(random_dna(1, 1200, 6)[0])
    seq[250], seq[460] = "X", "Z"  # in neighbouring tiles, scored at once by the two actors
    bad = tmp_path / "bad.fa"
    bad.write_text(">c1\n" + "".join(seq) + "\n")
    runs = both(["scan", "--genome", str(bad), "--stride", "5"], {"--bedgraph": "w.bedGraph"}, tmp_path, capsys)
    (lc, _, lerr), (rc, _, rerr) = runs["local"], runs["ray"]
    assert lc == rc == EXIT_USAGE
    assert "'X' at 0-based position 250" in rerr and "'Z'" not in rerr
    assert lerr.splitlines()[-1] == rerr.splitlines()[-1]


def test_an_actor_that_cannot_load_the_model_says_so(genome_path, toy, tmp_path, monkeypatch, capsys, ray_local):
    from serving.predictor import Predictor

    missing = tmp_path / "no-model"
    monkeypatch.setattr(distributed, "predictor_factory", lambda args: functools.partial(Predictor, str(missing)))
    argv = ["scan", "--genome", str(genome_path), "--stride", "50", "--bedgraph", str(tmp_path / "w.bedGraph"),
            "--engine", "ray", "-q"]
    assert main(argv) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "could not load the model or open the genome (both must be at the same path on every node)" in err
    assert str(missing) in err and "Traceback" not in err
    assert _all_cpus_free(ray_local)


# ------------------------------------------------------------------ a wrong --ray-address fails fast, exit 2
def _refused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


@pytest.fixture
def http_server():
    """A plain HTTP server on loopback: it answers, but it is not Ray."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("kind", ["refused", "http", "ray_http", "env", "garbage"])
def test_a_wrong_ray_address_fails_within_seconds_naming_it(kind, http_server, tmp_path, monkeypatch, capsys):
    import time

    genome = write_genome(tmp_path, {"chr1": "ACGT" * 10})[0]
    address = {"refused": f"127.0.0.1:{_refused_port()}", "http": http_server, "ray_http": f"ray://{http_server}",
               "env": f"ray://127.0.0.1:{_refused_port()}", "garbage": "head-node"}[kind]
    argv = ["scan", "--genome", str(genome), "--engine", "ray", "--model", str(tmp_path / "none")]
    if kind == "env":
        monkeypatch.setenv("RAY_ADDRESS", address)
    else:
        argv += ["--ray-address", address]
    t0 = time.perf_counter()
    assert main(argv) == EXIT_USAGE
    assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err
    assert address in err and "Traceback" not in err
    assert {"refused": "cannot connect", "http": "not as a Ray cluster", "ray_http": "not as a Ray cluster",
            "env": "cannot connect", "garbage": "not an address"}[kind] in err


def test_the_address_of_a_real_ray_passes_the_check(ray_local):
    address = ray_local.get_runtime_context().gcs_address
    distributed.check_address(address)  # a Ray head's GCS answers the gRPC health check
    distributed.check_address("auto")  # Ray's own to resolve

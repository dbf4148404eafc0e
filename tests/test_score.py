"""serving.scoring.score and `python -m serving score`: streamed FASTA scoring with bounded memory and input order,
.npy / HDF5 inputs, rejects by id, resume, and --url (a real `bentoml serve`) equal to --local."""
from __future__ import annotations

import gzip
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

from serving.scoring import inputs
from serving.scoring import score as sc
from serving.cli import EXIT_FAILED, EXIT_OK, EXIT_REJECTS, main
from serving.client import HttpPredictor, ServiceError
from serving.dna import random_dna
from serving.fasta import write_fasta
from serving.service.launch import Server, free_port

L = 200


def random_records(n: int, seed: int, length: int = L) -> list[tuple[str, str]]:
    return [(f"seq_{seed}_{i}", seq) for i, seq in enumerate(random_dna(n, length, seed))]


def read_tsv(path: Path) -> list[list[str]]:
    lines = Path(path).read_text().splitlines()
    return [line.split("\t") for line in lines]



@pytest.fixture(scope="module")
def bad_fasta(tmp_path_factory) -> tuple[Path, list[str]]:
    """A FASTA with good records and, by id, one too short, one too long, one bad character, one empty."""
    recs = random_records(40, seed=3)
    recs[3] = ("too_short", recs[3][1][:150])
    recs[10] = ("too_long", recs[10][1] + "ACGT")
    recs[20] = ("bad_char", recs[20][1][:57] + "Z" + recs[20][1][58:])
    path = tmp_path_factory.mktemp("bad") / "bad.fa"
    write_fasta(recs, path)
    with open(path, "a") as fh:  # an empty record: reported, not a stopped run
        fh.write(">empty_one\n>after_empty\n" + "ACGT" * 50 + "\n")
    return path, [r[0] for r in recs] + ["empty_one", "after_empty"]


def test_streamed_scoring_keeps_order_ids_and_bounded_memory(predictor, tmp_path):
    """Scoring 10x more records must not need 10x the memory: peak is set by the chunk, not the file."""
    def run(n: int) -> tuple[int, list[tuple[str, str]], Path]:
        recs = random_records(n, seed=n)
        fa = tmp_path / f"{n}.fa.gz"
        write_fasta(recs, fa)
        out = tmp_path / f"{n}.tsv"
        with open(out, "w") as fh:
            tracemalloc.start()
            summary = sc.score(predictor, inputs.fasta_batches(fa, chunk=512), fh)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert summary.records == summary.scored == n
        return peak, recs, out

    small_peak, _, _ = run(1_000)
    big_peak, recs, out = run(10_000)
    assert big_peak < 2 * small_peak, (small_peak, big_peak)
    rows = read_tsv(out)
    assert [r[0] for r in rows] == [rid for rid, _ in recs]  # same ids, same order (no header: score() writes rows)
    expected = predictor.predict_sequences([s for _, s in recs])
    np.testing.assert_allclose([float(r[1]) for r in rows], expected["probability"], atol=1e-6)
    np.testing.assert_allclose([float(r[2]) for r in rows], expected["logit"], rtol=1e-6, atol=1e-5)


def test_bad_records_are_reported_by_id_and_the_rest_scored(trained, bad_fasta, tmp_path, capsys):
    fa, ids = bad_fasta
    out = tmp_path / "out.tsv"
    code = main(["score", str(fa), "--local", "--model", str(trained["dir"]), "-o", str(out), "--quiet"])
    assert code == EXIT_REJECTS
    rows = read_tsv(out)
    assert rows[0] == ["id", "probability", "logit"]
    assert [r[0] for r in rows[1:]] == ids  # every record has its row, in order
    na = {r[0] for r in rows[1:] if r[1] == "NA"}
    assert na == {"too_short", "too_long", "bad_char", "empty_one"}
    rejects = {r[1]: r for r in read_tsv(Path(f"{out}.rejects.tsv"))[1:]}
    assert set(rejects) == na
    assert rejects["too_short"][0] == "4" and "length 150, the model expects 200" in rejects["too_short"][2]
    assert "length 204" in rejects["too_long"][2] and "--scan" in rejects["too_long"][2]
    assert "invalid character 'Z' at position 58" in rejects["bad_char"][2]
    assert "empty" in rejects["empty_one"][2]
    assert float(rows[-1][1]) >= 0  # the record after the empty one was scored
    # the summary on stderr names them too (not --quiet)
    main(["score", str(fa), "--model", str(trained["dir"]), "-o", str(tmp_path / "o2.tsv")])
    err = capsys.readouterr().err
    assert "4 record(s) could not be scored" in err and "record 21 (bad_char)" in err


def test_npy_and_hdf5_inputs(trained, predictor, tmp_path):
    with h5py.File(trained["data"], "r") as fh:
        x_hdf5 = np.asarray(fh["x_test"][:300])  # (N, 4, L), the project's layout
    npy = tmp_path / "x.npy"
    np.save(npy, x_hdf5.transpose(0, 2, 1).astype(np.uint8))  # (N, L, 4) uint8
    out = tmp_path / "npy.tsv"
    assert main(["score", str(npy), "--model", str(trained["dir"]), "-o", str(out), "-q"]) == EXIT_OK
    rows = read_tsv(out)[1:]
    expected = predictor.predict_array(x_hdf5)
    assert [r[0] for r in rows] == [str(i) for i in range(300)]
    np.testing.assert_allclose([float(r[1]) for r in rows], expected["probability"], atol=1e-6)

    h5 = tmp_path / "small.h5"
    with h5py.File(h5, "w") as fh:
        fh["x_test"] = x_hdf5
        fh["x_valid"] = x_hdf5[:5]
    out = tmp_path / "h5.tsv"
    assert main(["score", str(h5), "--model", str(trained["dir"]), "-o", str(out), "-q", "--chunk", "64"]) == 0
    rows = read_tsv(out)[1:]
    assert [r[0] for r in rows] == [f"x_valid:{i}" for i in range(5)] + [f"x_test:{i}" for i in range(300)]
    np.testing.assert_allclose([float(r[2]) for r in rows[5:]], expected["logit"], rtol=1e-6, atol=1e-5)


def test_resume_continues_an_interrupted_output(trained, tmp_path):
    recs = random_records(300, seed=11)
    fa = tmp_path / "in.fa"
    write_fasta(recs, fa)
    full = tmp_path / "full.tsv"
    assert main(["score", str(fa), "--model", str(trained["dir"]), "-o", str(full), "-q"]) == EXIT_OK
    lines = full.read_text().splitlines(keepends=True)
    part = tmp_path / "part.tsv"
    part.write_text("".join(lines[:101]) + lines[101][:7])  # header + 100 rows + a torn line
    assert main(["score", str(fa), "--model", str(trained["dir"]), "-o", str(part), "-q", "--resume",
                 "--chunk", "64"]) == EXIT_OK
    assert part.read_text() == full.read_text()


def test_cli_subprocess_help_exit_codes_and_no_tensorflow(trained, bad_fasta, tmp_path):
    for sub in ([], ["score"], ["variants"], ["mutagenesis"]):
        res = subprocess.run([sys.executable, "-m", "serving", *sub, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "usage" in res.stdout
    code = ("import sys; from serving.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, "score", str(bad_fasta[0]), "--model", str(trained["dir"])],
                         capture_output=True, text=True)
    assert res.returncode == EXIT_REJECTS, res.stderr
    assert res.stdout.splitlines()[0] == "id\tprobability\tlogit"  # stdout when no -o
    assert "bad_char" in res.stderr
    res = subprocess.run([sys.executable, "-m", "serving", "score", str(tmp_path / "missing.fa")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no such file" in res.stderr
    res = subprocess.run([sys.executable, "-m", "serving", "score", str(bad_fasta[0]), "--model",
                          str(tmp_path / "nomodel")], capture_output=True, text=True)
    assert res.returncode == 2 and "bindcnn train" in res.stderr


def test_url_unreachable_is_retried_then_reported(bad_fasta, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError, match="did not answer after 3 attempts"):
        HttpPredictor(url, retries=2, backoff=0.01)
    assert main(["score", str(bad_fasta[0]), "--url", url, "--retries", "0"]) == EXIT_FAILED
    assert "did not answer" in capsys.readouterr().err


# -- a real service (conftest's `server`) -----------------------------------------------------------
def test_url_and_local_give_the_same_output(server, trained, bad_fasta, tmp_path):
    recs = random_records(2500, seed=5)
    fa = tmp_path / "many.fa.gz"
    with gzip.open(fa, "wt") as fh:
        fh.write("".join(f">{rid}\n{seq}\n" for rid, seq in recs))
    outs = {}
    for name, backend in (("local", ["--local", "--model", str(trained["dir"])]),
                          ("url", ["--url", server.url, "--batch-size", "300", "--workers", "3"])):
        outs[name] = tmp_path / f"{name}.tsv"
        assert main(["score", str(fa), *backend, "-o", str(outs[name]), "-q"]) == EXIT_OK
    local, url = read_tsv(outs["local"]), read_tsv(outs["url"])
    assert [r[0] for r in url] == [r[0] for r in local] == ["id"] + [rid for rid, _ in recs]
    np.testing.assert_allclose(np.array([r[1:] for r in url[1:]], float), np.array([r[1:] for r in local[1:]], float),
                               rtol=1e-6, atol=1e-6)
    # bad records: the same rows and the same rejects through the service
    for name, backend in (("local", ["--model", str(trained["dir"])]), ("url", ["--url", server.url])):
        assert main(["score", str(bad_fasta[0]), *backend, "-o", str(tmp_path / f"bad_{name}.tsv"), "-q"]) == 3
    assert (Path(f"{tmp_path}/bad_url.tsv.rejects.tsv").read_text()
            == Path(f"{tmp_path}/bad_local.tsv.rejects.tsv").read_text())


def test_url_onehot_scan_and_rc_equal_local(server, trained, predictor):
    """The .npy path (/predict_onehot), a scan through it, and client-side rc averaging."""
    from serving.scoring.scan import scan_sequence

    seq = random_records(1, seed=9, length=700)[0][1]
    with HttpPredictor(server.url, batch_size=128, workers=2) as remote:
        assert remote.length == L
        for rc in (False, True):
            a = scan_sequence(remote, seq, stride=3, rc=rc)
            b = scan_sequence(predictor, seq, stride=3, rc=rc)
            np.testing.assert_array_equal(a.starts, b.starts)
            np.testing.assert_allclose(a.probability, b.probability, atol=1e-6)
            np.testing.assert_allclose(a.logit, b.logit, rtol=1e-6, atol=1e-6)


def test_server_dying_mid_run_is_reported_and_resume_scores_each_record_once(trained, tmp_path):
    """The service dies while `score --url` runs: the client retries within its bound, exits 1 naming
    the first record not scored, and a re-run with --resume against a new server completes the output:
    every record exactly once, in order, with the same numbers as --local."""
    import re
    import time

    recs = random_records(40_000, seed=11)
    fa = tmp_path / "many.fa"
    write_fasta(recs, fa)
    out = tmp_path / "out.tsv"
    argv = [sys.executable, "-m", "serving", "score", str(fa), "--batch-size", "100", "--workers", "1",
            "--retries", "2", "--timeout", "10", "-o", str(out), "-q"]
    with Server.for_model(trained["tag"]) as srv:
        proc = subprocess.Popen(argv + ["--url", srv.url], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 300):
            time.sleep(0.05)  # wait until a few hundred rows are written, then kill the service
    assert proc.poll() is None, "the run finished before the server was stopped; make the input larger"
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == EXIT_FAILED, err
    m = re.search(r"stopped at record (\d+) .*rows 1-(\d+) are in .*--resume", err)
    assert m and int(m[1]) == int(m[2]) + 1, err
    partial = read_tsv(out)
    assert [r[0] for r in partial[1:]] == [rid for rid, _ in recs[: int(m[2])]]

    with Server.for_model(trained["tag"]) as srv:
        resumed = subprocess.run(argv + ["--url", srv.url, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == EXIT_OK, resumed.stderr
    local = tmp_path / "local.tsv"
    assert main(["score", str(fa), "--model", str(trained["dir"]), "-o", str(local), "-q"]) == EXIT_OK
    final, want = read_tsv(out), read_tsv(local)
    assert [r[0] for r in final] == [r[0] for r in want] == ["id"] + [rid for rid, _ in recs]
    np.testing.assert_allclose(np.array([r[1:] for r in final[1:]], float), np.array([r[1:] for r in want[1:]], float),
                               rtol=1e-6, atol=1e-6)


def test_records_before_a_fasta_error_come_out_first(tmp_path):
    """fasta_batches: the records read before a malformed one are batched and yielded before the FastaError, even
    mid-batch, so `score` writes their rows (nothing read is lost)."""
    from serving.fasta import FastaError
    from serving.scoring.inputs import fasta_batches

    fa = tmp_path / "bad.fa"
    fa.write_text("".join(f">r{i}\nACGTACGTAC\n" for i in range(7)) + "ACGT\n>\nACGT\n")
    got = []
    with pytest.raises(FastaError, match="empty header"):
        for batch in fasta_batches(fa, chunk=5):
            got.append(list(batch.ids))
    assert got == [[f"r{i}" for i in range(5)], ["r5", "r6"]]


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_rows_keep_input_order_and_a_bad_record_stops_after_the_rows_before(toy_predictor, tmp_path, device):
    """score(): one batch after another, rows in input order; where the model runs elsewhere (a GPU, a service) the
    next batch is read on another thread meanwhile, with the same rows, and an error reading it comes out after
    the rows of the batches before it."""
    import io
    import threading

    from serving.fasta import FastaError

    toy_predictor.device = device
    seqs = random_dna(700, toy_predictor.length, seed=3)
    fa = tmp_path / "a.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)) + ">\nACGT\n")  # then an empty header
    readers = []

    def batches():
        for batch in inputs.fasta_batches(fa, chunk=256):
            readers.append(threading.current_thread().name)
            yield batch

    out = io.StringIO()
    with pytest.raises(FastaError, match="line 1401: empty header"):
        sc.score(toy_predictor, batches(), out)
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    assert [r[0] for r in rows] == [f"s{i}" for i in range(700)] and toy_predictor.batches == [256, 256, 188]
    np.testing.assert_allclose([float(r[1]) for r in rows], [s.count("C") / len(s) for s in seqs], atol=1e-6)
    assert all(name.startswith("bindcnn-read-ahead") == (device == "cuda") for name in readers), readers


def test_tsv_rows_write_numbers_as_percent_g_and_na():
    prob = np.float32([0.25, np.nan, 1e-30, 0.123456789])
    logit = np.float32([-1.0986123, 3.0, np.inf, 17.0])
    assert sc.tsv_rows(["a", "b", "c", "chr1:1-201"], prob, logit) == (
        "a\t0.25\t-1.098612\nb\tNA\t3\nc\t1e-30\tinf\nchr1:1-201\t0.1234568\t17\n")

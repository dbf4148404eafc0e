"""The command line and the server on one shared table of bad inputs: the same verdict and the same reason. A bad
file: CLI exit 2 <-> HTTP 400. Bad records: CLI exit 3 with each in the rejects file <-> HTTP 400 naming each when
no record can be scored, else 200 with a row per record (null scores and the reason for the bad ones)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from serving.cli import EXIT_USAGE, EXIT_REJECTS, main
from serving.dna import random_dna

L = 200
GOOD = random_dna(2, L, seed=11)


def _gzip_cut() -> bytes:
    data = gzip.compress(f">a\n{GOOD[0]}\n>b\n{GOOD[1]}\n".encode())
    return data[: len(data) // 2]


def _npy(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _not_onehot() -> np.ndarray:
    x = np.zeros((2, L, 4), np.float32)
    x[:, :, 0] = 0.5
    return x


# (case, file name, content, whole-file error?, the reason both must give)
BAD_INPUTS = [
    ("empty FASTA", "empty.fa", b"", True, "the file holds no records"),
    ("sequence before any header", "headless.fa", f"{GOOD[0]}\n".encode(), True,
     "line 1: sequence data before the first '>' header"),
    ("header without id", "noid.fa", f">\n{GOOD[0]}\n".encode(), True, "line 1: empty header ('>' with no id)"),
    ("truncated gzip", "cut.fa.gz", _gzip_cut(), True, "not valid gzip or is truncated"),
    ("text named .npy", "text.npy", b">a\nACGT\n", True, "not a readable .npy file"),
    ("one sequence (200, 4) .npy", "one.npy", _npy(np.eye(4, dtype=np.float32)[np.arange(L) % 4]), True,
     "must have 3 dimensions, (N, L, 4) or (N, 4, L), got shape (200, 4)"),
    ("invalid character", "badchar.fa", f">r1\n{GOOD[0][:10]}Q{GOOD[0][11:]}\n".encode(), False,
     "invalid character 'Q' at position 11"),
    ("too short", "short.fa", b">s\nACGT\n", False, "length 4, the model expects 200"),
    ("values not one-hot", "half.npy", _npy(_not_onehot()), False, "array values must be 0 or 1 (one-hot)"),
    ("one good record, one bad", "mixed.fa", f">good\n{GOOD[0]}\n>bad\n{GOOD[1][:5]}X{GOOD[1][6:]}\n".encode(), False,
     "invalid character 'X' at position 6"),
]
IDS = [row[0] for row in BAD_INPUTS]


@pytest.mark.parametrize("case,name,content,whole,reason", BAD_INPUTS, ids=IDS)
def test_command_line(trained, tmp_path, capsys, case, name, content, whole, reason):
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out.tsv"
    code = main(["score", str(path), "-o", str(out), "--model", str(trained["dir"]), "-q"])
    err = capsys.readouterr().err
    rejects = Path(f"{out}.rejects.tsv")
    if whole:
        assert code == EXIT_USAGE, err
        assert reason in err and "--resume" not in err
    else:
        assert code == EXIT_REJECTS, err
        assert reason in rejects.read_text()


@pytest.mark.parametrize("case,name,content,whole,reason", BAD_INPUTS, ids=IDS)
def test_server(http, case, name, content, whole, reason):
    field, route = ("array", "/predict_onehot") if name.endswith(".npy") else ("fasta", "/predict_fasta")
    response = http.post(route, files={field: (name, content, "application/octet-stream")})
    if name == "mixed.fa":  # some records can be scored: a row for each record, in file order
        assert response.status_code == 200, response.text
        good, bad = response.json()
        assert good["id"] == "good" and 0 <= good["probability"] <= 1 and good["reason"] is None
        assert bad["id"] == "bad" and bad["probability"] is None and bad["logit"] is None
        assert reason in bad["reason"]
        return
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert "--" not in response.json()["error"]  # no command-line flags in an HTTP answer

"""The command line and the server on one shared table of bad inputs: the same verdict (CLI exit 2 <-> HTTP 400
for a bad file; CLI exit 3 with the record in the rejects file <-> HTTP 400 naming it) and the same reason."""
from __future__ import annotations

import gzip
from pathlib import Path

import httpx
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
]
IDS = [row[0] for row in BAD_INPUTS]


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


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
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert "--" not in response.json()["error"]  # no command-line flags in an HTTP answer

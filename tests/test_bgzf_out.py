"""serving.bgzf_out: BGZF that gzip, Biopython's independent BGZF reader and the system's bgzip/tabix accept, cut
into blocks of at most 64 KiB wherever the writes fall."""
from __future__ import annotations

import gzip
import shutil
import struct
import subprocess

import numpy as np
import pytest

from serving.bgzf_out import BLOCK_INPUT, EOF_BLOCK, BgzfFile


def blocks(raw: bytes) -> list[tuple[int, bytes]]:
    """(BSIZE + 1, block bytes) of each BGZF block, read from the BC extra field as the specification defines it."""
    out, i = [], 0
    while i < len(raw):
        assert raw[i:i + 4] == b"\x1f\x8b\x08\x04", f"no gzip member with FEXTRA at byte {i}"
        xlen = struct.unpack("<H", raw[i + 10:i + 12])[0]
        assert raw[i + 12:i + 14] == b"BC" and xlen == 6
        size = struct.unpack("<H", raw[i + 16:i + 18])[0] + 1
        out.append((size, raw[i:i + size]))
        i += size
    return out


def rows(n: int) -> bytes:
    rng = np.random.default_rng(3)
    return "".join(f"chr1\t{i + 1}\tACGT\t{v:.7g}\n" for i, v in enumerate(rng.normal(size=n))).encode()


def write_in_pieces(path, data: bytes, cuts: list[int], level: int = 1) -> None:
    out = BgzfFile(path, level)
    for lo, hi in zip([0, *cuts], [*cuts, len(data)]):
        out.write(data[lo:hi])
    out.close()


@pytest.mark.parametrize("cuts", [[], [1, 2, 70_000], [BLOCK_INPUT, 2 * BLOCK_INPUT + 5], list(range(1000, 300_000, 9_999))])
def test_text_round_trips_through_gzip_and_biopython_in_blocks_of_at_most_64_kib(tmp_path, cuts):
    from Bio import bgzf

    data = rows(12_000)  # ~270 kB: several blocks
    path = tmp_path / "rows.tsv.gz"
    write_in_pieces(path, data, [c for c in cuts if c < len(data)])
    raw = path.read_bytes()
    assert gzip.decompress(raw) == data
    with bgzf.BgzfReader(str(path), "rb") as fh:
        assert fh.read(len(data) + 1) == data
    found = blocks(raw)
    assert all(size <= 1 << 16 for size, _ in found)
    assert found[-1][1] == EOF_BLOCK
    # every block but the last holds BLOCK_INPUT bytes of text, as bgzip cuts them
    sizes = [len(gzip.decompress(b)) for _, b in found[:-1]]
    assert sizes[:-1] == [BLOCK_INPUT] * (len(sizes) - 1) and 0 < sizes[-1] <= BLOCK_INPUT
    assert sum(sizes) == len(data)


def test_incompressible_bytes_are_stored_within_a_block(tmp_path):
    data = np.random.default_rng(1).integers(0, 256, 3 * BLOCK_INPUT + 17, dtype=np.uint8).tobytes()
    path = tmp_path / "noise.gz"
    write_in_pieces(path, data, [])
    raw = path.read_bytes()
    assert gzip.decompress(raw) == data
    assert all(size <= 1 << 16 for size, _ in blocks(raw))


def test_an_empty_file_is_the_end_of_file_block_alone(tmp_path):
    path = tmp_path / "empty.gz"
    BgzfFile(path).close()
    assert path.read_bytes() == EOF_BLOCK
    assert gzip.decompress(EOF_BLOCK) == b""


@pytest.mark.skipif(shutil.which("tabix") is None or shutil.which("bgzip") is None,
                    reason="the system's htslib tools (tabix, bgzip) are not installed")
def test_bgzip_checks_it_and_tabix_indexes_and_queries_it(tmp_path):
    data = rows(20_000)
    path = tmp_path / "rows.tsv.gz"
    write_in_pieces(path, data, [5, 99_999])
    subprocess.run(["bgzip", "-t", str(path)], check=True)
    subprocess.run(["tabix", "-s1", "-b2", "-e2", str(path)], check=True)
    got = subprocess.run(["tabix", str(path), "chr1:15000-15002"], check=True, capture_output=True, text=True).stdout
    assert [line.split("\t")[1] for line in got.splitlines()] == ["15000", "15001", "15002"]
    assert got.encode() in data

"""serving.fasta: streaming FASTA (plain and gzip), its errors, and the decompressed-size cap."""
import gzip
import zlib
import io

import pytest

from serving.fasta import FastaError, Record, read_fasta, write_fasta


def test_reads_multiline_records_plain_and_gzip(tmp_path):
    text = ">a first one\nACGT\nacgt\n\n>b\tdesc\nNNNN\n;comment\n>c\nA\n"
    plain = tmp_path / "x.fa"
    plain.write_text(text)
    gz = tmp_path / "x.fa.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for path in (plain, gz):
        recs = list(read_fasta(path))
        assert [r.id for r in recs] == ["a", "b", "c"]
        assert recs[0] == Record("a", "ACGTacgt", "first one")
        assert recs[1].sequence == "NNNN" and recs[1].description == "desc"


def test_reads_from_binary_stream_and_crlf():
    recs = list(read_fasta(io.BytesIO(b">x\r\nACGT\r\nAC\r\n")))
    assert recs == [Record("x", "ACGTAC", "")]


@pytest.mark.parametrize("content, message", [
    (b"ACGT\n>x\nACGT\n", "line 1: sequence data before the first '>'"),
    (b">\nACGT\n", "line 1: empty header"),
    (b">x\n>y\nACGT\n", "record 'x' has no sequence"),
    (b">x\nAC\xffGT\n", "not UTF-8"),
])
def test_malformed_files_name_the_line(content, message):
    with pytest.raises(FastaError, match=message):
        list(read_fasta(io.BytesIO(content)))


def test_truncated_gzip_and_size_cap():
    data = gzip.compress(b">x\n" + b"ACGT" * 10000 + b"\n")
    with pytest.raises(FastaError, match="gzip"):
        list(read_fasta(io.BytesIO(data[:-20])))
    with pytest.raises(FastaError, match="larger than 1000 bytes"):
        list(read_fasta(io.BytesIO(data), max_bytes=1000))


@pytest.mark.parametrize("damage", ["deflate", "crc", "header"])
def test_damaged_gzip_is_a_fasta_error_as_with_the_standard_library(damage):
    """The reader inflates with ISA-L (serving.fasta._gunzip); its own error type must not escape."""
    import random

    from serving.fasta import _gunzip

    text = "".join(f">r{i}\n{random.Random(i).choice('ACGT') * 200}\n" for i in range(2000)).encode()
    data = bytearray(gzip.compress(text))
    if damage == "deflate":
        data[20:70] = bytes(random.Random(0).randrange(256) for _ in range(50))
    elif damage == "crc":
        data[-8:-4] = b"\0\0\0\0"
    else:
        data[2] = 9  # an unknown compression method
    assert type(_gunzip(io.BytesIO(b""))).__module__ == "isal.igzip"  # the fast path is the one tested
    with pytest.raises(FastaError, match="not valid gzip or is truncated"):
        list(read_fasta(io.BytesIO(bytes(data))))
    with pytest.raises((OSError, EOFError, zlib.error)):  # the standard library refuses the same bytes
        gzip.decompress(bytes(data))


def test_write_then_read(tmp_path):
    path = tmp_path / "o.fa.gz"
    assert write_fasta([("s1", "ACGT" * 50), Record("s2", "NN")], path, width=60) == 2
    assert [(r.id, r.sequence) for r in read_fasta(path)] == [("s1", "ACGT" * 50), ("s2", "NN")]

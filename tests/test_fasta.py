"""serving.fasta: streaming FASTA (plain and gzip), its errors, the decompressed-size cap, and the block parser
against a line-by-line reference, whatever the block size, line endings, comments, blanks or non-ASCII text."""
import gzip
import io
import random
import zlib

import numpy as np
import pytest

from serving.fasta import BLANKS, FastaError, Record, parse, read_blocks, read_fasta, write_fasta


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


def test_gzip_multi_member_and_truncated():
    one = b"".join(b">r%d\n%s\n" % (i, b"ACGT" * 50) for i in range(3000))
    data = gzip.compress(one[:len(one) // 2]) + gzip.compress(one[len(one) // 2:])  # as bgzip writes
    assert [r.id for r in read_fasta(io.BytesIO(data))] == [f"r{i}" for i in range(3000)]
    with pytest.raises(FastaError, match="not valid gzip or is truncated"):
        list(read_fasta(io.BytesIO(data[:-30])))


def test_write_then_read(tmp_path):
    path = tmp_path / "o.fa.gz"
    assert write_fasta([("s1", "ACGT" * 50), Record("s2", "NN")], path, width=60) == 2
    assert [(r.id, r.sequence) for r in read_fasta(path)] == [("s1", "ACGT" * 50), ("s2", "NN")]


# -- the block parser against a line-by-line reference ----------------------------------------------
def reference(data: bytes, allow_empty: bool) -> tuple[list[tuple[str, str, str]], str | None]:
    """What FASTA means here, one line at a time: (id, sequence, description) of the records before the first
    problem, and that problem as FastaError prints it."""
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        return reference_text(data.decode("utf-8"), allow_empty)
    except UnicodeDecodeError as exc:  # the records before the bad line (the last one unfinished, unless it is a header)
        at = data.rfind(b"\n", 0, exc.start) + 1
        header = data[at:exc.start].lstrip(BLANKS.encode()).startswith(b">")  # it ends the record before
        records, problem = reference_text(data[:at].decode("utf-8"), allow_empty, open_end=not header)
        line = data.count(b"\n", 0, exc.start) + 1
        return records, problem or f"line {line}: the file is not UTF-8 text ({exc.reason})"


def reference_text(text: str, allow_empty: bool, open_end: bool = False):
    records, problem, header, chunks = [], None, None, []

    def finish():
        if not "".join(chunks) and not allow_empty:
            return f"line {header[1]}: record {header[0].split(' ')[0].split(chr(9))[0]!r} has no sequence"
        rid, _, desc = header[0].partition(" ")
        rid, tab, more = rid.partition("\t")
        records.append((rid, "".join(chunks), (more + " " + desc if tab else desc).strip()))

    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip(BLANKS)
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            if header is not None and (problem := finish()):
                return records, problem
            if not line[1:].strip(BLANKS):
                return records, f"line {number}: empty header ('>' with no id)"
            header, chunks = (line[1:].strip(BLANKS), number), []
        elif header is None:
            return records, f"line {number}: sequence data before the first '>' header (is this FASTA?)"
        else:
            chunks.append(line)
    if header is not None and not open_end:
        problem = finish()
    return records, problem


def blocks_read(data: bytes, allow_empty: bool, block_bytes: int):
    out = []
    try:
        for block in read_blocks(io.BytesIO(data), allow_empty=allow_empty, block_bytes=block_bytes):
            ids, descriptions = block.ids_and_descriptions()
            out += list(zip(ids, block.sequences(), descriptions))
    except FastaError as exc:
        return out, str(exc)
    return out, None


CASES = [
    b">a desc here\nACGT\nacgt\n\n>b\tx y\nNNNN\n;comment\n>c\nA",
    b">a\r\nACGT\r\nAC\r\n>b\r\nGG\r\n",
    b">a\rACGT\rAC\r>b\rGG",  # old Mac line breaks
    b";lead comment\n\n>a\nAC\n>b\n\n>c\nGT\n",  # b is empty
    b">a\n  ACGT  \n\tAC\n>b\nA C\n \x0b\n",  # blanks around and inside sequence lines, an all-blank line
    b">\xc3\xa9t\xc3\xa9 \xe2\x82\xac\nAC\xc3\xa9GT\n>b\nAC\n",  # UTF-8 in headers and sequences
    b" >a\nACGT\n  ;x\n>  b  c \nGG\n",  # a header and a comment after blanks, blanks after '>'
    b">a\nACGT\n>last-header-without-newline",
    b">r1\nAC\n>x\nA\xffC\n>y\nAA\n",  # not UTF-8 on line 4: r1 is read, x is not
    b">r1\nAC\n >x\xff\nGG\n",  # not UTF-8 in a header: the record before it is whole
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("allow_empty", [True, False])
def test_blocks_of_any_size_read_like_the_reference(data, allow_empty):
    expected = reference(data, allow_empty)
    for block_bytes in (1, 2, 7, 64, 1 << 20):
        assert blocks_read(data, allow_empty, block_bytes) == expected, block_bytes


def test_random_files_read_like_the_reference():
    pieces = [b">", b">id", b">id desc", b">a\tb c", b"\n", b"\r\n", b"\r", b"ACGT", b"acgtn", b";c", b"NNN",
              b"\n\n", b">x y\n", b"GGGG\n", b"\n>z\n", b" ", b"\t", b"\x0c", b"\xc3\xa9", b"\xe2\x82\xac", b"\xff"]
    rng = random.Random(0)
    for _ in range(1500):
        data = b">s\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        allow_empty = rng.random() < 0.5
        assert blocks_read(data, allow_empty, rng.choice([1, 3, 16, 4096])) == reference(data, allow_empty), data


def test_errors_in_later_blocks_name_their_line_and_come_after_the_records_before():
    good = b"".join(b">r%d\n%s\n%s\n" % (i, b"ACGT" * 20, b"GG" * 10) for i in range(500))  # 3 lines each
    for bad, line, message in [(b">\nACGT\n", 1501, "empty header"),
                               (b">x\n>y\nAC\n", 1501, "record 'x' has no sequence"),
                               (b">x\nAC\xffGT\n", 1502, "not UTF-8")]:
        got, error = blocks_read(good + bad, False, 4096)
        assert error.startswith(f"line {line}: ") and message in error
        assert len(got) == 500 and got[-1][0] == "r499"


def test_block_arrays_describe_the_records():
    block, problem, lines = parse(b">a x\nACG\nT\n>b\nNN\n", 10, False)
    assert problem is None and lines == 5
    assert block.headers == ["a x", "b"] and block.lines.tolist() == [11, 14]
    assert block.offsets.tolist() == [0, 4, 6] and block.data.tobytes() == b"ACGTNN"
    assert block.lengths.tolist() == [4, 2] and block.take(1, 2).sequences() == ["NN"]
    assert block.ids_and_descriptions() == (["a", "b"], ["x", ""])
    # a non-ASCII character is one '?' byte in data, so lengths count characters
    block, _, _ = parse(">é\nACé\n>b\nAC\n".encode(), 0, False)
    assert block.lengths.tolist() == [3, 2] and block.sequences() == ["ACé", "AC"] and block.data.tobytes() == b"AC?AC"
    assert block.take(1, 2).sequences() == ["AC"]
    assert np.issubdtype(block.offsets.dtype, np.integer) and block.lines.dtype == np.int64

"""serving.fasta_parse through serving.fasta.read_blocks: the vectorised parser gives the records and errors of the
line-by-line one (parse_lines), whatever the block size, line endings, comments, whitespace or non-ASCII text."""
import gzip
import io
import random

import numpy as np
import pytest

from serving.fasta import FastaError, read_blocks, read_fasta
from serving.fasta_parse import parse, parse_lines

CASES = [
    b">a desc here\nACGT\nacgt\n\n>b\tx y\nNNNN\n;comment\n>c\nA",
    b">a\r\nACGT\r\nAC\r\n>b\r\nGG\r\n",
    b">a\rACGT\rAC\r>b\rGG",  # old Mac line breaks
    b";lead comment\n\n>a\nAC\n>b\n\n>c\nGT\n",  # b is empty
    b">a\n  ACGT  \n\tAC\n>b\nA C\n",  # whitespace around and inside sequence lines
    b">\xc3\xa9t\xc3\xa9 \xe2\x82\xac\nAC\xc3\xa9GT\n>b\nAC\n",  # UTF-8 in headers and sequences
    b" >a\nACGT\n",  # a header with leading space
    b">a\nACGT\n>last-header-without-newline",
]


def _records(data: bytes, allow_empty: bool, block_bytes: int):
    out = []
    try:
        for block in read_blocks(io.BytesIO(data), allow_empty=allow_empty, block_bytes=block_bytes):
            ids, descriptions = block.ids_and_descriptions()
            out += list(zip(ids, block.sequences(), descriptions))
    except FastaError as exc:
        return out, str(exc)
    return out, None


def _reference(data: bytes, allow_empty: bool):
    text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    block, problem = parse_lines(text, 0, allow_empty)
    ids, descriptions = block.ids_and_descriptions()
    return list(zip(ids, block.sequences(), descriptions)), None if problem is None else str(problem)


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("allow_empty", [True, False])
def test_blocks_of_any_size_read_like_the_line_parser(data, allow_empty):
    expected = _reference(data, allow_empty)
    for block_bytes in (1, 2, 7, 64, 1 << 20):
        assert _records(data, allow_empty, block_bytes) == expected, block_bytes


def test_random_files_match_the_line_parser():
    pieces = [b">", b">id", b">id desc", b">a\tb c", b"\n", b"\r\n", b"\r", b"ACGT", b"acgtn", b";c", b"NNN",
              b"\n\n", b">x y\n", b"GGGG\n", b"\n>z\n", b" ", b"\t", b"\xc3\xa9"]
    rng = random.Random(0)
    for _ in range(1500):
        data = b">s\n" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        allow_empty = rng.random() < 0.5
        assert _records(data, allow_empty, rng.choice([1, 3, 16, 4096])) == _reference(data, allow_empty), data


def test_errors_in_later_blocks_name_their_line_and_come_after_the_records_before():
    good = b"".join(b">r%d\n%s\n%s\n" % (i, b"ACGT" * 20, b"GG" * 10) for i in range(500))  # 3 lines each
    for bad, line, message in [(b">\nACGT\n", 1501, "empty header"),
                               (b">x\n>y\nAC\n", 1501, "record 'x' has no sequence"),
                               (b">x\nAC\xffGT\n", 1502, "not UTF-8")]:
        got, error = _records(good + bad, False, 4096)
        assert error.startswith(f"line {line}: ") and message in error
        assert len(got) == 500 and got[-1][0] == "r499"


def test_gzip_multi_member_and_truncated():
    one = b"".join(b">r%d\n%s\n" % (i, b"ACGT" * 50) for i in range(3000))
    data = gzip.compress(one[:len(one) // 2]) + gzip.compress(one[len(one) // 2:])  # as bgzip writes
    assert [r.id for r in read_fasta(io.BytesIO(data))] == [f"r{i}" for i in range(3000)]
    with pytest.raises(FastaError, match="not valid gzip or is truncated"):
        list(read_fasta(io.BytesIO(data[:-30])))


def test_block_arrays_describe_the_records():
    block, problem, lines = parse(b">a x\nACG\nT\n>b\nNN\n", 10, False)
    assert problem is None and lines == 5
    assert block.headers == ["a x", "b"] and block.lines.tolist() == [11, 14]
    assert block.offsets.tolist() == [0, 4, 6] and block.data.tobytes() == b"ACGTNN"
    assert block.lengths.tolist() == [4, 2] and block.take(1, 2).sequences() == ["NN"]
    # a non-ASCII character is one '?' byte in data, so lengths count characters
    block, _, _ = parse(">é\nACé\n".encode(), 0, False)
    assert block.lengths.tolist() == [3] and block.sequences() == ["ACé"] and block.data.tobytes() == b"AC?"
    assert np.issubdtype(block.offsets.dtype, np.integer)

"""FASTA headers kept as one text (serving.fasta_headers.Headers) read like the list of strings they replace."""
import numpy as np
import pytest

from serving.fasta_headers import Headers
from serving.fasta_parse import parse
from serving.scoring.tsv_text import tsv_rows


def headers_of(strings):
    text = "".join(s + "\n" for s in strings).encode()
    return Headers(text, np.cumsum([len(s) + 1 for s in strings], dtype=np.int64) - 1)


def test_headers_read_like_a_list():
    names = ["r0", "chr1:100-300", "", "x" * 50, "r4"]
    h = headers_of(names)
    assert len(h) == 5 and h == names and list(h) == names
    assert [h[i] for i in range(5)] == names and h[-1] == "r4" and h[-5] == "r0"
    with pytest.raises(IndexError):
        h[5]
    assert h[1:4] == names[1:4] and isinstance(h[1:4], Headers) and h[::2] == names[::2] and h[3:1] == []
    assert h[1:4][0] == "chr1:100-300" and h[1:4][-1] == "x" * 50
    assert "" in h and h.index("") == 2 and h.first_empty() == 2 and headers_of(["a", "b"]).first_empty() is None
    joined = Headers.concat([h[:2], h[2:], headers_of(["y"])])
    assert joined == names + ["y"] and joined[5] == "y" and joined.take(4, 6) == ["r4", "y"]


def test_parse_keeps_blank_free_headers_as_text_with_the_same_records_and_errors():
    plain = b">r1\nACGT\n>chr2:5-9\nAC\nGT\n>r3\nTTTT\n"
    block, problem, _ = parse(plain, 0, False)
    assert isinstance(block.headers, Headers) and problem is None
    assert block.headers == ["r1", "chr2:5-9", "r3"] and block.ids_and_descriptions() == (block.headers, ["", "", ""])
    assert block.take(1, 3).headers == ["chr2:5-9", "r3"]
    described = parse(b">r1 first one\nACGT\n>r2\tsecond\nAC\n", 0, False)[0]
    assert isinstance(described.headers, list)
    assert described.ids_and_descriptions() == (["r1", "r2"], ["first one", "second"])
    block, problem, _ = parse(b">r1\nAC\n>\nGT\n", 0, False)
    assert block.headers == ["r1"] and problem is not None and "empty header" in str(problem) and problem.line == 3
    block, problem, _ = parse(b">r1\nAC\n>r2\n>r3\nGT\n", 0, False)
    assert block.headers == ["r1"] and "record 'r2' has no sequence" in str(problem)


def test_tsv_rows_write_headers_as_python_would():
    h = headers_of([f"r{i}" for i in range(3000)] + ["chr9:1-201"])
    values = np.linspace(0, 1, len(h), dtype=np.float32)
    expected = "".join(f"{name}\t{v:.7g}\t{-v:.7g}\n" for name, v in zip(h.strings(), values.tolist()))
    assert tsv_rows(h, values, -values) == expected

"""serving.encoding: one-hot encoding, its errors, decoding and one-hot array checks."""
import numpy as np
import pytest

from serving.dna import (SequenceError, check_onehot, decode, encode, encode_one, reverse_complement,
                              to_codes)


def test_encode_rows_follow_acgt_and_n_is_zero():
    x = encode(["ACGTN", "acgtn"])
    assert x.shape == (2, 5, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :4], np.eye(4))
    assert x[0, 4].sum() == 0
    np.testing.assert_array_equal(x[0], x[1])


def test_decode_round_trip():
    seqs = ["ACGTNNACGT", "TTTTGGGGCA"]
    assert decode(encode(seqs)) == seqs
    assert decode(encode_one("ACGN")) == "ACGN"


@pytest.mark.parametrize("bad, pos, shown", [("ACGTX", 5, "'X'"), ("AC GT", 3, "U+0020"),
                                              ("ACGé", 4, "'é'"), ("AC\x00G", 3, "U+0000")])
def test_bad_character_names_index_position_and_character(bad, pos, shown):
    with pytest.raises(SequenceError) as err:
        encode(["ACGTA"[: len(bad)], bad], first_index=10)
    msg = str(err.value)
    assert "sequence 11" in msg and f"position {pos}" in msg and shown in msg
    assert err.value.index == 11


def test_wrong_length_names_index_and_lengths():
    with pytest.raises(SequenceError, match=r"sequence 1: length 3, the model expects 4"):
        encode(["ACGT", "ACG"], length=4)


def test_empty_inputs_are_refused():
    with pytest.raises(SequenceError, match="no sequences"):
        encode([])
    with pytest.raises(SequenceError, match="single string"):
        encode("ACGT")
    with pytest.raises(SequenceError, match="expected a string"):
        encode(["ACGT", 5])


def test_codes_and_reverse_complement():
    np.testing.assert_array_equal(to_codes("ACGTN"), [0, 1, 2, 3, 4])
    x = encode(["AACGN"])
    assert decode(reverse_complement(x)) == ["NCGTT"]


def test_check_onehot_accepts_layouts_and_dtypes():
    x = encode(["ACGTACGTAC", "NNNNACGTAC"])
    for arr in (x, x.astype(np.float64), x.astype(np.uint8), x.astype(bool), x.transpose(0, 2, 1)):
        np.testing.assert_array_equal(check_onehot(arr, 10), x)
    with pytest.raises(ValueError, match=r"3 dimensions.*\(N, 10, 4\) or \(N, 4, 10\).*x\[None\]"):
        check_onehot(x[0], 10)  # one (L, 4) sequence: refused, saying which shapes are accepted


@pytest.mark.parametrize("arr, message", [
    (np.zeros((2, 9, 4)), "shape"),
    (np.zeros((2, 10)), "shape"),
    (np.zeros((0, 10, 4)), "no sequences"),
    (np.full((1, 10, 4), np.nan), "NaN"),
    (np.full((1, 10, 4), 0.5), "0 or 1"),
    (np.ones((1, 10, 4)), "more than one base"),
    (np.array([[["a"] * 4] * 10]), "not numeric"),
    (np.empty((1, 10, 4), dtype=object), "not numeric"),
])
def test_check_onehot_rejects_with_reason(arr, message):
    with pytest.raises(ValueError, match=message):
        check_onehot(arr, 10)

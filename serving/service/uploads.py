"""Files clients upload (multipart): a FASTA (plain or gzip) or a one-hot .npy, read into what the predictor
takes, with every problem turned into a 400 (or 413 past a limit) that says which record and what is wrong."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from bentoml.exceptions import InvalidArgument

from serving.dna import SequenceError, check_onehot, encode_codes
from serving.fasta import FastaError, Record, read_fasta
from serving.scoring.inputs import NOT_NPY, open_npy
from serving.service.limits import Limits, TooLarge

NPY_MAGIC = b"\x93NUMPY"


def fasta_records(path: Path, limits: Limits) -> list[Record]:
    """A FASTA upload (plain or gzip) -> its records (at most the sequence limit), or 400/413."""
    records = []
    try:
        for record in read_fasta(path, max_bytes=limits.upload_bytes.value):
            records.append(record)
            limits.sequences.check(len(records))
    except FastaError as exc:
        if exc.too_large:
            raise TooLarge(f"FASTA upload: {exc} (server setting {limits.upload_bytes.env})") from None
        raise InvalidArgument(f"FASTA upload: {exc}") from None
    if not records:
        raise InvalidArgument("FASTA upload: the file holds no records (expected '>id' lines followed by "
                              "sequence lines)")
    return records


def fasta_codes(path: Path, limits: Limits, length: int, alphabet: str
                ) -> tuple[list[str], np.ndarray, list[str | None]]:
    """A FASTA upload -> record ids (N,), codes: (K, L) uint8 of the K records that can be scored (in file order),
    and per record None or the reason it cannot be (the rejects of `bindcnn score`). 400 listing every record when
    none can be scored (or the file itself is bad)."""
    records = fasta_records(path, limits)
    ids = [r.id for r in records]
    try:
        return ids, encode_codes([r.sequence for r in records], length, alphabet), [None] * len(records)
    except SequenceError:
        pass  # at least one bad record: find each
    rows, reasons = [], []
    for r in records:
        try:
            rows.append(encode_codes([r.sequence], length, alphabet)[0])
            reasons.append(None)
        except SequenceError as exc:
            reasons.append(exc.reason)
    if not rows:
        listed = "; ".join(f"record {i + 1} (id {rid!r}): {why}" for i, (rid, why) in enumerate(zip(ids, reasons)))
        raise InvalidArgument(f"FASTA upload: no record can be scored: {listed}")
    return ids, np.stack(rows), reasons


def npy_onehot(path: Path, limits: Limits, length: int) -> np.ndarray:
    """A .npy upload -> x: (N, L, 4) float32 (also accepts (N, 4, L); never unpickles; memory-mapped, so
    the header's shape is checked before any data is read)."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != NPY_MAGIC and not magic.startswith(b"PK\x03\x04"):
        raise InvalidArgument(f"array upload: {NOT_NPY}")
    try:
        raw = open_npy(path)
        limits.sequences.check(raw.shape[0])
        return check_onehot(raw, length)
    except ValueError as exc:
        raise InvalidArgument(f"array upload: {exc}") from None


def codes_upload(path: Path, limits: Limits, length: int) -> np.ndarray:
    """A /predict_codes upload (a file: codes_from_bytes)."""
    return codes_from_bytes(Path(path).read_bytes(), limits, length)


def codes_from_bytes(data: bytes, limits: Limits, length: int) -> np.ndarray:
    """/predict_codes' body -> codes: (N, L) uint8, 0-3 = the alphabet's letters, 4 = N. The data is a .npy of an
    integer array (N, L), or N x L raw bytes (one byte per position, rows back to back); 400 for anything else,
    naming the first bad value's sequence and position (413 past the sequence limit)."""
    if data.startswith(NPY_MAGIC):
        import io

        try:
            codes = np.load(io.BytesIO(data), allow_pickle=False)
        except Exception as exc:  # a client's unreadable file is bad input, whatever numpy raised
            raise InvalidArgument(f"codes upload: not a readable .npy file ({exc})") from None
        if codes.dtype.kind not in "iu" or codes.ndim != 2 or codes.shape[1] != length:
            raise InvalidArgument(f"codes upload: a .npy of codes must be an integer array (N, {length}), got "
                                  f"{codes.dtype} {tuple(codes.shape)}")
    else:
        if not data or len(data) % length:
            raise InvalidArgument(f"codes upload: {len(data)} bytes is not a whole number of {length}-byte rows "
                                  "(send N x L bytes, or a .npy of shape (N, L))")
        codes = np.frombuffer(data, np.uint8).reshape(-1, length)
    limits.sequences.check(len(codes))
    if len(codes) == 0:
        raise InvalidArgument("codes upload: no sequences (N = 0)")
    bad = (codes > 4) | (codes < 0) if codes.dtype.kind == "i" else codes > 4
    if bad.any():
        n, pos = np.argwhere(bad)[0]
        raise InvalidArgument(f"codes upload: sequence {n}: position {pos + 1} has code {codes[n, pos]} (codes are "
                              "0-3 for A, C, G, T and 4 for N)")
    return codes.astype(np.uint8, copy=False)

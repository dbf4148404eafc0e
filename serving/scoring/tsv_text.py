"""TSV rows straight from arrays: numbers written exactly as Python's '%.7g' writes them and rows joined by numpy,
so the score command's writer thread takes ~30% less CPU than with a Python % per row (it shares the model's cores).

g_text formats one column; tsv_rows joins ids and columns. Rows numpy cannot format exactly go through Python's %.
"""
from __future__ import annotations

import numpy as np

from serving.fasta_headers import Headers

DIGITS = 7
WIDTH = 16  # bytes kept per field: the widest, '-1.234567e-05', has 13 (16: rows of whole 4-byte words)
NA = "NA"
# Values in [1e-5, 1e6) are scaled by 10**(6 - e), 0 <= 6 - e <= 11, an exact double: for a float32 value the
# rounded product then lands on the same side of every rounding tie as the exact product (the distance to a tie
# is at least 1e6 / (2**24 * 5**11) = 1.2e-9, the product's rounding error at most 1e7 * 2**-53 = 1.1e-9).
_LOW, _HIGH = 1e-5, 1e6
_E_MIN, _E_MAX = -5, 6  # decimal exponents after rounding (999999.96 rounds to 1000000, e = 6)
# A row's pool of bytes: the 7 digits, '.', '0', 'e', the exponent's sign, tens and ones, '-', TAB and LF.
_POINT, _ZERO, _E, _SIGN, _TENS, _ONES, _MINUS, _TAB, _LF = range(DIGITS, DIGITS + 9)
_ID_WIDTH = 256  # longer ids take the Python path (the padded matrix would be mostly padding)


def _layouts(tab_before: bool, newline_after: bool) -> tuple[np.ndarray, np.ndarray]:
    """For every (negative, exponent, significant digits kept): the pool byte of each output byte (as one 16-byte
    item, so that choosing a row's layout is one take) and the field's size."""
    n_e = _E_MAX - _E_MIN + 1
    src = np.zeros((2, n_e, DIGITS, WIDTH), np.uint8)
    size = np.zeros((2, n_e, DIGITS), np.int64)
    for neg in (0, 1):
        for e in range(_E_MIN, _E_MAX + 1):
            for kept in range(1, DIGITS + 1):
                if 0 <= e < DIGITS:  # 123.45
                    cols = list(range(e + 1)) + ([_POINT, *range(e + 1, kept)] if kept > e + 1 else [])
                elif -4 <= e < 0:  # 0.0012345
                    cols = [_ZERO, _POINT] + [_ZERO] * (-e - 1) + list(range(kept))
                else:  # 1.2345e-05
                    cols = [0] + ([_POINT, *range(1, kept)] if kept > 1 else []) + [_E, _SIGN, _TENS, _ONES]
                cols = [_TAB] * tab_before + [_MINUS] * neg + cols + [_LF] * newline_after
                src[neg, e - _E_MIN, kept - 1, :len(cols)] = cols
                size[neg, e - _E_MIN, kept - 1] = len(cols)
    return src.reshape(-1, WIDTH).view(f"V{WIDTH}").reshape(-1), size.reshape(-1)


def _digit_words(count: int, width: int, tail: str = "") -> np.ndarray:
    """i -> its `width` decimal digits (zero-padded) and `tail`, as one uint32 word each, for i < count."""
    digits = np.arange(count)[:, None] // 10 ** np.arange(width - 1, -1, -1) % 10 + ord("0")
    text = np.concatenate([digits, np.full((count, len(tail)), [ord(c) for c in tail], np.int64)], axis=1)
    return text.astype(np.uint8).view(np.uint32).reshape(-1)


_LAYOUTS: dict[tuple[bool, bool], tuple[np.ndarray, np.ndarray]] = {}  # built at first use (~0.5 ms each)
_DIGITS_0_3 = _digit_words(10_000, 4)  # r // 1000 -> the first 4 digits
_DIGITS_4_6 = _digit_words(1_000, 3, ".")  # r % 1000 -> the last 3 digits and the point
_EXP_A = np.array([f"0e{'-' if e < 0 else '+'}{abs(e) // 10}".encode() for e in range(_E_MIN, _E_MAX + 1)]
                  ).view(np.uint32)
_EXP_B = np.array([f"{abs(e) % 10}-\t\n".encode() for e in range(_E_MIN, _E_MAX + 1)]).view(np.uint32)
_TRAILING = np.zeros(10_000, np.int64)  # trailing zeros of i written with 4 digits
for _power in (10, 100, 1000, 10_000):
    _TRAILING[::_power] += 1
_POW10 = 10.0 ** np.arange(-20, 21)


def g_text(values: np.ndarray, tab_before: bool = False, newline_after: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """values: (N,) float32 (or anything float32 holds exactly) -> (chars (N, WIDTH) uint8, sizes (N,) int64): row
    i's first sizes[i] bytes are '%.7g' % values[i] ('NA' for NaN), after a TAB and before a LF when asked."""
    with np.errstate(invalid="ignore"):  # a signalling NaN warns when widened
        x = np.asarray(values, np.float32).astype(np.float64)
    a = np.abs(x)
    exact = (a >= _LOW) & (a < _HIGH)
    a[~exact] = 1.0
    e = np.floor(np.log10(a)).astype(np.int64)
    p = a * _POW10[20 + DIGITS - 1 - e]
    off = (p >= 10.0 ** DIGITS).astype(np.int64) - (p < 10.0 ** (DIGITS - 1))  # log10 rounded across a power
    if off.any():
        e += off
        p = a * _POW10[20 + DIGITS - 1 - e]
    r = np.rint(p).astype(np.int64)  # 7 significant digits, ties to even as Python rounds them
    carry = r >= 10 ** DIGITS  # 9.9999996 -> 10.00000
    if carry.any():
        r[carry] //= 10
        e += carry
    n = len(x)
    high, low = np.divmod(r, 1000)
    words = np.empty((n, WIDTH // 4), np.uint32)
    words[:, 0], words[:, 1] = _DIGITS_0_3[high], _DIGITS_4_6[low]
    e_at = np.clip(e - _E_MIN, 0, _E_MAX - _E_MIN)
    words[:, 2], words[:, 3] = _EXP_A[e_at], _EXP_B[e_at]
    kept = DIGITS - np.where(low > 0, _TRAILING[low], 3 + _TRAILING[high])
    combo = ((x < 0) * (_E_MAX - _E_MIN + 1) + e_at) * DIGITS + kept - 1
    if (tab_before, newline_after) not in _LAYOUTS:
        _LAYOUTS[tab_before, newline_after] = _layouts(tab_before, newline_after)
    layouts, layout_sizes = _LAYOUTS[tab_before, newline_after]
    where = layouts.take(combo).view(np.uint8).reshape(n, WIDTH) + (np.arange(n) * WIDTH)[:, None]
    chars = words.view(np.uint8).reshape(-1).take(where)
    sizes = layout_sizes[combo]
    for i in np.flatnonzero(~exact):  # zero, tiny, huge, inf, NaN: Python says it
        text = ("\t" * tab_before + (NA if x[i] != x[i] else "%.7g" % x[i]) + "\n" * newline_after).encode()
        chars[i, :len(text)] = np.frombuffer(text, np.uint8)
        sizes[i] = len(text)
    return chars, sizes


def tsv_rows(ids: list[str] | Headers, *columns: np.ndarray) -> str:
    """Rows `id<TAB>col1<TAB>col2...<LF>`, each number as '%.7g' writes it, 'NA' for NaN. ids: N strings without
    line breaks; columns: (N,) float32 each. Each row is laid out in 16-byte slots (the id's, one per number) and
    one compress keeps the bytes in use."""
    if not len(ids):
        return ""
    if isinstance(ids, Headers):  # FASTA ids as parsed: already one ASCII text
        raw, ends = np.frombuffer(ids.text, np.uint8), ids.ends
    else:
        raw = np.frombuffer(("\n".join(ids) + "\n").encode(), np.uint8)
        ends = np.flatnonzero(raw == 10)
    id_sizes = np.diff(ends, prepend=-1) - 1
    id_slots = max(1, -(-int(id_sizes.max()) // WIDTH))
    if len(ends) != len(ids) or id_slots * WIDTH > _ID_WIDTH:  # a line break inside an id, or very long ids
        return _python_rows(ids, columns)
    n, slots = len(ids), id_slots + len(columns)
    table = np.empty((n, slots), f"V{WIDTH}")
    used = np.empty((n, slots), np.int16)  # bytes in use in each slot
    used[:, :id_slots] = np.clip(id_sizes[:, None] - WIDTH * np.arange(id_slots), 0, WIDTH)
    for j, column in enumerate(columns):
        chars, used[:, id_slots + j] = g_text(column, tab_before=True, newline_after=j == len(columns) - 1)
        table[:, id_slots + j] = chars.view(f"V{WIDTH}")[:, 0]
    keep = np.arange(WIDTH, dtype=np.int16) < used[:, :, None]  # (n, slots, WIDTH)
    table = table.view(np.uint8).reshape(n, slots, WIDTH)
    table[:, :id_slots][keep[:, :id_slots]] = raw[raw != 10]
    return table[keep].tobytes().decode()


def _python_rows(ids: list[str], columns: tuple[np.ndarray, ...]) -> str:
    texts = [[NA if v != v else "%.7g" % v for v in np.asarray(c, np.float32).tolist()] for c in columns]
    return "".join("\t".join(row) + "\n" for row in zip(ids, *texts))

"""The annotated VCF: the input's header and records, each record's INFO extended with the bindcnn fields (declared
in the header) from its effect rows: probabilities, delta logit and its p-value where scored, and a status code per
ALT allele saying why one was not (e.g. window_off_chromosome), so the VCF is as honest as the TSV.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO, Any

from serving.bgzf_out import BgzfFile
from serving.scoring.variants import WINDOW_OFF
from serving.scoring.vcf import VcfRecord

INFO_FIELDS = (  # (ID, Number, Type, Description) of the INFO fields the annotated VCF adds
    ("BINDCNN_REF_PROB", "1", "Float",
     "bindcnn probability of the reference window (model length, centred on the variant)"),
    ("BINDCNN_ALT_PROB", "A", "Float", "bindcnn probability of the window with each ALT allele ('.' where not scored)"),
    ("BINDCNN_DELTA_LOGIT", "A", "Float", "bindcnn logit change alt - ref for each ALT allele ('.' where not scored)"),
    ("BINDCNN_P", "A", "Float", "bindcnn empirical p-value of each ALT allele's |delta logit|: the share of random "
     "single-base substitutions on the model's background windows with at least as large an effect (a "
     "model-relative rarity, not a clinical significance; '.' where not scored or the model has no null)"),
    ("BINDCNN_STATUS", "A", "String", "bindcnn status of each ALT allele: ok, or why it was not scored "
     "(window_off_chromosome, ref_mismatch, unknown_chromosome, outside_chromosome, unsupported_allele, "
     "not_scored); the TSV's status column says more"),
)
PREFIX = "BINDCNN_"
STATUS_CODES = (  # (how a status starts, its code in BINDCNN_STATUS)
    ("ok", "ok"), (WINDOW_OFF, WINDOW_OFF), ("ref mismatch", "ref_mismatch"), ("chromosome ", "unknown_chromosome"),
    ("position ", "outside_chromosome"), ("symbolic allele", "unsupported_allele"), ("breakend", "unsupported_allele"),
    ("spanning deletion", "unsupported_allele"), ("no ALT allele", "unsupported_allele"),
    ("unsupported allele", "unsupported_allele"))


def status_code(status: str) -> str:
    """A status as one word for the VCF's INFO (no spaces, commas or semicolons)."""
    return next((code for start, code in STATUS_CODES if status.startswith(start)), "not_scored")


def model_prefix(name: str | None) -> str:
    """The INFO prefix of a model's fields: BINDCNN_ for one model, BINDCNN_<NAME>_ for each of several."""
    return PREFIX if name is None else f"{PREFIX}{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}_"


def _declared(names: list[str] | None) -> list[tuple[str, str, str, str]]:
    """INFO_FIELDS, the score fields once per model (BINDCNN_<NAME>_...) when several; BINDCNN_STATUS once."""
    if not names:
        return list(INFO_FIELDS)
    out = []
    for name in names:
        out += [(model_prefix(name) + fid[len(PREFIX):], number, kind, f"model {name}: {desc}")
                for fid, number, kind, desc in INFO_FIELDS if fid != f"{PREFIX}STATUS"]
    return out + [f for f in INFO_FIELDS if f[0] == f"{PREFIX}STATUS"]


def annotated_header(header: str, names: list[str] | None = None) -> str:
    """The input's header with the INFO_FIELDS declared just before #CHROM (earlier bindcnn declarations dropped,
    so an annotated VCF can be annotated again); names: several models, each with its own score fields."""
    lines = [ln for ln in header.splitlines(keepends=True) if not ln.startswith(f"##INFO=<ID={PREFIX}")]
    lines = [ln if ln.endswith("\n") else ln + "\n" for ln in lines]
    ours = [f'##INFO=<ID={fid},Number={number},Type={kind},Description="{desc}">\n'
            for fid, number, kind, desc in _declared(names)]
    at = next((i for i, ln in enumerate(lines) if ln.startswith("#CHROM")), len(lines))
    return "".join(lines[:at] + ours + lines[at:])


def _num(x: Any) -> str:
    return "." if x is None else f"{x:.6g}"


def _scores(rows: list[dict[str, Any]], prefix: str) -> list[str]:
    """One model's score fields of a record (none when no ALT was scored; _P only when the model has a null)."""
    scored = [r for r in rows if "alt_probability" in r]
    if not scored:
        return []
    info = [f"{prefix}REF_PROB={_num(scored[0]['ref_probability'])}",
            f"{prefix}ALT_PROB=" + ",".join(_num(r.get("alt_probability")) for r in rows),
            f"{prefix}DELTA_LOGIT=" + ",".join(_num(r.get("delta_logit")) for r in rows)]
    if any(r.get("p_value") is not None for r in scored):
        info.append(f"{prefix}P=" + ",".join(_num(r.get("p_value")) for r in rows))
    return info


def annotated_line(text: str, rows: list[dict[str, Any]],
                   models: list[tuple[str, list[dict[str, Any]]]] | None = None) -> str:
    """A VCF record line with the INFO_FIELDS added from its rows (one per ALT, in order): BINDCNN_STATUS always,
    the scores when at least one ALT was scored (BINDCNN_P when the model has a null). Earlier bindcnn fields of the
    record are replaced. models: several models' rows of the same ALTs, [(name, rows)]: BINDCNN_<NAME>_ fields
    each (the status is the same for every model)."""
    cols = text.rstrip("\r\n").split("\t")
    cols += ["."] * (8 - len(cols))  # a record written without QUAL/FILTER/INFO
    info = [kv for name, r in (models or [(None, rows)]) for kv in _scores(r, model_prefix(name))]
    info.append("BINDCNN_STATUS=" + ",".join(status_code(r["status"]) for r in rows))
    kept = [kv for kv in cols[7].split(";") if kv not in ("", ".") and not kv.startswith(PREFIX)]
    cols[7] = ";".join(kept + info)
    return "\t".join(cols) + "\n"


class VcfOut:
    """The annotated VCF: the input's header (with the INFO_FIELDS) and record lines; bgzip when the name ends in
    .gz or .bgz (serving.bgzf_out, so tabix/bcftools/IGV can index it), else plain text. Refuses to write
    over its input (source)."""

    def __init__(self, path: str | os.PathLike, header: str, source: str | os.PathLike | None = None,
                 names: list[str] | None = None):
        self.path = str(path)
        self.names = names  # several models: each one's INFO fields (BINDCNN_<NAME>_...)
        if self.path.lower().endswith(".bcf"):
            raise ValueError(f"{path}: write the annotated VCF as .vcf or .vcf.gz (bcftools view -Ob makes BCF)")
        if source is not None and Path(path).resolve() == Path(source).resolve():
            raise ValueError(f"{path}: the annotated VCF would overwrite its input; give it another name")
        if self.path.lower().endswith((".gz", ".bgz")):
            self.fh: IO[bytes] = BgzfFile(self.path, level=2)  # type: ignore[assignment]
        else:
            self.fh = open(self.path, "wb")
        self.fh.write(annotated_header(header, names).encode())

    def write(self, records: list[VcfRecord], rows: list[dict[str, Any]],
              per_model: list[list[dict[str, Any]]] | None = None) -> None:
        """Write a chunk: records in order; rows are their variants' effect rows, flattened in the same order;
        per_model: with several models (names), each model's rows of the same variants."""
        out, i = [], 0
        for rec in records:
            n = len(rec.variants)
            models = [(name, r[i : i + n]) for name, r in zip(self.names, per_model)] if per_model else None
            out.append(annotated_line(rec.text, rows[i : i + n], models))
            i += n
        self.fh.write("".join(out).encode())

    def close(self) -> None:
        self.fh.close()

"""Where results go: TSV to a file or stdout, the rejects file (written only when something was rejected),
resume of an interrupted TSV, and the genome-browser formats (bedGraph of window scores, BED6 of sites)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from serving.scoring.regions import Region
from serving.scoring.scan import ScanResult, call_sites

REJECTS_HEADER = "record\tid\treason\n"  # record: 1-based number in the input
LINE_REJECTS_HEADER = "line\tid\treason\n"  # line: 1-based line of the input file
WINDOWS_HEADER = "chrom\tstart\tend\tprobability\tlogit\n"


def open_output(path: str | os.PathLike | None, header: str = "", append: bool = False) -> IO[str]:
    """stdout for None or '-'; otherwise the file, appended to (resume) or created, with `header` first
    when the file is new. The one home of "stdout or a file"."""
    if path is None or str(path) == "-":
        sys.stdout.write(header)
        return sys.stdout
    exists = append and Path(path).exists() and Path(path).stat().st_size > 0
    fh = open(path, "a" if append else "w", encoding="utf-8", newline="\n")
    if not exists:
        fh.write(header)
    return fh


def close_output(fh: IO[str] | None) -> None:
    """Close what open_output returned (stdout is only flushed)."""
    if fh is None:
        return
    if fh is sys.stdout:
        fh.flush()
    else:
        fh.close()


def rows_done(path: str | os.PathLike, header: str) -> int:
    """Complete data rows already in an output TSV (for resume). A trailing partial line (a run killed
    mid-write) is cut off so the file can be appended to."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with open(path, "rb+") as fh:
        data = fh.read()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            fh.truncate(complete)
    lines = data[:complete].count(b"\n")
    return max(0, lines - (1 if data.startswith(header.encode()) else 0))


def default_rejects_path(output: str | None) -> str | None:
    """OUTPUT.rejects.tsv beside a file output; None for stdout (rejects then go to stderr only)."""
    return f"{output}.rejects.tsv" if output and output != "-" else None


class RejectsFile:
    """TSV `record id reason` of records not scored, created on the first reject (no empty file);
    append=True continues an existing one (resume). rejects: objects with index (0-based), id, reason.
    header: LINE_REJECTS_HEADER where the number is a line of the input (BED, VCF)."""

    def __init__(self, path: str | None, append: bool = False, header: str = REJECTS_HEADER):
        self.path, self.append, self.fh, self.header = path, append, None, header

    def write(self, rejects) -> None:
        if self.path is None or not rejects:
            return
        if self.fh is None:
            self.fh = open_output(self.path, self.header, self.append)
        self.fh.write("".join(f"{r.index + 1}\t{r.id}\t{r.reason}\n" for r in rejects))
        self.fh.flush()

    def close(self) -> None:
        close_output(self.fh)


def reject_summary(summary, rejects_path: str | None, limit: int = 10, note: str = "NA in the output") -> str:
    """A person-readable summary of the rejected records (the first `limit`) of a scoring Summary."""
    lines = [f"{summary.rejected:,} record(s) could not be scored ({note})"
             + (f"; all listed in {rejects_path}" if rejects_path else "") + ":"]
    for r in summary.rejects[:limit]:
        lines.append(f"  record {r.index + 1} ({r.id}): {r.reason}")
    if summary.rejected > limit:
        lines.append(f"  ... and {summary.rejected - limit:,} more")
    return "\n".join(lines)


# -- genome-browser tracks ------------------------------------------------------------------------
def bedgraph_track_line(name: str, description: str = "") -> str:
    return (f'track type=bedGraph name="{name}" description="{description or name}" visibility=full '
            f'autoScale=off viewLimits=0:1 color=31,119,180\n')


def bed_track_line(name: str, description: str = "") -> str:
    return f'track name="{name}" description="{description or name}" useScore=1\n'


def write_bedgraph(fh: IO[str], result: ScanResult, region: Region) -> int:
    """One bedGraph line per window: chrom, start, end (genome coordinates), probability. Returns lines."""
    lo, hi = result.bins()
    lo, hi = lo + region.offset, hi + region.offset
    chrom = region.chrom
    fh.write("".join(f"{chrom}\t{a}\t{b}\t{p:.6g}\n"
                     for a, b, p in zip(lo.tolist(), hi.tolist(), result.probability.tolist())))
    return len(lo)


def write_bed(fh: IO[str], result: ScanResult, region: Region, threshold: float) -> int:
    """BED6 of called sites: chrom, start, end, name (max probability, 4 decimals), score
    (round(1000 * max probability), 0-1000), strand '.'. Returns the number of sites."""
    sites = call_sites(result, threshold, region)
    fh.write(format_sites(sites))
    return len(sites)


def format_sites(sites: list[dict]) -> str:
    """BED6 lines of sites (serving.scoring.scan.call_sites dicts), as write_bed describes."""
    return "".join(f"{s['chrom']}\t{s['start']}\t{s['end']}\t{s['probability']:.4f}\t"
                   f"{round(1000 * s['probability'])}\t.\n" for s in sites)


def write_windows(fh: IO[str], result: ScanResult, region: Region) -> int:
    """TSV rows chrom, start, end (the full window, clipped to the record), probability, logit."""
    lo, hi = result.spans(region)
    fh.write("".join(f"{region.chrom}\t{a}\t{b}\t{p:.7g}\t{z:.7g}\n" for a, b, p, z in zip(
        lo.tolist(), hi.tolist(), result.probability.tolist(), result.logit.tolist())))
    return len(lo)


def open_scan_outputs(bedgraph: str | None, bed: str | None, windows: str | None, track: str | None) -> dict:
    """The text outputs of a scan that were asked for, opened with their headers/track lines:
    {"bedgraph", "bed", "windows"} -> open file (the caller closes them with close_output)."""
    outs = {}
    if bedgraph:
        outs["bedgraph"] = open_output(bedgraph, bedgraph_track_line(track) if track else "")
    if bed:
        outs["bed"] = open_output(bed, bed_track_line(track + " sites") if track else "")
    if windows:
        outs["windows"] = open_output(windows, WINDOWS_HEADER)
    return outs

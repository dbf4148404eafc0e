"""The command line of a benchmark section run alone (`python -m benchmarks.bench_genome`, `.bench_ray`): options,
the model to measure (models/ctcf, else an untrained export) and a scratch folder, in one place."""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def run_section(argv: list[str] | None, prog: str, doc: str, quick_help: str, name: str,
                section: Callable[[Path, Path, bool, int | None], str]) -> str:
    """Parse --quick/--model/--work/--keep/--repeat, run section(model, work/name, quick, repeat) -> its markdown."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--model", type=Path, default=None,
                   help="exported model folder (default models/ctcf if present, else an untrained export)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--repeat", type=int, default=None, help="runs per timed figure (default 1 quick, 3 full)")
    args = p.parse_args(argv)
    from benchmarks.report import ROOT, say
    from serving.store import DEFAULT_MODEL_DIR

    work = args.work or Path(tempfile.mkdtemp(prefix=f"bindcnn-bench-{name}-"))
    try:
        model = args.model or ROOT / DEFAULT_MODEL_DIR
        if not (model / "model.onnx").exists():
            from benchmarks.in_process import bench_model

            say(f"no model at {model}: exporting an untrained benchmark model (speed does not depend on weights)")
            model = bench_model(work, None)
        return section(model, work / name, args.quick, args.repeat)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)

"""python -m submission_checker <folder> [--smoke] [--mlcommons] [--out DIR]"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run from anywhere: the checker reads the benchmark definitions through the repository's common/benchmark.py.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

LAYOUT = """\
layout (MLCommons training style; <folder> holds submitter folders, or is one):
  <submitter>/systems/<system>.json                        system description (schemas/system_desc.schema.json)
  <submitter>/results/<system>/<benchmark>/result_<i>.txt  one MLLOG log per run, i = 0..n-1 or 1..n
  <submitter>/benchmarks/<benchmark>/                      code (optional; open division)

Rules come from each benchmark's definition (<suite>/<workload>/benchmark.yaml) and rules/common.yaml.
A folder whose benchmark names are all MLCommons training benchmarks (bert, resnet, ...) is read as a real
MLCommons results folder (format and scoring only); --mlcommons forces that mode.

outputs (in --out): report.txt, report.json, summary.csv, summary.md, summary.html (with convergence plots).
exit status: 0 when every benchmark result is valid, 1 when any fails, 2 on a usage error.
See submission_checker/README.md for the rules and the scoring formula."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m submission_checker", description="Check a folder of submitted results and score it.",
        epilog=LAYOUT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="results folder to check (never written to)")
    parser.add_argument("--smoke", action="store_true",
                        help="apply each definition's smoke: overrides (for logs of smoke runs)")
    parser.add_argument("--mlcommons", action="store_true", default=None,
                        help="read a real MLCommons training results folder (v4.x/v5.x): format and scoring only")
    parser.add_argument("--out", type=Path, default=Path("checker_report"),
                        help="output folder, outside the checked folder (default: ./checker_report)")
    parser.add_argument("--definitions", type=Path, default=None, metavar="ROOT",
                        help="repository root holding <suite>/<workload>/benchmark.yaml (default: this repository)")
    parser.add_argument("--jobs", type=int, default=0, help="processes (default: one per core for large folders)")
    parser.add_argument("--quiet", action="store_true", help="print only the final verdict line")
    args = parser.parse_args(argv)

    from submission_checker import checker, report  # after argparse: --help stays instant

    folder, out = args.folder.resolve(), args.out.resolve()
    if out == folder or folder in out.parents:
        print(f"error: --out {args.out} is inside the checked folder {args.folder}; the checker never writes "
              "there. Choose another --out.", file=sys.stderr)
        return 2
    result = checker.check(folder, smoke=args.smoke, mlcommons=args.mlcommons, definitions_root=args.definitions,
                           jobs=args.jobs)
    document = report.write(result, out)
    text = report.to_text(document)
    print(text.rstrip().splitlines()[-1] if args.quiet else text, end="\n" if args.quiet else "")
    print(f"reports: {', '.join(str(out / name) for name in report.OUTPUTS)}")
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())

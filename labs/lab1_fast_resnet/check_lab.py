"""Lab 1's verdict on a results folder: the suite's submission checker, then the lab's rules (lab.yaml).

    python labs/lab1_fast_resnet/check_lab.py <results folder> [--smoke]

A result passes the lab when, for the lab's benchmark (resnet18):
- the suite checker's verdict is PASS (every rule of vision/resnet18/benchmark.yaml: dataset, model, target,
  required runs, the open division's relaxed hyperparameters, log validity);
- its division is the lab's (open);
- the definition's target is still the lab's (nobody moved resnet18's target to make the lab easier);
- its score, the checker's olympic mean of the runs' time-to-train, is within the lab's budget.
Exit code 0 when at least one result passes and none fails; each verdict comes with its reasons.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from common import benchmark  # noqa: E402
from submission_checker.checker import check  # noqa: E402


def lab_rules() -> dict:
    return yaml.safe_load((HERE / "lab.yaml").read_text())


def lab_verdicts(report, rules: dict) -> list[tuple[str, str, list[str]]]:
    """(result path, PASS or FAIL, reasons) for every result of the lab's benchmark in a checker report."""
    target = benchmark.load(rules["benchmark"])["quality"]["target"]
    verdicts = []
    for result in report.results:
        if result.benchmark != rules["benchmark"]:
            continue
        reasons = []
        if not result.valid:
            reasons.append("the submission checker says FAIL: " + "; ".join(result.errors[:3]))
        if result.division != rules["division"]:
            reasons.append(f"division is {result.division}; the lab is in the {rules['division']} division")
        if target != rules["target"]:
            reasons.append(f"{rules['benchmark']}'s target is {target} in its benchmark.yaml; the lab's is "
                           f"{rules['target']}")
        if result.score_minutes is None:
            reasons.append("no time-to-train score")
        elif result.score_minutes * 60 > rules["budget_s"]:
            reasons.append(f"score {result.score_minutes * 60:.1f} s is over the lab's budget of "
                           f"{rules['budget_s']} s")
        verdicts.append((result.path, "FAIL" if reasons else "PASS", reasons))
    return verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--smoke", action="store_true", help="check smoke-configuration logs (tests)")
    args = parser.parse_args(argv)
    rules = lab_rules()
    report = check(args.folder, smoke=args.smoke)
    verdicts = lab_verdicts(report, rules)
    for error in report.errors:
        print(f"error: {error}")
    if not verdicts:
        print(f"FAIL: no {rules['benchmark']} result in {args.folder}")
        return 1
    for path, verdict, reasons in verdicts:
        result = next(r for r in report.results if r.path == path)
        score = f"{result.score_minutes * 60:.1f} s" if result.score_minutes is not None else "no score"
        print(f"{verdict}: {path}: {score} (budget {rules['budget_s']} s), {len(result.runs)} runs, "
              f"{result.division} division")
        for reason in reasons:
            print(f"  - {reason}")
    return 0 if all(verdict == "PASS" for _, verdict, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

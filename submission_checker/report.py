"""The checker's outputs: a human-readable report, a JSON report (schemas/report.schema.json) and a summary table
(pandas) as CSV, Markdown and HTML; the HTML also plots every run's eval metric against time."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import pandas as pd

from submission_checker import schema
from submission_checker.util import is_number

VERSION = "1.0"
OUTPUTS = ("report.txt", "report.json", "summary.csv", "summary.md", "summary.html")
PLOT_LIMIT = 1e12  # eval values beyond are not plotted (no metric is that large; matplotlib cannot scale 1e308)


def to_json(report) -> dict:
    document = _clean({
        "checker": "submission_checker", "version": VERSION, "folder": report.folder, "mode": report.mode,
        "smoke": report.smoke, "valid": report.valid, "errors": report.errors, "warnings": report.warnings,
        "results": [_result_json(r) for r in report.results],
    })
    problem = schema.load("report").error(document)
    if problem:  # the checker's own output breaking its schema is a checker bug: say so loudly
        raise ValueError(f"report does not match report.schema.json: {problem}")
    return document


def _result_json(result) -> dict:
    runs = []
    for run in result.runs:
        start = run.run_start
        evals = [[round((t - start) / 60000, 6), v] for _, t, v, _ in run.evals
                 if start is not None and _finite(v)]
        runs.append({
            "file": run.file, "index": run.index, "seed": run.seed, "status": run.status,
            "verdict": "error" if run.errors else "failed" if run.failed else "ok", "failed": run.failed,
            "minutes": None if run.score_ms is None else run.score_ms / 60000,
            "samples_to_target": run.samples_to_target if _finite(run.samples_to_target) else None,
            "evals": evals,
        })
    return {
        "submitter": result.submitter, "system": result.system, "benchmark": result.benchmark,
        "path": result.path, "mode": result.mode, "division": result.division,
        "verdict": "PASS" if result.valid else "FAIL", "score_minutes": result.score_minutes,
        "scaling_factor": result.scaling_factor, "required_runs": result.required_runs,
        "valid_runs": sum(1 for run in result.runs if run.score_ms is not None),
        "errors": result.errors, "warnings": result.warnings, "notes": result.notes,
        "convergence": result.convergence, "quality": result.quality, "runs": runs,
    }


def to_text(document: dict) -> str:
    mode = document["mode"] + (" (MLCommons format and scoring only)" if document["mode"] == "mlcommons" else "")
    lines = [f"submission_checker {VERSION}: {document['folder']}",
             f"mode: {mode}{', smoke definitions' if document['smoke'] else ''}", ""]
    for problem in document["errors"]:
        lines.append(f"FAIL  {problem}")
    for r in document["results"]:
        score = f"score {r['score_minutes']:.4g} min" if r["score_minutes"] is not None else "no score"
        lines.append(f"{r['verdict']}  {r['submitter']}/{r['system']}/{r['benchmark']}  "
                     f"division {r['division'] or '?'}  {score}  ({r['valid_runs']} of {r['required_runs']} "
                     "runs valid)")
        for problem in r["errors"]:
            lines.append(f"      - {problem}")
        for run in r["runs"]:
            minutes = f"{run['minutes']:.4g} min" if run["minutes"] is not None else "-"
            reason = f"  ({run['failed']})" if run["failed"] else ""
            lines.append(f"      {run['file'].rsplit('/', 1)[-1]:<16} seed {json.dumps(run['seed']):<12} "
                         f"{minutes:>12}  {run['verdict']}{reason}")
        lines += [f"      note: {note}" for note in r["notes"]]
        lines += [f"      warning: {warning}" for warning in r["warnings"]]
    lines += [f"warning: {warning}" for warning in document["warnings"]]
    n_valid = sum(r["verdict"] == "PASS" for r in document["results"])
    lines += ["", f"{'VALID' if document['valid'] else 'INVALID'}: {n_valid} of {len(document['results'])} "
                  f"benchmark results pass{', folder problems above' if document['errors'] else ''}"]
    return "\n".join(lines) + "\n"


def summary(document: dict) -> pd.DataFrame:
    rows = []
    for r in document["results"]:
        notes = r["errors"] + r["notes"]
        rows.append({"submitter": r["submitter"], "system": r["system"], "benchmark": r["benchmark"],
                     "division": r["division"], "verdict": r["verdict"],
                     "score_minutes": None if r["score_minutes"] is None else round(r["score_minutes"], 4),
                     "valid_runs": r["valid_runs"], "required_runs": r["required_runs"],
                     "notes": "; ".join(notes[:3]) + (f"; ... ({len(notes) - 3} more)" if len(notes) > 3 else "")})
    columns = ["submitter", "system", "benchmark", "division", "verdict", "score_minutes", "valid_runs",
               "required_runs", "notes"]
    return pd.DataFrame(rows, columns=columns)


def to_markdown(table: pd.DataFrame) -> str:
    """A Markdown table without the tabulate dependency."""
    def cell(x):
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x).replace("|", "\\|")
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_html(document: dict, table: pd.DataFrame) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Submission check</title>",
             "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} "
             "td,th{border:1px solid #ccc;padding:4px 8px} .FAIL{color:#b00} .PASS{color:#070}</style></head><body>",
             f"<h1>Submission check: {'VALID' if document['valid'] else 'INVALID'}</h1>",
             f"<p>{html.escape(document['folder'])} &middot; mode {document['mode']}"
             f"{' &middot; smoke definitions' if document['smoke'] else ''}</p>",
             table.to_html(index=False, na_rep="", escape=True)]
    if document["errors"]:
        parts.append("<h2>Folder problems</h2><ul>" +
                     "".join(f"<li class='FAIL'>{html.escape(e)}</li>" for e in document["errors"]) + "</ul>")
    parts.append("<h2>Convergence</h2>")
    for benchmark, png in convergence_plots(document).items():
        parts.append(f"<h3>{html.escape(benchmark)}</h3>" + (
            f"<img alt='{html.escape(benchmark)} convergence' src='data:image/png;base64,{png}'>" if png else
            "<p>(no plot: the logged values cannot be drawn)</p>"))
    parts.append("<h2>Details</h2>")
    for r in document["results"]:
        parts.append(f"<h3 class='{r['verdict']}'>{r['verdict']} {html.escape(r['submitter'])}/"
                     f"{html.escape(r['system'])}/{html.escape(r['benchmark'])}</h3><ul>")
        parts += [f"<li class='FAIL'>{html.escape(x)}</li>" for x in r["errors"]]
        parts += [f"<li>{html.escape(x)}</li>" for x in r["notes"] + r["warnings"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def convergence_plots(document: dict) -> dict[str, str | None]:
    """One PNG (base64) per benchmark: every run's eval metric against minutes since run_start, one colour per
    submitter/system, failed runs dotted; None where the values cannot be drawn (the reports are written anyway)."""
    plots = {}
    for benchmark in sorted({r["benchmark"] for r in document["results"]}):
        results = [r for r in document["results"] if r["benchmark"] == benchmark]
        if not any(run["evals"] for r in results for run in r["runs"]):
            continue
        try:
            plots[benchmark] = _plot(benchmark, results)
        except (ValueError, ArithmeticError):  # matplotlib on absurd values: never lose the reports to a plot
            plots[benchmark] = None
    return plots


def _plot(benchmark: str, results: list[dict]) -> str:
    """Two line collections per figure keep thousands of runs quick to draw."""
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(7, 4), dpi=90)
    ax = fig.add_subplot()
    curves = {True: ([], []), False: ([], [])}  # ok runs / failed runs: (curves, colours)
    for i, r in enumerate(results):
        for run in r["runs"]:
            evals = [point for point in run["evals"] if abs(point[1]) <= PLOT_LIMIT]
            if evals:
                curves[run["verdict"] == "ok"][0].append(evals)
                curves[run["verdict"] == "ok"][1].append(f"C{i % 10}")
    for ok, (lines, colors) in curves.items():
        if lines:
            ax.add_collection(LineCollection(lines, colors=colors, linestyles="-" if ok else ":",
                                             alpha=0.8 if ok else 0.4, linewidths=1), autolim=False)
    points = [point for lines, _ in curves.values() for line in lines for point in line]
    ax.plot([x for x, _ in points], [y for _, y in points], linestyle="none", marker=".", markersize=3,
            color="k", alpha=0.3)
    quality = next((r["quality"] for r in results if r["quality"]), None)
    handles = [Line2D([], [], color=f"C{i % 10}", label=f"{r['submitter']}/{r['system']}")
               for i, r in enumerate(results)] if len(results) <= 12 else []
    if quality:
        handles.append(ax.axhline(quality["target"], color="k", linestyle="--", linewidth=1,
                                  label=f"target {quality['target']}"))
    ax.set_xlabel("minutes since run_start")
    ax.set_ylabel(quality["metric"] if quality else "eval_accuracy")
    ax.set_title(f"{benchmark}: every run's evaluations (dotted: failed runs)")
    ax.legend(handles=handles, fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def write(report, out_dir: Path) -> dict:
    """Write every output into out_dir; returns the JSON document."""
    document = to_json(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = summary(document)
    (out_dir / "report.txt").write_text(to_text(document))
    (out_dir / "report.json").write_text(json.dumps(document, allow_nan=False))
    table.to_csv(out_dir / "summary.csv", index=False)
    (out_dir / "summary.md").write_text(to_markdown(table))
    (out_dir / "summary.html").write_text(to_html(document, table))
    return document


def _clean(value):
    """Strict JSON: NaN and infinities (which logs may carry) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _finite(x) -> bool:
    return is_number(x)  # never raises: an integer beyond float range is not finite here

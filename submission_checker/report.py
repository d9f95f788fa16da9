"""The checker's outputs: a human-readable report, a JSON report (schemas/report.schema.json) and a summary table
(pandas) as CSV, Markdown and HTML; the HTML also plots every training run's eval metric against time and every
inference run's latency percentiles.

Both kinds share one score column: `score` in `unit` (training: the olympic time to train in minutes, also kept as
`score_minutes`; inference: the median of the variant's performance metric, e.g. tokens/s or ms, with its
coefficient of variation `cv` over the runs). An inference result is one variant of a benchmark (`variant`)."""
from __future__ import annotations

import base64
import html
import io
import json
import math
import textwrap
from pathlib import Path

import pandas as pd

from submission_checker import schema
from submission_checker.scoring import unit_of
from submission_checker.util import is_number

VERSION = "1.0"
OUTPUTS = ("report.txt", "report.json", "summary.csv", "summary.md", "summary.html")
PLOT_LIMIT = 1e12  # eval values beyond are not plotted (no metric is that large; matplotlib cannot scale 1e308)
TIME_TO_TRAIN = "time_to_train"  # the metric of a training result (its score, in minutes)
# The latency figures of an inference run, as plotted: (key in the run's JSON latency, axis title)
LATENCY_PANELS = (("latency_ns", "latency (whole answer)"), ("first_token_ns", "time to first token"),
                  ("time_per_output_token_ns", "time per output token"))


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
        performance = run.performance or {}
        runs.append({
            "file": run.file, "index": run.index, "seed": run.seed, "status": run.status,
            "verdict": "error" if run.errors else "failed" if run.failed else "ok", "failed": run.failed,
            "minutes": None if run.score_ms is None else run.score_ms / 60000,
            "samples_to_target": run.samples_to_target if _finite(run.samples_to_target) else None,
            "evals": evals,
            "value": performance.get("value"),
            "latency": {key: performance[key] for key, _ in LATENCY_PANELS if performance.get(key)} or None,
        })
    inference = result.kind == "inference"
    return {
        "submitter": result.submitter, "system": result.system, "benchmark": result.benchmark,
        "variant": result.variant, "kind": result.kind, "scenario": result.scenario,
        "path": result.path, "mode": result.mode, "division": result.division,
        "verdict": "PASS" if result.valid else "FAIL", "score_minutes": result.score_minutes,
        "metric": result.metric if inference else TIME_TO_TRAIN,
        "score": result.score_value if inference else result.score_minutes,
        "unit": unit_of(result.metric) if inference else "min",
        "direction": result.score_direction if inference else "minimize",
        "cv": result.score_cv,
        "scaling_factor": result.scaling_factor, "required_runs": result.required_runs,
        "valid_runs": sum(1 for run in result.runs if run.score_ms is not None),
        "errors": result.errors, "warnings": result.warnings, "notes": result.notes,
        "convergence": result.convergence, "quality": result.quality, "runs": runs,
    }


def name_of(r: dict) -> str:
    """submitter/system/benchmark, and /variant for an inference result."""
    return "/".join(part for part in (r["submitter"], r["system"], r["benchmark"], r["variant"]) if part)


def score_text(r: dict) -> str:
    if r["score"] is None:
        return "no score"
    if r["kind"] == "training":
        return f"score {r['score']:.4g} min"
    cv = f", cv {100 * r['cv']:.2f}%" if r["cv"] is not None else ""
    return f"score {r['score']:.6g} {r['unit']} ({r['metric']}, median of the runs{cv})"


def run_figure(run: dict, r: dict) -> str:
    """What one run measured: its minutes (training) or its metric value (inference)."""
    if r["kind"] == "inference":
        return f"{run['value']:.6g} {r['unit']}" if run["value"] is not None else "-"
    return f"{run['minutes']:.4g} min" if run["minutes"] is not None else "-"


def to_text(document: dict) -> str:
    mode = document["mode"] + (" (MLCommons format and scoring only)" if document["mode"] == "mlcommons" else "")
    lines = [f"submission_checker {VERSION}: {document['folder']}",
             f"mode: {mode}{', smoke definitions' if document['smoke'] else ''}", ""]
    for problem in document["errors"]:
        lines.append(f"FAIL  {problem}")
    for r in document["results"]:
        lines.append(f"{r['verdict']}  {name_of(r)}  division {r['division'] or '?'}  {score_text(r)}  "
                     f"({r['valid_runs']} of {r['required_runs']} runs valid)")
        for problem in r["errors"]:
            lines.append(f"      - {problem}")
        for run in r["runs"]:
            reason = f"  ({run['failed']})" if run["failed"] else ""
            lines.append(f"      {run['file'].rsplit('/', 1)[-1]:<16} seed {json.dumps(run['seed']):<12} "
                         f"{run_figure(run, r):>12}  {run['verdict']}{reason}")
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
                     "variant": r["variant"], "division": r["division"], "verdict": r["verdict"],
                     "score_minutes": None if r["score_minutes"] is None else round(r["score_minutes"], 4),
                     "metric": r["metric"], "score": None if r["score"] is None else float(f"{r['score']:.6g}"),
                     "unit": r["unit"], "cv": None if r["cv"] is None else round(r["cv"], 4),
                     "valid_runs": r["valid_runs"], "required_runs": r["required_runs"],
                     "notes": "; ".join(notes[:3]) + (f"; ... ({len(notes) - 3} more)" if len(notes) > 3 else "")})
    columns = ["submitter", "system", "benchmark", "variant", "division", "verdict", "score_minutes", "metric",
               "score", "unit", "cv", "valid_runs", "required_runs", "notes"]
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
    latency = latency_plots(document)
    if latency:
        parts.append("<h2>Latency</h2>")
    for name, png in latency.items():
        parts.append(f"<h3>{html.escape(name)}</h3>" + (
            f"<img alt='{html.escape(name)} latency' src='data:image/png;base64,{png}'>" if png else
            "<p>(no plot: the logged values cannot be drawn)</p>"))
    parts.append("<h2>Details</h2>")
    for r in document["results"]:
        parts.append(f"<h3 class='{r['verdict']}'>{r['verdict']} {html.escape(name_of(r))}</h3><ul>")
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


def latency_plots(document: dict) -> dict[str, str | None]:
    """One PNG (base64) per inference result whose runs report latencies: every run's latency against the
    percentile (LoadGen's 50.00 ... 99.90), one panel per figure LoadGen measured (the whole answer, and with token
    latencies the time to first token and the time per output token); runs that do not count are dotted. None where
    the values cannot be drawn (the reports are written anyway)."""
    plots = {}
    for r in document["results"]:
        if r["kind"] != "inference" or not any(run["latency"] for run in r["runs"]):
            continue
        try:
            plots[name_of(r)] = _latency_plot(r)
        except (ValueError, ArithmeticError):
            plots[name_of(r)] = None
    return plots


def _latency_plot(r: dict) -> str:
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda y, _: f"{y:g}")  # 0.3 ms, not 3 x 10^-1
    sparse = FuncFormatter(lambda y, _: f"{y:g}" if y > 0 and f"{y:e}"[0] in "25" else "")  # minor ticks: 2, 5
    panels = [(key, title) for key, title in LATENCY_PANELS
              if any((run["latency"] or {}).get(key) for run in r["runs"])]
    fig = Figure(figsize=(3.6 * len(panels) + 1, 3.6), dpi=90)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, title) in zip(axes, panels):
        labels = []
        for i, run in enumerate(r["runs"]):
            points = sorted((float(p), v / 1e6) for p, v in ((run["latency"] or {}).get(key) or {}).items()
                            if _finite(v) and 0 < v <= PLOT_LIMIT)
            if not points:
                continue
            percentiles = [p for p, _ in points]
            labels = sorted(set(labels) | set(percentiles))
            ax.plot([_nines(p) for p in percentiles], [ms for _, ms in points], marker=".", color=f"C{i % 10}",
                    linestyle="-" if run["verdict"] == "ok" else ":", alpha=0.8 if run["verdict"] == "ok" else 0.4,
                    linewidth=1, label=run["file"].rsplit("/", 1)[-1].removesuffix(".txt"))
        ax.set_xticks([_nines(p) for p in labels], [f"{p:g}" for p in labels], fontsize="small")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(sparse)
        ax.set_xlabel("percentile")
        ax.set_ylabel("ms")
        ax.set_title(title, fontsize="medium")
    if len(r["runs"]) <= 12:
        axes[0].legend(fontsize="small")
    title = f"{name_of(r)}: {r['scenario'] or ''} latency by percentile, every run (dotted: runs that do not count)"
    fig.suptitle("\n".join(textwrap.wrap(title, width=int(fig.get_figwidth() * 13))), fontsize="medium")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _nines(percentile: float) -> float:
    """The tail on a readable axis: 50 -> 0.3, 90 -> 1, 99 -> 2, 99.9 -> 3 (-log10 of the fraction above it)."""
    return -math.log10(max(1e-9, 1 - percentile / 100))


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

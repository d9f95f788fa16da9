"""The suite's dashboard: one static HTML page (no server, no script, no network; open index.html in a browser)
generated from a results folder in the checker's layout.

    python -m common.dashboard <results folder> [--out DIR] [--smoke] [--validate validate.json]

What it shows:
- the suite table: `invoke validate`'s table when the folder came from it (status, metric vs target, score, wall
  time, time outside the scored region, peak memory, energy), else the checker's score table;
- per workload (a section with id `workload-<name>`): the checker's verdict and reasons; for training, every run's
  quality metric against minutes since run_start and against samples seen, with the target; for inference, every
  variant's latency by percentile (LoadGen's figures; the checker's plot) and a throughput table (the performance
  metric, LoadGen's QPS and mean latency, per run); the provenance of its first log (git commit, code hashes, dataset
  hashes, Python, torch, CUDA, OS, hardware, the package set's hash, the container image).

The checker decides the verdicts (its report.json is read when given, else the checker runs here). Only files
inside the results folder are read: a path in a report that leads outside it is not followed.
"""
from __future__ import annotations

import argparse
import html
import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from common.bench import read_log

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1300px}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f2f2f2}
.PASS{color:#060;font-weight:bold} .FAIL{color:#b00;font-weight:bold} .WARN,.NOTRUN,.NODATA{color:#a60;font-weight:bold}
section{border-top:2px solid #ddd;margin-top:1.5em;padding-top:.5em}
.reasons li{margin:.15em 0} .muted{color:#666} code{font-size:.85em}
details{margin:.5em 0} img{max-width:100%}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _inside(root: Path, relative: str) -> Path | None:
    """root/relative when it stays inside root (no '..', no symbolic link out of it), else None."""
    try:
        path = (root / relative).resolve()
    except (OSError, RuntimeError):
        return None
    return path if path.is_relative_to(root) and path.is_file() else None


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.find("<svg"):]  # drop the XML prologue: the figure sits inline in the page


def training_plot(name: str, runs: list[tuple[str, list[dict]]], quality: dict | None) -> str | None:
    """Inline SVG: every run's quality metric against minutes since run_start and against samples seen."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    key = (quality or {}).get("log_key", "eval_accuracy")
    series = []
    for label, events in runs:
        start = next((e["time_ms"] for e in events if e["key"] == "run_start"), None)
        evals = [e for e in events if e["key"] == key and isinstance(e["value"], (int, float))
                 and not isinstance(e["value"], bool)]
        if start is None or not evals:
            continue
        series.append((label, [(e["time_ms"] - start) / 60000 for e in evals],
                       [e["metadata"].get("samples_count") for e in evals], [e["value"] for e in evals]))
    if not series:
        return None
    fig = Figure(figsize=(10, 3.4), dpi=80)
    by_time, by_samples = fig.subplots(1, 2)
    for i, (label, minutes, samples, values) in enumerate(series):
        by_time.plot(minutes, values, marker=".", color=f"C{i % 10}", label=label)
        points = [(s, v) for s, v in zip(samples, values) if isinstance(s, (int, float))]
        if points:
            by_samples.plot([s for s, _ in points], [v for _, v in points], marker=".", color=f"C{i % 10}")
    for ax, xlabel in ((by_time, "minutes since run_start"), (by_samples, "samples seen")):
        if quality and "target" in quality:
            ax.axhline(quality["target"], color="k", linestyle="--", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(quality["metric"] if quality else key)
        ax.grid(alpha=0.3)
    by_time.legend(fontsize="small")
    fig.suptitle(f"{name}: {quality['metric'] if quality else key} per evaluation (dashed: the target)",
                 fontsize="medium")
    fig.tight_layout()
    return _svg(fig)


def read_events(root: Path, relative: str) -> list[dict]:
    """The well-formed events of a run's log inside root (none when the file is outside it or missing)."""
    path = _inside(root, relative)
    return read_log(path)[0] if path else []


def throughput_rows(result: dict, events_by_run: list[list[dict]]) -> list[dict]:
    """One row per run from the events already read: LoadGen's QPS, mean latency, query count and validity."""
    rows = []
    for run, events in zip(result["runs"], events_by_run):
        last = {e["key"]: e["value"] for e in events}
        stats = last.get("sut_statistics") if isinstance(last.get("sut_statistics"), dict) else {}
        rows.append({"run": run["file"].rsplit("/", 1)[-1], "seed": run["seed"], "verdict": run["verdict"],
                     "metric": run["value"], "qps": last.get("result_qps_with_loadgen_overhead"),
                     "mean_latency_ms": (last["result_mean_latency_ns"] / 1e6
                                         if isinstance(last.get("result_mean_latency_ns"), (int, float)) else None),
                     "queries": last.get("result_query_count"), "validity": last.get("result_validity"),
                     "tokens_per_s": (stats or {}).get("generated_tokens_per_second")})
    return rows


def provenance_html(events: list[dict]) -> str:
    provenance = next((e["value"] for e in events if e["key"] == "provenance"), None)
    if not isinstance(provenance, dict):
        return "<p class='muted'>no provenance record in the log</p>"
    git = provenance.get("git") or {}
    code = provenance.get("code") or {}
    packages = provenance.get("packages") or {}
    hardware = provenance.get("hardware") or {}
    container = provenance.get("container") or {}
    rows = [("git commit", f"{git.get('commit')}" + (" (uncommitted changes)" if git.get("dirty") else "")),
            ("workload code sha256", code.get("workload_sha256")), ("harness code sha256", code.get("common_sha256")),
            ("Python", provenance.get("python")), ("torch", provenance.get("torch")), ("CUDA", provenance.get("cuda")),
            ("OS", provenance.get("os")),
            ("hardware", ", ".join(f"{k} {v}" for k, v in hardware.items() if v is not None)),
            ("packages", f"{len(packages.get('versions') or {})} installed, set sha256 {packages.get('sha256')}"),
            ("container", f"image {container.get('image_id')}" if container.get("image_id") else
             ("in a container" if container.get("in_container") else "bare metal"))]
    data = provenance.get("dataset_sha256") or {}
    table = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in rows)
    files = "".join(f"<tr><td><code>{_e(k)}</code></td><td><code>{_e(v)}</code></td></tr>" for k, v in data.items())
    return (f"<table>{table}</table><details><summary>dataset files ({len(data)}) and their sha256</summary>"
            f"<table>{files}</table></details>")


def _suite_table(validate: dict | None, document: dict) -> str:
    if validate:
        head = ["workload", "kind", "status", "metric vs target", "score", "wall s", "outside scored s", "peak MB",
                "energy", "checker"]
        body = []
        for r in validate["rows"]:
            status = r["status"]
            body.append(
                f"<tr><td><a href='#workload-{_e(r['workload'])}'>{_e(r['workload'])}</a></td><td>{_e(r['kind'])}</td>"
                f"<td class='{status.replace(' ', '')}'>{_e(status)}</td>"
                f"<td>{_e(r['metric_vs_target'] or r['reason'])}</td><td>{_e(r['score'])}</td>"
                f"<td>{_fmt(r['wall_s'])}</td><td>{_fmt(r['outside_scored_s'])}</td>"
                f"<td>{_fmt(r['peak_memory_mb'])}</td>"
                f"<td>{_e(r['energy'].split(' (')[0])}</td><td>{_e(r['checker'])}</td></tr>")
        caption = (f"invoke validate {_e(validate['config'])}: {len(validate['rows'])} workloads, "
                   f"{sum(r['status'] == 'PASS' for r in validate['rows'])} PASS, wall time {validate['wall_s']} s")
    else:
        head = ["workload", "variant", "verdict", "score", "runs valid", "reasons"]
        body = [f"<tr><td><a href='#workload-{_e(r['benchmark'])}'>{_e(r['benchmark'])}</a></td>"
                f"<td>{_e(r['variant'])}</td><td class='{r['verdict']}'>{r['verdict']}</td>"
                f"<td>{_fmt(r['score'])} {_e(r['unit'])}</td><td>{r['valid_runs']} of {r['required_runs']}</td>"
                f"<td>{_e('; '.join(r['errors'][:2]))}</td></tr>" for r in document["results"]]
        caption = f"the checker's table: {len(document['results'])} results"
    return (f"<table id='suite'><caption>{caption}</caption><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(body) + "</table>")


def _workload_section(name: str, results: list[dict], root: Path, latency: dict, validate_row: dict | None) -> str:
    from submission_checker.report import name_of

    parts = [f"<section id='workload-{_e(name)}'><h2>{_e(name)}</h2>"]
    if validate_row:
        parts.append(f"<p>validate: <span class='{validate_row['status'].replace(' ', '')}'>"
                     f"{_e(validate_row['status'])}</span> {_e(validate_row['reason'])}</p>")
    if not results:
        parts.append("<p class='muted'>no result in the folder (the run did not write one)</p></section>")
        return "".join(parts)
    first_events = []
    for result in results:
        label = name_of(result)
        parts.append(f"<h3><span class='{result['verdict']}'>{result['verdict']}</span> {_e(label)} "
                     f"<span class='muted'>({result['valid_runs']} of {result['required_runs']} runs valid; division "
                     f"{_e(result['division'])})</span></h3>")
        reasons = ([("FAIL", x) for x in result["errors"]] + [("", x) for x in result["notes"]]
                   + [("WARN", x) for x in result["warnings"]])
        if reasons:
            parts.append("<ul class='reasons'>" + "".join(f"<li class='{c}'>{_e(x)}</li>" for c, x in reasons)
                         + "</ul>")
        runs = [(run["file"].rsplit("/", 1)[-1].removesuffix(".txt"), read_events(root, run["file"]))
                for run in result["runs"]]
        if not first_events and runs:
            first_events = runs[0][1]
        if result["kind"] == "training":
            plot = training_plot(name, runs, result["quality"])
            parts.append(plot or "<p class='muted'>no evaluation to plot</p>")
        else:
            png = latency.get(label)
            parts.append(f"<img alt='{_e(label)} latency by percentile' src='data:image/png;base64,{png}'>" if png
                         else "<p class='muted'>no latency figures to plot</p>")
            rows = throughput_rows(result, [events for _, events in runs])
            head = ["run", "seed", "verdict", f"{result['metric']} ({result['unit']})", "LoadGen QPS",
                    "mean latency ms", "queries", "LoadGen validity", "generated tokens/s"]
            parts.append("<table class='throughput'><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{_e(_fmt(r[k]))}</td>" for k in (
                             "run", "seed", "verdict", "metric", "qps", "mean_latency_ms", "queries", "validity",
                             "tokens_per_s")) + "</tr>" for r in rows) + "</table>")
    parts.append("<h3>Provenance</h3>" + provenance_html(first_events) + "</section>")
    return "".join(parts)


def build(results_root: Path, out_dir: Path, validate_file: Path | None = None, checker_report: Path | None = None,
          smoke: bool | None = None) -> Path:
    """Write out_dir/index.html; returns its path."""
    from submission_checker import checker, report

    root = Path(results_root).resolve()
    validate = json.loads(Path(validate_file).read_text()) if validate_file and Path(validate_file).is_file() else None
    if smoke is None:
        smoke = bool(validate and validate["config"] == "smoke")
    if checker_report and Path(checker_report).is_file():
        document = json.loads(Path(checker_report).read_text())
    else:
        document = report.to_json(checker.check(root, smoke=smoke))
    latency = report.latency_plots(document)
    names = [r["workload"] for r in validate["rows"]] if validate else []
    names += sorted({r["benchmark"] for r in document["results"]} - set(names))
    rows = {r["workload"]: r for r in validate["rows"]} if validate else {}
    sections = [_workload_section(name, [r for r in document["results"] if r["benchmark"] == name], root, latency,
                                  rows.get(name)) for name in names]
    verdict = "VALID" if document["valid"] else "INVALID"
    page = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<title>Suite dashboard: {_e(root.name)}</title><style>{STYLE}</style></head><body>",
            f"<h1>Suite dashboard</h1><p class='muted'>{_e(root)} &middot; generated "
            f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} &middot; checker: "
            f"<span class='{'PASS' if document['valid'] else 'FAIL'}'>{verdict}</span>"
            f"{' (smoke definitions)' if document['smoke'] else ''}</p>",
            _suite_table(validate, document)]
    if document["errors"]:
        page.append("<h2>Folder problems</h2><ul class='reasons'>" +
                    "".join(f"<li class='FAIL'>{_e(x)}</li>" for x in document["errors"]) + "</ul>")
    page += sections + ["</body></html>"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text("\n".join(page), encoding="utf-8")
    return index


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="results folder (<submitter>/results/<system>/<benchmark>/...)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <folder>/../dashboard)")
    parser.add_argument("--smoke", action="store_true", help="the runs are smoke runs (check them so)")
    parser.add_argument("--validate", type=Path, default=None, help="validate.json of the run that wrote the folder")
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    if not folder.is_dir():
        print(f"error: {args.folder} is not a directory", file=sys.stderr)
        return 2
    out = (args.out or folder.parent / "dashboard").resolve()
    if out == folder or folder in out.parents:
        print(f"error: --out {args.out} is inside the results folder; the dashboard never writes there",
              file=sys.stderr)
        return 2
    index = build(folder, out, validate_file=args.validate, smoke=args.smoke or None)
    print(f"dashboard: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

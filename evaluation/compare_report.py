"""The comparison's outputs: results.csv, results.md (the paper's table layout) and report.html
(quality-versus-rate plot, per-task bars, listening examples side by side per tokenizer)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

from .compare import Comparison, _safe, columns, domains_of, table_row
from .report import _STYLE, HIGHER_IS_BETTER, LOWER_IS_BETTER, _fmt, write_text_atomic

__all__ = ["write_outputs"]


def _arrow(key: str) -> str:
    metric = key.split("/")[-1]
    if metric in HIGHER_IS_BETTER or metric in ("linear", "knn"):
        return " ↑"
    if metric in LOWER_IS_BETTER or metric.endswith("_rtf"):
        return " ↓"
    return ""


def _cell(key: str, value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if key == "parameters":
        return f"{value / 1e6:.2f}M"
    if key in ("bitrate", "latent_values_per_second", "frame_rate"):
        return f"{value:g}"
    return _fmt(value)


def write_csv(path: Path, rows: list[dict]) -> None:
    """One row per tokenizer; empty cells where a value does not apply."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        )
    write_text_atomic(path, buffer.getvalue())


def markdown_table(comparison: Comparison, rows: list[dict]) -> str:
    """The paper's layout: one row per tokenizer; columns grouped reconstruction (per domain,
    16 kHz), understanding (probe accuracy per task), cost."""
    cols = columns(comparison)
    groups = ["", ""] + [g if i == 0 or cols[i - 1][0] != g else "" for i, (g, _, _) in
                         enumerate(cols)]  # fmt: skip
    header = ["tokenizer", "kind"] + [h + _arrow(k) for _, k, h in cols]
    lines = [
        "| " + " | ".join(f"**{g}**" if g else "" for g in groups) + " |",
        "|" + "---|" * len(header),
        "| " + " | ".join(f"*{h}*" for h in header) + " |",
    ]
    for row in rows:
        cells = [row["tokenizer"], row["kind"] or "failed"]
        lines.append("| " + " | ".join(cells + [_cell(k, row[k]) for _, k, _ in cols]) + " |")
    return "\n".join(lines) + "\n"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _rate(row: dict) -> float:
    """x of the quality-versus-rate plot: bit/s (discrete) or latent values/s (continuous)."""
    return row["bitrate"] if not math.isnan(row["bitrate"]) else row["latent_values_per_second"]


def quality_plot(comparison: Comparison, rows: list[dict]) -> str:
    """Base64 PNG: mean mel distance (every domain) and speech PESQ against the rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("mel distance ↓ (all clips)", "mel")]
    if any(f"{d}/pesq" in rows[0] for d in domains_of(comparison)):
        panels.append(("speech PESQ ↑", "pesq"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, what) in zip(axes[0], panels):
        for row, result in zip(rows, comparison.results):
            if what == "mel":
                y = _mean_of([r["metrics"]["mel_distance"] for r in result.rows])
            else:
                y = _mean_of([row[k] for k in row if k.endswith("/pesq")])
            x = _rate(row)
            if math.isnan(x) or math.isnan(y):
                continue
            marker = "s" if row["kind"] == "discrete" else "o"
            ax.scatter([x], [y], marker=marker, s=50)
            ax.annotate(row["tokenizer"], (x, y), textcoords="offset points", xytext=(5, 4))
        ax.set_xscale("log")
        ax.set_xlabel("bitrate (bit/s, squares) or latent values/s (circles)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    data = _png(fig)
    plt.close(fig)
    return data


def _mean_of(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def task_bars(comparison: Comparison, rows: list[dict]) -> str:
    """Base64 PNG: linear and kNN accuracy per task, one bar per tokenizer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = comparison.tasks
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.5 * max(1, len(tasks)), 3.4),
                             squeeze=False)  # fmt: skip
    width = 0.8 / max(1, len(rows))
    for ax, task in zip(axes[0], tasks):
        for n, row in enumerate(rows):
            values = [row[f"{task}/{p}"] for p in ("linear", "knn")]
            values = [0.0 if math.isnan(v) else v for v in values]
            ax.bar([i + n * width for i in range(2)], values, width, label=row["tokenizer"])
        ax.set_xticks([0.4 - width / 2, 1.4 - width / 2], ["linear", "kNN"])
        ax.set_ylim(0, 1)
        ax.set_title(f"{task} accuracy")
    axes[0][0].legend(fontsize=8)
    data = _png(fig)
    plt.close(fig)
    return data


def _html_table(comparison: Comparison, rows: list[dict]) -> str:
    cols = columns(comparison)
    spans: list[list] = []
    for group, _, _ in cols:
        if spans and spans[-1][0] == group:
            spans[-1][1] += 1
        else:
            spans.append([group, 1])
    top = "<th rowspan='2'>tokenizer</th><th rowspan='2'>kind</th>" + "".join(
        f"<th colspan='{n}'>{html.escape(g)}</th>" for g, n in spans
    )
    sub = "".join(f"<th>{html.escape(h + _arrow(k))}</th>" for _, k, h in cols)
    body = "".join(
        f"<tr><th>{html.escape(r['tokenizer'])}</th><td>{html.escape(r['kind'] or 'failed')}</td>"
        + "".join(f"<td>{_cell(k, r[k])}</td>" for _, k, _ in cols)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{top}</tr><tr>{sub}</tr></thead><tbody>{body}</tbody></table>"


def _examples(comparison: Comparison, out: Path) -> str:
    blocks = []
    for clip_id in comparison.examples:
        players = [("reference", out / "audio" / "reference" / f"{_safe(clip_id)}.wav")]
        players += [
            (r.name, out / "audio" / _safe(r.name) / f"{_safe(clip_id)}.wav")
            for r in comparison.results
        ]
        cells = "".join(
            f"<div class='clip'><div class='label'>{html.escape(label)}</div>"
            f"<audio controls preload='metadata' src='{path.relative_to(out).as_posix()}'></audio>"
            "</div>"
            for label, path in players
            if path.is_file()
        )
        blocks.append(f"<section class='example'><h3>{html.escape(clip_id)}</h3>"
                      f"<div class='clips'>{cells}</div></section>")  # fmt: skip
    return "".join(blocks)


def write_outputs(comparison: Comparison, out_dir: str | Path) -> dict[str, Path]:
    """results.csv, results.md, results.json and report.html in `out_dir`."""
    out = Path(out_dir)
    rows = [table_row(r, comparison) for r in comparison.results]
    paths = {name: out / name for name in ("results.csv", "results.md", "results.json",
                                           "report.html")}  # fmt: skip
    write_csv(paths["results.csv"], rows)
    table = markdown_table(comparison, rows)
    notes = "\n".join(f"- {n}" for n in comparison.notes)
    write_text_atomic(paths["results.md"], table + ("\n" + notes + "\n" if notes else ""))
    probes = {r.name: r.probes for r in comparison.results}
    details = {"rows": rows, "probes": probes, "errors": comparison.errors}
    text = json.dumps(details, indent=2, default=str).replace("NaN", "null")
    write_text_atomic(paths["results.json"], text + "\n")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>sonotok compare</title><style>{_STYLE}</style></head><body>",
        "<h1>sonotok compare</h1>",
        *(f"<p class='note'>{html.escape(n)}</p>" for n in comparison.notes),
        "<h2>Results</h2>",
        _html_table(comparison, rows),
        "<h2>Quality versus rate</h2>",
        f"<img alt='quality versus rate' src='data:image/png;base64,{quality_plot(comparison, rows)}'>",
    ]
    if comparison.tasks:
        parts += [
            "<h2>Understanding per task</h2>",
            f"<img alt='probe accuracy per task' src='data:image/png;base64,"
            f"{task_bars(comparison, rows)}'>",
        ]
    if comparison.errors:
        lines = "".join(f"<li>{html.escape(e)}</li>" for e in comparison.errors)
        parts.append(f"<h2>Errors</h2><ul class='errors'>{lines}</ul>")
    parts += ["<h2>Listening examples</h2>", _examples(comparison, out), "</body></html>\n"]
    write_text_atomic(paths["report.html"], "".join(parts))
    return paths

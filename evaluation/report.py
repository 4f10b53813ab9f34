"""metrics.json and a static report.html (works from disk, no server, no scripts).

Layout of an evaluation's output folder::

    metrics.json   settings, summary (mean and 95% interval per metric), per-domain summaries,
                   set-level metrics, per-file metrics, per-file errors
    report.html    the same tables, plus example items: audio players and mel spectrograms
                   side by side (reference / output / noisy ...)
    audio/         16-bit wav copies of the example clips the report plays
    img/           mel-spectrogram PNGs of the example clips
"""

from __future__ import annotations

import html
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sonotok.core.io import atomic_write
from sonotok.tokenizer import write_audio

from .spectral import log_mel_image
from .stats import CHANGE_PREFIX

# Which way is better, for the table headers.
HIGHER_IS_BETTER = {
    "pesq", "stoi", "si_sdr", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808",
    "speaker_similarity", "clap_score",
}  # fmt: skip
LOWER_IS_BETTER = {"mel_distance", "stft_distance", "kl_softmax", "kl_sigmoid"}


@dataclass
class Clip:
    """One playable signal of an example: label (e.g. "reference"), wave (L,), rate."""

    label: str
    wave: torch.Tensor
    sample_rate: int


@dataclass
class Example:
    """An item shown in the report with its clips side by side."""

    id: str
    clips: list[Clip]
    metrics: dict[str, float] = field(default_factory=dict)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN / inf are not JSON; "undefined for this file"
    if isinstance(value, Path):
        return str(value)
    return value


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "item"


def save_spectrogram_png(path: Path, db: np.ndarray, vmax: float, range_db: float = 80.0) -> None:
    """Picture of a (bands, frames) dB spectrogram, low frequencies at the bottom, colours
    spanning ``[vmax - range_db, vmax]`` (shared by the clips of an example); atomic write."""
    from matplotlib import image

    picture = np.repeat(db[::-1], 2, axis=0)  # 80 bands -> 160 px tall
    atomic_write(
        path,
        lambda tmp: image.imsave(
            tmp, picture, cmap="magma", vmin=vmax - range_db, vmax=vmax, format="png"
        ),
    )


def _fmt(value, digits: int = 3, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return html.escape(str(value))


def _metric_header(name: str) -> str:
    base = name.removeprefix("noisy_").removeprefix(CHANGE_PREFIX)
    arrow = " ↑" if base in HIGHER_IS_BETTER else " ↓" if base in LOWER_IS_BETTER else ""
    if base.startswith("fd_"):
        arrow = " ↓"
    return html.escape(name) + arrow


def _interval(s: dict) -> str:
    if s.get("ci95_low") is None:
        return "–"
    return f"[{_fmt(s['ci95_low'])}, {_fmt(s['ci95_high'])}]"


def _mean_and_interval(s: dict) -> str:
    interval = _interval(s)
    return _fmt(s.get("mean")) + ("" if interval == "–" else f" {interval}")


def change_verdict(name: str, s: dict) -> str:
    """'better' / 'worse' when the change's 95% interval excludes zero, 'unclear' when it
    holds zero, '–' without an interval (fewer than two files)."""
    low, high = s.get("ci95_low"), s.get("ci95_high")
    if low is None or high is None:
        return "–"
    if low <= 0 <= high:
        return "unclear"
    if name not in HIGHER_IS_BETTER | LOWER_IS_BETTER:
        return "higher" if low > 0 else "lower"
    return "better" if (low > 0) != (name in LOWER_IS_BETTER) else "worse"


def _change_table(summary: dict, bases: Sequence[str]) -> str:
    """One row per metric: noisy, enhanced and the paired change (enhanced − noisy)."""
    rows = []
    for name in bases:
        before, after = summary[f"noisy_{name}"], summary[name]
        change = summary[CHANGE_PREFIX + name]
        rows.append(
            f"<tr><th>{_metric_header(name)}</th>"
            f"<td>{_mean_and_interval(before)}</td><td>{_mean_and_interval(after)}</td>"
            f"<td>{_fmt(change.get('mean'), signed=True)}</td><td>{_interval(change)}</td>"
            f"<td>{change_verdict(name, change)}</td><td>{change.get('n', 0)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>metric</th><th>noisy (95% interval)</th>"
        "<th>enhanced (95% interval)</th><th>change</th><th>change 95% interval</th>"
        "<th>verdict</th><th>n</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _summary_table(summary: dict) -> str:
    bases = [n for n in summary if f"noisy_{n}" in summary and f"{CHANGE_PREFIX}{n}" in summary]
    if bases:  # enhancement: noisy → enhanced with the change, not separate rows
        paired = {n for b in bases for n in (b, f"noisy_{b}", f"{CHANGE_PREFIX}{b}")}
        rest = {k: v for k, v in summary.items() if k not in paired}
        return _change_table(summary, bases) + (_summary_table(rest) if rest else "")
    rows = []
    for name, s in summary.items():
        ci = (
            f"[{_fmt(s['ci95_low'])}, {_fmt(s['ci95_high'])}]"
            if s.get("ci95_low") is not None
            else "–"
        )
        rows.append(
            f"<tr><th>{_metric_header(name)}</th><td>{_fmt(s.get('mean'))}</td><td>{ci}</td>"
            f"<td>{s.get('n', 0)}</td><td>{s.get('n_missing', 0)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>metric</th><th>mean</th><th>95% interval</th><th>n</th>"
        "<th>undefined</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _items_table(items: Sequence[dict], metrics: Sequence[str]) -> str:
    head = "".join(f"<th>{_metric_header(m)}</th>" for m in metrics)
    rows = []
    for it in items:
        cells = "".join(
            f"<td>{_fmt(it.get(m), signed=m.startswith(CHANGE_PREFIX))}</td>" for m in metrics
        )
        rows.append(
            f"<tr><td>{html.escape(str(it.get('id')))}</td>"
            f"<td>{html.escape(str(it.get('domain') or ''))}</td>{cells}</tr>"
        )
    return (
        f"<table><thead><tr><th>id</th><th>domain</th>{head}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _examples_html(out_dir: Path, examples: Sequence[Example]) -> str:
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    blocks = []
    for n, ex in enumerate(examples):
        cells = []
        pictures = [log_mel_image(clip.wave, clip.sample_rate, top_db=None) for clip in ex.clips]
        vmax = max(float(db.max()) for db in pictures)  # one colour scale per example
        for clip, db in zip(ex.clips, pictures):
            stem = f"{n:03d}_{_safe_name(ex.id)}_{_safe_name(clip.label)}"
            write_audio(out_dir / "audio" / f"{stem}.wav", clip.wave, clip.sample_rate)
            save_spectrogram_png(out_dir / "img" / f"{stem}.png", db, vmax)
            label = html.escape(clip.label)
            cells.append(
                f'<div class="clip"><div class="label">{label}</div>'
                f'<audio controls preload="metadata" src="audio/{stem}.wav"></audio>'
                f'<img src="img/{stem}.png" alt="mel spectrogram of {label}"></div>'
            )
        metrics = ", ".join(f"{html.escape(k)} {_fmt(v)}" for k, v in ex.metrics.items())
        blocks.append(
            f'<section class="example"><h3>{html.escape(ex.id)}</h3>'
            f'<p class="metrics">{metrics}</p><div class="clips">{"".join(cells)}</div></section>'
        )
    return "".join(blocks)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right}
thead th{background:#f2f2f2}
.clips{display:flex;gap:1em;flex-wrap:wrap}
.clip{flex:1 1 300px;min-width:260px}
.clip img{width:100%;height:160px;display:block;margin-top:0.3em}
.clip audio{width:100%}
.label{font-weight:600}
.metrics{color:#555;font-size:0.9em}
.errors li{color:#a00}
.warnings li{color:#a60}
.note{max-width:60em}
"""


def write_report(
    out_dir: str | os.PathLike,
    result: dict,
    examples: Sequence[Example] = (),
    title: str | None = None,
) -> tuple[Path, Path]:
    """Write metrics.json and report.html (with example audio and pictures) into ``out_dir``.

    Args:
        result: {"task", "settings", "summary", "per_domain", "set_metrics", "items",
            "errors", "metrics", optional "notes" (sentences shown first) and "warnings"
            ([{"metric", "message"}])}; ``metrics`` lists the per-item metric names in table
            order. A summary holding ``noisy_<m>``, ``<m>`` and ``change_<m>`` is shown as one
            row per metric: noisy, enhanced, change.
        examples: items to show with players and spectrograms.
    Returns:
        (metrics.json path, report.html path)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "metrics.json", out / "report.html"
    write_text_atomic(json_path, json.dumps(_jsonable(result), indent=2, allow_nan=False) + "\n")

    title = title or f"sonotok eval {result.get('task', '')}"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for note in result.get("notes") or ():  # what the numbers mean, in a sentence each
        parts.append(f"<p class='note'>{html.escape(str(note))}</p>")
    if result.get("warnings"):
        lines = "".join(f"<li>{html.escape(str(w['message']))}</li>" for w in result["warnings"])
        parts.append(f"<h2>Warnings</h2><ul class='warnings'>{lines}</ul>")
    settings = result.get("settings") or {}
    if settings:
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in settings.items()
        )
        parts.append(f"<h2>Settings</h2><table>{rows}</table>")
    if result.get("summary"):
        parts.append("<h2>Summary</h2>" + _summary_table(result["summary"]))
    for domain, summary in (result.get("per_domain") or {}).items():
        parts.append(f"<h2>Domain: {html.escape(domain)}</h2>" + _summary_table(summary))
    if result.get("set_metrics"):
        rows = "".join(
            f"<tr><th>{_metric_header(k)}</th><td>{_fmt(v)}</td></tr>"
            for k, v in result["set_metrics"].items()
        )
        parts.append(f"<h2>Set-level metrics</h2><table>{rows}</table>")
    if result.get("errors"):
        lines = "".join(
            f"<li>{html.escape(str(e['file']))}: {html.escape(str(e['message']))}</li>"
            for e in result["errors"]
        )
        parts.append(f"<h2>Errors</h2><ul class='errors'>{lines}</ul>")
    if examples:
        parts.append("<h2>Examples</h2>" + _examples_html(out, examples))
    if result.get("items"):
        parts.append(
            "<h2>Per-file metrics</h2>"
            + _items_table(result["items"], result.get("columns") or result.get("metrics", []))
        )
    parts.append("</body></html>\n")
    write_text_atomic(html_path, "".join(parts))
    return json_path, html_path


def pick_examples(n_items: int, k: int) -> set[int]:
    """Indices of up to ``k`` items spread evenly over ``n_items`` (deterministic)."""
    if n_items <= 0 or k <= 0:
        return set()
    return {int(round(i)) for i in np.linspace(0, n_items - 1, min(k, n_items))}

"""metrics.json is strict JSON; report.html loads in headless Chromium with working players and
rendered spectrograms."""

import json
import math
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import torch

from sonotok.evaluation import Clip, Example, write_report
from sonotok.evaluation.report import pick_examples

from .browser import inspect_page


def _report(tmp_path, tone) -> Path:
    ref = torch.from_numpy(tone(16000, seed=1))
    out = 0.9 * ref
    result = {
        "task": "reconstruct",
        "settings": {"model": "tiny <test>"},
        "metrics": ["pesq", "si_sdr"],
        "summary": {
            "pesq": {
                "mean": 4.2,
                "ci95_low": 4.0,
                "ci95_high": 4.4,
                "ci95_half_width": 0.2,
                "n": 2,
                "n_missing": 0,
            }
        },
        "per_domain": {},
        "items": [
            {"id": "a", "domain": None, "pesq": 4.2, "si_sdr": math.inf},
            {"id": "b", "pesq": math.nan},
        ],
        "errors": [{"file": "bad.wav", "message": "bad.wav: cannot be read"}],
    }
    examples = [
        Example(
            "spk 1/utt#1",
            [Clip("reference", ref, 16000), Clip("reconstruction", out, 16000)],
            {"pesq": 4.2},
        ),
        Example("utt2", [Clip("reference", ref, 16000), Clip("reconstruction", out, 16000)], {}),
    ]
    write_report(tmp_path / "out", result, examples)
    return tmp_path / "out"


def test_metrics_json_is_strict_json_with_undefined_values_as_null(tmp_path, tone):
    out = _report(tmp_path, tone)
    data = json.loads(
        (out / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}")
    )
    assert data["items"][0]["si_sdr"] is None and data["items"][1]["pesq"] is None
    assert data["summary"]["pesq"]["mean"] == 4.2


def test_report_opens_in_headless_chromium_with_players_and_images(tmp_path, tone):
    out = _report(tmp_path, tone)
    html = (out / "report.html").read_text()
    assert "<script" not in html and "tiny &lt;test&gt;" in html
    state = inspect_page(out / "report.html")
    assert state["problems"] == []
    assert state["title"] == "sonotok eval reconstruct" and state["tables"] >= 3
    assert len(state["audios"]) == 4 and len(state["images"]) == 4
    for audio in state["audios"]:
        path = Path(unquote(urlparse(audio["src"]).path))
        assert path.is_file() and path.parent == out / "audio"
        assert audio["error"] is None and audio["ready"] >= 1
        assert audio["duration"] == pytest.approx(1.0, abs=0.01)
    for image in state["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] == 160


def test_browser_check_catches_a_missing_image(tmp_path, tone):
    out = _report(tmp_path, tone)
    next((out / "img").glob("*.png")).unlink()
    state = inspect_page(out / "report.html")
    assert any(image["width"] == 0 for image in state["images"])
    assert state["problems"]


def test_examples_are_spread_over_the_items():
    assert pick_examples(10, 3) == {0, 4, 9} or pick_examples(10, 3) == {0, 5, 9}
    assert pick_examples(2, 8) == {0, 1} and pick_examples(0, 8) == set()


def test_change_verdict_reads_the_interval_and_the_metric_direction():
    from sonotok.evaluation.report import change_verdict

    up, down, spans = (0.1, 0.5), (-0.5, -0.1), (-0.1, 0.5)

    def verdict(name, interval):
        return change_verdict(name, {"ci95_low": interval[0], "ci95_high": interval[1]})

    got = (verdict("pesq", up), verdict("pesq", down), verdict("pesq", spans))
    assert got == ("better", "worse", "unclear")
    assert (verdict("mel_distance", up), verdict("mel_distance", down)) == ("worse", "better")
    assert verdict("duration_s", up) == "higher"
    assert change_verdict("pesq", {"mean": 0.3, "ci95_low": None, "ci95_high": None}) == "–"

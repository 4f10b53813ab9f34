"""A new tokenizer family plugs into every command without touching them (issue 12's proof).

The toy family (tests/tokenizer/toy.py: 8 kHz, 50 Hz frames, 160-d latents, exact inverse)
shares nothing with the DashengTokenizer but the `Tokenizer` interface; `encode`, `decode`,
`reconstruct`, `extract`, `embed`, `probe` and `eval reconstruct` run on it through the CLI.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf

from sonotok.cli import main
from sonotok.core.latents import LatentFile

_spec = importlib.util.spec_from_file_location(
    "sonotok_test_toy", Path(__file__).parents[1] / "tokenizer" / "toy.py"
)
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)  # registers the "toy-framed" family

RATE = 8000


def _clip(kind: str, rng: np.random.Generator, n: int = RATE // 2) -> np.ndarray:
    t = np.arange(n) / RATE
    if kind == "tone":
        x = np.sin(2 * np.pi * rng.uniform(300, 500) * t)
    elif kind == "noise":
        x = rng.standard_normal(n)
    else:  # chirp
        x = np.sin(2 * np.pi * (200 + 2000 * t) * t)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("toy") / "model"
    toy.FramedTokenizer(seed=1).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("toy-data") / "classes"
    rng = np.random.default_rng(0)
    for kind in ("tone", "noise", "chirp"):
        (root / kind).mkdir(parents=True)
        for i in range(12):
            sf.write(root / kind / f"{i:02d}.wav", _clip(kind, rng), RATE, subtype="FLOAT")
    return root


def test_encode_decode_reconstruct_round_trip_exactly(toy_model, classes, tmp_path):
    src = classes / "tone" / "00.wav"
    wave, _ = sf.read(src, dtype="float32")
    assert main(["encode", str(src), "-o", str(tmp_path / "z"), "--model", toy_model]) == 0
    file = LatentFile.load(tmp_path / "z" / "00.safetensors")
    assert tuple(file.latents.shape) == (25, 160) and file.features == "latents"
    assert (
        main(["decode", str(tmp_path / "z"), "-o", str(tmp_path / "d"), "--model", toy_model]) == 0
    )
    decoded, rate = sf.read(tmp_path / "d" / "00.wav", dtype="float32")
    assert rate == RATE and np.abs(decoded - wave).max() < 1e-3  # 16-bit wav of an exact inverse
    assert main(["reconstruct", str(src), "-o", str(tmp_path / "r"), "--model", toy_model]) == 0
    recon, _ = sf.read(tmp_path / "r" / "00.wav", dtype="float32")
    assert np.abs(recon - wave).max() < 1e-3


def test_extract_and_embed_store_the_families_latents(toy_model, classes, tmp_path):
    out = tmp_path / "dataset"
    assert main(["extract", str(classes), "-o", str(out), "--model", toy_model]) == 0
    data = datasets.load_from_disk(str(out))
    assert len(data) == 36 and set(data["num_frames"]) == {25}
    assert np.asarray(data[0]["latents"]).shape == (25, 160)
    assert json.loads((out / "extract.json").read_text())["features"] == "latents"
    assert (
        main(["embed", str(classes / "noise"), "-o", str(tmp_path / "emb"), "--model", toy_model])
        == 0
    )
    assert (
        len(list((tmp_path / "emb").rglob("*.npy")))
        + len(list((tmp_path / "emb").rglob("*.safetensors")))
        == 12
    )
    assert (
        main(
            [
                "extract",
                str(classes),
                "-o",
                str(tmp_path / "bad"),
                "--model",
                toy_model,
                "--features",
                "semantic",
            ]
        )
        == 2
    )  # the family has no such features


def test_probe_separates_the_classes_on_the_toy_latents(toy_model, classes, tmp_path):
    argv = ["probe", str(classes), "--model", toy_model, "--methods", "knn", "--folds", "3"]
    assert main([*argv, "-o", str(tmp_path / "p"), "--cache-dir", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "p" / "metrics.json").read_text())
    # mean-pooled frames of an orthogonal map keep little of these classes: above chance (1/3)
    assert report["num_clips"] == 36 and report["knn"]["mean"]["accuracy"] >= 0.6


def test_eval_reconstruct_scores_the_toy_family(toy_model, classes, tmp_path):
    out = tmp_path / "eval"
    assert (
        main(["eval", "reconstruct", str(classes / "tone"), "--model", toy_model, "-o", str(out)])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"]["mel_distance"]["mean"] < 0.05  # an exact inverse, 16-bit files

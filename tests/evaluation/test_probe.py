"""Probes (X-ARES protocol) on a tiny random tokenizer: generated classes with known answers."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.cli.probe import main
from sonotok.evaluation.probe import (
    ProbeConfig,
    Split,
    average_precision,
    knn_predict,
    masked_mean,
    predict,
    score,
    segment_f1,
    train_linear_probe,
)
from sonotok.evaluation.probe_data import ProbeDataset, frame_targets
from sonotok.evaluation.probe_report import run_probe

SR = 16000


def band_noise(n: int, lo: float, hi: float, rng) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    spec[(freqs < lo) | (freqs > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / np.abs(x).max()


def tone(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    return np.sin(2 * np.pi * rng.uniform(200, 500) * t + rng.uniform(0, 6))


def chirp(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    f0 = rng.uniform(4000, 4500)
    return np.sin(2 * np.pi * (f0 * t + 3000 * t**2 / (2 * t[-1])))


SOURCES = {
    "tone": tone,  # 200-500 Hz sine
    "noise": lambda n, rng: band_noise(n, 1500, 3000, rng),  # band-limited noise
    "chirp": chirp,  # rising sweep 4 kHz → 7 kHz
}


def clip(kinds: list[str], n: int, rng) -> np.ndarray:
    x = sum(rng.uniform(0.2, 0.6) * SOURCES[k](n, rng) for k in kinds) if kinds else 0
    return (x + 0.001 * rng.standard_normal(n)).astype(np.float32)


def encode_clips(model, waves, features="acoustic") -> list[torch.Tensor]:
    return model.encode([torch.from_numpy(w) for w in waves], features=features)


@pytest.fixture(scope="module")
def classes(tiny_tokenizer):
    """Acoustic latents of 240 half-second clips per class (tone / noise band / chirp)
    with a split: 200 train, 10 validation, 30 test per class."""
    rng = np.random.default_rng(0)
    kinds = sorted(SOURCES)
    labels = [c for c in range(3) for _ in range(240)]
    frames = encode_clips(tiny_tokenizer, [clip([kinds[c]], SR // 2, rng) for c in labels])
    split = (["train"] * 200 + ["validation"] * 10 + ["test"] * 30) * 3
    ids = [str(i) for i in range(len(labels))]
    return ProbeDataset(
        "multiclass", kinds, ids, masked_mean(frames), None, torch.tensor(labels), split
    )


def test_linear_and_knn_probes_separate_generated_classes(classes, tmp_path):
    report = run_probe(classes, tmp_path)  # X-ARES defaults: 10 epochs, Adam 1e-3, batch 32
    assert report["protocol"]["epochs"] == 10 and report["protocol"]["batch_size"] == 32
    linear, knn = report["linear"], report["knn"]
    assert linear["rounds"][0]["test"] == 90 and linear["rounds"][0]["train"] == 600
    assert linear["mean"]["accuracy"] >= 0.95
    assert knn["mean"]["accuracy"] >= 0.95
    cm = np.array(linear["confusion_matrix"])
    assert cm.sum() == 90 and cm.trace() == round(90 * linear["mean"]["accuracy"])
    for method in ("linear", "knn"):
        assert (tmp_path / f"confusion_{method}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_linear_probe_keeps_best_validation_epoch(classes):
    data, split = classes, np.array(classes.split)
    train = Split(data.pooled[split == "train"][:60], data.targets[split == "train"][:60])
    valid = Split(data.pooled[split == "validation"], data.targets[split == "validation"])
    model, history = train_linear_probe(train, valid, 3, "multiclass", ProbeConfig())
    assert len(history) == 10
    got = score(predict(model, valid, "multiclass"), valid, "multiclass", ProbeConfig())
    assert got["accuracy"] == max(h["accuracy"] for h in history)


@pytest.fixture(scope="module")
def class_tree(tmp_path_factory):
    """DATA/<class>/<i>.wav: 30 half-second clips of each of tone / noise band / chirp."""
    root = tmp_path_factory.mktemp("probe") / "classes"
    rng = np.random.default_rng(5)
    for kind in SOURCES:
        (root / kind).mkdir(parents=True)
        for i in range(30):
            sf.write(root / kind / f"{i:03d}.wav", clip([kind], SR // 2, rng), SR, subtype="FLOAT")
    return root


def test_probe_command_on_a_class_tree_with_folds_and_cache(
    class_tree, tmp_path, tiny_tokenizer_dir, capsys
):
    argv = ["probe", str(class_tree), "--model", tiny_tokenizer_dir, "--features", "acoustic"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "-o", str(tmp_path / "run1")]) == 0
    report = json.loads((tmp_path / "run1" / "metrics.json").read_text())
    assert report["classes"] == ["chirp", "noise", "tone"] and report["num_clips"] == 90
    assert len(report["knn"]["rounds"]) == 5  # stratified 5-fold by default
    assert sum(r["test"] for r in report["knn"]["rounds"]) == 90  # every clip tested once
    assert report["knn"]["mean"]["accuracy"] >= 0.95
    assert np.array(report["linear"]["confusion_matrix"]).sum() == 90
    assert (tmp_path / "run1" / "confusion_linear.png").is_file()
    # A second probe reads the cached embeddings instead of encoding again.
    capsys.readouterr()
    assert main([*argv, "-o", str(tmp_path / "run2"), "--methods", "knn"]) == 0
    assert "using cached embeddings" in capsys.readouterr().err
    again = json.loads((tmp_path / "run2" / "metrics.json").read_text())
    assert again["knn"]["mean"] == report["knn"]["mean"] and "linear" not in again


def test_probe_reads_a_latent_dataset_written_by_extract(class_tree, tmp_path, tiny_tokenizer_dir):
    from sonotok.cli.extract import main as sonotok_extract

    latents = tmp_path / "latents"
    argv = ["extract", str(class_tree), "-o", str(latents), "--model", tiny_tokenizer_dir]
    argv += ["--class-from-folder", "--features", "acoustic", "--pool", "mean"]
    assert sonotok_extract(argv) == 0
    out = tmp_path / "probe"
    assert main(["probe", str(latents), "-o", str(out), "--methods", "knn", "--folds", "3"]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["num_clips"] == 90 and len(report["knn"]["rounds"]) == 3
    assert report["knn"]["mean"]["accuracy"] >= 0.95
    # A frame task needs frame-level latents, not pooled ones.
    assert main(["probe", str(latents), "-o", str(out), "--task", "frame"]) == 2


def test_multilabel_probe_finds_which_sources_are_mixed(tiny_tokenizer, tmp_path):
    rng = np.random.default_rng(1)
    kinds = sorted(SOURCES)
    subsets = [[k for k in kinds if rng.random() < 0.5] for _ in range(480)]
    frames = encode_clips(tiny_tokenizer, [clip(s, SR // 2, rng) for s in subsets])
    targets = torch.tensor([[float(k in s) for k in kinds] for s in subsets])
    split = ["train"] * 400 + ["validation"] * 30 + ["test"] * 50
    ids = [str(i) for i in range(480)]
    data = ProbeDataset("multilabel", kinds, ids, masked_mean(frames), None, targets, split)
    report = run_probe(data, tmp_path, methods=("linear", "knn"))
    assert "knn" not in report  # kNN is a multiclass probe
    assert report["linear"]["rounds"][0]["test"] == 50
    assert report["linear"]["mean"]["mAP"] >= 0.85  # chance: about 0.5


def test_frame_probe_locates_events(tiny_tokenizer):
    """2 s clips: a tone and a noise band, each on during a random interval; the frame
    probe must find when each is on (segment F1 on 1 s segments)."""
    rng = np.random.default_rng(2)
    waves, events = [], []
    for _ in range(400):
        n = 2 * SR
        wave = 0.001 * rng.standard_normal(n)
        clip_events = []
        for kind in ("tone", "noise"):
            onset = rng.uniform(0, 1.5)
            offset = min(2.0, onset + rng.uniform(0.3, 1.0))
            a, b = int(onset * SR), int(offset * SR)
            wave[a:b] += 0.4 * SOURCES[kind](b - a, rng)
            clip_events.append({"label": kind, "onset": onset, "offset": offset})
        waves.append(wave.astype(np.float32))
        events.append(clip_events)
    frames = encode_clips(tiny_tokenizer, waves)
    names = ["noise", "tone"]
    targets = [frame_targets(e, f.shape[0], names, 25.0) for e, f in zip(events, frames)]
    train, valid, test = (slice(0, 320), slice(320, 340), slice(340, 400))
    config = ProbeConfig()
    model, _ = train_linear_probe(
        Split(frames[train], targets[train]),
        Split(frames[valid], targets[valid]),
        2,
        "frame",
        config,
    )
    held_out = Split(frames[test], targets[test])
    probs = predict(model, held_out, "frame")
    assert score(probs, held_out, "frame", config)["segment_f1"] >= 0.9
    # Frame decisions, not just clip-level presence: most frames are right.
    pred = np.concatenate([p > 0.5 for p in probs])
    truth = np.concatenate([t.numpy() > 0.5 for t in targets[test]])
    assert (pred == truth).mean() >= 0.8  # all-off would score about 0.67


def test_frame_targets_from_events():
    y = frame_targets([{"label": "b", "onset": 0.1, "offset": 0.2}], 10, ["a", "b"], 25.0)
    # Frame centres at 0.02, 0.06, ...: frames 2, 3, 4 (0.10, 0.14, 0.18) are inside.
    assert y[:, 0].sum() == 0 and y[:, 1].nonzero().flatten().tolist() == [2, 3, 4]


def test_segment_f1_counts_segments():
    target = np.zeros((50, 1), dtype=bool)
    target[0:10] = True  # active in segment 0 only (25-frame segments)
    pred = np.zeros((50, 1), dtype=bool)
    pred[20:30] = True  # active in segments 0 and 1
    out = segment_f1([pred], [target], 25)
    assert out["segment_precision"] == 0.5 and out["segment_recall"] == 1.0
    assert out["segment_f1"] == pytest.approx(2 / 3)


def test_average_precision_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert average_precision(scores, np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores, np.array([0, 0, 0, 1])) == pytest.approx(0.25)


def test_knn_votes_with_softmax_weights():
    train_x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    train_y = torch.tensor([0, 0, 1])
    shares = knn_predict(train_x, train_y, torch.tensor([[0.2, 1.0], [1.0, 0.05]]), 2, k=3)
    assert shares.argmax(-1).tolist() == [1, 0]
    np.testing.assert_allclose(shares.sum(-1), 1.0, rtol=1e-6)
    # Same as weighting by exp(cos / 0.07) and normalising.
    a = torch.nn.functional.normalize(train_x, dim=-1)
    q = torch.nn.functional.normalize(torch.tensor([0.2, 1.0]), dim=-1)
    w = torch.exp(a @ q / 0.07)
    assert shares[0, 1] == pytest.approx(float(w[2] / w.sum()), rel=1e-5)


def test_probe_reads_a_labelled_dataset_with_split_column(tmp_path, tiny_tokenizer_dir):
    """A saved dataset with audio bytes, a string label and a split column."""
    rng = np.random.default_rng(3)
    rows = {"audio": [], "genre": [], "split": []}
    for i in range(90):
        kind = ["tone", "chirp"][i % 2]
        buf = io.BytesIO()
        sf.write(buf, clip([kind], SR // 4, rng), SR, format="FLAC")
        rows["audio"].append({"bytes": buf.getvalue(), "path": None})
        rows["genre"].append(kind)
        rows["split"].append("train" if i < 60 else "validation" if i < 70 else "test")
    ds = datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio(decode=False))
    ds.save_to_disk(str(tmp_path / "ds"))
    argv = [
        "probe",
        str(tmp_path / "ds"),
        "-o",
        str(tmp_path / "out"),
        "--model",
        tiny_tokenizer_dir,
    ]
    argv += ["--label-column", "genre", "--cache-dir", str(tmp_path / "cache"), "--methods", "knn"]
    assert main(argv) == 0
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["knn"]["rounds"][0]["test"] == 20 and report["knn"]["rounds"][0]["train"] == 60
    assert report["knn"]["mean"]["accuracy"] >= 0.95


def test_missing_label_column_is_a_clear_error(class_tree, tmp_path, tiny_tokenizer_dir, capsys):
    argv = ["probe", str(class_tree), "-o", str(tmp_path), "--model", tiny_tokenizer_dir]
    argv += [
        "--label-column",
        "mood",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--features",
        "acoustic",
    ]
    assert main(argv) == 2
    assert "no label column 'mood'" in capsys.readouterr().err


def test_xares_config_file_is_the_protocol(tmp_path):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "probe" / "xares.yaml"
    config = ProbeConfig.from_yaml(path)
    assert config == ProbeConfig()
    assert (config.epochs, config.lr, config.batch_size, config.final_lr_ratio) == (
        10,
        1e-3,
        32,
        0.1,
    )
    assert (config.knn_k, config.knn_temperature) == (10, 0.07)
    (tmp_path / "bad.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="unknown probe settings.*learning_rate"):
        ProbeConfig.from_yaml(tmp_path / "bad.yaml")


def test_probe_dataset_reads_events_and_label_lists_from_a_latent_dataset():
    from sonotok.evaluation.probe_data import probe_dataset

    latents = [np.ones((10, 4), np.float32), 2 * np.ones((5, 4), np.float32)]
    events = [[{"label": "dog", "onset": 0.0, "offset": 0.1}], []]
    features = datasets.Features(
        {
            "latents": datasets.Array2D(shape=(None, 4), dtype="float32"),
            "num_frames": datasets.Value("int32"),
            "events": datasets.List(
                {
                    "label": datasets.Value("string"),
                    "onset": datasets.Value("float32"),
                    "offset": datasets.Value("float32"),
                }
            ),
            "labels": datasets.List(datasets.Value("string")),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "latents": latents,
            "num_frames": [10, 5],
            "events": events,
            "labels": [["a", "b"], ["b"]],
        },
        features=features,
    )
    frame = probe_dataset(ds, "frame")
    assert frame.classes == ["dog"] and [t.shape for t in frame.targets] == [(10, 1), (5, 1)]
    assert (
        frame.targets[0][:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        and frame.targets[1].sum() == 0
    )
    torch.testing.assert_close(frame.pooled, torch.tensor([[1.0] * 4, [2.0] * 4]))
    multi = probe_dataset(ds, "multilabel")
    assert multi.classes == ["a", "b"] and multi.targets.tolist() == [[1, 1], [0, 1]]


def test_probe_with_an_unreadable_clip_probes_the_rest_and_exits_1(
    tmp_path, tiny_tokenizer_dir, capsys
):
    rng = np.random.default_rng(7)
    root = tmp_path / "classes"
    for kind in SOURCES:
        (root / kind).mkdir(parents=True)
        for i in range(6):
            sf.write(root / kind / f"{i}.wav", clip([kind], SR // 2, rng), SR, subtype="FLOAT")
    (root / "tone" / "corrupt.wav").write_bytes(b"RIFF" + bytes(40))
    argv = ["probe", str(root), "--model", tiny_tokenizer_dir, "--features", "acoustic"]
    argv += ["--methods", "knn", "--folds", "3", "--cache-dir", str(tmp_path / "cache")]
    for run in ("first", "cached"):  # the cached embeddings remember the unreadable clip
        assert main([*argv, "-o", str(tmp_path / run)]) == 1
        err = capsys.readouterr().err
        assert f"error: 1 clip(s) of {root} could not be read" in err and "errors.jsonl" in err
        assert "corrupt.wav" in err
        report = json.loads((tmp_path / run / "metrics.json").read_text())
        assert report["num_clips"] == 18 and len(report["knn"]["rounds"]) == 3

"""`sonotok compare`: the whole comparison on CPU over four tokenizers of different kinds (the
bundled mini, a tiny random DashengTokenizer, the toy continuous and the toy discrete family),
checked against the toolkit's own metrics, resumed after an interruption, and its report opened
in headless Chromium."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import soundfile as sf
import torch

import sonotok.evaluation.compare as compare_module
from sonotok.cli import main
from sonotok.evaluation.compare import compare, probe_task, read_cache, table_row
from sonotok.evaluation.data import discover
from sonotok.evaluation.probe import ProbeConfig
from sonotok.evaluation.quality import SpeakerSimilarity, dnsmos
from sonotok.evaluation.reconstruct import evaluate_reconstruction, tokenizer_reconstructor
from sonotok.evaluation.speech import pesq_wb
from sonotok.tokenizer.interface import load_tokenizer

from .browser import chromium_binary, inspect_page

_spec = importlib.util.spec_from_file_location(
    "sonotok_test_toy_compare", Path(__file__).parents[1] / "tokenizer" / "toy.py"
)
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)  # registers the "toy-framed" and "toy-coded" families

MINI = str(Path(__file__).parents[2] / "sonotok" / "mini" / "tokenizer")
DOMAINS = {"speech": 0, "music": 10, "sound": 20}


@pytest.fixture(scope="module")
def suite(tmp_path_factory, tone) -> Path:
    """Three domains × three 1 s clips at 16 kHz."""
    root = tmp_path_factory.mktemp("suite")
    for domain, seed in DOMAINS.items():
        (root / domain).mkdir()
        for i in range(3):
            sf.write(root / domain / f"c{i}.wav", tone(16000, seed=seed + i), 16000)
    return root


@pytest.fixture(scope="module")
def toy_dirs(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("toys")
    toy.FramedTokenizer().save_pretrained(root / "framed")
    toy.CodedTokenizer().save_pretrained(root / "coded")
    return str(root / "framed"), str(root / "coded")


@pytest.fixture(scope="module")
def dac_dir(tmp_path_factory) -> str:
    """A tiny random transformers DAC codec (16 kHz, 3 codebooks of 16), saved by transformers."""
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    config = DacConfig(
        encoder_hidden_size=4, downsampling_ratios=[2, 4], decoder_hidden_size=16, n_codebooks=3,
        codebook_size=16, codebook_dim=4, hidden_size=16, sampling_rate=16000,
    )  # fmt: skip
    model = DacModel(config)
    with torch.no_grad():  # spread the codebooks so codes vary
        for name, param in model.named_parameters():
            if "codebook" in name:
                param.normal_()
    folder = tmp_path_factory.mktemp("dac") / "dac"
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def run(tmp_path_factory, suite, toy_dirs, tiny_tokenizer_dir, dac_dir):
    """One CLI run over five tokenizers of four kinds (sonotok continuous, toy continuous, toy
    discrete, a transformers codec) and one that does not exist."""
    out = tmp_path_factory.mktemp("compare")
    models = [MINI, tiny_tokenizer_dir, *toy_dirs, dac_dir, str(out / "missing")]
    argv = ["compare", str(suite), "-o", str(out), "--device", "cpu", "--no-speech-quality"]
    code = main(argv + [x for m in models for x in ("--model", m)])
    with open(out / "results.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    return code, out, rows, models


def test_table_has_every_tokenizer_and_reports_the_bad_one(run, capsys):
    code, out, rows, models = run
    assert code == 1  # the missing tokenizer; the others finished
    assert set(rows) == set(models)
    assert rows[models[5]]["kind"] == "" and rows[models[5]]["errors"] == "1"
    for model in models[:5]:
        assert rows[model]["clips"] == "9" and rows[model]["errors"] == "0"
        assert 0 < float(rows[model]["speech/pesq"]) < 4.7
        assert float(rows[model]["music/mel_distance"]) > 0
        assert 0 <= float(rows[model]["domain/linear"]) <= 1
        assert float(rows[model]["encode_rtf"]) > 0 and float(rows[model]["decode_rtf"]) > 0
    md = (out / "results.md").read_text()
    assert "**reconstruction**" in md and "**understanding**" in md and "**cost**" in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 2 + len(models)  # group row, header row, one row per tokenizer


def test_cost_columns_are_the_tokenizers_facts(run, toy_dirs, tiny_tokenizer_dir):
    _, _, rows, _ = run
    coded, framed = rows[toy_dirs[1]], rows[toy_dirs[0]]
    assert float(coded["bitrate"]) == 50 * 160 * 8 and coded["kind"] == "discrete"
    assert framed["bitrate"] == "" and float(framed["latent_values_per_second"]) == 50 * 160
    dac = rows[run[3][4]]  # the transformers codec: 16 kHz / hop 8 × 3 codebooks × 4 bits
    assert dac["kind"] == "discrete" and float(dac["bitrate"]) == pytest.approx(2000 * 3 * 4)
    tiny = load_tokenizer(tiny_tokenizer_dir)
    assert int(rows[tiny_tokenizer_dir]["parameters"]) == tiny.describe()["parameters"]
    assert float(rows[tiny_tokenizer_dir]["latent_values_per_second"]) == 25 * tiny.latent_dim


def test_reconstruction_values_match_eval_reconstruct(run, suite, toy_dirs, tiny_tokenizer_dir):
    """The CSV's per-domain means are what `sonotok eval reconstruct`'s code gives."""
    _, _, rows, _ = run
    items = discover(suite)
    for model in (tiny_tokenizer_dir, toy_dirs[1]):
        result, _ = evaluate_reconstruction(items, tokenizer_reconstructor(load_tokenizer(model)))
        for domain in DOMAINS:
            scored = [r for r in result["items"] if r["domain"] == domain]
            for metric in ("mel_distance", "stft_distance"):
                expected = np.mean([r[metric] for r in scored])
                assert float(rows[model][f"{domain}/{metric}"]) == pytest.approx(expected, rel=1e-4)
        speech = [r for r in result["items"] if r["domain"] == "speech"]
        for metric in ("pesq", "stoi"):
            expected = np.mean([r[metric] for r in speech])
            assert float(rows[model][f"speech/{metric}"]) == pytest.approx(expected, rel=1e-4)


def test_one_clip_scored_directly(run, suite, toy_dirs):
    """PESQ of one clip through the toy discrete family, by hand, equals its cached value."""
    _, out, _, _ = run
    tokenizer = load_tokenizer(toy_dirs[1])
    wave = torch.from_numpy(sf.read(suite / "speech" / "c1.wav", dtype="float32")[0])
    estimate = tokenizer.reconstruct(wave, sample_rate=16000)
    cached = next(read_cache(p) for p in (out / "cache").glob("coded-*.jsonl"))
    assert cached["speech/c1"]["metrics"]["pesq"] == pytest.approx(pesq_wb(wave, estimate), 1e-5)


def test_probe_separates_separable_embeddings():
    rng = np.random.default_rng(0)
    embeddings, labels = {}, {}
    for i in range(18):
        label = i % 3
        embeddings[f"c{i}"] = (np.eye(4)[label] * 5 + 0.1 * rng.standard_normal(4)).tolist()
        labels[f"c{i}"] = f"class{label}"
    result = probe_task(embeddings, labels, ProbeConfig(epochs=30, lr=1e-2), folds=3)
    assert result["knn"] == 1.0 and result["linear"] >= 0.9 and result["classes"] == 3
    assert "note" in probe_task(embeddings, {k: "one" for k in labels}, ProbeConfig(), 3)


def test_resume_after_interruption_skips_finished_clips(tmp_path, suite, toy_dirs, monkeypatch):
    items = discover(suite)
    calls = []
    real = compare_module.run_clip

    def counting(tokenizer, item, reference, **kwargs):
        if len(calls) == 4 and not hasattr(counting, "interrupted"):
            counting.interrupted = True
            raise KeyboardInterrupt  # the run dies after 4 finished clips
        calls.append(item.id)
        return real(tokenizer, item, reference, **kwargs)

    monkeypatch.setattr(compare_module, "run_clip", counting)
    with pytest.raises(KeyboardInterrupt):
        compare(toy_dirs, items, tmp_path, progress=False, speech_quality=False)
    finished = list(calls)
    comparison = compare(toy_dirs, items, tmp_path, progress=False, speech_quality=False)
    redone = calls[len(finished) :]
    assert not set(redone[:5]) & set(finished)  # framed: only the clips it had not finished
    assert len(redone) == 2 * 9 - 4
    assert [r.computed for r in comparison.results] == [5, 9]
    assert all(len(r.rows) == 9 for r in comparison.results)


def test_a_bad_clip_is_one_error_and_the_rest_finish(tmp_path, suite, toy_dirs):
    data = tmp_path / "data"
    for domain in DOMAINS:
        (data / domain).mkdir(parents=True)
        (data / domain / "ok.wav").write_bytes((suite / domain / "c0.wav").read_bytes())
    (data / "sound" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    lines = []
    comparison = compare(toy_dirs[:1], discover(data), tmp_path / "out", tasks=[],
                         say=lines.append, progress=False, speech_quality=False)  # fmt: skip
    assert len(lines) == 1 and "broken.wav" in lines[0] and lines[0].startswith("error: ")
    assert len(comparison.results[0].rows) == 3


def _small_suite(root: Path, suite: Path) -> Path:
    """One speech and one music clip of the module suite."""
    for domain, clip in (("speech", "c1.wav"), ("music", "c0.wav")):
        (root / domain).mkdir(parents=True)
        (root / domain / clip).write_bytes((suite / domain / clip).read_bytes())
    return root


def test_speech_quality_metrics_match_the_toolkit(tmp_path, suite, toy_dirs):
    """Speaker similarity and DNSMOS in the CSV are the quality toolkit's values of the clip."""
    data, out = _small_suite(tmp_path / "data", suite), tmp_path / "out"
    argv = ["compare", str(data), "--model", toy_dirs[1], "-o", str(out), "--tasks", "none"]
    assert main(argv + ["--device", "cpu"]) == 0
    with open(out / "results.csv") as f:
        row = next(csv.DictReader(f))
    wave = torch.from_numpy(sf.read(data / "speech" / "c1.wav", dtype="float32")[0])
    estimate = load_tokenizer(toy_dirs[1]).reconstruct(wave, sample_rate=16000)
    similarity = SpeakerSimilarity()(wave, estimate)
    assert np.isfinite(similarity)
    assert float(row["speech/speaker_similarity"]) == pytest.approx(similarity, rel=1e-4)
    expected = dnsmos(estimate)
    for key in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"):
        assert 1 <= expected[key] <= 5
        assert float(row[f"speech/{key}"]) == pytest.approx(expected[key], rel=1e-4)
    assert "music/dnsmos_ovrl" not in row and float(row["music/mel_distance"]) > 0


def test_sharded_run_merges_to_the_one_process_table(tmp_path, suite, toy_dirs):
    """Ranks 0 and 1 of 2 (simulated one after the other) give the one-process table; each
    rank wrote its own cache file; a one-process rerun then finds every clip cached."""
    items = discover(suite)
    common = dict(tasks=["domain"], progress=False, speech_quality=False)
    single = compare(toy_dirs, items, tmp_path / "one", **common)
    sharded = tmp_path / "two"
    ranks = dict(world=2, barrier=lambda: None)
    assert compare(toy_dirs, items, sharded, rank=1, **ranks, **common) is None
    merged = compare(toy_dirs, items, sharded, rank=0, **ranks, **common)
    assert sorted(p.name.split(".")[-2] for p in (sharded / "cache").glob("coded-*.jsonl")) == [
        "0", "1"
    ]  # fmt: skip
    assert len(read_cache(next((sharded / "cache").glob("coded-*.1.jsonl")))) == 4  # 9 clips / 2
    timing = ("encode_rtf", "decode_rtf")
    for one, two in zip(single.results, merged.results):
        assert [r["id"] for r in two.rows] == [it.id for it in items]
        assert two.computed == 9 and not two.errors
        a, b = table_row(one, single), table_row(two, merged)
        assert {k: v for k, v in a.items() if k not in timing} == pytest.approx(
            {k: v for k, v in b.items() if k not in timing}, nan_ok=True
        )
        assert b["domain/linear"] == a["domain/linear"] and b["encode_rtf"] > 0
    rerun = compare(toy_dirs, items, sharded, **common)
    assert [r.computed for r in rerun.results] == [0, 0]
    assert all(len(r.rows) == 9 for r in rerun.results)


def test_labels_file_and_dataset_column_tasks(tmp_path, suite, toy_dirs):
    """--labels FILE (csv id,label) names a task; a dataset column is one too."""
    from datasets import Audio, Dataset

    from sonotok.cli.compare import _labels
    from sonotok.evaluation.compare import task_labels

    items = discover(suite)
    labels_csv = tmp_path / "labels.csv"
    lines = "".join(f"{it.id},{i % 2}\n" for i, it in enumerate(items))
    labels_csv.write_text("id,parity\n" + lines)
    labels = _labels(str(labels_csv), ["parity"])
    assert task_labels(items, "parity", labels) == {it.id: str(i % 2) for i, it in enumerate(items)}
    out = tmp_path / "out"
    argv = ["compare", str(suite), "--model", toy_dirs[0], "-o", str(out), "--device", "cpu"]
    argv += ["--no-speech-quality", "--tasks", "domain,parity", "--labels", str(labels_csv)]
    assert main(argv) == 0
    with open(out / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert 0 <= float(row["parity/linear"]) <= 1 and 0 <= float(row["parity/knn"]) <= 1
    clips = sorted(suite.glob("*/*.wav"))[:7]
    Dataset.from_dict(
        {
            "audio": [{"bytes": p.read_bytes(), "path": None} for p in clips],
            "colour": ["red", "blue"] * 3 + [""],  # the last clip has no label: left out
        }
    ).cast_column("audio", Audio(decode=False)).save_to_disk(str(tmp_path / "ds"))
    found = task_labels(discover(tmp_path / "ds"), "colour", {})
    assert sorted(found.values()) == ["blue"] * 3 + ["red"] * 3
    argv = ["compare", str(tmp_path / "ds"), "--model", toy_dirs[0], "-o", str(tmp_path / "o2")]
    assert main(argv + ["--device", "cpu", "--no-speech-quality", "--tasks", "colour"]) == 0
    with open(tmp_path / "o2" / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert 0 <= float(row["colour/knn"]) <= 1 and row["clips"] == "7"


def test_cli_refuses_a_finished_folder_without_resume(run, suite, tiny_tokenizer_dir):
    _, out, _, _ = run
    argv = ["compare", str(suite), "--model", tiny_tokenizer_dir, "-o", str(out)]
    assert main(argv) == 2


@pytest.mark.skipif(chromium_binary() is None, reason="needs chromium")
def test_report_opens_in_chromium(run):
    _, out, _, _ = run
    state = inspect_page(out / "report.html")
    assert state["problems"] == []
    assert state["title"] == "sonotok compare" and state["tables"] == 1
    assert len(state["images"]) == 2 and all(i["width"] > 100 for i in state["images"])
    assert len(state["audios"]) == 3 * (1 + 5)  # reference + five tokenizers per example
    for audio in state["audios"]:
        assert Path(unquote(urlparse(audio["src"]).path)).is_file()
        assert audio["error"] is None and audio["duration"] == pytest.approx(1.0, abs=0.01)


def test_neucodec_writing_24khz_is_scored_at_16khz(tmp_path, suite):
    """A tokenizer that reads 16 kHz and writes 24 kHz (a tiny NeuCodec): its reconstruction is
    resampled from its output rate, so the table holds the toolkit's values of `reconstruct`."""
    spec = importlib.util.spec_from_file_location(
        "xcodec2_tiny", Path(__file__).parents[1] / "tokenizer" / "xcodec2_tiny.py"
    )
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    model = tmp_path / "neucodec"
    tiny.neucodec().save_pretrained(str(model))
    data, out = tmp_path / "data", tmp_path / "out"
    (data / "speech").mkdir(parents=True)
    (data / "speech" / "c1.wav").write_bytes((suite / "speech" / "c1.wav").read_bytes())
    argv = ["compare", str(data), "--model", str(model), "-o", str(out), "--tasks", "none"]
    assert main(argv + ["--device", "cpu", "--no-speech-quality"]) == 0
    with open(out / "results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["bitrate"]) == 400 and row["kind"] == "discrete"
    tokenizer = load_tokenizer(model)
    assert (tokenizer.sample_rate, tokenizer.output_sample_rate) == (16000, 24000)
    result, _ = evaluate_reconstruction(discover(data), tokenizer_reconstructor(tokenizer))
    for scored in result["items"]:
        for metric in ("mel_distance", "stft_distance"):
            column = f"{scored['domain']}/{metric}"
            assert float(row[column]) == pytest.approx(scored[metric], rel=1e-4)


def test_seed_codecs_compare_with_the_toolkits_values(tmp_path, suite):
    """The seed codecs' tiny parity models (SQCodec, UniCodec) in one comparison: cost facts from
    the families, reconstruction values equal to the toolkit's on their `reconstruct`."""
    from sonotok.tokenizer.sqcodec import SQCodecTokenizer
    from sonotok.tokenizer.sqcodec.configs import config_from_toml
    from sonotok.tokenizer.unicodec import UnicodecTokenizer

    fixtures = Path(__file__).parents[1] / "fixtures"
    sq = fixtures / "sqcodec_parity"
    network = __import__("json").loads((sq / "configs.json").read_text())["6kbps"]
    config = config_from_toml(network, "6kbps", 16000)
    models = {
        "sqcodec": SQCodecTokenizer.from_pretrained(f"{sq}:6kbps", config=config),
        "unicodec": UnicodecTokenizer.from_pretrained(
            fixtures / "unicodec_parity" / "official_tiny", domain="speech"
        ),
    }
    names = []
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
        names += ["--model", str(tmp_path / name)]
    data, out = _small_suite(tmp_path / "data", suite), tmp_path / "out"
    argv = ["compare", str(data), *names, "-o", str(out), "--tasks", "none"]
    assert main(argv + ["--device", "cpu", "--no-speech-quality"]) == 0
    with open(out / "results.csv") as f:
        rows = {Path(r["tokenizer"]).name: r for r in csv.DictReader(f)}
    assert set(rows) == set(models)
    for name, model in models.items():
        row = rows[name]
        assert row["kind"] == "discrete"
        assert float(row["bitrate"]) == pytest.approx(model.bitrate, rel=1e-4)
        assert float(row["frame_rate"]) == pytest.approx(model.frame_rate, rel=1e-4)
        tokenizer = load_tokenizer(tmp_path / name)
        result, _ = evaluate_reconstruction(discover(data), tokenizer_reconstructor(tokenizer))
        for scored in result["items"]:
            for metric in ("mel_distance", "stft_distance"):
                column = f"{scored['domain']}/{metric}"
                assert float(row[column]) == pytest.approx(scored[metric], rel=1e-4)

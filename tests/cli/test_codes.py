"""Discrete tokenizers through every command: code files from `encode`, exact `decode` of
them (with the clip's recorded decode options), a `codes` column from `extract`, and `embed`,
`probe` and `eval reconstruct` through the codes' embeddings.

Two discrete families: the toy `toy-coded` (tests/tokenizer/toy.py; 8 kHz, 50 Hz, 160 codebooks
of 256, a load-time `domain` its decoder needs) and a tiny random transformers EnCodec.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sonotok.cli import main
from sonotok.core.codes import CodeFile
from sonotok.core.latents import LatentFile
from sonotok.tokenizer.interface import load_tokenizer

_spec = importlib.util.spec_from_file_location(
    "sonotok_test_toy", Path(__file__).parents[1] / "tokenizer" / "toy.py"
)
toy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toy)  # registers the "toy-coded" family

RATE = 8000
PCM16 = 2 / 32768  # decoded files are 16-bit wavs


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """toy-coded with domain "inverted" and "plain" (same weights), and a tiny EnCodec."""
    from transformers import EncodecConfig, EncodecModel

    root = tmp_path_factory.mktemp("codecs")
    toy.CodedTokenizer(domain="inverted").save_pretrained(root / "inverted")
    toy.CodedTokenizer().save_pretrained(root / "plain")
    config = EncodecConfig(
        num_filters=4, hidden_size=16, codebook_size=16, upsampling_ratios=[4, 2],
        num_lstm_layers=1, sampling_rate=RATE, target_bandwidths=[4.0, 12.0],
    )  # fmt: skip
    torch.manual_seed(0)
    encodec = EncodecModel(config)
    with torch.no_grad():  # random init leaves some codebooks at zero: spread them
        for name, buffer in encodec.named_buffers():
            if "embed" in name:
                buffer.normal_()
    encodec.save_pretrained(root / "encodec")
    return {name: str(root / name) for name in ("inverted", "plain", "encodec")}


@pytest.fixture(scope="module")
def clips(tmp_path_factory, tone) -> Path:
    """Two classes × six 0.5 s clips at 8 kHz (float wavs: read back exactly), told apart by
    pitch and by the sign of an offset (what mean-pooled toy frames keep)."""
    root = tmp_path_factory.mktemp("clips")
    for label, seed, pitch, offset in (("low", 0, 300, 0.1), ("high", 100, 2500, -0.1)):
        (root / label).mkdir()
        for i in range(6):
            t = np.arange(RATE // 2) / RATE
            wave = 0.3 * np.sin(2 * np.pi * (pitch + 20 * i) * t) + offset
            wave += 0.2 * tone(RATE // 2, RATE, seed + i)
            sf.write(root / label / f"{i}.wav", wave.astype(np.float32), RATE, subtype="FLOAT")
    return root


def _read(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32")[0]


def test_encode_writes_code_files_and_decode_applies_their_domain(models, clips, tmp_path, capsys):
    src = clips / "low" / "0.wav"
    argv = ["encode", str(clips / "low"), "-o", str(tmp_path / "c"), "--model", models["inverted"]]
    assert main(argv) == 0
    file = CodeFile.load(tmp_path / "c" / "0.safetensors")
    model = load_tokenizer(models["inverted"])
    codes = model.encode_codes(torch.from_numpy(_read(src)))
    assert torch.equal(file.codes, codes) and file.decode_options == {"domain": "inverted"}
    assert (file.model_type, file.codebook_size, file.num_codebooks) == ("toy-coded", 256, 160)
    assert (file.frame_rate, file.bitrate, file.num_samples) == (50.0, 64000.0, 4000)
    with safe_open(str(tmp_path / "c" / "0.safetensors"), "pt") as f:
        assert f.get_tensor("codes").dtype == torch.int16
    # decoded by the "plain" model: exact only because the file tells it the clip's domain
    argv = ["decode", str(tmp_path / "c"), "-o", str(tmp_path / "d"), "--model", models["plain"]]
    assert main(argv) == 0
    assert capsys.readouterr().err.count("warning: ") == 1  # 6 files of another model: once
    decoded = _read(tmp_path / "d" / "0.wav")
    expected = model.decode(codes).numpy()
    assert np.abs(decoded - expected).max() < PCM16
    assert np.abs(decoded - _read(src)).max() < 0.02  # 8-bit codes of an exact inverse


def test_encodec_codes_decode_exactly_and_features_latents_gives_embeddings(
    models, clips, tmp_path
):
    src, model = clips / "high" / "1.wav", load_tokenizer(models["encodec"])
    wave = torch.from_numpy(_read(src))
    assert main(["encode", str(src), "-o", str(tmp_path / "c"), "--model", models["encodec"]]) == 0
    file = CodeFile.load(tmp_path / "c" / "1.safetensors")
    codes = model.encode_codes(wave)
    assert torch.equal(file.codes, codes) and file.codes.shape == (500, model.num_codebooks)
    assert file.bitrate == model.bitrate and file.decode_options == {}
    argv = ["decode", str(tmp_path / "c"), "-o", str(tmp_path / "d"), "--model", models["encodec"]]
    assert main(argv) == 0
    expected = model.decode(codes).clamp(-1, 1).numpy()
    assert np.abs(_read(tmp_path / "d" / "1.wav") - expected).max() < PCM16
    argv = ["encode", str(src), "-o", str(tmp_path / "z"), "--model", models["encodec"]]
    assert main([*argv, "--features", "latents"]) == 0
    latents = LatentFile.load(tmp_path / "z" / "1.safetensors").latents
    torch.testing.assert_close(latents, model.encode(wave))


def test_extract_stores_codes_and_latents_and_records_the_codebook(models, clips, tmp_path):
    out, model = tmp_path / "both", load_tokenizer(models["inverted"])
    argv = ["extract", str(clips), "--model", models["inverted"], "--features", "codes,latents"]
    assert main([*argv, "-o", str(out)]) == 0
    data = datasets.load_from_disk(str(out)).with_format("numpy")
    row = data[0]
    wave = torch.from_numpy(_read(clips / str(row["path"])))  # paths relative to the folder
    codes = model.encode_codes(wave)
    assert data.features["codes"].dtype == "int16" and np.array_equal(row["codes"], codes.numpy())
    torch.testing.assert_close(torch.from_numpy(row["latents"]), model.embed_codes(codes))
    assert json.loads(row["decode_options"]) == {"domain": "inverted"}
    plan = json.loads((out / "extract.json").read_text())
    assert plan["columns"] == ["codes", "decode_options", "latents", "num_frames"]
    assert (plan["codebook_size"], plan["num_codebooks"], plan["bitrate"]) == (256, 160, 64000.0)
    assert plan["codebook_sizes"] == [256] * 160 and plan["tokens_per_second"] == 50.0 * 160
    assert (plan["frame_rate"], plan["code_dtype"], plan["model_type"]) == (
        50.0,
        "int16",
        "toy-coded",
    )
    # default: codes only; with --pool mean: the codes' embeddings (codes cannot be averaged)
    base = ["extract", str(clips), "--model", models["encodec"]]
    assert main([*base, "-o", str(tmp_path / "codes")]) == 0
    only = datasets.load_from_disk(str(tmp_path / "codes"))
    assert {"codes", "num_frames"} <= set(only.features) and "latents" not in only.features
    assert main([*base, "--pool", "mean", "-o", str(tmp_path / "mean")]) == 0
    assert "embedding" in datasets.load_from_disk(str(tmp_path / "mean")).features
    assert main([*base, "--pool", "mean", "--features", "codes", "-o", str(tmp_path / "x")]) == 2


def test_embed_probe_and_eval_reconstruct_run_on_a_discrete_model(models, clips, tmp_path):
    model = load_tokenizer(models["plain"])
    argv = ["embed", str(clips / "low"), "-o", str(tmp_path / "emb"), "--model", models["plain"]]
    assert main(argv) == 0
    with safe_open(str(tmp_path / "emb" / "2.safetensors"), "pt") as f:
        embedding = f.get_tensor("embedding")
    expected = model.encode(torch.from_numpy(_read(clips / "low" / "2.wav"))).mean(0)
    torch.testing.assert_close(embedding, expected)
    assert main([*argv[:4], "--model", models["plain"], "--features", "codes"]) == 2
    probe = ["probe", str(clips), "--model", models["plain"], "--methods", "knn", "--folds", "3"]
    assert main([*probe, "-o", str(tmp_path / "p"), "--cache-dir", str(tmp_path / "cache")]) == 0
    report = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert report["num_clips"] == 12 and report["knn"]["mean"]["accuracy"] > 0.5
    out = tmp_path / "eval"
    argv = ["eval", "reconstruct", str(clips / "high"), "--model", models["encodec"]]
    assert main([*argv, "-o", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["summary"]["mel_distance"]["mean"] > 0  # a random codec: a real distance
    assert main(["eval", "reconstruct", str(clips / "low"), "--model", models["plain"],
                 "-o", str(tmp_path / "eval-toy")]) == 0  # fmt: skip
    toy_metrics = json.loads((tmp_path / "eval-toy" / "metrics.json").read_text())
    assert toy_metrics["summary"]["mel_distance"]["mean"] < 0.5


def test_codes_need_a_discrete_model(models, clips, tmp_path, capsys):
    framed = tmp_path / "framed"
    toy.FramedTokenizer().save_pretrained(framed)
    argv = ["encode", str(clips / "low" / "0.wav"), "-o", str(tmp_path / "c"), "--model"]
    assert main([*argv, str(framed), "--features", "codes"]) == 2
    assert "continuous tokenizer (no codes)" in capsys.readouterr().err
    assert main([*argv, models["plain"]]) == 0
    assert (
        main(["decode", str(tmp_path / "c"), "-o", str(tmp_path / "d"), "--model", str(framed)])
        == 1
    )
    err = capsys.readouterr().err
    assert "holds integer codes but the model is a continuous tokenizer" in err


def test_bad_code_files_fail_alone_with_one_line_each(models, clips, tmp_path, capsys):
    folder = tmp_path / "codes"
    argv = ["encode", str(clips / "low"), "-o", str(folder), "--model", models["plain"]]
    assert main(argv) == 0
    good = CodeFile.load(folder / "0.safetensors")
    meta = good.metadata()
    codes = good.codes.to(torch.int16)
    save_file({"codes": codes.clone().fill_(256)}, str(folder / "1.safetensors"), metadata=meta)
    save_file({"codes": codes.float()}, str(folder / "2.safetensors"), metadata=meta)
    narrow = {
        "num_codebooks": "80",
        "codebook_sizes": ",".join(["256"] * 80),
        "tokens_per_second": str(good.frame_rate * 80),
    }  # consistent, but not the model's
    save_file({"codes": codes[:, :80].clone()}, str(folder / "3.safetensors"),
              metadata={**meta, **narrow})  # fmt: skip
    save_file(
        {"codes": codes}, str(folder / "4.safetensors"), metadata={**meta, "num_samples": "80000"}
    )
    argv = ["decode", str(folder), "-o", str(tmp_path / "d"), "--model", models["plain"]]
    assert main(argv) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 4 and all(line.count("error:") == 1 for line in lines)
    for name, message in [
        ("1", "code 256, outside [0, 256)"),
        ("2", "float32 values, not integer codes"),
        ("3", "80 codebooks but the model uses 160"),
        ("4", "does not match its 25 code frames"),
    ]:
        assert any(f"{name}.safetensors" in line and message in line for line in lines), message
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["0.wav", "5.wav"]


def test_extract_resume_keeps_its_columns_and_probe_refuses_codes_only(
    models, clips, tmp_path, capsys
):
    out = tmp_path / "codes"
    argv = ["extract", str(clips), "--model", models["plain"], "-o", str(out)]
    assert main(argv) == 0
    assert main([*argv, "--resume"]) == 0  # the same columns: nothing to redo
    assert main([*argv, "--resume", "--features", "codes,latents"]) == 2
    assert "different settings (columns" in capsys.readouterr().err
    probe = ["probe", str(out), "--methods", "knn", "--folds", "3", "-o", str(tmp_path / "p")]
    assert main(probe) == 2
    assert "holds only a discrete model's integer codes" in capsys.readouterr().err
    # a plan written before code columns existed (no "columns") resumes as latents-only
    latents = tmp_path / "latents"
    argv = ["extract", str(clips), "--model", models["plain"], "-o", str(latents)]
    assert main([*argv, "--features", "latents"]) == 0
    plan = json.loads((latents / "extract.json").read_text())
    del plan["columns"]
    (latents / "extract.json").write_text(json.dumps(plan))
    assert main([*argv, "--features", "latents", "--resume"]) == 0

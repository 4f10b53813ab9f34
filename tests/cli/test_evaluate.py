"""`sonotok eval reconstruct | enhance | generate` end to end on generated audio."""

import json
import shutil
import urllib.error

import numpy as np
import pytest
import torch

from sonotok.cli import main
from sonotok.tokenizer import write_audio

from .conftest import add_noise


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture()
def corpus(tmp_path, tone):
    """Two domains of 16 kHz clips plus one unreadable file."""
    root = tmp_path / "data"
    for domain, seeds in (("music", (1, 2)), ("speech", (3,))):
        for seed in seeds:
            write_audio(
                root / domain / f"clip{seed}.wav", tone(20000, seed=seed), 16000, subtype="FLOAT"
            )
    (root / "speech" / "broken.wav").write_text("not audio")
    return root


def test_reconstruct_with_model_reports_per_domain_and_bad_files(
    tmp_path, corpus, tiny_tokenizer_dir, capsys
):
    out = tmp_path / "out"
    status = main(
        ["eval", "reconstruct", "--model", tiny_tokenizer_dir, str(corpus), "-o", str(out)]
    )
    captured = capsys.readouterr()
    assert status == 1  # one bad file: reported, the rest evaluated
    error_lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert (
        len(error_lines) == 1 and "broken.wav" in error_lines[0] and "convert it" in error_lines[0]
    )
    data = _metrics(out)
    assert [it["id"] for it in data["items"]] == ["music/clip1", "music/clip2", "speech/clip3"]
    assert set(data["per_domain"]) == {"music", "speech"}
    for name in ("mel_distance", "stft_distance", "pesq", "stoi", "si_sdr"):
        assert data["summary"][name]["n"] + data["summary"][name]["n_missing"] == 3
    assert data["summary"]["mel_distance"]["mean"] > 0
    assert (out / "report.html").is_file() and len(list((out / "audio").glob("*.wav"))) == 6
    assert "mel_distance:" in captured.out


def test_reconstruct_of_identical_decoded_files_is_perfect(tmp_path, corpus, capsys):
    decoded = tmp_path / "decoded"
    shutil.copytree(corpus, decoded)
    (decoded / "music" / "clip2.wav").unlink()  # missing output -> one error
    out = tmp_path / "out"
    status = main(
        [
            "eval",
            "reconstruct",
            str(corpus),
            "--decoded",
            str(decoded),
            "-o",
            str(out),
            "--examples",
            "1",
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "clip2.wav" in err and "no decoded file" in err
    data = _metrics(out)
    assert len(data["items"]) == 2
    for item in data["items"]:
        assert item["mel_distance"] == 0.0 and item["stft_distance"] == 0.0
        assert item["stoi"] == pytest.approx(1.0, abs=1e-6)
        assert item["si_sdr"] >= 100


def test_reconstruct_reads_manifest_with_domain_column(tmp_path, tone):
    for name in ("a", "b"):
        write_audio(tmp_path / f"{name}.wav", tone(20000, seed=ord(name)), 16000)
    manifest = tmp_path / "set.csv"
    manifest.write_text("path,domain\na.wav,en\nb.wav,zh\n")
    out = tmp_path / "out"
    assert (
        main(["eval", "reconstruct", str(manifest), "--decoded", str(manifest), "-o", str(out)])
        == 0
    )
    assert set(_metrics(out)["per_domain"]) == {"en", "zh"}


def test_bad_dataset_path_is_one_line_and_exit_2(tmp_path, capsys):
    status = main(["eval", "reconstruct", str(tmp_path / "nope"), "--decoded", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "check the path" in err[0]
    assert main(["eval"]) == 2


def test_enhance_scores_enhanced_above_noisy(tmp_path, speech, capsys):
    dirs = {name: tmp_path / name for name in ("noisy", "enhanced", "clean")}
    for key in ("a1", "a2"):
        clean = speech[key]
        write_audio(dirs["clean"] / f"{key}.wav", clean, 16000, subtype="FLOAT")
        write_audio(dirs["noisy"] / f"{key}.flac", add_noise(clean, 0.0, seed=1), 16000)
        write_audio(
            dirs["enhanced"] / f"{key}.wav",
            add_noise(clean, 20.0, seed=2)[:-100],
            16000,
            subtype="FLOAT",
        )
    out = tmp_path / "out"
    status = main(
        [
            "eval",
            "enhance",
            str(dirs["noisy"]),
            str(dirs["enhanced"]),
            str(dirs["clean"]),
            "-o",
            str(out),
        ]
    )
    assert status == 0, capsys.readouterr().err
    s = _metrics(out)["summary"]
    for name in ("pesq", "stoi", "si_sdr", "dnsmos_ovrl", "dnsmos_bak", "speaker_similarity"):
        assert s[name]["mean"] > s[f"noisy_{name}"]["mean"], name
    assert s["si_sdr"]["mean"] == pytest.approx(20.0, abs=0.3)
    assert s["noisy_si_sdr"]["mean"] == pytest.approx(0.0, abs=0.3)
    for name in ("pesq", "stoi", "si_sdr", "dnsmos_ovrl"):  # the change: enhanced − noisy, paired
        change = s[f"change_{name}"]
        assert change["mean"] == pytest.approx(s[name]["mean"] - s[f"noisy_{name}"]["mean"])
        assert change["ci95_low"] <= change["mean"] <= change["ci95_high"]
    assert s["stoi"]["ci95_high"] <= 1.0 and s["pesq"]["ci95_high"] <= 4.644
    html = (out / "report.html").read_text()
    assert html.count("<audio") == 6 and "noisy" in html
    # One summary row per metric with noisy, enhanced and the change side by side.
    assert "<th>noisy (95% interval)</th><th>enhanced (95% interval)</th><th>change</th>" in html
    assert html.count("<tr><th>pesq ↑</th>") == 1 and "better" in html
    assert "change_si_sdr: 2" in capsys.readouterr().out  # about +20 dB, with its interval


def test_generate_with_offline_embedders(tmp_path, tone, tiny_tokenizer_dir, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    gen, ref = tmp_path / "gen", tmp_path / "ref"
    for i in range(4):
        write_audio(gen / f"{i}.wav", tone(16000, seed=i), 16000)
        write_audio(ref / f"{i}.wav", tone(16000, seed=10 + i), 16000)
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["eval", "generate", str(gen), str(ref), "--embedders", "sonotok,vggish", "--model", tiny_tokenizer_dir,
            "-o", str(out), "--cache-dir", str(cache)]  # fmt: skip
    assert main(args) == 1  # vggish unavailable offline: said once, the rest still runs
    err = capsys.readouterr().err
    assert "embedder vggish" in err and "--vggish-weights PATH" in err
    first = _metrics(out)["set_metrics"]["fd_sonotok"]
    assert first > 0 and len(list(cache.rglob("*.npz"))) == 8
    # 4 clips per set in 32 dimensions: the distance is flagged in metrics.json, report, stderr.
    data = _metrics(out)
    assert data["set_metric_samples"]["fd_sonotok"] == {"generated": 4, "reference": 4, "dim": 32}
    [warning] = data["warnings"]
    assert warning["metric"] == "fd_sonotok" and "4 generated and 4 reference" in warning["message"]
    message = warning["message"]
    assert "fewer than the 100" in message and "covariance is singular" in message
    assert "<h2>Warnings</h2>" in (out / "report.html").read_text()
    assert "warning: fd_sonotok is from 4 generated" in err
    # model-free checks on every generated clip
    assert [it["duration_s"] for it in data["items"]] == [1.0] * 4
    assert all(-40 < it["rms_dbfs"] < 0 and 0 < it["peak"] <= 1 for it in data["items"])
    assert main(args[:2] + [str(ref), str(ref)] + args[4:]) == 1
    assert _metrics(out)["set_metrics"]["fd_sonotok"] == pytest.approx(0.0, abs=1e-6)


def test_generate_kl_and_clap_score(tmp_path, tone):
    from sonotok.evaluation import EmbeddingCache, discover, evaluate_generation
    from sonotok.evaluation.panns import VARIANTS, Cnn14, PANNsEmbedder

    class TextAudioStub:
        """Stands in for CLAP: audio embedding from the file's loudness, text from its length."""

        name, sample_rate, cache_id = "stub", 16000, "stub-v1"

        def embed(self, wave):
            return {"embedding": np.array([[1.0, float(wave.abs().mean() > 0.1)]])}

        def embed_text(self, texts):
            return np.array([[1.0, 1.0] if len(t) > 5 else [1.0, 0.0] for t in texts])

    torch.manual_seed(0)
    panns = PANNsEmbedder(Cnn14(VARIANTS["16k"]))
    for side in ("gen", "ref"):
        for i in range(3):
            write_audio(tmp_path / side / f"{i}.wav", tone(16000, seed=i), 16000)
    result, _ = evaluate_generation(
        discover(tmp_path / "gen"),
        discover(tmp_path / "ref"),
        {"panns": panns, "stub": TextAudioStub()},
        cache=EmbeddingCache(tmp_path / "cache"),
        captions={"0": "a long caption", "1": "dog"},
    )
    assert result["set_metrics"]["fd_panns"] == pytest.approx(0.0, abs=1e-3)
    assert result["set_metrics"]["kl_softmax"] == pytest.approx(0.0, abs=1e-9)
    assert result["set_metrics"]["kl_sigmoid"] == pytest.approx(0.0, abs=1e-9)
    scores = {it["id"]: it.get("clap_score") for it in result["items"]}
    assert (
        scores["0"] == pytest.approx(1.0)
        and scores["1"] == pytest.approx(1 / np.sqrt(2))
        and scores["2"] is None
    )


def test_generate_judges_each_clip_by_its_nearest_reference_domain(tmp_path, tone):
    from sonotok.evaluation import EmbeddingCache, discover, evaluate_generation

    class LoudnessEmbedder:
        name, sample_rate, cache_id = "loud", 16000, "loud-v1"

        def embed(self, wave):
            return {"embedding": np.array([[float(wave.abs().mean())]])}

    for side in ("gen", "ref"):
        for domain, gain in (("quiet", 0.05), ("loud", 1.0)):
            for i in range(2):
                wave = gain * tone(16000, seed=i) / np.abs(tone(16000, seed=i)).max()
                write_audio(tmp_path / side / domain / f"{i}.wav", wave, 16000)
    loud = tone(16000, seed=5) / np.abs(tone(16000, seed=5)).max()
    write_audio(tmp_path / "gen" / "quiet" / "wrong.wav", loud, 16000)
    result, _ = evaluate_generation(
        discover(tmp_path / "gen"), discover(tmp_path / "ref"), {"loud": LoudnessEmbedder()},
        cache=EmbeddingCache(None), domain_judge="loud", frechet=False,
    )  # fmt: skip
    nearest = {it["id"]: (it["nearest_domain"], it["domain_match"]) for it in result["items"]}
    assert nearest["quiet/0"] == ("quiet", 1.0) and nearest["loud/1"] == ("loud", 1.0)
    assert nearest["quiet/wrong"][1] == 0.0  # a loud clip where a quiet one was asked for
    assert result["set_metrics"]["domain_match"] == pytest.approx(4 / 5)
    assert "fd_loud" not in result["set_metrics"] and "nearest_domain" in result["columns"]
    with pytest.raises(ValueError, match="domain_judge 'clap'"):
        evaluate_generation([], [], {"loud": LoudnessEmbedder()}, domain_judge="clap")

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import soundfile as sf
import torch

from sonotok.cli import main
from sonotok.cli.generate import _edit_audio
from sonotok.generation.audiogen import DashengAudioGen, DashengAudioGenPipeline
from sonotok.generation.dit import DiT, DiTConfig
from sonotok.generation.pipeline import TextToAudioPipeline
from sonotok.tokenizer import AudioTokenizer, TokenizerConfig


def save_tiny_pipeline(folder, text_encoder, with_tokenizer=True):
    torch.manual_seed(0)
    tokenizer = AudioTokenizer(TokenizerConfig.tiny()).eval()
    dit = DiT(DiTConfig.tiny(latent_dim=tokenizer.latent_dim, context_dim=384))
    with torch.no_grad():
        for p in dit.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    pipe = TextToAudioPipeline(dit, text_encoder, tokenizer=tokenizer if with_tokenizer else None)
    pipe.save_pretrained(folder)
    return folder


def test_generate_one_prompt_to_a_file(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    out = tmp_path / "dog.wav"
    args = [
        "generate",
        "a dog barks twice",
        "--seconds",
        "0.5",
        "-o",
        str(out),
        "--model",
        str(model),
        "--steps",
        "3",
        "--cfg",
        "3.0",
        "--seed",
        "7",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    audio, rate = sf.read(out)
    assert rate == 16000 and audio.shape == (8000,) and abs(audio).max() > 0
    first = audio.copy()
    assert main([*args, "--overwrite"]) == 0
    assert (sf.read(out)[0] == first).all()  # same seed, same file


def test_generate_prompts_file_to_a_folder(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog barks\n# a comment\n\nrain on a roof\npiano music\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "generate",
                "--prompts",
                str(prompts),
                "-o",
                str(out),
                "--model",
                str(model),
                "--seconds",
                "0.2",
                "--steps",
                "2",
                "--seed",
                "0",
                "--batch-size",
                "2",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000_a_dog_barks.wav", "001_rain_on_a_roof.wav", "002_piano_music.wav"]
    assert all(sf.read(out / n)[0].shape == (3200,) for n in names)


def test_generate_reports_bad_inputs(tmp_path, text_encoder, capsys):
    assert main(["generate", "x", "--model", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    model = save_tiny_pipeline(tmp_path / "bare", text_encoder, with_tokenizer=False)
    assert main(["generate", "x", "--model", str(model), "-o", str(tmp_path / "a.wav")]) == 2
    assert "--tokenizer" in capsys.readouterr().err
    assert main(["generate", "--model", str(model)]) == 2
    assert "no prompt" in capsys.readouterr().err


def _generate(model, *args):
    return main(["generate", *args, "--model", str(model), "--steps", "2", "--device", "cpu"])


def test_manifest_names_outputs_by_id_and_batch_size_does_not_change_them(
    tmp_path, text_encoder, capsys
):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    manifest = tmp_path / "prompts.csv"
    manifest.write_text(
        "id,caption,seconds,seed\n"
        "dog,a dog barks,0.4,\n"
        'rain,"rain on a tin roof, at night",0.24,5\n'
        "wind,wind,,\n"
    )
    common = ["--prompts", str(manifest), "--seconds", "0.32", "--seed", "100"]
    assert _generate(model, *common, "--batch-size", "1", "-o", str(tmp_path / "one")) == 0
    assert _generate(model, *common, "--batch-size", "3", "-o", str(tmp_path / "all")) == 0
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert names == ["dog.wav", "rain.wav", "wind.wav"]  # no clip for the header row
    lengths = {"dog.wav": 6400, "rain.wav": 3840, "wind.wav": 5120}
    for name in names:
        one, all_ = sf.read(tmp_path / "one" / name)[0], sf.read(tmp_path / "all" / name)[0]
        assert one.shape == (lengths[name],) and abs(one).max() > 0
        assert abs(one - all_).max() <= 1 / 32768  # equal up to 16-bit rounding
    # a row's own seed: the same clip as generating that prompt alone with --seed 5
    single = tmp_path / "rain.wav"
    args = ["rain on a tin roof, at night", "--seconds", "0.24", "--seed", "5", "-o", str(single)]
    assert _generate(model, *args) == 0
    assert abs(sf.read(single)[0] - sf.read(tmp_path / "all" / "rain.wav")[0]).max() <= 1 / 32768


def test_bad_manifest_is_a_usage_error(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    manifest = tmp_path / "prompts.csv"
    manifest.write_text("a dog barks\nrain\n")  # no header
    assert _generate(model, "--prompts", str(manifest)) == 2
    assert "no 'caption' or 'prompt' column" in capsys.readouterr().err


def test_inpaint_and_continue_from_the_cli_keep_the_input_audio(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    clip = tmp_path / "in.wav"
    wave = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0)).numpy()
    sf.write(clip, wave, 16000)
    original = sf.read(clip)[0]
    out = tmp_path / "inpainted.wav"
    args = ["a door slams", "--inpaint", str(clip), "--span", "0.4", "0.7", "-o", str(out)]
    assert _generate(model, *args, "--seed", "0") == 0
    edited = sf.read(out)[0]
    assert edited.shape == original.shape
    assert abs(edited[:6400] - original[:6400]).max() <= 1e-6
    assert abs(edited[11200:] - original[11200:]).max() <= 1e-6
    assert abs(edited[7200:10400] - original[7200:10400]).mean() > 0.02
    longer = tmp_path / "continued.wav"
    args = ["a door slams", "--continue", str(clip), "--seconds", "0.5", "-o", str(longer)]
    assert _generate(model, *args, "--seed", "0", "--crossfade", "0.02") == 0
    continued = sf.read(longer)[0]
    assert continued.shape == (24000,)
    assert abs(continued[: 16000 - 320] - original[: 16000 - 320]).max() <= 1e-6
    assert abs(continued[16000:]).mean() > 1e-3


def test_inpaint_options_are_checked(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    clip = tmp_path / "in.wav"
    sf.write(clip, 0.1 * torch.randn(8000).numpy(), 16000)
    cases = [
        (["--span", "0.1", "0.2"], "--span applies to --inpaint"),
        (["--inpaint", str(clip)], "--inpaint needs --span"),
        (["--inpaint", str(clip), "--span", "0.2", "0.9"], "need START < END <= 0.500 s"),
        (["--inpaint", str(clip), "--span", "0.1", "0.2", "--seconds", "1"], "drop --seconds"),
        (["--continue", str(clip)], "--continue needs --seconds"),
        (["--inpaint", str(tmp_path / "none.wav"), "--span", "0", "0.1"], "none.wav"),
    ]
    for extra, message in cases:
        assert _generate(model, "a door", *extra, "-o", str(tmp_path / "x.wav")) == 2, extra
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_the_official_pipeline_takes_a_clip_to_continue(text_encoder, tmp_path):
    """Dasheng-AudioGen inpaints and continues too (tests/generation/test_pipelines.py)."""
    fixture = Path(__file__).parents[1] / "generation" / "fixtures" / "dasheng_audiogen_tiny"
    pipe = DashengAudioGenPipeline(DashengAudioGen.from_pretrained(fixture), text_encoder)
    sf.write(tmp_path / "in.wav", 0.1 * torch.ones(8000).numpy(), 8000)
    args = argparse.Namespace(
        inpaint=None, continue_audio=tmp_path / "in.wav", model="mispeech/Dasheng-AudioGen"
    )
    audio = _edit_audio(args, pipe)
    assert audio.shape[-1] == 16000 and pipe.batch_independent is False


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, text_encoder, capsys):
    model = save_tiny_pipeline(tmp_path / "pipe", text_encoder)
    out = tmp_path / "dog.wav"
    out.write_bytes(b"precious")
    args = ["a dog barks", "--seconds", "0.2", "--seed", "1", "-o", str(out)]
    assert _generate(model, *args) == 0
    assert out.read_bytes() == b"precious"
    assert "1 skipped (output exists; pass --overwrite to replace)" in capsys.readouterr().err
    assert _generate(model, *args, "--overwrite") == 0
    assert sf.read(out)[0].shape == (3200,)
    folder = tmp_path / "many"
    folder.mkdir()
    (folder / "001_rain.wav").write_bytes(b"kept")
    assert _generate(model, "dog", "rain", "--seconds", "0.2", "-o", str(folder)) == 0
    assert (folder / "001_rain.wav").read_bytes() == b"kept"
    assert sf.info(folder / "000_dog.wav").frames == 3200


@pytest.mark.parametrize("broken", ["dit", "decoder"])
def test_nan_generator_output_is_an_error_not_a_wav(tmp_path, text_encoder, capsys, broken):
    torch.manual_seed(0)
    tokenizer = AudioTokenizer(TokenizerConfig.tiny()).eval()
    dit = DiT(DiTConfig.tiny(latent_dim=tokenizer.latent_dim, context_dim=384))
    with torch.no_grad():
        for p in (dit if broken == "dit" else tokenizer.decoder).parameters():
            p.fill_(float("nan"))
    TextToAudioPipeline(dit, text_encoder, tokenizer=tokenizer).save_pretrained(tmp_path / "pipe")
    out = tmp_path / "out"
    assert _generate(tmp_path / "pipe", "dog", "rain", "--seconds", "0.2", "-o", str(out)) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: prompt ")]
    assert len(errors) == 2 and all("NaN or infinite" in line for line in errors), err
    assert not out.exists() or list(out.iterdir()) == []

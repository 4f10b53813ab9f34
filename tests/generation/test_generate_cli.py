from __future__ import annotations

import soundfile as sf
import torch

from sonotok.cli import main
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
    assert main(args) == 0
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

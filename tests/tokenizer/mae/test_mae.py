"""MAE pretraining of the semantic encoder: masking, loss, features, training, export, resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from sonotok.corpus.clip import item_rng, set_loudness
from sonotok.corpus.sounds import EVENTS
from sonotok.tokenizer import (
    AudioTokenizer,
    SemanticEncoder,
    SemanticEncoderConfig,
    TokenizerConfig,
)
from sonotok.tokenizer.config import ConfigError
from sonotok.tokenizer.mae import MAEConfig, MaskedAutoencoder, mae_loss, patchify, random_masking
from sonotok.tokenizer.mae.config import SemanticTrainConfig
from sonotok.tokenizer.mae.trainer import SemanticTrainer, train_semantic
from sonotok.tokenizer.train.config import load_config
from sonotok.tokenizer.train.data import AudioCropDataset

ROOT = Path(__file__).resolve().parents[3]
TINY_YAML = ROOT / "configs" / "semantic" / "tiny.yaml"
# sound events the corpus makes with numpy alone (no sox needed)
EVENT_NAMES = [
    "siren",
    "church bell",
    "doorbell",
    "knocking",
    "rain",
    "bird",
    "clock ticking",
    "glass clinking",
    "telephone",
    "typing",
]


def tiny_mae() -> MaskedAutoencoder:
    torch.manual_seed(0)
    encoder = SemanticEncoderConfig(embed_dim=32, depth=1, num_heads=2)
    return MaskedAutoencoder(
        MAEConfig(encoder=encoder, decoder_dim=32, decoder_depth=1, decoder_heads=2)
    )


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory) -> Path:
    """Ten 1.5 s corpus sound events (siren, bells, rain, birds, ...) as WAV files."""
    folder = tmp_path_factory.mktemp("mae_audio")
    for i, name in enumerate(EVENT_NAMES):
        wave, _ = EVENTS[name][0](item_rng(0, name, i), 24000)
        sf.write(folder / f"{i:02d}.wav", set_loudness(wave, -20.0), 16000)
    return folder


def config(folder: Path, out: Path, *overrides: str) -> SemanticTrainConfig:
    return load_config(
        SemanticTrainConfig,
        TINY_YAML,
        [
            f"data.sources=[{{path: '{folder}'}}]",
            f"train.output_dir='{out}'",
            "data.segment_samples=10240",
            "train.progress=false",
            "optim.warmup_steps=5",
            *overrides,
        ],
    )


def test_random_masking_keeps_a_quarter_and_restores_the_order():
    tokens = torch.arange(2 * 16 * 3, dtype=torch.float32).view(2, 16, 3)
    kept, mask, ids_restore = random_masking(tokens, 0.75)
    assert kept.shape == (2, 4, 3) and mask.shape == (2, 16)
    assert mask.sum(dim=1).tolist() == [12, 12]
    for b in range(2):  # the kept tokens are exactly the unmasked ones
        assert sorted(kept[b, :, 0].tolist()) == tokens[b, mask[b] == 0, 0].tolist()
    filler = torch.full((2, 12, 3), -1.0)
    restored = torch.cat([kept, filler], 1).gather(1, ids_restore[..., None].expand(-1, -1, 3))
    assert torch.equal(restored[mask == 0], tokens[mask == 0])
    assert (restored[mask == 1] == -1).all()


def test_patchify_matches_unfold_with_a_mel_by_4_kernel():
    mel = torch.randn(2, 64, 40)
    reference = F.unfold(mel.unsqueeze(1), kernel_size=(64, 4), stride=(64, 4)).transpose(1, 2)
    assert torch.equal(patchify(mel, 4), reference)


def test_loss_counts_only_masked_patches_of_normalised_targets():
    target = torch.randn(2, 10, 256) * 7 + 3
    normalised = (target - target.mean(-1, keepdim=True)) / (
        target.var(-1, keepdim=True) + 1e-6
    ).sqrt()
    mask = torch.zeros(2, 10)
    mask[:, ::2] = 1
    pred = normalised.clone()
    pred[mask == 0] = 100.0  # wrong only where nothing was masked
    assert mae_loss(pred, target, mask).item() < 1e-8
    pred[0, 0] += 1.0  # one masked patch off by 1 everywhere
    assert mae_loss(pred, target, mask).item() == pytest.approx(1.0 / 10, rel=1e-5)
    assert mae_loss(target, target, mask, norm_pix=False).item() == 0.0


def test_mae_features_equal_the_encoders_per_clip_features(tone):
    mae = tiny_mae()
    audio = torch.from_numpy(np.stack([tone(12000, seed=0), 0.01 * tone(12000, seed=1)]))
    mel = mae.mel_db(audio)
    assert mel.shape == (2, 64, 76)  # 1 + 12000 // 160 = 76 frames = 19 patches
    enc = mae.encoder
    for clip, features in zip(audio, mel):
        assert torch.equal(features, enc.mel_db(clip, 0, 76, enc.max_power(clip)))


def test_forward_predicts_every_patch_and_backpropagates_into_the_encoder(tone):
    mae = tiny_mae().train()
    out = mae(torch.from_numpy(np.stack([tone(10240, seed=s) for s in range(3)])))
    assert out["pred"].shape == out["target"].shape == (3, 16, 256)
    assert out["mask"].sum().item() == 3 * 12
    out["loss"].backward()
    assert mae.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert mae.encoder.patch_embed.weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def trained(audio_folder, tmp_path_factory):
    """30 CPU steps of tiny MAE pretraining; loss on a fixed held-out batch before and after."""
    out = tmp_path_factory.mktemp("mae_run")
    trainer = SemanticTrainer(config(audio_folder, out, "train.max_steps=30", "train.batch_size=8"))
    held_out = AudioCropDataset(trainer.sources, [1.0], 10240, seed=99)
    batch = torch.stack([held_out[i].wave for i in range(16)])

    def loss() -> float:
        torch.manual_seed(5)  # the same masks both times
        with torch.no_grad():
            return trainer.mae(batch)["loss"].item()

    before = loss()
    result = trainer.run()
    return {"before": before, "after": loss(), "result": result, "out": out}


def test_training_lowers_the_masked_reconstruction_loss(trained):
    assert trained["result"].step == 30
    assert trained["after"] < 0.9 * trained["before"], (trained["before"], trained["after"])
    lines = (trained["out"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and (trained["out"] / "config.yaml").is_file()


def test_exported_encoder_loads_and_builds_a_tokenizer(trained, tone):
    folder = trained["result"].encoder_dir
    assert folder == trained["out"] / "encoder"
    encoder = SemanticEncoder.from_pretrained(folder)
    assert encoder.config.embed_dim == 64 and encoder.config.depth == 2
    assert not torch.equal(encoder.init_bn.running_mean, torch.zeros(64))  # learned statistics
    wave = torch.from_numpy(tone(16000))
    (z,) = encoder([wave])
    assert z.shape == (25, 64) and torch.isfinite(z).all() and z.std() > 0.1
    tokenizer = AudioTokenizer.from_semantic_encoder(encoder, TokenizerConfig.tiny()).eval()
    with torch.no_grad():
        latents = tokenizer.encode(wave, features="semantic")
    assert torch.allclose(latents, z, atol=1e-5)


def test_resumed_run_equals_an_uninterrupted_one(audio_folder, tmp_path, plant_pickles):
    settings = ("train.max_steps=4", "train.batch_size=4", "train.checkpoint_every=100")
    straight = train_semantic(config(audio_folder, tmp_path / "a", *settings))
    first = train_semantic(config(audio_folder, tmp_path / "b", *settings), stop_after_steps=2)
    assert first.step == 2 and (tmp_path / "b" / "checkpoints" / "step_00000002").is_dir()
    with pytest.raises(ConfigError, match="--resume"):
        train_semantic(config(audio_folder, tmp_path / "b", *settings))
    marker = plant_pickles(tmp_path / "b" / "checkpoints" / "step_00000002")
    resumed = train_semantic(config(audio_folder, tmp_path / "b", *settings), resume="latest")
    assert not marker.exists()  # nothing in the checkpoint folder was unpickled
    assert resumed.step == 4 and resumed.loss == pytest.approx(straight.loss, abs=0)
    logged = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [2, 4]  # the stop, then the end
    a = SemanticEncoder.from_pretrained(straight.encoder_dir).state_dict()
    b = SemanticEncoder.from_pretrained(resumed.encoder_dir).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_trains_from_a_corpus_style_folder_and_reports_bad_configs(
    audio_folder, tmp_path, capsys
):
    from sonotok.cli.train_semantic import register

    parser = argparse.ArgumentParser(prog="sonotok")
    register(parser.add_subparsers())
    out = tmp_path / "run"
    args = parser.parse_args(
        [
            "train",
            "semantic",
            "--config",
            str(TINY_YAML),
            "--data",
            str(audio_folder),
            "-o",
            str(out),
        ]
        + [
            "--set",
            "train.max_steps=2",
            "--set",
            "data.segment_samples=10240",
            "--set",
            "train.progress=false",
        ]
    )
    assert args.func(args) == 0
    assert (
        "encoder:" in capsys.readouterr().out and (out / "encoder" / "model.safetensors").is_file()
    )
    args = parser.parse_args(
        ["train", "semantic", "--config", str(TINY_YAML), "-o", str(tmp_path / "x")]
    )
    assert args.func(args) == 2
    assert "data.sources is empty" in capsys.readouterr().err
    args = parser.parse_args(
        [
            "train",
            "semantic",
            "--config",
            str(TINY_YAML),
            "--data",
            str(audio_folder),
            "--set",
            "model.mask_ratio=1.0",
        ]
    )
    assert args.func(args) == 2
    assert "mask_ratio" in capsys.readouterr().err

"""The codec GAN solver end to end on CPU with a toy conv + FSQ codec registered here: it
learns, logs codebook usage, resumes exactly, exports a folder `load_tokenizer` reads, refuses
bad configs in one line, and runs from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from sonotok.core.checkpointing import read_state
from sonotok.core.errors import ConfigError
from sonotok.tokenizer.interface import Tokenizer, load_tokenizer, register_tokenizer
from sonotok.tokenizer.train import load_config
from sonotok.tokenizer.train.codec import (
    CodecGANTrainer,
    CodecOutput,
    build_codec,
    code_histogram,
    codebook_stats,
    register_codec_recipe,
)
from sonotok.tokenizer.train.codec_recipe import CodecTrainConfig, check_frames
from sonotok.tokenizer.train.losses import MelLoss

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "configs" / "codec" / "tiny.yaml"
FAMILY = "toy-fsq-codec"
STEPS = 30
HOP = 80


@register_tokenizer(FAMILY)
class ToyFSQCodec(Tokenizer):
    """16 kHz audio → 200 Hz frames → 3 FSQ channels of 5 levels (one codebook of 125 codes)."""

    levels = 5

    def __init__(self, width: int = 16):
        super().__init__()
        self.width = width
        self.encoder = nn.Sequential(
            nn.Conv1d(1, width, 2 * HOP, HOP, padding=HOP // 2), nn.GELU(), nn.Conv1d(width, 3, 1)
        )
        self.decoder = nn.Sequential(
            nn.Conv1d(3, width, 3, padding=1),
            nn.GELU(),
            nn.ConvTranspose1d(width, 1, 2 * HOP, HOP, padding=HOP // 2),
        )

    sample_rate = property(lambda self: 16000)
    frame_rate = property(lambda self: 16000 / HOP)
    latent_dim = property(lambda self: 3)
    codebook_size = property(lambda self: self.levels**3)
    num_codebooks = property(lambda self: 1)

    def quantize(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) → continuous (B, 3, T) and FSQ-rounded (straight-through) values."""
        half = (self.levels - 1) / 2
        z = torch.tanh(4 * self.encoder(audio[:, None])) * half
        return z, z + (z.round() - z).detach()

    def to_codes(self, q: torch.Tensor) -> torch.Tensor:
        digits = (q.round() + (self.levels - 1) / 2).long()  # (B, 3, T) in [0, levels)
        return digits[:, 0] * self.levels**2 + digits[:, 1] * self.levels + digits[:, 2]

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        c = codes[..., 0]
        digits = torch.stack([c // self.levels**2, c // self.levels % self.levels, c % self.levels])
        return (digits.float() - (self.levels - 1) / 2).permute(1, 2, 0)

    def codes_waves(self, waves):
        return [self.to_codes(self.quantize(w[None])[1])[0, :, None] for w in waves]

    def encode_waves(self, waves, features):
        return [self.embed_codes(c[None])[0] for c in self.codes_waves(waves)]

    def decode_latents(self, latents):
        return self.decoder(latents.transpose(1, 2) / ((self.levels - 1) / 2))[:, 0]

    def save_pretrained(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "config.json").write_text(
            json.dumps({"model_type": self.model_type, "width": self.width})
        )
        save_file(self.state_dict(), str(Path(folder) / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder, device=None, compute_dtype=None):
        config = json.loads((Path(folder) / "config.json").read_text())
        model = cls(config["width"])
        model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        return model.set_compute_dtype(compute_dtype).to(device or "cpu").eval()


class ToyGenerator(nn.Module):
    """The training forward of the toy: reconstruction, a commitment term, the codes."""

    def __init__(self, codec: ToyFSQCodec, noise: bool = True):
        super().__init__()
        self.codec, self.noise = codec, noise

    def forward(self, audio: torch.Tensor) -> CodecOutput:
        z, q = self.codec.quantize(audio)
        codes, commitment = self.codec.to_codes(q), torch.mean((z - q.detach()) ** 2)
        if (
            self.training and self.noise
        ):  # SQCodec-style noise substitution: random, so resume must keep RNG
            noisy = z + torch.rand_like(z) - 0.5
            q = torch.where(torch.rand_like(z) < 0.5, noisy, q)
        recon = self.codec.decoder(q / ((self.codec.levels - 1) / 2))[:, 0]
        return CodecOutput(recon, {"commitment": commitment}, codes)


@register_codec_recipe(FAMILY)
def build_toy(settings):
    codec = (
        load_tokenizer(settings.pretrained)
        if settings.pretrained
        else ToyFSQCodec(**settings.config)
    )
    return ToyGenerator(codec, **settings.options), codec


def _overrides(out, audio_folder, *extra) -> list[str]:
    return [
        f"model.family={FAMILY}",
        f"data.sources=[{{path: {audio_folder}}}]",
        "train.batch_size=2",
        f"train.max_steps={STEPS}",
        "train.checkpoint_every=5",
        "train.keep_checkpoints=6",
        "train.log_every=1",
        f"train.val_every={STEPS}",
        f"train.audio_every={STEPS}",
        "train.progress=false",
        f"train.output_dir={out}",
        "optim.lr=1e-2",
        "optim.warmup_steps=2",
        "optim.ema_decay=0.8",
        "optim.mel_only_steps=2",
        "loss.codec={commitment: 0.5}",
        *extra,
    ]


def _metrics(folder) -> list[dict]:
    lines = (Path(folder) / "metrics.jsonl").read_text().splitlines()
    return [m for m in map(json.loads, lines) if "loss/mel" in m]


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory, audio_folder):
    """30 steps in one go: EMA, 2 mel-only steps, validation and media at the end."""
    out = tmp_path_factory.mktemp("codec_straight")
    config = load_config(CodecTrainConfig, TINY, _overrides(out, audio_folder))
    return CodecGANTrainer(config, log_with="tensorboard").run()


def test_thirty_steps_reduce_the_mel_loss_and_log_codebook_use(straight):
    assert straight.step == STEPS
    steps = _metrics(straight.output_dir)
    assert [m["step"] for m in steps] == list(range(1, STEPS + 1))
    mel = [m["loss/mel"] for m in steps]
    assert np.mean(mel[-5:]) < 0.85 * np.mean(mel[:5]), mel
    assert "loss/adversarial" not in steps[1] and "loss/adversarial" in steps[2]  # mel-only 2
    for key in ("loss/feature_matching", "loss/discriminators", "score/mpd_real", "score/mrd_fake"):
        assert all(np.isfinite(m[key]) for m in steps[2:]), key
    assert all(m["loss/codec/commitment"] > 0 for m in steps)
    assert all(1 <= m["codes/perplexity"] <= 125 and 0 < m["codes/usage"] <= 1 for m in steps)
    last = steps[-1]
    assert last["val/mel_distance"] > 0 and last["val/stft_distance"] > 0
    assert last["val/perplexity"] > 1
    assert last["data/unreadable_skipped"] > 0  # the broken file was skipped, not fatal


def test_tensorboard_has_audio_mel_images_and_code_statistics(straight):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = next((straight.output_dir / "tensorboard").rglob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events.parent), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert "audio/0_reconstruction" in tags["audio"]
    assert "mel/0_reference_over_reconstruction" in tags["images"]
    assert {"loss/mel", "codes/perplexity", "score/mrd_real", "val/mel_distance"} <= set(
        tags["scalars"]
    )


def test_exported_model_loads_and_reconstructs_better_than_untrained(straight, tone):
    trained = load_tokenizer(straight.model_dir)
    assert isinstance(trained, ToyFSQCodec)
    wave = torch.from_numpy(tone(16000, seed=2))
    torch.manual_seed(0)
    untrained, mel = ToyFSQCodec(), MelLoss(n_mels=64)
    old, new = (mel(wave[None], m.reconstruct(wave)[None]).item() for m in (untrained, trained))
    assert new < 0.8 * old
    codes = trained.encode_codes(wave)
    assert codes.shape == (200, 1) and int(codes.max()) < 125
    assert torch.equal(trained.decode(codes), trained.decode(trained.encode(wave)))
    exported = load_file(straight.model_dir / "model.safetensors")
    ema = read_state(straight.output_dir / "checkpoints" / "step_00000030")[0]["ema"]
    ema_weights = {k.removeprefix("codec."): v for k, v in ema["module"].items()}
    assert _max_difference(exported, ema_weights) == 0  # the EMA weights were exported


def test_interrupted_and_resumed_run_equals_straight_run(straight, tmp_path, audio_folder):
    """5 steps, stop, resume to step 10 = the straight run's step 10 (GAN, EMA and the toy's
    random noise substitution all running)."""
    config = load_config(CodecTrainConfig, TINY, _overrides(tmp_path, audio_folder))
    first = CodecGANTrainer(config, log_with=None).run(stop_after_steps=5)
    assert first.step == 5 and first.model_dir is None
    with pytest.raises(ConfigError, match="already holds checkpoints; pass --resume"):
        CodecGANTrainer(config, log_with=None).run()
    assert CodecGANTrainer(config, log_with=None).run(resume="latest", stop_at=10).step == 10
    ours = read_state(tmp_path / "checkpoints" / "step_00000010")[0]
    theirs = read_state(straight.output_dir / "checkpoints" / "step_00000010")[0]
    for name in ("generator", "discriminators"):
        assert _max_difference(ours[name], theirs[name]) < 1e-6, name
    assert _max_difference(ours["ema"]["module"], theirs["ema"]["module"]) < 1e-6
    resumed = {m["step"]: m for m in _metrics(tmp_path)}
    assert sorted(resumed) == list(range(1, 11))  # each step logged once
    for m in _metrics(straight.output_dir)[:10]:
        assert resumed[m["step"]]["loss/generator"] == pytest.approx(m["loss/generator"], rel=1e-5)


def test_least_squares_gan_with_sparse_discriminator_steps(tmp_path, audio_folder):
    extra = ["loss.gan=least_squares", "optim.discriminator_every=2", "train.max_steps=4"]
    extra += ["train.val_every=0", "train.audio_every=0", "optim.ema_decay=null"]
    config = load_config(CodecTrainConfig, TINY, _overrides(tmp_path, audio_folder, *extra))
    CodecGANTrainer(config, log_with=None).run()
    steps = _metrics(tmp_path)
    # GAN from step index 2; D updates at indices 2, 4, ... → logged steps 3 (and 5, ...)
    assert ["loss/discriminators" in m for m in steps] == [False, False, True, False]
    assert all("loss/adversarial" in m for m in steps[2:])
    d3 = steps[2]["lr/discriminators"]
    assert d3 == pytest.approx(1e-2 * 0.5)  # D's warm-up began with its first update


def test_gradient_accumulation_equals_one_big_batch(tmp_path, audio_folder):
    base = ["train.max_steps=1", "train.batch_size=4", "train.val_every=0", "train.audio_every=0"]
    base += ["optim.mel_only_steps=0", "optim.ema_decay=null", "model.options={noise: false}"]
    for name, accum in (("big", 1), ("accum", 2)):
        extra = [*base, f"train.grad_accum={accum}"]
        config = load_config(
            CodecTrainConfig, TINY, _overrides(tmp_path / name, audio_folder, *extra)
        )
        CodecGANTrainer(config, log_with=None).run()
    (big,), (accum,) = _metrics(tmp_path / "big"), _metrics(tmp_path / "accum")
    for key in ("loss/mel", "loss/generator", "loss/discriminators", "loss/codec/commitment"):
        assert accum[key] == pytest.approx(big[key], rel=1e-5), key
    for key in ("grad_norm/generator", "grad_norm/discriminators", "codes/perplexity"):
        assert accum[key] == pytest.approx(big[key], rel=1e-4), key
    for name in ("generator", "discriminators"):
        a, b = (
            torch.cat([w[k].flatten() for k in sorted(w)])
            for w in (
                read_state(tmp_path / n / "checkpoints" / "step_00000001")[0][name]
                for n in ("big", "accum")
            )
        )
        # Adam's first update is ±lr·g/(|g| + eps): only entries whose gradient is ~0 may
        # differ, and by at most 2·lr
        assert torch.isclose(a, b, rtol=0, atol=1e-6).float().mean() > 0.98, name
        assert (a - b).abs().max() <= 2 * 1e-2 * 0.5, name  # lr 1e-2, half in warm-up


def test_pretrained_continues_from_the_exported_weights(straight, tmp_path, audio_folder):
    extra = [f"model.pretrained={straight.model_dir}", "loss.codec={}"]
    config = load_config(CodecTrainConfig, TINY, _overrides(tmp_path, audio_folder, *extra))
    _, codec = build_codec(config.model)
    exported = load_file(straight.model_dir / "model.safetensors")
    assert _max_difference(codec.state_dict(), exported) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["model.family=nope"], "model.family='nope' has no codec training recipe"),
        (["model.family="], "model.family is not set"),
        (["model.config={width: 4}", "model.pretrained=x"], "not both"),
        (["loss.gan=wasserstein"], "loss.gan: 'wasserstein' is not one of"),
        (["data.segment_samples=300"], "data.segment_samples=300 is too short"),
        (["discriminators.mpd=0", "discriminators.mrd=0"], "all discriminator weights are 0"),
        (["optim.discriminator_every=0"], "optim.discriminator_every must be >= 1"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, audio_folder, change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_config(CodecTrainConfig, TINY, _overrides(tmp_path, audio_folder, *change))


def test_crop_off_the_frame_grid_and_unknown_codec_loss_are_refused(tmp_path, audio_folder):
    config = load_config(
        CodecTrainConfig, TINY, _overrides(tmp_path, audio_folder, "data.segment_samples=3210")
    )
    with pytest.raises(ConfigError, match="multiple of the toy-fsq-codec codec's hop .80"):
        CodecGANTrainer(config, log_with=None)
    extra = ["loss.codec={codebook: 1.0}", "train.max_steps=1", "train.val_every=0"]
    config = load_config(CodecTrainConfig, TINY, _overrides(tmp_path / "b", audio_folder, *extra))
    with pytest.raises(ConfigError, match=r"loss.codec names \['codebook'\].*\['commitment'\]"):
        CodecGANTrainer(config, log_with=None).run()


def test_codebook_stats_of_known_codes():
    codes = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])  # 4 codes of 8, equally often
    counts = code_histogram(codes, 8)
    assert counts.tolist() == [[2, 2, 2, 2, 0, 0, 0, 0]]
    stats = codebook_stats(counts)
    assert stats["codes/perplexity"] == pytest.approx(4.0)
    assert stats["codes/usage"] == pytest.approx(0.5)
    two = code_histogram(torch.stack([codes, torch.zeros_like(codes)], -1), 8)  # (B, T, K=2)
    assert two.shape == (2, 8) and two[1, 0] == 8
    assert codebook_stats(two)["codes/perplexity"] == pytest.approx(2.5)  # mean of 4 and 1


def test_cli_check_and_a_two_step_run(tmp_path, audio_folder, capsys):
    from sonotok.cli import main

    base = ["train", "codec", "--config", str(TINY)]
    sets = [f"model.family={FAMILY}", f"data.sources=[{{path: {audio_folder}}}]"]
    sets += [f"train.output_dir={tmp_path}", "train.max_steps=2", "train.batch_size=2"]
    sets += ["train.val_every=0", "train.audio_every=0", "train.progress=false"]
    args = base + [a for s in sets for a in ("--set", s)]
    assert main(args + ["--check"]) == 0
    out = capsys.readouterr().out
    assert "config OK" in out and f"{FAMILY}: 125 codes × 1 codebook" in out
    assert not (tmp_path / "checkpoints").exists()
    assert main(args + ["--no-tensorboard"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert isinstance(load_tokenizer(tmp_path / "model"), ToyFSQCodec)
    assert main(args) == 2  # checkpoints exist and no --resume: one line, exit 2
    assert "already holds checkpoints; pass --resume" in capsys.readouterr().err
    assert main(args + ["--resume", "--set", "train.max_steps=3", "--no-tensorboard"]) == 0


# ---- the built-in families ------------------------------------------------------------------
UNICODEC_TINY = REPO / "configs" / "codec" / "unicodec_tiny.yaml"


def _family_overrides(out, audio_folder, *extra) -> list[str]:
    return [
        f"data.sources=[{{path: {audio_folder}}}]",
        f"train.output_dir={out}",
        "train.max_steps=4",
        "train.checkpoint_every=2",
        "train.log_every=1",
        "train.val_every=4",
        "train.audio_every=0",
        "train.progress=false",
        *extra,
    ]


def test_unicodec_trains_resumes_exactly_and_exports(tmp_path, audio_folder, tone):
    from sonotok.tokenizer.unicodec import UnicodecTokenizer

    straight, split = tmp_path / "straight", tmp_path / "split"
    config = load_config(CodecTrainConfig, UNICODEC_TINY, _family_overrides(straight, audio_folder))
    result = CodecGANTrainer(config, log_with=None).run()
    steps = _metrics(straight)
    assert [m["step"] for m in steps] == [1, 2, 3, 4]
    assert all(m["loss/codec/commit"] > 0 and np.isfinite(m["loss/generator"]) for m in steps)
    assert all(m["codes/perplexity"] >= 1 for m in steps) and steps[-1]["val/mel_distance"] > 0

    config = load_config(CodecTrainConfig, UNICODEC_TINY, _family_overrides(split, audio_folder))
    assert CodecGANTrainer(config, log_with=None).run(stop_after_steps=2).step == 2
    CodecGANTrainer(config, log_with=None).run(resume="latest")
    ours, theirs = (read_state(d / "checkpoints" / "step_00000004")[0] for d in (split, straight))
    for name in ("generator", "discriminators"):  # the decoder's dropout draws the same numbers
        assert _max_difference(ours[name], theirs[name]) < 1e-6, name

    codec = load_tokenizer(result.model_dir, domain="music")
    assert isinstance(codec, UnicodecTokenizer) and codec.codebook_size == 256
    codes = codec.encode_codes(tone(4800, 24000))
    assert codes.shape == (60, 1) and 64 <= int(codes.min()) and int(codes.max()) < 128
    assert codec.decode(codes).shape == (4800,)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("model.options={domain: jazz}", r"model.options.domain='jazz': choose one of \['auto'"),
        ("model.options={colour: red}", r"model.options: unknown keys \['colour'\]"),
        ("model.options={stage: vibe}", r"model.options.stage='vibe': choose one of \['acoustic'"),
        ("model.config.ratios=[4, 4]", "ratios .4, 4. multiply to 16, but hop_length is 80"),
    ],
)
def test_unicodec_recipe_refuses_bad_model_settings(tmp_path, audio_folder, change, message):
    overrides = _family_overrides(tmp_path, audio_folder, change)
    config = load_config(CodecTrainConfig, UNICODEC_TINY, overrides)
    with pytest.raises(ConfigError, match=message):
        build_codec(config.model)


def test_sqcodec_trains_resumes_exactly_and_exports(tmp_path, audio_folder, tone):
    from sonotok.tokenizer.sqcodec import SQCodecTokenizer

    tiny = REPO / "configs" / "codec" / "sqcodec_tiny.yaml"
    straight, split = tmp_path / "straight", tmp_path / "split"
    config = load_config(CodecTrainConfig, tiny, _family_overrides(straight, audio_folder))
    result = CodecGANTrainer(config, log_with=None).run()
    steps = _metrics(straight)
    assert [m["step"] for m in steps] == [1, 2, 3, 4]
    assert all(m["loss/waveform"] > 0 and "loss/discriminators" in m for m in steps)
    assert all(m["codes/perplexity"] >= 1 for m in steps) and steps[-1]["val/mel_distance"] > 0

    config = load_config(CodecTrainConfig, tiny, _family_overrides(split, audio_folder))
    assert CodecGANTrainer(config, log_with=None).run(stop_after_steps=2).step == 2
    CodecGANTrainer(config, log_with=None).run(resume="latest")
    ours, theirs = (read_state(d / "checkpoints" / "step_00000004")[0] for d in (split, straight))
    for name in ("generator", "discriminators"):  # FSQ noise substitution draws the same noise
        assert _max_difference(ours[name], theirs[name]) < 1e-6, name

    codec = load_tokenizer(result.model_dir)
    assert isinstance(codec, SQCodecTokenizer) and codec.config.name == "3kbps"
    assert (codec.hop_samples, codec.codebook_size) == (90, 7**6)
    wave = tone(3600, 16000)
    assert codec.encode_codes(wave).shape == (40, 1) and codec.reconstruct(wave).shape == (3600,)


def _frame(family: str, values: dict) -> int:
    """Samples a crop must be a multiple of: SQCodec pads to hop × window, UniCodec to its hop."""
    if family == "sqcodec":
        from sonotok.tokenizer.train.codec_families import sqcodec_config

        return sqcodec_config(values).fill_length
    from sonotok.core.config import build
    from sonotok.tokenizer.unicodec import UnicodecConfig

    return build(UnicodecConfig, values).hop_length


@pytest.mark.parametrize(
    "path", sorted((REPO / "configs" / "codec").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_codec_config_loads_and_its_crops_fit_the_codec(path):
    overrides = ["data.sources=[{path: my_wavs/}]"]
    if path.stem == "tiny":  # the generic one: the family comes from the command line
        overrides.append(f"model.family={FAMILY}")
    config = load_config(CodecTrainConfig, path, overrides)
    assert config.train.max_steps >= 1 and config.optim.lr > 0
    family = config.model.family
    if family in ("sqcodec", "unicodec"):
        check_frames(config.data, _frame(family, config.model.config), family)
    if path.stem.startswith("unicodec_"):
        semantic = {"contrastive": 0.001} if "semantic" in path.stem else {}
        assert config.loss.codec == {"commit": 1000.0, **semantic} and config.loss.gan == "hinge"
        assert config.loss.mel == (450.0 if path.stem == "unicodec_finetune" else 45.0)


# ---- UniCodec's semantic stage ---------------------------------------------------------------
UNICODEC_SEMANTIC_TINY = REPO / "configs" / "codec" / "unicodec_semantic_tiny.yaml"


def _tiny_unicodec(path: Path):
    """The tiny config's UniCodec, untrained: what the acoustic stage would have exported."""
    from sonotok.core.config import build
    from sonotok.tokenizer.unicodec import UnicodecConfig, UnicodecTokenizer

    sources = ["data.sources=[{path: my_wavs/}]"]
    values = load_config(CodecTrainConfig, UNICODEC_SEMANTIC_TINY, sources).model.config
    torch.manual_seed(1)
    codec = UnicodecTokenizer(build(UnicodecConfig, values))
    codec.save_pretrained(path)
    return codec


def test_unicodec_semantic_mask_and_contrastive_loss_learn():
    from sonotok.tokenizer.unicodec.semantic import SemanticObjective, span_mask

    torch.manual_seed(0)
    mask = span_mask(3, 60)  # 60 frames: int(0.1 · 60 / 3 + u) = 2 spans of 3 frames
    assert mask.shape == (3, 60) and mask.sum(1).tolist() == [6, 6, 6]
    long = span_mask(4, 750)  # 10 s at 75 Hz: 25 spans, overlaps merged, rows made equal
    assert len(set(long.sum(1).tolist())) == 1 and 50 <= int(long[0].sum()) <= 78

    objective = SemanticObjective(8, final_dim=8, negatives=10)
    assert not any(p.requires_grad for p in objective.parameters())  # official: never optimised
    features = torch.randn(2, 40, 8)
    prediction = torch.zeros(2, 40, 8, requires_grad=True)
    optimizer = torch.optim.Adam([prediction], lr=0.1)
    mask = span_mask(2, 40, prob=0.3)
    losses = []
    for _ in range(30):
        loss = objective(features, prediction, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > int(mask.sum()) * 0.5  # summed over masked frames, ~log(11) each
    assert losses[-1] < 0.5 * losses[0]
    assert prediction.grad[~mask].abs().max() == 0 and prediction.grad[mask].abs().max() > 0


def test_unicodec_semantic_stage_trains_the_encoder_resumes_exactly(tmp_path, audio_folder):
    acoustic = _tiny_unicodec(tmp_path / "acoustic")
    straight, split = tmp_path / "straight", tmp_path / "split"
    extra = ("model.config={}", f"model.pretrained={tmp_path / 'acoustic'}")
    overrides = _family_overrides(straight, audio_folder, *extra)
    config = load_config(CodecTrainConfig, UNICODEC_SEMANTIC_TINY, overrides)
    result = CodecGANTrainer(config, log_with=None).run()
    steps = _metrics(straight)
    assert [m["step"] for m in steps] == [1, 2, 3, 4]
    # about log(101) per masked frame: 2 clips × 2 spans of 3 frames at least
    assert all(20 < m["loss/codec/contrastive"] < 500 for m in steps)
    assert all(np.isfinite(m["loss/generator"]) for m in steps)

    overrides = _family_overrides(split, audio_folder, *extra)
    config = load_config(CodecTrainConfig, UNICODEC_SEMANTIC_TINY, overrides)
    assert CodecGANTrainer(config, log_with=None).run(stop_after_steps=2).step == 2
    CodecGANTrainer(config, log_with=None).run(resume="latest")
    ours, theirs = (read_state(d / "checkpoints" / "step_00000004")[0] for d in (split, straight))
    for name in ("generator", "discriminators"):  # same masks, distractors and dropout
        assert _max_difference(ours[name], theirs[name]) < 1e-6, name
    assert any(k.startswith("semantic.project_target") for k in ours["generator"])

    trained = load_tokenizer(result.model_dir)  # the export: the codec alone
    before, after = acoustic.state_dict(), trained.state_dict()
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith("decoder.") for k in changed)  # frozen, as the official stage
    assert "encoder.mask_emb" in changed and any(k.startswith("encoder.layers") for k in changed)
    assert any(k.startswith("quantizer.") for k in changed)

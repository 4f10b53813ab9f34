"""Dasheng-AudioGen: strict loading and parity with the reference implementation.

The fixture folder holds a reduced random model in the official format (config.json +
model.safetensors with the official key names) and, in parity.safetensors, inputs and outputs
of the reference code (LayerFusionAudioDiT + CrossAttentionAdapter + FlowMatchEulerScheduler +
the `generate` glue) for fixed text states and noise: CFG 5 with sway -1, and no CFG with linear
sigmas.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from sonotok.generation.audiogen import (
    AudioGenConfig,
    DashengAudioGen,
    official_sigmas,
)
from sonotok.generation.errors import GenerationError
from sonotok.generation.flow import make_scheduler

FIXTURE = Path(__file__).parent / "fixtures" / "dasheng_audiogen_tiny"


@pytest.fixture(scope="module")
def model() -> DashengAudioGen:
    return DashengAudioGen.from_pretrained(FIXTURE)


@pytest.fixture(scope="module")
def ref() -> dict:
    return load_file(str(FIXTURE / "parity.safetensors"))


@pytest.mark.parametrize("tag,steps,guidance,sway", [("cfg", 6, 5.0, -1.0), ("plain", 4, 1.0, 0.0)])
def test_generation_matches_reference(model, ref, tag, steps, guidance, sway):
    mask = ref["text_mask"].bool()
    content, content_mask, frames = model.condition(ref["text_states"], mask)
    assert frames.tolist() == ref[f"{tag}.frames"].tolist()
    torch.testing.assert_close(content, ref[f"{tag}.content"], rtol=1e-4, atol=1e-4)
    scheduler = make_scheduler()
    scheduler.set_timesteps(sigmas=official_sigmas(steps, sway))
    latents, x_mask = model.sample(
        content, content_mask, frames, ref[f"{tag}.noise"], scheduler, guidance
    )
    torch.testing.assert_close(latents, ref[f"{tag}.latents"], rtol=1e-4, atol=1e-4)
    assert x_mask.sum(1).tolist() == frames.tolist()


def test_first_velocity_matches_reference(model, ref):
    mask = ref["text_mask"].bool()
    content, content_mask, frames = model.condition(ref["text_states"], mask)
    noise = ref["cfg.noise"]
    length = noise.shape[-1]
    x_mask = torch.arange(length)[None] < frames[:, None]
    ta = model.dummy_ta_embed.expand(2, length, -1)
    t = torch.tensor(1000.0)
    v_c = model.backbone(noise, t, ta, content, x_mask, content_mask)
    v_u = model.backbone(
        noise, t, torch.zeros_like(ta), torch.zeros_like(content), x_mask, content_mask
    )
    torch.testing.assert_close(
        v_u + 5.0 * (v_c - v_u), ref["cfg.first_velocity"], rtol=1e-4, atol=1e-4
    )


def test_released_config_parses_to_the_published_architecture():
    config = json.loads((FIXTURE / "config.json").read_text())
    released = {
        **config,
        "latent_dim": 1280,
        "dit_in_chans": 1280,
        "dit_out_chans": 1280,
        "content_dim": 1024,
        "task_instruction_dim": 1024,
        "instruction_seq_len": 14,
        "dit_embed_dim": 1536,
        "dit_depth": 32,
        "dit_num_heads": 24,
        "dit_ta_context_dim": 1024,
        "dit_context_dim": 1024,
        "adapter_num_heads": 16,
        "duration_predictor_filter_channels": 512,
        "duration_predictor_n_layers": 5,
    }
    cfg = AudioGenConfig.from_dict(released)
    assert cfg == AudioGenConfig()  # our defaults are the released model
    with torch.device("meta"):
        model = DashengAudioGen(cfg)
    assert len(model.backbone.in_blocks) == 16 and len(model.backbone.out_blocks) == 16
    dit_params = sum(p.numel() for p in model.backbone.parameters())
    assert 2.0e9 < dit_params < 2.3e9  # 32 blocks of width 1536 with full adaLN


def test_strict_loading_rejects_extra_missing_and_misshaped_keys(tmp_path):
    state = load_file(str(FIXTURE / "model.safetensors"))
    folder = tmp_path / "m"
    shutil.copytree(FIXTURE, folder)
    save_file({**state, "backbone.extra": torch.zeros(1)}, str(folder / "model.safetensors"))
    with pytest.raises(GenerationError, match="unexpected"):
        DashengAudioGen.from_pretrained(folder)
    partial = {k: v for k, v in state.items() if k != "dummy_ta_embed"}
    save_file(partial, str(folder / "model.safetensors"))
    with pytest.raises(GenerationError, match="dummy_ta_embed"):
        DashengAudioGen.from_pretrained(folder)
    derived = {k: v for k, v in state.items() if not k.endswith("rotary.inv_freq")}
    save_file(derived, str(folder / "model.safetensors"))
    DashengAudioGen.from_pretrained(folder)  # derived RoPE tables may be absent
    config = json.loads((FIXTURE / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "dit_rope_mode": "x_only"}))
    with pytest.raises(GenerationError, match="dit_rope_mode"):
        DashengAudioGen.from_pretrained(folder)


class _FixedTextEncoder:
    """Stands in for FLAN-T5 offline: the fixture's text states, whatever the prompts."""

    def __init__(self, ref):
        self.ref = ref
        self.prompts = []

    def __call__(self, prompts):
        self.prompts.append(prompts)
        return self.ref["text_states"][: len(prompts)], self.ref["text_mask"][: len(prompts)].bool()

    def to(self, device):
        return self


def test_pipeline_from_pretrained_dispatches_to_official(ref):
    from sonotok.generation.audiogen import DashengAudioGenPipeline
    from sonotok.generation.pipeline import TextToAudioPipeline

    encoder = _FixedTextEncoder(ref)
    pipe = TextToAudioPipeline.from_pretrained(FIXTURE, tokenizer=False, text_encoder=encoder)
    assert isinstance(pipe, DashengAudioGenPipeline)
    z, mask = pipe.generate_latents(
        ["a dog barks", "<|caption|> rain <|sfx|> thunder"], num_steps=6, seed=1
    )
    assert encoder.prompts[-1] == ["<|caption|> a dog barks", "<|caption|> rain <|sfx|> thunder"]
    assert mask.sum(1).tolist() == ref["cfg.frames"].tolist()  # predicted durations
    torch.testing.assert_close(
        z, ref["cfg.latents"] * mask[..., None], rtol=1e-4, atol=1e-4
    )  # same noise
    z, mask = pipe.generate_latents(
        ["a", "b"], seconds=[0.2, 0.4], num_steps=2, guidance_scale=1.0, seed=0
    )
    assert mask.sum(1).tolist() == [5, 10] and z[0, 5:].abs().max() == 0
    with pytest.raises(GenerationError, match="no tokenizer"):
        pipe(["a"])

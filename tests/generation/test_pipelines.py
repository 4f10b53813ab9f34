"""One pipeline type: the sonotok DiT and the official Dasheng-AudioGen as two implementations of
`TextToAudioPipeline`, loaded by folder type through the factory, with no import cycle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sonotok.core.errors import ModelNotFoundError
from sonotok.generation import DashengAudioGen, DashengAudioGenPipeline, DiT, DiTConfig
from sonotok.generation.dit_pipeline import DiTPipeline
from sonotok.generation.errors import GenerationError
from sonotok.generation.factory import load_pipeline, pipeline_type
from sonotok.generation.pipeline import TextToAudioPipeline
from sonotok.tokenizer import (
    AcousticProjectionConfig,
    AudioTokenizer,
    SemanticEncoderConfig,
    TokenizerConfig,
    VocosDecoderConfig,
)

OFFICIAL = Path(__file__).parent / "fixtures" / "dasheng_audiogen_tiny"
GENERATION = Path(__file__).resolve().parents[2] / "generation"
IMPLEMENTED = ("generate_latents", "save_pretrained", "from_folder", "components", "device")


class FixedTextEncoder:
    """Stands in for FLAN-T5 offline: the parity fixture's text states, whatever the prompts."""

    def __init__(self) -> None:
        self.ref = load_file(str(OFFICIAL / "parity.safetensors"))

    def __call__(self, prompts):
        n = len(prompts)
        return self.ref["text_states"][:n], self.ref["text_mask"][:n].bool()

    def to(self, device):
        return self


def official(tokenizer=None) -> DashengAudioGenPipeline:
    return DashengAudioGenPipeline.from_pretrained(
        OFFICIAL, tokenizer=tokenizer or False, text_encoder=FixedTextEncoder()
    )


def tokenizer16() -> AudioTokenizer:
    """A tiny random tokenizer with the official model's latent width (16) and rates."""
    torch.manual_seed(0)
    config = TokenizerConfig(
        semantic=SemanticEncoderConfig(embed_dim=16, depth=1, num_heads=2),
        acoustic=AcousticProjectionConfig(embed_dim=16),
        decoder=VocosDecoderConfig(input_dim=16, dim=16, intermediate_dim=32, num_layers=1),
    )
    return AudioTokenizer(config).eval()


def dit_folder(folder: Path, text_encoder) -> Path:
    torch.manual_seed(0)
    dit = DiT(DiTConfig.tiny(latent_dim=8, context_dim=text_encoder.dim))
    TextToAudioPipeline(dit, text_encoder).save_pretrained(folder)
    return folder


def test_both_pipelines_are_the_one_type_and_implement_its_methods(text_encoder):
    for cls in (DiTPipeline, DashengAudioGenPipeline):
        assert issubclass(cls, TextToAudioPipeline)
        for name in IMPLEMENTED:
            assert getattr(cls, name) is not getattr(TextToAudioPipeline, name), (cls, name)
        for name in ("__call__", "inpaint", "continuation", "from_pretrained", "push_to_hub"):
            assert callable(getattr(cls, name))
    pipe = official()
    assert isinstance(pipe, TextToAudioPipeline) and pipe.pipeline_type == "dasheng_audiogen"
    # the base called directly still builds the sonotok pipeline, as before the split
    built = TextToAudioPipeline(DiT(DiTConfig.tiny(latent_dim=8)), text_encoder)
    assert type(built) is DiTPipeline and built.batch_independent and built.default_seconds == 10


def test_from_pretrained_dispatches_by_folder_type(tmp_path, text_encoder):
    folder = dit_folder(tmp_path / "dit_pipe", text_encoder)
    assert (pipeline_type(folder), pipeline_type(OFFICIAL)) == (
        "sonotok_pipeline",
        "dasheng_audiogen",
    )
    loaded = TextToAudioPipeline.from_pretrained(folder, text_encoder=text_encoder)
    assert type(loaded) is DiTPipeline and loaded.tokenizer is None
    assert type(load_pipeline(folder, text_encoder=text_encoder)) is DiTPipeline
    assert type(DiTPipeline.from_pretrained(folder, text_encoder=text_encoder)) is DiTPipeline
    assert type(official()) is DashengAudioGenPipeline
    with pytest.raises(GenerationError, match="holds a DashengAudioGenPipeline, not a DiTPipeline"):
        DiTPipeline.from_pretrained(OFFICIAL, tokenizer=False, text_encoder=FixedTextEncoder())
    with pytest.raises(GenerationError, match="holds a DiTPipeline, not a DashengAudioGen"):
        DashengAudioGenPipeline.from_pretrained(folder, text_encoder=text_encoder)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "vocos"}))
    with pytest.raises(ModelNotFoundError, match="model_type 'vocos'"):
        TextToAudioPipeline.from_pretrained(tmp_path / "other")


def test_pipelines_take_the_hub_options(empty_hub_cache):
    with pytest.raises(ModelNotFoundError, match="not found in the local Hugging Face cache"):
        TextToAudioPipeline.from_pretrained("sonotok-test/no-such-pipeline", local_files_only=True)


def test_official_save_pretrained_writes_the_official_layout(tmp_path):
    pipe = official()
    pipe.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text()) == json.loads(
        (OFFICIAL / "config.json").read_text()
    )
    saved, released = (
        load_file(str(f / "model.safetensors")) for f in (tmp_path / "saved", OFFICIAL)
    )
    assert saved.keys() == released.keys()
    assert all(torch.equal(saved[k], released[k]) for k in saved)
    reloaded = DashengAudioGenPipeline.from_pretrained(
        tmp_path / "saved", tokenizer=False, text_encoder=FixedTextEncoder()
    )
    kw = dict(seconds=[0.2, 0.3], num_steps=2, seed=3)
    a, b = (
        pipe.generate_latents(["a", "b"], **kw)[0],
        reloaded.generate_latents(["a", "b"], **kw)[0],
    )
    assert a.abs().max() > 0 and torch.equal(a, b)
    pipe.save_pretrained(tmp_path / "named", tokenizer_reference="../tok")
    assert (
        json.loads((tmp_path / "named" / "config.json").read_text())["tokenizer_name"] == "../tok"
    )


def test_a_fresh_official_model_saves_a_loadable_official_config(tmp_path):
    config = DashengAudioGen.from_pretrained(OFFICIAL).config
    torch.manual_seed(0)
    DashengAudioGen(config).save_pretrained(tmp_path / "fresh")
    written = json.loads((tmp_path / "fresh" / "config.json").read_text())
    assert written["model_type"] == "dasheng_audiogen" and written["dit_in_chans"] == 16
    assert DashengAudioGen.from_pretrained(tmp_path / "fresh").config == config


def test_official_inpainting_keeps_the_known_frames():
    pipe = official()
    known = torch.randn(2, 12, 16, generator=torch.Generator().manual_seed(0))
    keep = torch.ones(2, 12, dtype=torch.bool)
    keep[:, 4:9] = False
    z, mask = pipe.generate_latents(["a", "b"], known=known, known_mask=keep, num_steps=3, seed=0)
    assert mask.all() and z.shape == known.shape
    torch.testing.assert_close(z[keep], known[keep], rtol=0, atol=0)
    assert (z[~keep] - known[~keep]).abs().mean() > 0.1
    free, _ = pipe.generate_latents(["a", "b"], seconds=12 / 25, num_steps=3, seed=0)
    assert (free[keep] - known[keep]).abs().mean() > 0.1  # the known frames did not come by chance


def test_official_inpaint_and_continuation_return_the_clip_outside_the_edit():
    pipe = official(tokenizer16())
    audio = 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(1))
    out = pipe.inpaint("a door", audio, start=0.2, end=0.35, num_steps=2, seed=0)[0]
    assert out.shape == audio.shape
    torch.testing.assert_close(out[:3200], audio[:3200], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[5600:], audio[5600:], rtol=0, atol=1e-6)
    assert (out[4000:4800] - audio[4000:4800]).abs().max() > 1e-3
    longer = pipe.continuation("a door", audio, seconds=0.3, num_steps=2, seed=0, crossfade=0)[0]
    assert longer.shape == (8000 + 4800,)
    torch.testing.assert_close(longer[:8000], audio, rtol=0, atol=1e-6)
    waves = pipe(["a", "b"], seconds=[0.3, 0.5], num_steps=2, seed=0)
    assert [w.shape for w in waves] == [(4800,), (8000,)]


def test_official_seeds_one_generator_per_batch_or_per_prompt():
    pipe = official()
    kw = dict(seconds=0.2, num_steps=2, guidance_scale=1.0)
    joint = pipe.generate_latents(["a", "b"], seed=5, **kw)[0]
    alone = pipe.generate_latents(["a"], seed=[6], **kw)[0]  # the stand-in encoder's first row
    each = pipe.generate_latents(["a", "b"], seed=[6, 5], **kw)[0]
    torch.testing.assert_close(each[:1], alone, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        pipe.generate_latents(["a"], seed=[5], **kw)[0],
        pipe.generate_latents(["a"], seed=5, **kw)[0],
    )
    assert (joint[1] - each[1]).abs().max() > 0.1  # an int seed draws the batch jointly
    with pytest.raises(GenerationError, match="one integer seed"):
        pipe.generate_latents(["a", "b"], seed=[1], **kw)


def _modules() -> list[str]:
    names = []
    for path in sorted(GENERATION.rglob("*.py")):
        parts = path.relative_to(GENERATION).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        names.append(".".join(("sonotok.generation", *parts)))
    return sorted(names)


@pytest.mark.parametrize("order", ["alphabetical", "reverse"])
def test_generation_modules_import_in_any_order(order):
    modules = _modules()
    assert "sonotok.generation.audiogen.loader" in modules and len(modules) > 12
    modules = modules if order == "alphabetical" else modules[::-1]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    done = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]

"""A toy tokenizer family in a few lines, to prove a new model plugs into every command.

8 kHz audio cut into 160-sample frames (50 Hz), each mapped to a 160-d latent by an orthogonal
matrix; decoding applies its transpose, so reconstruction is exact. Nothing here is specific to
sonotok's own models: only the `Tokenizer` interface and the shared checkpoint helpers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sonotok.core.audio import resample
from sonotok.tokenizer.interface import Tokenizer, register_tokenizer


@register_tokenizer("toy-framed")
class FramedTokenizer(Tokenizer):
    def __init__(self, hop: int = 160, sample_rate: int = 8000, seed: int = 0):
        super().__init__()
        self.hop, self.rate = hop, sample_rate
        q, _ = torch.linalg.qr(torch.randn(hop, hop, generator=torch.Generator().manual_seed(seed)))
        self.proj = torch.nn.Parameter(q.contiguous())

    sample_rate = property(lambda self: self.rate)
    frame_rate = property(lambda self: self.rate / self.hop)
    latent_dim = property(lambda self: self.hop)

    def encode_waves(self, waves, features):
        return [w[: len(w) // self.hop * self.hop].view(-1, self.hop) @ self.proj for w in waves]

    def decode_latents(self, latents):
        return (latents.float() @ self.proj.T).flatten(1)

    def save_pretrained(self, folder):
        Path(folder).mkdir(parents=True, exist_ok=True)
        config = {"model_type": self.model_type, "hop": self.hop, "sample_rate": self.rate}
        (Path(folder) / "config.json").write_text(json.dumps(config))
        save_file(self.state_dict(), str(Path(folder) / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder, device=None, compute_dtype=None):
        config = json.loads((Path(folder) / "config.json").read_text())
        model = cls(config["hop"], config["sample_rate"])
        model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")))
        return model.set_compute_dtype(compute_dtype).to(device or "cpu").eval()


@register_tokenizer("toy-coded")
class CodedTokenizer(FramedTokenizer):
    """The framed toy with a scalar quantiser: each latent value rounded to one of 256 levels in
    [-1, 1) — codes (T, 160) of 8 bits, embeddings = the level values. A `domain` chosen when
    loading (as UniCodec's) is a decode option: "inverted" quantises the negated latents, so
    its codes decode right only when the decoder is told the domain (`code_options`)."""

    levels = 256
    codebook_size = property(lambda self: self.levels)
    num_codebooks = property(lambda self: self.hop)
    code_option_names = ("domain",)

    def __init__(self, hop: int = 160, sample_rate: int = 8000, seed: int = 0, domain="plain"):
        super().__init__(hop, sample_rate, seed)
        self.domain = domain

    def sign(self, domain: str | None = None) -> float:
        domain = domain or self.domain
        if domain not in ("plain", "inverted"):
            raise ValueError(f"domain={domain!r}; the toy has plain and inverted")
        return -1.0 if domain == "inverted" else 1.0

    def codes_waves(self, waves):
        return [
            ((z.clamp(-1, 1 - 2 / self.levels) + 1) * self.levels / 2).floor().long()
            for z in (self.sign() * z for z in super().encode_waves(waves, "latents"))
        ]

    def code_options(self, wave, codes):
        return {"domain": self.domain}

    def embed_codes(self, codes):
        return (codes.float() + 0.5) * 2 / self.levels - 1

    def encode_waves(self, waves, features):
        return [self.embed_codes(c) for c in self.codes_waves(waves)]

    def decode_latents(self, latents, domain: str | None = None):
        return super().decode_latents(self.sign(domain) * latents)

    def save_pretrained(self, folder):
        super().save_pretrained(folder)
        config = json.loads((Path(folder) / "config.json").read_text())
        (Path(folder) / "config.json").write_text(json.dumps({**config, "domain": self.domain}))

    @classmethod
    def from_pretrained(cls, folder, device=None, compute_dtype=None):
        model = super().from_pretrained(folder, device, compute_dtype)
        model.domain = json.loads((Path(folder) / "config.json").read_text()).get("domain", "plain")
        return model


@register_tokenizer("toy-upsampled")
class UpsampledTokenizer(FramedTokenizer):
    """The framed toy whose decoder writes at twice the rate it reads (as NeuCodec reads 16 kHz
    and writes 24 kHz): decoded frames are resampled up with soxr, so T frames → T · 2 · hop."""

    output_sample_rate = property(lambda self: 2 * self.rate)

    def decode_latents(self, latents):
        audio = super().decode_latents(latents).detach().cpu().numpy()
        return torch.from_numpy(resample(audio, self.rate, self.output_sample_rate))

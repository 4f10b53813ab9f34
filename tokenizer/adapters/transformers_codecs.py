"""The audio codecs of `transformers` (EnCodec, DAC, Mimi) as discrete `Tokenizer`s.

`encode` gives the quantized embeddings (what each decoder consumes) so heads and probes get
floats; `encode_codes` the codes (T, K) at a fixed number of codebooks chosen when loading
(`bandwidth=` for EnCodec, `num_quantizers=` for DAC and Mimi; default: all the model has);
`decode` takes either. Hub ids such as `facebook/encodec_24khz`, `descript/dac_16khz` or
`kyutai/mimi` load through `load_tokenizer` by their config.json `model_type`.
"""

from __future__ import annotations

import os

import torch

from sonotok.core.errors import ConfigError

from ..interface import register_tokenizer
from .common import LibraryCodec, load_library_model


class TransformersCodec(LibraryCodec):
    """Shared by the three: facts from the model config, per-clip codes → embeddings."""

    model_class_name: str  # the transformers class this family wraps
    rate_field = "sampling_rate"  # the config field holding the sample rate

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model.eval()
        config = model.config
        self.rate = int(getattr(config, self.rate_field))
        self.channels = int(getattr(config, "audio_channels", 1))

    codebook_size = property(lambda self: int(self.model.config.codebook_size))

    @classmethod
    def library_class(cls):
        import transformers

        return getattr(transformers, cls.model_class_name)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device=None,
        compute_dtype=None,
        revision: str | None = None,
        cache_dir: str | None = None,
        token: str | None = None,
        local_files_only: bool = False,
        **options,
    ) -> TransformersCodec:
        """The model by `transformers`' own loader; `options` choose the codebooks used."""
        model = load_library_model(
            cls.library_class(),
            name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only or None,
        )
        tokenizer = cls(model, **options)
        return tokenizer.set_compute_dtype(compute_dtype).to(device or "cpu").eval()

    # a family implements: model_codes(x (1, C, N)) → (1, K, T); embed (B, K, T) → (B, D, T);
    # run_decoder (B, D, T) → (B, C, N)
    def codes_waves(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for wave in waves:
            codes = self.model_codes(self.model_input(wave))[0].transpose(0, 1)  # (T, K)
            out.append(self.fit_frames(codes, wave.shape[-1]).long())
        return out

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.embed(codes.transpose(1, 2)).transpose(1, 2).float()

    def encode_waves(self, waves: list[torch.Tensor], features: str) -> list[torch.Tensor]:
        return [self.embed_codes(c[None])[0] for c in self.codes_waves(waves)]

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        audio = self.run_decoder(latents.float().transpose(1, 2))
        return self.fit_output(audio, latents.shape[1])


@register_tokenizer("encodec")
class EncodecTokenizer(TransformersCodec):
    """EnCodec (`EncodecModel`) at one bandwidth in kbps (default: the highest the model has;
    24 kHz model: 24.0 → 32 codebooks). Models that normalise loudness or encode in chunks
    (encodec_48khz) are refused: their per-chunk scales have no place in a latent frame."""

    model_class_name = "EncodecModel"

    def __init__(self, model: torch.nn.Module, bandwidth: float | None = None):
        super().__init__(model)
        config = model.config
        if config.normalize or config.chunk_length_s is not None:
            raise ConfigError(
                f"{config.name_or_path or 'this EnCodec model'} normalises loudness or encodes "
                "in chunks (e.g. encodec_48khz); sonotok's adapter supports unchunked models "
                "such as facebook/encodec_24khz"
            )
        bandwidths = [float(b) for b in config.target_bandwidths]
        self.bandwidth = bandwidths[-1] if bandwidth is None else float(bandwidth)
        if self.bandwidth not in bandwidths:
            raise ConfigError(f"bandwidth={bandwidth}: this EnCodec model has {bandwidths} kbps")
        self.hop = int(config.hop_length)

    latent_dim = property(lambda self: int(self.model.config.hidden_size))

    @property
    def num_codebooks(self) -> int:
        return self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)

    def model_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, bandwidth=self.bandwidth).audio_codes[0]

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.decode(codes.transpose(0, 1))

    def run_decoder(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(embeddings)


class NumQuantizersCodec(TransformersCodec):
    """A codec whose codebook count is chosen directly (`num_quantizers`, default: all)."""

    def __init__(self, model: torch.nn.Module, num_quantizers: int | None = None):
        super().__init__(model)
        most = self.max_quantizers
        self.quantizers = most if num_quantizers is None else int(num_quantizers)
        if not self.min_quantizers <= self.quantizers <= most:
            raise ConfigError(
                f"num_quantizers={num_quantizers}: this model takes {self.min_quantizers}..{most}"
            )

    min_quantizers = 1
    num_codebooks = property(lambda self: self.quantizers)


@register_tokenizer("dac")
class DacTokenizer(NumQuantizersCodec):
    """Descript Audio Codec (`DacModel`); embeddings = the summed projected codebook vectors
    (`quantizer.from_codes`), which the decoder consumes."""

    model_class_name = "DacModel"

    def __init__(self, model: torch.nn.Module, num_quantizers: int | None = None):
        self.max_quantizers = int(model.config.n_codebooks)
        super().__init__(model, num_quantizers)
        self.hop = int(model.config.hop_length)

    latent_dim = property(lambda self: int(self.model.config.hidden_size))

    def model_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, n_quantizers=self.quantizers).audio_codes[:, : self.quantizers]

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.from_codes(codes)[0]

    def run_decoder(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(embeddings)


@register_tokenizer("mimi")
class MimiTokenizer(NumQuantizersCodec):
    """Kyutai's Mimi (`MimiModel`, 12.5 Hz); embeddings = the split RVQ's output
    (`quantizer.decode`), the latents its decoder (transformer + SEANet) consumes."""

    model_class_name = "MimiModel"

    def __init__(self, model: torch.nn.Module, num_quantizers: int | None = None):
        self.max_quantizers = int(model.config.num_quantizers)
        self.min_quantizers = int(model.config.num_semantic_quantizers)
        super().__init__(model, num_quantizers)
        self.hop = int(model.config.frame_size)

    latent_dim = property(lambda self: int(self.model.config.hidden_size))

    def model_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, num_quantizers=self.quantizers).audio_codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.decode(codes)

    def run_decoder(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.decoder(embeddings).audio_values

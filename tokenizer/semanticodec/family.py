"""SemantiCodec (Liu et al., 2024) as a discrete sonotok tokenizer: `load_tokenizer` names,
encode (tokens and their features), decode by latent diffusion, save/load.

Facts: 16 kHz; tokens (T, 2) = [semantic, acoustic] per frame; "token rate" counts both, so the
frame rate is half of it (100 tokens/s → 50 frames/s, hop 320; 50 → 25, hop 640; 25 → 12.5,
hop 1280). `codebook_size` is the larger of the two codebooks (the acoustic one: 8192, or the
centroid count if larger), `codebook_sizes` each column's own (semantic centroids, acoustic
codes: code files record both); `bitrate` is the paper's: frame rate × (log2 V + log2 8192) with V the
configuration's semantic vocabulary (100 tokens/s, 32768 → 1.40 kbps). `encode` returns the
quantized features (T, 2·D) = [acoustic code vector, semantic centroid] the decoder consumes;
`encode_codes` the tokens.

Names `load_tokenizer` / `from_pretrained` accept (no config.json needed):
- `haoheliu/SemantiCodec:100tps-16384` — the official release on the hub, one configuration
  (token rate 25/50/100 × vocabulary 4096/8192/16384/32768); `haoheliu/SemantiCodec` alone is the
  README's default, 100tps-16384; the vocabulary may be written 16k;
- `semanticodec-100tps-16k` (or `semanticodec-50tps-8192`, ...): the same, short;
- `<folder>:100tps-16384`: a local copy of the hub repository (same layout);
- a folder written by `save_pretrained` (config.json `model_type: semanticodec` + safetensors,
  centroids included).
Load options: `decoder=False` (encoder only: tokens and features, no decoding), `ddim_steps`
(50), `guidance` (classifier-free guidance scale, 2.0) and `sampler` ("ddim" as the
reference, or "dpm++": DPM-Solver++, good with 10–20 steps; `sampling.SAMPLERS`) set `decode`'s
defaults and are saved by `save_pretrained` (so `--model FOLDER` on the command line decodes
that way); `decode(..., steps=, guidance=, sampler=, generator=)` overrides them per call.

Inputs: any rate (resampled), mono (average channels first; the reference keeps channel 0), any
length ≥ 400 samples (one 25 ms fbank frame); each clip is encoded on its own (a mixed-length
batch equals one-by-one) while the 10.24 s segments of all clips go through the encoder
`chunks_per_pass` at a time, so long files need bounded memory. T = the reference's: whole 0.16 s
patch columns covering the input plus one (T = (N // 2560 + 1) · 8 / merge, up to the
reference's float rounding, reproduced: `num_latent_frames`); decode returns T · hop ≥ N samples
and `reconstruct` trims to the input length.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import torch

from sonotok.core.errors import ConfigError, ModelNotFoundError
from sonotok.core.hub import (
    CONFIG_NAME,
    load_strict,
    read_config,
    read_weights,
    resolve,
    write_pretrained,
)

from ..interface import Tokenizer, register_tokenizer
from .configs import (
    OFFICIAL_CONFIGS,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    SemantiCodecConfig,
    centroid_file,
    checkpoint_folder,
    parse_config_name,
)
from .encoder import SemantiCodecEncoder, num_segments, segment_fbank
from .sampling import SAMPLERS

__all__ = ["OFFICIAL_REPO", "SemantiCodec", "parse_official_name"]

OFFICIAL_REPO = "haoheliu/SemantiCodec"
DEFAULT_CONFIG = "100tps-16384"  # the README's example configuration
ALIAS_PREFIX = "semanticodec-"
MIN_SAMPLES = 400  # one 25 ms Kaldi fbank frame
PATCH_SECONDS = 0.16  # AUDIOMAE_PATCH_DURATION in the reference's main.py


def parse_official_name(name: str) -> tuple[str, int, int] | None:
    """(hub id or folder, token rate, vocabulary) for a name in the official layout, or None."""
    if name.lower().startswith(ALIAS_PREFIX):
        parsed = parse_config_name(name[len(ALIAS_PREFIX) :])
        return None if parsed is None else (OFFICIAL_REPO, *parsed)
    if name.rstrip("/") == OFFICIAL_REPO:
        return (OFFICIAL_REPO, *OFFICIAL_CONFIGS[DEFAULT_CONFIG])
    source, sep, suffix = name.rpartition(":")
    parsed = parse_config_name(suffix) if sep else None
    if parsed is None:
        return None
    if source.rstrip("/") == OFFICIAL_REPO or Path(source).expanduser().is_dir():
        return (source, *parsed)
    return None


@register_tokenizer("semanticodec")
class SemantiCodec(Tokenizer):
    """The SemantiCodec encoder (AudioMAE + k-means + LSTM quantiser) and, when loaded, its
    latent diffusion decoder (`decoder.SemantiCodecDecoder`)."""

    def __init__(
        self,
        config: SemantiCodecConfig,
        ddim_steps: int = 50,
        guidance: float = 2.0,
        sampler: str = "ddim",
    ):
        super().__init__()
        if sampler not in SAMPLERS:
            raise ConfigError(f"sampler={sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if int(ddim_steps) < 1:
            raise ConfigError(f"ddim_steps={ddim_steps}; pass at least 1")
        self.config = config
        self.encoder = SemantiCodecEncoder(config)
        self.decoder = None
        if config.decoder is not None:
            from .decoder import SemantiCodecDecoder

            if config.decoder.feature_dim != 2 * config.feature_dim:
                raise ConfigError(
                    f"decoder feature_dim={config.decoder.feature_dim} but the encoder's "
                    f"quantized features are {2 * config.feature_dim}-wide"
                )
            self.decoder = SemantiCodecDecoder(config.decoder)
        self.decode_options = dict(steps=int(ddim_steps), guidance=float(guidance), sampler=sampler)

    # ---- facts -------------------------------------------------------------------------------
    sample_rate = property(lambda self: SAMPLE_RATE)
    frame_rate = property(lambda self: self.config.frame_rate)
    latent_dim = property(lambda self: 2 * self.config.feature_dim)
    num_codebooks = property(lambda self: 2)
    min_samples = property(lambda self: MIN_SAMPLES)

    @property
    def codebook_size(self) -> int:
        """The larger codebook (tokens of both kinds fit below it)."""
        return max(self.codebook_sizes)

    @property
    def codebook_sizes(self) -> tuple[int, int]:
        """(semantic centroids, acoustic codes): each token column's own vocabulary."""
        return int(self.encoder.centroids.shape[0]), int(self.config.acoustic_codebook_size)

    @property
    def bitrate(self) -> float:
        """The paper's bits per second: frame rate × (log2 vocabulary + log2 acoustic codes)."""
        bits = math.log2(self.config.semantic_vocab_size)
        return self.frame_rate * (bits + math.log2(self.config.acoustic_codebook_size))

    def num_latent_frames(self, num_samples: int) -> int:
        """The reference's token count, float arithmetic included (`main.py` load_audio /
        encode): the duration padded up by 0.16 − (d mod 0.16) s, 8 tokens per 0.16 s / merge,
        rounded up. Mostly (N // 2560 + 1) · 8 / merge; where float rounding makes d mod 0.16
        come out just under 0.16 (e.g. 7680 samples) it is one patch column less, or one token
        more — never less than the input: T · hop ≥ N."""
        duration = num_samples / SAMPLE_RATE
        duration += PATCH_SECONDS - duration % PATCH_SECONDS
        return math.ceil(8 * duration / PATCH_SECONDS / (100 / self.config.token_rate))

    def describe(self) -> dict:
        return {
            **super().describe(),
            "token_rate": self.config.token_rate,
            "semantic_vocab_size": self.config.semantic_vocab_size,
            "semantic_codebook_size": int(self.encoder.centroids.shape[0]),
            "acoustic_codebook_size": self.config.acoustic_codebook_size,
        }

    # ---- encoding ----------------------------------------------------------------------------
    def codes_waves(
        self,
        waves: list[torch.Tensor],
        chunks_per_pass: int = 8,
        progress: Callable[[float], None] | None = None,
    ) -> list[torch.Tensor]:
        """1-D waves → [(T_i, 2)] tokens; 10.24 s segments of all clips go through the encoder
        `chunks_per_pass` at a time."""
        if chunks_per_pass < 1:
            raise ConfigError(f"chunks_per_pass={chunks_per_pass}; pass at least 1")
        padded = []
        for wave in waves:
            segments = num_segments(wave.shape[-1])
            wave = torch.nn.functional.pad(wave, (0, segments * SEGMENT_SAMPLES - wave.shape[-1]))
            padded.append(wave - wave.mean())  # the reference removes the padded wave's mean
        jobs = [(i, s) for i, w in enumerate(padded) for s in range(len(w) // SEGMENT_SAMPLES)]
        tokens: list[list[torch.Tensor]] = [[] for _ in waves]
        for start in range(0, len(jobs), chunks_per_pass):
            batch = jobs[start : start + chunks_per_pass]
            fbank = torch.stack([segment_fbank(padded[i], s) for i, s in batch])
            for (i, _), out in zip(batch, self.encoder(fbank)):
                tokens[i].append(out)
            if progress is not None:
                progress(min(1.0, (start + len(batch)) / len(jobs)))
        return [torch.cat(t)[: self.num_latent_frames(w.shape[-1])] for t, w in zip(tokens, waves)]

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T, 2) tokens → (B, T, 2·D) quantized features (the reference's
        `token_to_quantized_feature`)."""
        self._check_codes(codes)
        return self.encoder.token_to_quantized_feature(codes.to(self.device))

    def _check_codes(self, codes: torch.Tensor) -> None:
        for k, (name, limit) in enumerate(zip(("semantic", "acoustic"), self.codebook_sizes)):
            column = codes[..., k]
            if column.numel() and (int(column.min()) < 0 or int(column.max()) >= limit):
                raise ConfigError(
                    f"{name} tokens must lie in [0, {limit}); got "
                    f"[{int(column.min())}, {int(column.max())}] — were they made by this "
                    f"configuration ({self.config.name})?"
                )

    def encode_waves(
        self,
        waves: list[torch.Tensor],
        features: str,
        chunks_per_pass: int = 8,
        progress: Callable[[float], None] | None = None,
    ) -> list[torch.Tensor]:
        codes = self.codes_waves(waves, chunks_per_pass, progress)
        return [self.embed_codes(c[None])[0] for c in codes]

    # ---- decoding ----------------------------------------------------------------------------
    def decode_latents(
        self,
        latents: torch.Tensor,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        generator: torch.Generator | None = None,
        windows_per_pass: int = 8,
    ) -> torch.Tensor:
        """(B, T, 2·D) features → (B, T · hop) audio by latent diffusion, the 10.24 s windows of
        all clips batched `windows_per_pass` at a time (`windows.decode_features`); steps,
        guidance and sampler default to the load options."""
        if self.decoder is None:
            raise ConfigError(
                "this SemantiCodec was loaded without its decoder (decoder=False, or a folder "
                "saved from an encoder-only model); load it with its decoder to decode"
            )
        from .windows import decode_features

        options = dict(self.decode_options)
        given = dict(steps=steps, guidance=guidance, sampler=sampler)
        options.update({k: v for k, v in given.items() if v is not None})
        audio = decode_features(
            self.decoder, latents.float(), self.config.token_rate, options["steps"],
            options["guidance"], sampler=options["sampler"], generator=generator,
            windows_per_pass=windows_per_pass,
        )  # fmt: skip
        length = latents.shape[1] * self.hop_samples
        return torch.nn.functional.pad(audio, (0, max(0, length - audio.shape[-1])))[..., :length]

    # ---- checkpoints -------------------------------------------------------------------------
    @classmethod
    def claims(cls, name: str) -> bool:
        return parse_official_name(name) is not None

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        compute_dtype=None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        decoder: bool = True,
        ddim_steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        overrides: dict | None = None,
    ) -> SemantiCodec:
        """A folder from `save_pretrained`, or an official name (module docstring). `overrides`
        (config fields, e.g. num_heads) are for reduced models in the official layout. Decode
        options not given come from the folder's saved ones, else the release's (50 DDIM
        steps, guidance 2.0)."""
        hub = dict(revision=revision, cache_dir=cache_dir, token=token)
        hub["local_files_only"] = local_files_only
        given = dict(ddim_steps=ddim_steps, guidance=guidance, sampler=sampler)
        options = {k: v for k, v in given.items() if v is not None}
        official = parse_official_name(str(name_or_path))
        if official is not None:
            source, rate, vocab = official
            patterns = [f"{checkpoint_folder(rate)}/encoder.ckpt", centroid_file(rate, vocab)]
            if decoder:
                patterns.append(f"{checkpoint_folder(rate)}/decoder.ckpt")
            folder = resolve(source, allow_patterns=patterns, **hub)
            model = cls.from_official(folder, rate, vocab, decoder, overrides, **options)
        else:
            folder = resolve(name_or_path, allow_patterns=[CONFIG_NAME, "*.safetensors"], **hub)
            model = cls.from_folder(folder, decoder, **options)
        return model.set_compute_dtype(compute_dtype).to(device or "cpu").eval()

    @classmethod
    def from_folder(cls, folder: Path, decoder: bool = True, **options) -> SemantiCodec:
        """A folder written by `save_pretrained`, loaded strictly."""
        values = read_config(folder)
        where = str(Path(folder) / CONFIG_NAME)
        model_type = values.pop("model_type", None)
        if model_type != cls.model_type:
            raise ConfigError(f"{where}: model_type {model_type!r} is not 'semanticodec'")
        saved = values.pop("decode_options", None) or {}
        if not isinstance(saved, dict) or set(saved) - {"ddim_steps", "guidance", "sampler"}:
            raise ConfigError(
                f"{where}: decode_options {saved!r}; expected a dict of ddim_steps, guidance, "
                "sampler (or remove the key for the release's defaults)"
            )
        options = {**saved, **options}
        config = SemantiCodecConfig.from_dict(values, where)
        state = read_weights(folder)
        if not decoder:
            config.decoder = None
            state = {k: v for k, v in state.items() if not k.startswith("decoder.")}
        model = cls(config, **options)
        load_strict(model, state, str(folder))
        return model

    @classmethod
    def from_official(
        cls,
        folder: Path,
        token_rate: int,
        vocab: int,
        decoder: bool = True,
        overrides: dict | None = None,
        **options,
    ) -> SemantiCodec:
        """A configuration of the official release in `folder` (the hub repo's layout)."""
        from .loading import official_files, read_official_encoder

        encoder_ckpt, decoder_ckpt, centroids = official_files(folder, token_rate, vocab)
        config = SemantiCodecConfig.official(token_rate, vocab, **(overrides or {}))
        config, state = read_official_encoder(encoder_ckpt, centroids, config)
        if decoder:
            config.decoder = cls._official_decoder_config(decoder_ckpt, config)
        model = cls(config, **options)
        load_strict(model.encoder, state, str(encoder_ckpt))
        if decoder:
            from .decoder import load_official_decoder

            load_official_decoder(decoder_ckpt, model.decoder)
        return model

    @staticmethod
    def _official_decoder_config(decoder_ckpt: Path, config: SemantiCodecConfig):
        from .decoder_config import DecoderConfig

        if not Path(decoder_ckpt).is_file():
            raise ModelNotFoundError(
                f"{decoder_ckpt}: missing; download it (`hf download {OFFICIAL_REPO} "
                f"{checkpoint_folder(config.token_rate)}/decoder.ckpt`) or load with "
                "decoder=False for tokens only"
            )
        if config.decoder is not None:
            return config.decoder
        return DecoderConfig.for_token_rate(config.token_rate)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.json (model_type semanticodec, the config and the decode options, so a folder
        saved with e.g. sampler="dpm++" decodes that way from the command line) +
        model.safetensors (centroids included)."""
        options = self.decode_options
        values = {
            "model_type": self.model_type,
            **self.config.to_dict(),
            "decode_options": {
                "ddim_steps": options["steps"],
                "guidance": options["guidance"],
                "sampler": options["sampler"],
            },
        }
        return write_pretrained(folder, values, self.state_dict())

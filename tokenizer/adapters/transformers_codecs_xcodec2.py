"""X-Codec 2 (`Xcodec2Model`) and NeuCodec (`NeuCodecModel`) from `transformers` as discrete
`Tokenizer`s: one FSQ codebook (K = 1, 4^8 = 65536 codes at 50 Hz, 800 bps for the releases),
a w2v-BERT semantic branch beside a convolutional acoustic encoder, a Vocos-style decoder.

The library's feature extractors need torchaudio and loop over clips; the adapter computes the
same inputs itself from waves, batched (`kaldi_fbank`): each clip gets one zero sample appended
and is zero-padded to a whole number of hops (the acoustic input); the semantic input is its
Kaldi filterbank (25 ms / 10 ms frames, 80 bins, per-clip mean/variance normalised) with
frames stacked in pairs. X-Codec 2 pads the filterbank's input by half a hop on each side;
NeuCodec does not and keeps the frames both branches have. Hence an N-sample clip gives
N // hop + 1 frames (X-Codec 2) or N // hop (NeuCodec).

NeuCodec reads 16 kHz and writes 24 kHz: `output_sample_rate` says so, `decode` returns
T · 480 samples at 24 kHz, and `reconstruct` resamples back to the input's rate. Hub ids such
as `HKUSTAudio/xcodec2-hf` or `neuphonic/neucodec` load by their config.json `model_type`.
"""

from __future__ import annotations

import math

import torch

from ..interface import register_tokenizer
from ..kaldi_fbank import kaldi_fbank
from .transformers_codecs import TransformersCodec

# What the library's feature extractors fix (Xcodec2FeatureExtractor, after SeamlessM4T's):
FBANK_FRAME, FBANK_SHIFT, STACK = 400, 160, 2  # samples per window / per shift; frames per pair
WAVE_SCALE = 2**15  # Kaldi features are computed on 16-bit-scaled samples
PAD_FEATURE = 1.0  # the value the feature extractor pads an odd frame count with
NORM_EPS = 1e-7  # added to each bin's variance before normalising


class FsqCodec(TransformersCodec):
    """Shared by X-Codec 2 and NeuCodec: codes (T, 1) of one FSQ codebook; embeddings = the
    projected code vectors (`quantizer.from_codes`), which the decoder consumes."""

    num_codebooks = 1
    semantic_side_pad = True  # X-Codec 2 pads the filterbank's input by hop / 2 on each side

    def __init__(self, model: torch.nn.Module):
        super().__init__(model)
        self.hop = int(model.hop_length)  # samples per code at the input rate

    codebook_size = property(lambda self: math.prod(self.model.config.quantization_levels))
    latent_dim = property(lambda self: int(self.model.config.quantization_dim))

    def padded_length(self, num_samples: int) -> int:
        """The acoustic input's length: N + 1 samples rounded up to a whole number of hops."""
        return (num_samples // self.hop + 1) * self.hop

    def semantic_frames(self, num_samples: int) -> int:
        """Stacked filterbank frames the semantic branch gets for an N-sample clip."""
        length = self.padded_length(num_samples) + 2 * (self.hop // 2) * self.semantic_side_pad
        frames = 0 if length < FBANK_FRAME else 1 + (length - FBANK_FRAME) // FBANK_SHIFT
        return math.ceil(frames / STACK)

    def num_latent_frames(self, num_samples: int) -> int:
        return min(self.padded_length(num_samples) // self.hop, self.semantic_frames(num_samples))

    def semantic_features(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) padded clips → w2v-BERT input (B, F', 160) and its mask (B, F') int32, as the
        library's feature extractor makes them."""
        if self.semantic_side_pad:
            batch = torch.nn.functional.pad(batch, (self.hop // 2, self.hop // 2))
        bank = kaldi_fbank(
            batch * WAVE_SCALE, self.sample_rate, frame_length=FBANK_FRAME, frame_shift=FBANK_SHIFT
        )
        bank = (bank - bank.mean(1, keepdim=True)) / (bank.var(1, keepdim=True) + NORM_EPS).sqrt()
        b, frames, bins = bank.shape
        mask = torch.ones(b, frames, dtype=torch.int32, device=bank.device)
        extra = -frames % STACK
        bank = torch.nn.functional.pad(bank, (0, 0, 0, extra), value=PAD_FEATURE)
        mask = torch.nn.functional.pad(mask, (0, extra))
        stacked = bank.reshape(b, -1, STACK * bins)
        return stacked, mask.reshape(b, -1, STACK).amin(-1)

    def batch_codes(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, L) padded clips of one length → (B, T, 1) codes from the library's `encode`."""
        features, mask = self.semantic_features(batch)
        out = self.model.encode(batch[:, None], input_features=features, input_features_mask=mask)
        return out.audio_codes.transpose(1, 2)

    def codes_waves(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        """Clips of the same padded length go through the model together (exactly what each
        would give alone: nothing but their own zero padding is batched)."""
        groups: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            groups.setdefault(self.padded_length(wave.shape[-1]), []).append(i)
        out: list[torch.Tensor] = [torch.empty(0)] * len(waves)
        for length, members in groups.items():
            batch = torch.stack(
                [
                    torch.nn.functional.pad(waves[i], (0, length - waves[i].shape[-1]))
                    for i in members
                ]
            )
            for i, codes in zip(members, self.batch_codes(batch)):
                out[i] = self.fit_frames(codes.long(), waves[i].shape[-1])
        return out

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.from_codes(codes).float()

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        audio = self.model.decode(latents=latents.float().transpose(1, 2)).audio_values
        return self.fit_output(audio, latents.shape[1])


@register_tokenizer("xcodec2")
class Xcodec2Tokenizer(FsqCodec):
    """X-Codec 2 (`Xcodec2Model`): 16 kHz in and out."""

    model_class_name = "Xcodec2Model"


@register_tokenizer("neucodec")
class NeuCodecTokenizer(FsqCodec):
    """NeuCodec (`NeuCodecModel`): reads `input_sampling_rate` (16 kHz), writes
    `output_sampling_rate` (24 kHz)."""

    model_class_name = "NeuCodecModel"
    rate_field = "input_sampling_rate"
    semantic_side_pad = False

    output_sample_rate = property(lambda self: int(self.model.config.output_sampling_rate))

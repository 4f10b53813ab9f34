"""More `transformers` codecs as discrete `Tokenizer`s: X-Codec (`XcodecModel`, a DAC acoustic
branch plus a HuBERT/WavLM semantic branch sharing one residual VQ) and WavTokenizer
(`WavTokenizerModel`, one codebook, Vocos decoder).

Same contract as `transformers_codecs`: `encode` gives the quantized embeddings each decoder
consumes, `encode_codes` the codes (T, K), `decode` takes either. Hub ids such as
`hf-audio/xcodec-hubert-librispeech` or `swiss-ai/wavtokenizer-large-unify-40token` load
through `load_tokenizer` by their config.json `model_type`.
"""

from __future__ import annotations

import torch

from sonotok.core.errors import ConfigError

from ..interface import register_tokenizer
from .transformers_codecs import TransformersCodec


@register_tokenizer("xcodec")
class XcodecTokenizer(TransformersCodec):
    """X-Codec at one bandwidth in kbps (default: the highest the model has). Embeddings = the
    residual VQ's sum (acoustic + semantic width, `quantizer.decode`); decoding runs the
    acoustic projection `fc2` and the DAC decoder, as `XcodecModel.decode` does."""

    model_class_name = "XcodecModel"
    rate_field = "sample_rate"

    def __init__(self, model: torch.nn.Module, bandwidth: float | None = None):
        super().__init__(model)
        bandwidths = [float(b) for b in model.config.target_bandwidths]
        self.bandwidth = bandwidths[-1] if bandwidth is None else float(bandwidth)
        if self.bandwidth not in bandwidths:
            raise ConfigError(f"bandwidth={bandwidth}: this X-Codec model has {bandwidths} kbps")
        self.hop = int(model.config.hop_length)

    latent_dim = property(lambda self: int(self.model.config.hidden_size))

    @property
    def num_codebooks(self) -> int:
        return self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)

    def model_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x, bandwidth=self.bandwidth).audio_codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.quantizer.decode(codes.transpose(0, 1))

    def run_decoder(self, embeddings: torch.Tensor) -> torch.Tensor:
        acoustic = self.model.fc2(embeddings.transpose(1, 2)).transpose(1, 2)
        return self.model.acoustic_decoder(acoustic)


@register_tokenizer("wavtokenizer")
class WavTokenizerTokenizer(TransformersCodec):
    """WavTokenizer: one codebook (K = 1); embeddings = the codebook vectors, decoded by the Vocos
    backbone and ISTFT head at condition 0 (the one used at inference)."""

    model_class_name = "WavTokenizerModel"
    num_codebooks = 1

    def __init__(self, model: torch.nn.Module):
        super().__init__(model)
        self.hop = int(model.config.hop_length)

    latent_dim = property(lambda self: int(self.model.config.hidden_size))

    def model_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode(x).audio_codes

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.encoder_model.quantizer.decode(codes[:, 0])

    def run_decoder(self, embeddings: torch.Tensor) -> torch.Tensor:
        condition = torch.zeros(1, dtype=torch.long, device=embeddings.device)
        return self.model.head(self.model.backbone(embeddings, condition))

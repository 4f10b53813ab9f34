"""Tiny random X-Codec 2 / NeuCodec models (transformers `Xcodec2Model`, `NeuCodecModel`) with a
one-layer w2v-BERT semantic encoder, built locally for the adapter tests and the parity fixture
(`tests/fixtures/make_xcodec2_parity.py`, which imports this file by path: torch and
transformers only).

The semantic features are Kaldi filterbanks with a fixed 160-sample shift, stacked in pairs:
one semantic frame per 320 samples, so the acoustic encoder's hop must be 320 too (4 · 8 · 10).
"""

from __future__ import annotations

import torch

SEMANTIC = dict(
    model_type="wav2vec2-bert", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, output_hidden_size=16, conv_depthwise_kernel_size=3,
    position_embeddings_type="rotary", add_adapter=False,
)  # fmt: skip
COMMON = dict(
    hidden_size=64, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
    num_key_value_heads=2, head_dim=16, encoder_hidden_size=2, downsampling_ratios=[4, 8, 10],
    quantization_dim=80, quantization_levels=[4, 4, 4, 4], semantic_model_config=SEMANTIC,
)  # fmt: skip


def _spread(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random init gives near-constant projections into the FSQ; scale them so codes vary."""
    torch.manual_seed(seed)
    with torch.no_grad():
        model.fc_encoder.weight.normal_(0, 1.0)
        model.quantizer.project_in.weight.normal_(0, 1.0)
    return model.eval()


def xcodec2(seed: int = 0) -> torch.nn.Module:
    from transformers import Xcodec2Config, Xcodec2Model

    torch.manual_seed(seed)
    return _spread(Xcodec2Model(Xcodec2Config(sampling_rate=16000, **COMMON)), seed)


def neucodec(seed: int = 0) -> torch.nn.Module:
    from transformers import NeuCodecConfig, NeuCodecModel

    torch.manual_seed(seed)
    config = NeuCodecConfig(input_sampling_rate=16000, output_sampling_rate=24000, **COMMON)
    return _spread(NeuCodecModel(config), seed)

"""The official UniCodec checkpoint (a PyTorch Lightning `.ckpt`) read safely and mapped strictly.

The release (hub `Yidiii/UniCodec_ckpt`) is the Lightning training checkpoint of
`decoder.experiment.VocosEncodecExp`: `ckpt["state_dict"]` holds the model under
`feature_extractor.encodec.{encoder,quantizer}.`, `backbone.` and `head.`, next to what only
training uses. It is read with `torch.load(weights_only=True, mmap=True)`; should a checkpoint
hold objects that loader refuses (Lightning stores callback and hyper-parameter state beside the
weights), a restricted unpickler reads it instead: tensors and plain containers are rebuilt,
every other object becomes an inert placeholder — no constructor or code of the file ever runs.

Keys map strictly: every key of ours must come from the file, and every file key must be either
mapped or one of the documented training-only groups (`IGNORED`); anything else is a
CheckpointError naming the keys. The configuration is read off the tensor shapes (the heads of
the encoder's Transformer are the official constant 8).
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path

import torch

from sonotok.core.errors import CheckpointError, ModelNotFoundError

from .configs import UnicodecConfig

OFFICIAL_REPO = "Yidiii/UniCodec_ckpt"
CHECKPOINT_PATTERNS = ["*.ckpt"]
HEADS = 8  # `_transformer_kwargs["num_heads"]` in the official encoder/modules/seanet.py

_ENC = r"^feature_extractor\.encodec\.encoder\."
_LAYER_PREFIX = "feature_extractor.encodec.encoder.transformer_enocoder.transformer.layers."
_LAYER = "^" + re.escape(_LAYER_PREFIX) + r"(\d+)\."

#: File keys that carry nothing the codec runs, with why.
IGNORED = [
    # EnCodec's SEANet decoder: built by `EncodecFeatures` but never called (Vocos decodes)
    r"^feature_extractor\.encodec\.decoder\.",
    # the Transformer layers' unused dense feed-forward and its layer scale (the MoE replaced
    # them: `use_MOE = True` in mimi_transformer.py)
    _LAYER + r"(linear1|linear2|layer_scale_2)\.",
    # training only: discriminators and losses of the Lightning module
    r"^(multiperioddisc|multiresddisc|dac|dacdiscriminator|disc_loss|gen_loss|"
    r"feat_matching_loss|melspec_loss)\.",
]

#: (official pattern, ours), the first match wins.
KEY_MAP = [
    (_ENC + r"model\.(.*)\.conv\.conv\.weight_g$", r"encoder.seanet.\1.conv.parametrizations.weight.original0"),
    (_ENC + r"model\.(.*)\.conv\.conv\.weight_v$", r"encoder.seanet.\1.conv.parametrizations.weight.original1"),
    (_ENC + r"model\.(.*)\.conv\.conv\.bias$", r"encoder.seanet.\1.conv.bias"),
    (_ENC + r"mask_emb$", r"encoder.mask_emb"),
    (_LAYER + r"self_attn\.in_proj_weight$", r"encoder.layers.\1.attn.in_proj.weight"),
    (_LAYER + r"self_attn\.out_proj\.weight$", r"encoder.layers.\1.attn.out_proj.weight"),
    (_LAYER + r"layer_scale_1\.scale$", r"encoder.layers.\1.attn_scale"),
    (_LAYER + r"(norm[12])\.(weight|bias)$", r"encoder.layers.\1.\2.\3"),
    (_LAYER + r"FFNMOE\.gate\.weight$", r"encoder.layers.\1.moe.gate"),
    (_LAYER + r"FFNMOE\.experts\.(\d+)\.(w[123])\.weight$", r"encoder.layers.\1.moe.experts.\2.\3.weight"),
    (_LAYER + r"FFNMOE\.shared_experts\.(w[123])\.weight$", r"encoder.layers.\1.moe.shared.\2.weight"),
    (r"^feature_extractor\.encodec\.quantizer\.vq\.embedding\.weight$", "quantizer.embedding.weight"),
    (r"^feature_extractor\.encodec\.quantizer\.vq\.embedding_proj\.(weight|bias)$", r"quantizer.proj.\1"),
    (r"^backbone\.(.*)$", r"decoder.backbone.\1"),
    (r"^head\.(.*)$", r"decoder.head.\1"),
]  # fmt: skip


def find_checkpoint(path: Path) -> Path:
    """The one `.ckpt` in `path` (or `path` itself)."""
    if path.is_file():
        return path
    found = sorted(path.glob("*.ckpt"))
    if len(found) != 1:
        what = f"{len(found)} .ckpt files ({[p.name for p in found]})" if found else "no .ckpt"
        raise ModelNotFoundError(
            f"{path}: {what}; pass the official UniCodec Lightning checkpoint file itself, or a "
            "folder holding exactly one"
        )
    return found[0]


class _Opaque:
    """What the restricted unpickler builds for any object that is not a tensor or container:
    it takes and drops its arguments and state, so nothing of the file's classes ever runs."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __call__(self, *args, **kwargs):
        return _Opaque()


# what tensors and their storages are rebuilt from in a torch.save zip (all else → _Opaque)
_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        if module == "torch" and name in ("float32", "float16", "bfloat16", "int64", "strided"):
            return getattr(torch, name)
        return _Opaque


class _RestrictedPickle:
    """A pickle module for torch.load whose Unpickler resolves only `_ALLOWED` globals."""

    Unpickler = _RestrictedUnpickler
    __name__ = "sonotok_restricted_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()

    @staticmethod
    def loads(data, **kwargs):
        return _RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """`ckpt["state_dict"]` of a Lightning checkpoint (or a bare state dict), safely."""
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        checkpoint = _read_restricted(file)
    except Exception as err:  # truncated zip, not a torch file, ...
        raise CheckpointError(
            f"{file}: not a readable PyTorch checkpoint ({type(err).__name__}); re-download it"
        ) from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{file}: no state_dict of tensors inside; expected the official UniCodec Lightning "
            "checkpoint"
        )
    return dict(state)


def _read_restricted(file: Path) -> dict:
    # weights_only=True refused some object beside the weights; torch's own unpickler is then
    # replaced by the restricted one above (explicit pickle modules require weights_only=False,
    # but no global outside `_ALLOWED` is ever resolved, so no code of the file runs)
    try:
        return torch.load(
            file, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickle
        )
    except Exception as err:
        raise CheckpointError(
            f"{file}: could not read its tensors ({type(err).__name__}: {err}); is this the "
            "official UniCodec checkpoint?"
        ) from None


def convert_state(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Official keys → ours; an unknown key is a CheckpointError (missing ones: `load_strict`)."""
    out, unknown = {}, []
    for key, value in state.items():
        if any(re.search(p, key) for p in IGNORED):
            continue
        for pattern, repl in KEY_MAP:
            if re.search(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f"{source}: keys that are not part of UniCodec: {unknown[:8]}"
            f"{'…' if len(unknown) > 8 else ''}; this is not an official UniCodec checkpoint"
        )
    return out


def config_from_state(state: dict[str, torch.Tensor], source: str) -> UnicodecConfig:
    """The configuration the official tensors were made with, from their shapes."""
    try:
        seanet = sorted(
            (int(m.group(1)), state[k].shape)
            for k in state
            if (m := re.match(_ENC + r"model\.(\d+)\.conv\.conv\.weight_v$", k))
        )
        strided = [shape for _, shape in seanet[1:-1]]  # between the first and last conv
        layers = {int(m.group(1)) for k in state if (m := re.match(_LAYER, k))}
        embedding = state["feature_extractor.encodec.quantizer.vq.embedding.weight"]
        expert = state[_LAYER_PREFIX + "0.FFNMOE.experts.0.w1.weight"]
        gate = state[_LAYER_PREFIX + "0.FFNMOE.gate.weight"]
        blocks = {
            int(m.group(1)) for k in state if (m := re.match(r"backbone\.convnext\.(\d+)\.", k))
        }
        pw1 = state["backbone.convnext.0.pwconv1.weight"]
        ratios = tuple(shape[2] // 2 for shape in reversed(strided))
        return UnicodecConfig(
            n_filters=int(seanet[0][1][0]),
            ratios=ratios,
            dimension=int(embedding.shape[1]),
            transformer_layers=len(layers),
            transformer_heads=HEADS,
            moe_experts=int(gate.shape[0]),
            moe_hidden=int(expert.shape[0]),
            codebook_size=int(embedding.shape[0]),
            decoder_dim=int(pw1.shape[1]),
            decoder_intermediate_dim=int(pw1.shape[0]),
            decoder_layers=len(blocks),
            adanorm_num_embeddings=int(state["backbone.norm.scale.weight"].shape[0]),
            n_fft=int(state["head.out.weight"].shape[0]) - 2,
            hop_length=int(torch.tensor(ratios).prod()),
        )
    except (KeyError, IndexError) as err:
        raise CheckpointError(
            f"{source}: lacks {err} of the official UniCodec layout; is this its Lightning .ckpt?"
        ) from None

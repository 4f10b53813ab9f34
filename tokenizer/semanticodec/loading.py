"""Loading the official SemantiCodec release (hub repo `haoheliu/SemantiCodec`) strictly, safely.

The release is laid out as `semanticodec_tokenrate_<rate>/encoder.ckpt` (+ `decoder.ckpt`) and
`codebook_idx/combine_<n>_audioset_dominate/codebook_<V/2>_0.npy` (see configs.py). encoder.ckpt
is a plain state dict of `AudioMAEConditionQuantResEncoder`; it is read with
`torch.load(weights_only=True)` (the reference unpickles it) and the centroids with
`np.load(allow_pickle=False)`. Key map (official → ours, under `encoder.`):

- `audiomae.model.patch_embed.proj.*` → `audiomae.patch_embed.*`
- `audiomae.model.{cls_token,pos_embed,blocks.*,norm.*}` → `audiomae.*`
- `encoder.{weight,bias}_*` (the residual LSTM) → `lstm.*`
- `encoder_output_linear.weight` → `residual_proj.weight`
- `quantizer._codebook.embed` (1, 8192, D) → `acoustic_codebook` (8192, D)

Dropped because tokens never use them: the MAE decoder (`audiomae.model.decoder_*`,
`audiomae.model.mask_token`) and the quantiser's EMA statistics (`quantizer._codebook.initted`,
`.cluster_size`, `.embed_avg`). Any other key, or a missing one, is a CheckpointError.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sonotok.core.errors import CheckpointError, ModelNotFoundError
from sonotok.core.hub import read_torch_weights, rename_keys

from .configs import SemantiCodecConfig, centroid_file, checkpoint_folder

__all__ = [
    "OFFICIAL_ENCODER_KEYS",
    "convert_official_encoder",
    "official_encoder_state",
    "infer_config",
    "official_files",
    "read_centroids",
]

OFFICIAL_ENCODER_KEYS = [
    (r"^audiomae\.model\.patch_embed\.proj\.", "audiomae.patch_embed."),
    (r"^audiomae\.model\.(cls_token|pos_embed|blocks\.|norm\.)", r"audiomae.\1"),
    (r"^encoder\.(weight|bias)_", r"lstm.\1_"),
    (r"^encoder_output_linear\.weight$", "residual_proj.weight"),
    (r"^quantizer\._codebook\.embed$", "acoustic_codebook"),
]
UNUSED_KEYS = re.compile(
    r"^audiomae\.model\.(decoder_\w+|mask_token)|"
    r"^quantizer\._codebook\.(initted|cluster_size|embed_avg)$"
)


def official_files(folder: Path, token_rate: int, vocab: int) -> tuple[Path, Path, Path]:
    """(encoder.ckpt, decoder.ckpt, centroids .npy) of a configuration in a release folder;
    a missing encoder or codebook is a ModelNotFoundError naming the file (the decoder is
    checked only when it is loaded)."""
    folder = Path(folder)
    ckpt = folder / checkpoint_folder(token_rate)
    encoder, decoder = ckpt / "encoder.ckpt", ckpt / "decoder.ckpt"
    centroids = folder / centroid_file(token_rate, vocab)
    for file in (encoder, centroids):
        if not file.is_file():
            raise ModelNotFoundError(
                f"{folder}: no {file.relative_to(folder)}; download the configuration with "
                f"`hf download haoheliu/SemantiCodec {file.relative_to(folder)}` into this folder"
            )
    return encoder, decoder, centroids


def read_centroids(file: Path, feature_dim: int | None = None) -> torch.Tensor:
    """The k-means centroids (V, feature_dim) float32, refusing pickled or malformed arrays."""
    try:
        array = np.load(file, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise CheckpointError(
            f"{file}: not a plain .npy array ({str(err).splitlines()[0]}); sonotok never "
            "unpickles objects — re-download the codebook"
        ) from None
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise CheckpointError(
            f"{file}: expected a 2-D float array of centroids, got {array.dtype} {array.shape}"
        )
    if feature_dim is not None and array.shape[1] != feature_dim:
        raise CheckpointError(
            f"{file}: centroids are {array.shape[1]}-wide but this configuration's features are "
            f"{feature_dim}-wide; the codebook belongs to another token rate"
        )
    if not np.isfinite(array).all():
        raise CheckpointError(f"{file}: the centroids contain NaN or infinite values")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def convert_official_encoder(
    state: dict[str, torch.Tensor], centroids: torch.Tensor, source: str
) -> dict[str, torch.Tensor]:
    """The official encoder state dict + centroids → our `SemantiCodecEncoder` state dict."""
    unexpected = sorted(
        k for k in state if not UNUSED_KEYS.search(k)
        and not any(re.search(p, k) for p, _ in OFFICIAL_ENCODER_KEYS)
    )  # fmt: skip
    if unexpected:
        raise CheckpointError(
            f"{source}: keys that are not part of SemantiCodec's encoder: {unexpected[:8]}; "
            "this is not a SemantiCodec encoder.ckpt"
        )
    used = {k: v for k, v in state.items() if not UNUSED_KEYS.search(k)}
    out = rename_keys(used, OFFICIAL_ENCODER_KEYS)
    if "acoustic_codebook" in out:
        codebook = out["acoustic_codebook"]
        out["acoustic_codebook"] = codebook[0] if codebook.dim() == 3 else codebook
    out["centroids"] = centroids
    return out


def infer_config(
    state: dict[str, torch.Tensor], config: SemantiCodecConfig, source: str
) -> SemantiCodecConfig:
    """`config` with the widths a converted encoder state holds (embed_dim, depth, MLP ratio,
    LSTM layers, codebook sizes), so reduced official-layout models load too. num_heads and
    contextual_depth are not visible in the weights and stay as given."""
    try:
        embed_dim = state["audiomae.cls_token"].shape[-1]
        depth = len({k.split(".")[2] for k in state if k.startswith("audiomae.blocks.")})
        hidden = state["audiomae.blocks.0.mlp.fc1.weight"].shape[0]
        lstm_layers = len([k for k in state if re.fullmatch(r"lstm\.weight_ih_l\d+", k)])
        acoustic = state["acoustic_codebook"].shape[0]
    except KeyError as err:
        raise CheckpointError(
            f"{source}: missing key {err.args[0]}; not a SemantiCodec encoder"
        ) from None
    values = dict(
        embed_dim=embed_dim,
        depth=depth,
        mlp_ratio=hidden / embed_dim,
        lstm_layers=lstm_layers,
        acoustic_codebook_size=acoustic,
        num_centroids=state["centroids"].shape[0],
    )
    if embed_dim != config.embed_dim and config.num_heads * 64 == config.embed_dim:
        values["num_heads"] = max(1, embed_dim // 64)  # ViT heads of 64 channels
    if depth != config.depth and config.contextual_depth >= depth - 1:
        raise CheckpointError(
            f"{source}: the AudioMAE has {depth} blocks; pass contextual_depth < {depth - 1}"
        )
    return replace(config, **values)


def read_official_encoder(
    encoder_ckpt: Path, centroids_npy: Path, config: SemantiCodecConfig
) -> tuple[SemantiCodecConfig, dict[str, torch.Tensor]]:
    """(config with the checkpoint's widths, our encoder state) from the official files."""
    state = read_torch_weights(encoder_ckpt)
    centroids = read_centroids(centroids_npy)
    converted = convert_official_encoder(state, centroids, str(encoder_ckpt))
    config = infer_config(converted, config, str(encoder_ckpt))
    if centroids.shape[1] != config.feature_dim:
        raise CheckpointError(
            f"{centroids_npy}: centroids are {centroids.shape[1]}-wide but {encoder_ckpt} makes "
            f"{config.feature_dim}-wide features (token rate {config.token_rate}); the codebook "
            "belongs to another token rate"
        )
    return config, converted


def official_encoder_state(encoder) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Our `SemantiCodecEncoder` → (official encoder.ckpt state dict, centroids (V, D)): the
    inverse key map, for the reference code (its MAE decoder and EMA statistics left out)."""
    inverse = [
        (r"^audiomae\.patch_embed\.", "audiomae.model.patch_embed.proj."),
        (r"^audiomae\.", "audiomae.model."),
        (r"^lstm\.", "encoder."),
        (r"^residual_proj\.weight$", "encoder_output_linear.weight"),
        (r"^acoustic_codebook$", "quantizer._codebook.embed"),
    ]
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items() if k != "centroids"}
    out = rename_keys(state, inverse)
    out["quantizer._codebook.embed"] = out["quantizer._codebook.embed"][None]
    return out, encoder.centroids.detach().cpu()

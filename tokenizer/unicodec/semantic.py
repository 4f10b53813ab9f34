"""UniCodec's semantic training stage: masked-frame prediction with a wav2vec 2.0 contrastive loss.

What the official recipe does (github Jiang-Yidi/UniCodec, `decoder/experiment_contrastive.py`,
`decoder/loss.py` `Wav2vecCriterion`, `encoder/modules/seanet.py`, fairseq's HuBERT defaults):
- spans of 3 SEANet frames (≈ 10 % of the frames, at least 2 spans, every clip of a batch the
  same number of masked frames) are replaced by the encoder's learned `mask_emb` before its
  Transformer; quantisation and the decoder then run on that masked encoding as usual;
- at each masked frame the quantised vector (straight-through), projected to 256-d, must pick
  out the *unmasked* SEANet feature of that frame, projected to 256-d, among 100 distractors
  drawn from the other masked frames of the same clip: cosine similarity / 0.1, cross-entropy
  summed over masked frames (a distractor equal to the target is set to -inf);
- the two 256-d projections are never optimised (they are not in the optimiser's parameter
  groups), so they stay at their random initialisation; here they are frozen parameters;
- the loss is weighted by 1e-3 (`ctr_loss_coeff`), beside mel ×45 and the GAN terms, and the
  decoder (Vocos backbone + ISTFT head) is frozen: encoder and quantiser train.

The stage is training-only: `UnicodecTokenizer.forward(..., semantic=objective)` in training
mode uses it; inference never masks. The objective lives in the training wrapper, so its
projections are checkpointed with the run but not exported with the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SemanticObjective", "span_mask"]


def span_mask(
    batch: int,
    frames: int,
    prob: float = 0.1,
    span: int = 3,
    min_spans: int = 2,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(batch, frames) bool: per clip ⌊prob·frames/span + u⌋ (≥ min_spans) spans of `span`
    frames at distinct random starts, then every row cut to the fewest masked frames of the
    batch (random frames kept), so the masked frames of a batch reshape to (B, M). Draws from
    torch's global generator (so resuming a run replays the same masks)."""
    span = max(1, min(span, frames - 1))
    starts_max = frames - span
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    for row in mask:
        count = int(prob * frames / span + torch.rand(()).item())
        count = min(max(min_spans, count), starts_max)
        starts = torch.randperm(starts_max)[:count]
        row[(starts[:, None] + torch.arange(span)).flatten()] = True
    fewest = int(mask.sum(1).min())
    for row in mask:
        masked = row.nonzero()[:, 0]
        if masked.numel() > fewest:
            row[masked[torch.randperm(masked.numel())[fewest:]]] = False
    return mask.to(device)


class SemanticObjective(nn.Module):
    """Masking + the contrastive loss of the semantic stage (see the module docstring).

    `encode(encoder, wave)` → (z (B, T, C) from the masked input, SEANet features (B, T, C),
    mask (B, T)); `forward(features, quantized, mask)` → the summed InfoNCE loss (scalar)."""

    def __init__(
        self,
        dim: int,
        final_dim: int = 256,
        negatives: int = 100,
        temperature: float = 0.1,
        mask_prob: float = 0.1,
        mask_span: int = 3,
    ):
        super().__init__()
        self.negatives, self.temperature = negatives, temperature
        self.mask_prob, self.mask_span = mask_prob, mask_span
        self.project_target = nn.Linear(dim, final_dim)
        self.project_prediction = nn.Linear(dim, final_dim)
        self.requires_grad_(False)  # the official projections stay at their initialisation

    def encode(
        self, encoder: nn.Module, wave: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The UniCodec encoder on (B, N) with masked spans of its SEANet output replaced by
        `encoder.mask_emb` before the Transformer."""
        features = encoder.convolutions(wave)
        b, t, _ = features.shape
        mask = span_mask(b, t, self.mask_prob, self.mask_span, device=features.device)
        masked = torch.where(mask[..., None], encoder.mask_emb.to(features.dtype), features)
        return encoder.transformer(masked), features, mask

    def distractors(self, targets: torch.Tensor) -> torch.Tensor:
        """targets (B, M, F) → (B, M, K, F): for each masked frame, K targets of other masked
        frames of the same clip, drawn with replacement."""
        b, m, _ = targets.shape
        own = torch.arange(m, device=targets.device).repeat_interleave(self.negatives)
        index = torch.randint(0, m - 1, (b, m * self.negatives), device=targets.device)
        index = index + (index >= own).long()  # skip the frame itself
        picked = torch.gather(targets, 1, index[..., None].expand(-1, -1, targets.shape[-1]))
        return picked.view(b, m, self.negatives, -1)

    def forward(
        self, features: torch.Tensor, quantized: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """features, quantized (B, T, C), mask (B, T) with the same count M ≥ 2 per row →
        Σ over masked frames of −log softmax(cos / τ)[target]."""
        b, c = features.shape[0], features.shape[-1]
        targets = self.project_target(features[mask].view(b, -1, c))
        predictions = self.project_prediction(quantized[mask].view(b, -1, c))
        negatives = self.distractors(targets)
        candidates = torch.cat([targets[:, :, None], negatives], dim=2)
        logits = (
            F.cosine_similarity(predictions[:, :, None].float(), candidates.float(), dim=-1)
            / self.temperature
        )
        same = (negatives == targets[:, :, None]).all(-1)
        logits = torch.cat([logits[..., :1], logits[..., 1:].masked_fill(same, float("-inf"))], -1)
        labels = torch.zeros(logits.shape[:-1].numel(), dtype=torch.long, device=logits.device)
        return F.cross_entropy(logits.flatten(0, 1), labels, reduction="sum")

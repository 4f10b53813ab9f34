"""MAE pretraining of a semantic encoder on accelerate (1 CPU, 1 GPU or N via `accelerate launch`).

Data are fixed-length crops drawn by global sample position (`CropTrainer`: the tokenizer
recipe's data), so a run is a pure function of its config and seed and resumes exactly; the
loop, checkpoints, logging and signals are the core's `Trainer`. The encoder is exported to
`output_dir/encoder` (`SemanticEncoder.save_pretrained`) at every checkpoint.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from sonotok.core.training import TrainResult

from ..semantic import SemanticEncoder
from ..train.trainer import CropTrainer
from .config import SemanticTrainConfig
from .model import MAEConfig, MaskedAutoencoder

logger = logging.getLogger(__name__)
NO_DECAY = ("time_pos_embed", "freq_pos_embed", "pos_embed", "mask_token")


class SemanticTrainResult(TrainResult):
    @property
    def encoder_dir(self) -> Path | None:
        """The exported SemanticEncoder folder (None if the run stopped early)."""
        return self.model_dir


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on biases, norms (1-D tensors) and embeddings (MAE)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (plain if p.ndim <= 1 or name.split(".")[-1] in NO_DECAY else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def build_mae(settings) -> MaskedAutoencoder:
    config = MAEConfig(
        encoder=settings.encoder,
        decoder_dim=settings.decoder_dim,
        decoder_depth=settings.decoder_depth,
        decoder_heads=settings.decoder_heads,
        mask_ratio=settings.mask_ratio,
        norm_pix_loss=settings.norm_pix_loss,
    )
    encoder = None
    if settings.init_encoder:
        encoder = SemanticEncoder.from_pretrained(settings.init_encoder)
        config.encoder = encoder.config
    return MaskedAutoencoder(config, encoder)


class SemanticTrainer(CropTrainer):
    """Builds data, model, optimizer and schedule from a `SemanticTrainConfig`; `run()` trains
    (see `Trainer`)."""

    name = "train semantic (MAE)"
    export_name = "encoder"
    result_type = SemanticTrainResult

    def __init__(self, config: SemanticTrainConfig, log_with: str | None = "config"):
        super().__init__(config, log_with)
        self.mae = build_mae(config.model).train()
        self.setup_model(self.mae, parameter_groups(self.mae, config.optim.weight_decay))
        self.micro_step = 0

    def _loss(self, batch: dict) -> torch.Tensor:
        """The masked-patch loss of one micro-batch. Masks come from their own generator,
        seeded by (seed, micro-batch, process), so a resumed run draws the masks an
        uninterrupted one would."""
        acc, seed = self.accelerator, self.config.train.seed
        masks = torch.Generator(acc.device).manual_seed(
            (seed * 1_000_003 + self.micro_step) * 1009 + acc.process_index
        )
        self.micro_step += 1
        return self.model(self.audio(batch), masks)["loss"]

    def train_step(self, micro_batches: list[dict]) -> dict[str, float]:
        return {**self.optimize(micro_batches, self._loss), **self.count_skipped()}

    def restore(self, state: dict) -> None:
        super().restore(state)
        self.micro_step = self.step * self.config.train.grad_accum

    def export(self) -> Path:
        """The encoder (with its learned init_bn statistics) as a SemanticEncoder folder."""
        self.shipped_model().encoder.save_pretrained(self.export_dir)
        return self.export_dir


def train_semantic(
    config: SemanticTrainConfig, resume=None, stop_after_steps: int | None = None
) -> SemanticTrainResult:
    """Build a `SemanticTrainer` and run it (see `Trainer.run`)."""
    return SemanticTrainer(config).run(resume, stop_after_steps)

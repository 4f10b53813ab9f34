"""One GAN solver for every discrete codec family (SQCodec, UniCodec, ...) on the shared trainer.

A family plugs in with a *codec recipe*: `register_codec_recipe("sqcodec", build)` where
`build(model_settings) -> (generator, tokenizer)`. The generator is the trainable codec, an
`nn.Module` whose `forward(audio (B, N))` returns a `CodecOutput` (reconstruction, the
quantizer's own losses, the codes); it shares its modules with `tokenizer`, the family's
`Tokenizer`, whose `save_pretrained` folder is the export (`output_dir/model`, loadable with
`load_tokenizer`). A model file never knows how it is trained: the generator wrapper and the
registration live beside this solver (`codec_families`) or in a test.

Each step updates the discriminators (hinge or least-squares, on real and detached fake
crops), then the generator on
L_G = mel·L_mel + waveform·MSE + adv·L_adv + fm·L_fm + Σ_name codec[name]·loss_name,
after `optim.mel_only_steps` steps without the GAN; the discriminators step every
`optim.discriminator_every` steps. Crops come from `data` (global sample positions, at the
codec's own rate); loop, checkpoints, exact resume, EMA and logging are the core `Trainer`'s
(through `GANTrainer` in `gan`, whose D/G step, validation and media logging the tokenizer
recipe shares). Codebook usage and perplexity are logged when codes are returned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from sonotok.core.errors import ConfigError
from sonotok.core.training import TrainResult

from ..interface import Tokenizer
from .codec_recipe import CodecModelSettings, CodecTrainConfig, check_frames
from .gan import GANTrainer, _add, _aligned
from .losses import MultiScaleMelLoss, discriminator_least_squares, generator_least_squares

__all__ = [
    "CodecGANTrainer",
    "CodecGenerator",
    "CodecOutput",
    "build_codec",
    "code_histogram",
    "codebook_stats",
    "codec_recipes",
    "register_codec_recipe",
    "train_codec",
]


class CodecOutput(NamedTuple):
    """What a trainable codec's forward returns (a tuple, so DDP and accelerate pass it on).

    audio: (B, N') reconstruction (compared on the first min(N, N') samples);
    losses: {name: scalar} the quantizer's own terms (commitment, codebook, ...), weighted by
    `loss.codec[name]` (default 1); codes: optional (B, T) or (B, T, K) integers for logging
    codebook usage."""

    audio: torch.Tensor
    losses: dict[str, torch.Tensor] = {}  # noqa: RUF012  (shared default; the solver only reads it)
    codes: torch.Tensor | None = None


class CodecGenerator(Protocol):
    """The trainable codec: `forward(audio (B, N)) -> CodecOutput`; an `nn.Module` sharing its
    parameters with the family's tokenizer (so exporting the tokenizer exports them)."""

    def __call__(self, audio: torch.Tensor) -> CodecOutput: ...


BuildFn = Callable[[CodecModelSettings], tuple[nn.Module, Tokenizer]]
_RECIPES: dict[str, BuildFn] = {}


def register_codec_recipe(family: str, build_fn: BuildFn | None = None) -> Callable:
    """Register `build_fn(model_settings) -> (generator, tokenizer)` for `model.family:
    <family>`; usable as `register_codec_recipe("x", fn)` or as a decorator."""

    def register(fn: BuildFn) -> BuildFn:
        _RECIPES[family] = fn
        return fn

    return register(build_fn) if build_fn is not None else register


def codec_recipes() -> dict[str, BuildFn]:
    """The registered codec recipes, by family name (sonotok's own families included)."""
    from . import codec_families  # noqa: F401  (registers the built-in families' recipes)

    return dict(_RECIPES)


def build_codec(settings: CodecModelSettings) -> tuple[nn.Module, Tokenizer]:
    """The generator and tokenizer of `settings.family` (call after seeding)."""
    recipes = codec_recipes()
    if settings.family not in recipes:
        raise ConfigError(
            f"model.family={settings.family!r} has no codec training recipe; choose one of "
            f"{sorted(recipes)}"
        )
    generator, tokenizer = recipes[settings.family](settings)
    if not isinstance(tokenizer, Tokenizer) or not isinstance(generator, nn.Module):
        raise TypeError(
            f"the {settings.family} codec recipe must return (nn.Module, Tokenizer), got "
            f"({type(generator).__name__}, {type(tokenizer).__name__})"
        )
    return generator, tokenizer


@torch.no_grad()
def code_histogram(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Codes (B, T) or (B, T, K) → (K, codebook_size) counts of each code in each codebook
    (histograms add up over micro-batches and processes, so the statistics are the step's)."""
    codes = codes.reshape(-1, 1) if codes.dim() == 2 else codes.reshape(-1, codes.shape[-1])
    return torch.stack([torch.bincount(c.long(), minlength=codebook_size).float() for c in codes.T])


@torch.no_grad()
def codebook_stats(counts: torch.Tensor) -> dict[str, float]:
    """(K, codebook_size) code counts → the mean over codebooks of the perplexity exp(H(p)) of
    the code distribution, and of the fraction of the codebook that was used."""
    p = counts / counts.sum(-1, keepdim=True)
    entropy = -torch.where(p > 0, p * p.clamp_min(1e-30).log(), 0).sum(-1)
    return {
        "codes/perplexity": entropy.exp().mean().item(),
        "codes/usage": (counts > 0).float().mean().item(),
    }


class CodecGANTrainer(GANTrainer):
    """Build everything from a `CodecTrainConfig`, then `run()` (see `Trainer`); the
    discriminator/generator step is `GANTrainer`'s, the generator loss (reconstruction + the
    codec's own terms) and codebook statistics are this recipe's."""

    name = "train codec"

    def __init__(self, config: CodecTrainConfig, log_with: str | None = "config"):
        super().__init__(config, log_with)
        cfg, acc = config, self.accelerator
        generator, self.tokenizer = build_codec(cfg.model)
        check_frames(cfg.data, self.tokenizer.hop_samples, cfg.model.family)
        self.sample_rate = self.crop_sample_rate = self.tokenizer.sample_rate
        self.tokenizer.to(acc.device)
        generator = generator.to(acc.device).train()
        trained = [p for p in generator.parameters() if p.requires_grad]
        self.setup_gan(generator, trained, cfg.optim.discriminator_grad_clip)
        self.mel_loss = MultiScaleMelLoss(self.sample_rate, cfg.loss.mel_scales).to(acc.device)
        if cfg.loss.gan == "least_squares":
            self.d_loss, self.g_loss = discriminator_least_squares, generator_least_squares
        self._counts: torch.Tensor | None = None  # this process's code histogram of the step

    # ---- one optimisation step --------------------------------------------------------
    def discriminators_due(self) -> bool:
        """Every optim.discriminator_every steps, counted from the first adversarial step."""
        o = self.config.optim
        return (self.step - o.mel_only_steps) % o.discriminator_every == 0

    def _codec_losses(self, out: CodecOutput, logs: dict, n: int) -> torch.Tensor:
        """Σ codec[name]·loss_name over the generator's own losses (logged unweighted)."""
        weights = self.config.loss.codec
        missing = sorted(set(weights) - set(out.losses))
        if missing:
            raise ConfigError(
                f"loss.codec names {missing}, but the {self.config.model.family} generator "
                f"returns the losses {sorted(out.losses)}; fix the names in loss.codec"
            )
        total = torch.zeros((), device=out.audio.device)
        for name, value in out.losses.items():
            total = total + weights.get(name, 1.0) * value
            _add(logs, f"loss/codec/{name}", value, n)
        return total

    def generator_loss(self, inputs: tuple, out: CodecOutput, logs: dict, n: int):
        """mel·L_mel + own losses (+ waveform·MSE); the codes join the step's histogram."""
        lam, size = self.config.loss, self.tokenizer.codebook_size
        real, fake = _aligned(inputs[0], out.audio)
        l_mel = self.mel_loss(real, fake)
        loss_g = lam.mel * l_mel + self._codec_losses(out, logs, n)
        if lam.waveform:
            l_wave = F.mse_loss(fake, real)
            loss_g = loss_g + lam.waveform * l_wave
            _add(logs, "loss/waveform", l_wave, n)
        _add(logs, "loss/mel", l_mel, n)
        if out.codes is not None and size:
            histogram = code_histogram(out.codes, size)
            self._counts = histogram if self._counts is None else self._counts + histogram
        return real, fake, loss_g

    def step_statistics(self) -> dict[str, float]:
        """Codebook usage and perplexity of the step's codes over all micro-batches and
        processes (collective)."""
        counts, self._counts = self._counts, None
        if counts is None:
            return {}
        return codebook_stats(self.accelerator.reduce(counts, reduction="sum"))

    def validation_statistics(self, out: CodecOutput) -> dict[str, float]:
        size = self.tokenizer.codebook_size
        if out.codes is None or not size:
            return {}
        stats = codebook_stats(code_histogram(out.codes, size))
        return {f"val/{k.split('/')[1]}": v for k, v in stats.items()}

    # ---- export -----------------------------------------------------------------------
    @torch.no_grad()
    def export(self) -> Path:
        """The tokenizer's save_pretrained folder `output_dir/model`, holding the EMA weights
        when enabled (copied into the shared modules for the save, then put back)."""
        if self.ema is None:
            self.tokenizer.save_pretrained(self.export_dir)
            return self.export_dir
        live = self.accelerator.unwrap_model(self.gen)
        backup = {k: v.detach().clone() for k, v in live.state_dict().items()}
        live.load_state_dict(self.ema.module.state_dict())
        try:
            self.tokenizer.save_pretrained(self.export_dir)
        finally:
            live.load_state_dict(backup)
        return self.export_dir


def check_model(config: CodecTrainConfig) -> Tokenizer:
    """Build the configured codec once (what `--check` runs): its config and the crop
    lengths against its hop are checked; returns the tokenizer."""
    _, tokenizer = build_codec(config.model)
    check_frames(config.data, tokenizer.hop_samples, config.model.family)
    return tokenizer


def train_codec(
    config: CodecTrainConfig,
    resume=None,
    stop_after_steps: int | None = None,
    log_with: str | None = "config",
) -> TrainResult:
    """Build a `CodecGANTrainer` and run it (see `Trainer.run`). `log_with`: "config"
    follows train.log_with; "tensorboard" or None override it."""
    return CodecGANTrainer(config, log_with).run(resume, stop_after_steps)

"""UniCodec ("Unified Audio Codec with Single Domain-Adaptive Codebook") as a sonotok tokenizer.

24 kHz audio → 75 frames/s → one code of 16,384 per frame (1.05 kbps) → 24 kHz audio. The codes
of a clip lie in the codebook partition of its domain (speech / music / sound), given
(`domain="speech"|"music"|"sound"`) or picked by the bundled classifier (`domain="auto"`, the
default: one decision per 10 s window). The domain is a load-time option (`from_pretrained(...,
domain=)`, or assign `tokenizer.domain`, which `encode_codes` uses) and a per-call one
(`encode(..., domain=)`, `codes_waves(waves, domain=)`). It is recoverable from the codes'
partition (`code_metadata`) and the decoder is the same for every domain (its AdaLayerNorm id is
always 0 at inference), so codes decode exactly with no side information; code files still
record it (`code_options`: "speech", or "speech@0,music@750" for a file that changes domain).

Loads the official Lightning checkpoint (hub `Yidiii/UniCodec_ckpt`, alias `unicodec`, or a
local `.ckpt` / folder holding one; see `loading.py`) and sonotok folders (config.json
`model_type: "unicodec"` + model.safetensors). `forward(wave, domain)` is the training view.

Long clips are processed in windows of `chunk_frames` (default 30 s) with `CONTEXT_FRAMES` of
context on each side; the encoder's Transformer and the decoder's pos-net attend over the whole
window, so the chunked result is close to, not identical to, one pass. Clips up to
`chunk_frames` are one pass. Mixed-length batches run clip by clip (equal to one by one).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import torch

from sonotok.core.errors import ConfigError
from sonotok.core.hub import CONFIG_NAME, HubMixin, resolve

from ..decoder import synthesize_chunked
from ..interface import Tokenizer, register_tokenizer
from .configs import DOMAINS, UnicodecConfig
from .decoder import UnicodecDecoder
from .domain import DomainClassifier
from .encoder import UnicodecEncoder
from .loading import (
    CHECKPOINT_PATTERNS,
    OFFICIAL_REPO,
    config_from_state,
    convert_state,
    find_checkpoint,
    read_state_dict,
)
from .quantizer import SimVQCodebook
from .semantic import SemanticObjective

ALIASES = ("unicodec",)
DOMAIN_CHOICES = ("auto", *DOMAINS)
CHUNK_FRAMES = 2250  # 30 s per pass: the attention is quadratic in the window
CONTEXT_FRAMES = 75  # 1 s of context on each side of a chunk


def check_domain(domain: str) -> str:
    if domain not in DOMAIN_CHOICES:
        raise ConfigError(
            f"domain {domain!r}: UniCodec knows {list(DOMAIN_CHOICES)} ('auto' picks per 10 s "
            "window with the bundled classifier)"
        )
    return domain


@register_tokenizer("unicodec")
class UnicodecTokenizer(HubMixin, Tokenizer):
    """Discrete: codes (T, 1) in [0, 16384); `encode` gives their 512-d code vectors
    ("latents") or the encoder's output before quantisation ("encoder")."""

    config_class = UnicodecConfig
    feature_names = ("latents", "encoder")
    hub_files = [CONFIG_NAME, "*.safetensors", *CHECKPOINT_PATTERNS]

    def __init__(self, config: UnicodecConfig | None = None, domain: str = "auto"):
        super().__init__()
        self.config = config = config or UnicodecConfig()
        self.encoder = UnicodecEncoder(config)
        self.quantizer = SimVQCodebook(config)
        self.decoder = UnicodecDecoder(config)
        self.domain = check_domain(domain)
        self._classifier: DomainClassifier | None = None

    # ---- facts ---------------------------------------------------------------------------
    sample_rate = property(lambda self: self.config.sample_rate)
    frame_rate = property(lambda self: self.config.frame_rate)
    latent_dim = property(lambda self: self.config.dimension)
    codebook_size = property(lambda self: self.config.codebook_size)
    num_codebooks = property(lambda self: 1)
    hop_samples = property(lambda self: self.config.hop_length)

    def num_latent_frames(self, num_samples: int) -> int:
        """ceil(N / hop): the encoder pads the last window full (decode gives T · hop ≥ N)."""
        return math.ceil(num_samples / self.hop_samples)

    def describe(self) -> dict:
        partitions = {d: list(self.config.partition(d)) for d in DOMAINS}
        return {**super().describe(), "domain": self.domain, "partitions": partitions}

    # ---- domains -------------------------------------------------------------------------
    @property
    def classifier(self) -> DomainClassifier:
        if self._classifier is None:  # kept out of the state dict: it ships on its own
            object.__setattr__(self, "_classifier", DomainClassifier.load().to(self.device))
        return self._classifier

    def frame_domains(self, wave: torch.Tensor, domain: str | None = None) -> list[str]:
        """The domain of each of the ceil(N / hop) frames of `wave` (N,): `domain` (default:
        the tokenizer's), or the classifier's decision for the window holding the frame."""
        domain = check_domain(domain or self.domain)
        frames = self.num_latent_frames(wave.shape[-1])
        if domain != "auto":
            return [domain] * frames
        out: list[str] = []
        for _, stop, name in self.classifier(wave, self.hop_samples):
            out += [name] * (math.ceil(stop / self.hop_samples) - len(out))
        return out

    #: what code files record per clip (`Tokenizer.code_options`); the codes carry it too
    code_option_names = ("domain",)

    def code_options(self, wave: torch.Tensor, codes: torch.Tensor) -> dict[str, str]:
        """{"domain": the clip's domain} — or, for a file whose windows differ, its runs as
        "speech@0,music@750" (domain@first frame) — read from the codes' partitions. Recorded
        in code files for people and tools; `decode` does not need it (see module docstring)."""
        segments = self.code_metadata(codes)["segments"]
        if len(segments) == 1:
            return {"domain": segments[0][2]}
        return {"domain": ",".join(f"{name}@{start}" for start, _, name in segments)}

    def code_metadata(self, codes: torch.Tensor) -> dict:
        """What a code file records about codes (T, 1): the domain, read from the codes'
        partitions (`domain`: the most common; `segments`: [start, stop, domain] frame runs).
        Decoding needs none of it: it is there for people and for re-encoding alike."""
        names = self.quantizer.domain_of_codes(codes)
        segments: list[list] = []
        for t, name in enumerate(names):
            if segments and segments[-1][2] == name:
                segments[-1][1] = t + 1
            else:
                segments.append([t, t + 1, name])
        common = Counter(names).most_common(1)
        return {"domain": common[0][0] if common else None, "segments": segments}

    # ---- the codec -----------------------------------------------------------------------
    def encoder_features(self, wave: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """(N,) → (ceil(N / hop), D) before quantisation, in windows of `chunk_frames`."""
        hop, total = self.hop_samples, self.num_latent_frames(wave.shape[-1])
        chunk = chunk_frames or CHUNK_FRAMES
        if total <= chunk:
            return self.encoder(wave[None])[0]
        parts = []
        for start in range(0, total, chunk):
            stop = min(total, start + chunk)
            left, right = max(0, start - CONTEXT_FRAMES), min(total, stop + CONTEXT_FRAMES)
            z = self.encoder(wave[None, left * hop : right * hop])[0]
            parts.append(z[start - left : stop - left])
        return torch.cat(parts)

    def _codes(
        self, wave: torch.Tensor, domain: str | None, chunk_frames: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder_features(wave, chunk_frames)
        names, step = self.frame_domains(wave, domain), chunk_frames or CHUNK_FRAMES
        codebook = self.quantizer.codebook()
        codes, vectors = [], []
        for start in range(0, z.shape[0], step):  # bounded memory: distances are T × 16384
            part = slice(start, start + step)
            c, v = self.quantizer.quantize(z[None, part], [names[part]], codebook)
            codes.append(c[0])
            vectors.append(v[0])
        return torch.cat(codes), torch.cat(vectors)

    def codes_waves(
        self, waves: list[torch.Tensor], domain: str | None = None, chunk_frames: int | None = None
    ) -> list[torch.Tensor]:
        return [self._codes(w, domain, chunk_frames)[0][:, None] for w in waves]

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return self.quantizer.embed(codes[..., 0].long())

    def encode_waves(
        self,
        waves: list[torch.Tensor],
        features: str,
        domain: str | None = None,
        chunk_frames: int | None = None,
    ) -> list[torch.Tensor]:
        if features == "encoder":
            return [self.encoder_features(w, chunk_frames) for w in waves]
        return [self._codes(w, domain, chunk_frames)[1] for w in waves]

    def decode_latents(
        self,
        latents: torch.Tensor,
        chunk_frames: int | None = None,
        progress=None,
        domain: str | None = None,
    ) -> torch.Tensor:
        """`domain` (what code files record) is accepted and checked, not used: the decoder is
        the same for every domain, and the code vectors already lie in their partition."""
        for part in (domain or "").split(","):
            if part:
                check_domain(part.split("@")[0])
        return synthesize_chunked(
            self.decoder,
            latents.float(),
            chunk_frames or CHUNK_FRAMES,
            CONTEXT_FRAMES,
            self.hop_samples,
            progress,
        )

    def forward(
        self,
        wave: torch.Tensor,
        domain: str | list[str],
        ids: torch.Tensor | None = None,
        semantic: SemanticObjective | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Training view: wave (B, N), one domain per clip (or one for all) → (reconstruction
        (B, ceil(N / hop) · hop), codes (B, T), {"commit": the SimVQ commitment loss}).
        `ids` are the decoder's AdaLayerNorm ids (training draws them; default 0). With
        `semantic` in training mode (the semantic stage, `semantic.py`) spans of the encoder
        input are masked and {"contrastive": its loss} is added."""
        masked = semantic is not None and self.training
        if masked:
            z, features, mask = semantic.encode(self.encoder, wave)
        else:
            z = self.encoder(wave)
        names = [domain] * wave.shape[0] if isinstance(domain, str) else list(domain)
        if len(names) != wave.shape[0]:
            raise ConfigError(f"got {len(names)} domains for a batch of {wave.shape[0]} clips")
        frames = [self.frame_domains(w, d) for w, d in zip(wave, names)]
        quantized, codes, commit = self.quantizer(z, frames)
        losses = {"commit": commit}
        if masked:
            losses["contrastive"] = semantic(features, quantized, mask)
        return self.decoder(quantized, ids), codes, losses

    # ---- checkpoints ---------------------------------------------------------------------
    @classmethod
    def claims(cls, name: str) -> bool:
        """`unicodec`, `Yidiii/UniCodec_ckpt`, or a local `.ckpt` (or a folder of them) whose
        file or folder name says UniCodec."""
        if name.lower() in ALIASES or name.rstrip("/") == OFFICIAL_REPO:
            return True
        path = Path(name).expanduser()
        files = sorted(path.glob("*.ckpt")) if path.is_dir() else [path]
        return any(
            f.suffix == ".ckpt" and "unicodec" in f"{path.name}/{f.name}".lower() for f in files
        )

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        compute_dtype=None,
        domain: str = "auto",
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> UnicodecTokenizer:
        """A sonotok folder or the official checkpoint (see the module docstring); `domain` is
        the default for every call ("auto" | "speech" | "music" | "sound")."""
        name = str(name_or_path)
        name = OFFICIAL_REPO if name.lower() in ALIASES else name
        path = resolve(
            name,
            allow_patterns=cls.hub_files,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            model = cls.load_path(path, name)
        else:
            file = find_checkpoint(path)
            state = read_state_dict(file)
            config = config_from_state(state, str(file))
            model = cls.from_state_dict(config, convert_state(state, str(file)), str(file))
        model.domain = check_domain(domain)
        return model.set_compute_dtype(compute_dtype).to(device or "cpu").eval()

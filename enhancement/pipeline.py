"""EnhancementPipeline: noisy audio at any rate and channel count → enhanced audio, same shape.

Glue only: resample each channel to 16 kHz, encode to latents, denoise them in
overlapping crossfaded chunks, decode, resample back, restore the length, mix dry/wet.
The model is either a tokenizer + trained `LatentDenoiser` (`TokenizerDenoiser`) or the
official dasheng-denoiser (`DashengDenoiser`); both expose encode_latents / denoise / synthesize.

Folder layout written by `save_pretrained` (and read by `from_pretrained`):
    config.json        {"model_type": "sonotok-enhancement", "denoiser": {...DenoiserConfig},
                        "tokenizer": "tokenizer" | hub id | absolute path}
    model.safetensors  the denoiser's weights
    tokenizer/         the tokenizer (its save_pretrained), unless the reference
                       names a hub id or an absolute folder
A folder so written loads wherever it is moved. A relative reference is read inside the folder
(the bundled sonotok-mini models share "../tokenizer"); one that is not there is an error.
The official dasheng-denoiser is saved in its own layout (`DashengDenoiser.save_pretrained`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonotok.core.audio import (
    check_wave,
    read_audio,
    resample,
    restore_rate_and_length,
    write_audio,
)
from sonotok.core.errors import AudioInputError, CheckpointError, ModelNotFoundError
from sonotok.core.hub import (
    PushToHubMixin,
    is_hub_id,
    model_card,
    read_config,
    resolve,
    write_pretrained,
)
from sonotok.core.io import check_finite
from sonotok.tokenizer.interface import Tokenizer, load_tokenizer

from .chunking import map_chunked
from .denoiser import MODEL_TYPE, LatentDenoiser
from .official import OFFICIAL_ID, DashengDenoiser, is_official_checkpoint

DEFAULT_MODEL = OFFICIAL_ID


class TokenizerDenoiser(nn.Module):
    """The paper's system: frozen tokenizer encoder → LatentDenoiser → tokenizer decoder."""

    def __init__(self, tokenizer: Tokenizer, denoiser: LatentDenoiser):
        super().__init__()
        if denoiser.config.latent_dim != tokenizer.latent_dim:
            raise CheckpointError(
                f"denoiser expects {denoiser.config.latent_dim}-d latents but the tokenizer makes "
                f"{tokenizer.latent_dim}-d ones; pair the denoiser with the tokenizer it was trained on"
            )
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.denoiser = denoiser

    @property
    def sample_rate(self) -> int:
        return self.tokenizer.sample_rate

    @property
    def output_sample_rate(self) -> int:
        """Hz of `synthesize`'s audio (the tokenizer's decoder may write at another rate)."""
        return self.tokenizer.output_sample_rate

    @property
    def hop_samples(self) -> int:
        return self.tokenizer.hop_samples

    @property
    def device(self) -> torch.device:
        return self.tokenizer.device

    def encode_latents(self, waves: list[torch.Tensor]) -> list[torch.Tensor]:
        return self.tokenizer.encode(list(waves))

    def denoise(self, latents: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.denoiser(latents, mask)

    def synthesize(self, latents: torch.Tensor, chunk_frames: int | None = 750) -> torch.Tensor:
        with torch.no_grad():
            return self.tokenizer.decode(latents, chunk_frames=chunk_frames)


class EnhancementPipeline(PushToHubMixin):
    """Enhance speech recordings of any rate, channel count and length.

    >>> pipe = EnhancementPipeline.from_pretrained("mispeech/dasheng-denoiser")
    >>> clean = pipe.enhance(noisy, sample_rate=44100)  # (N,) or (N, channels), same out

    chunk_seconds: latent chunk length for long inputs (None: whole file at once);
    crossfade_seconds: overlap blended between chunks; context_seconds: extra input on
    each side of a chunk for global-attention denoisers (windowed ones get exactly
    their receptive field, which makes the chunked result equal the one-pass result).
    """

    def __init__(
        self,
        model: TokenizerDenoiser | DashengDenoiser,
        chunk_seconds: float | None = 10.0,
        crossfade_seconds: float = 1.0,
        context_seconds: float = 2.0,
    ):
        self.model = model.eval()
        self.chunk_seconds = chunk_seconds
        self.crossfade_seconds = crossfade_seconds
        self.context_seconds = context_seconds

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.model.sample_rate / self.model.hop_samples

    # ---- latents ------------------------------------------------------------------------
    def _frames(self, seconds: float) -> int:
        return int(round(seconds * self.frame_rate))

    @torch.no_grad()
    def denoise_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, T, D) noisy latents of equal length → (B, T, D) denoised, chunked with crossfade."""
        radius = self.model.denoiser.config.receptive_radius
        context = radius if radius is not None else self._frames(self.context_seconds)
        chunk = None if self.chunk_seconds is None else max(2, self._frames(self.chunk_seconds))
        crossfade = 0 if chunk is None else min(self._frames(self.crossfade_seconds), chunk - 1)
        return map_chunked(self.model.denoise, latents, chunk, crossfade, context)

    # ---- audio --------------------------------------------------------------------------
    @torch.no_grad()
    def enhance_16k(self, waves: torch.Tensor) -> torch.Tensor:
        """(C, N) channels at the model rate → (C, N') enhanced at its output rate (N' = N when
        the two rates agree; the last partial frame is silent)."""
        n = round(waves.shape[-1] * self.model.output_sample_rate / self.sample_rate)
        for c, w in enumerate(waves):
            check_wave(w, f"channel {c}")
        latents = torch.stack(self.model.encode_latents(list(waves.float())))
        clean = self.denoise_latents(latents.to(self.model.device))
        out = self.model.synthesize(clean).float().cpu()
        return nn.functional.pad(out, (0, max(0, n - out.shape[-1])))[:, :n]

    def enhance(
        self, audio: np.ndarray | torch.Tensor, sample_rate: int, strength: float = 1.0
    ) -> np.ndarray | torch.Tensor:
        """audio (N,) or (N, channels) at `sample_rate` → enhanced audio of the same shape,
        rate and type. strength: 1 = fully enhanced, 0 = the input, between: a dry/wet mix."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength={strength}; choose a value in [0, 1] (1 = fully enhanced)")
        is_tensor = isinstance(audio, torch.Tensor)
        x = (
            audio.detach().cpu().float().numpy()
            if is_tensor
            else np.asarray(audio, dtype=np.float32)
        )
        if x.ndim not in (1, 2):
            raise AudioInputError(f"audio has shape {x.shape}; pass (N,) or (N, channels)")
        frames = x if x.ndim == 2 else x[:, None]
        if frames.shape[0] == 0 or frames.shape[1] == 0:
            raise AudioInputError("the audio is empty; pass a recording with sound in it")
        if not np.isfinite(frames).all():
            raise AudioInputError("the audio contains NaN or infinite samples; replace them first")
        at_model_rate = resample(frames.T, sample_rate, self.sample_rate)  # (C, n), last axis
        enhanced = self.enhance_16k(torch.from_numpy(at_model_rate))
        n = frames.shape[0]
        rate = self.model.output_sample_rate
        y = restore_rate_and_length(enhanced, rate, sample_rate, n).numpy().T  # (n, C)
        y = strength * y + (1.0 - strength) * frames
        y = y if x.ndim == 2 else y[:, 0]
        return torch.from_numpy(np.ascontiguousarray(y)) if is_tensor else y

    def enhance_file(
        self, source: str | os.PathLike, target: str | os.PathLike, strength: float = 1.0
    ) -> None:
        """Read any soundfile-readable file, enhance it, write `target` (wav/flac, 16-bit,
        atomically) at the input's rate, channel count and length."""
        data, sr = read_audio(source)
        if data.shape[0] == 0:
            raise AudioInputError(f"{source}: the file holds no audio samples")
        try:
            out = self.enhance(data, sr, strength)
        except AudioInputError as err:
            raise AudioInputError(f"{source}: {err}") from None
        check_finite(out, "enhanced audio", source)  # a broken model must not write -1s
        write_audio(target, out, sr)

    # ---- checkpoints --------------------------------------------------------------------
    def save_pretrained(
        self, folder: str | os.PathLike, tokenizer_reference: str | os.PathLike | None = None
    ) -> Path:
        """Write a folder that loads wherever it is moved: the tokenizer is stored inside
        (folder/tokenizer) unless `tokenizer_reference` names a hub id or an existing
        tokenizer folder (stored as its absolute path). The official dasheng-denoiser is
        written in its own layout (config.yaml + model.safetensors)."""
        if isinstance(self.model, DashengDenoiser):
            return self.model.save_pretrained(folder)
        return save_enhancement(
            folder, self.model.denoiser, self.model.tokenizer, tokenizer_reference
        )

    def model_card(self, repo_id: str) -> str:
        if isinstance(self.model, DashengDenoiser):
            return self.model.model_card(repo_id)
        body = (
            "\nSpeech enhancement on a sonotok tokenizer's latents: a "
            f"{self.model.denoiser.config.num_layers}-layer latent denoiser, decoded by the "
            "tokenizer stored in `tokenizer/`. Enhance a file with "
            f"`sonotok enhance noisy.wav -o out/ --model {repo_id}`.\n"
        )
        return model_card(repo_id, type(self), ["speech-enhancement", MODEL_TYPE], body)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        tokenizer: Tokenizer | str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        compute_dtype: torch.dtype | str | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        **options,
    ) -> EnhancementPipeline:
        """Load an enhancement folder written by `save_pretrained` (or by `sonotok train
        enhancement`) or the official dasheng-denoiser (hub id, folder or `.pt`). None: the
        default denoiser, offline (DEFAULT_MODEL if cached, else the bundled sonotok-mini one).

        tokenizer: override the folder's tokenizer reference. revision, cache_dir, token,
        local_files_only: as in huggingface_hub (`sonotok.core.hub.resolve`); all but revision
        also apply to a tokenizer the folder names by hub id. options: chunk_seconds, ...
        """
        from sonotok.defaults import model_or_default

        name_or_path = model_or_default(name_or_path, "denoiser")
        hub = dict(cache_dir=cache_dir, token=token, local_files_only=local_files_only)
        path = resolve(
            name_or_path,
            allow_patterns=["*.json", "*.safetensors", "*.pt", "*.yaml", "tokenizer/*"],
            revision=revision,
            **hub,
        )
        values = read_config(path) if path.is_dir() and (path / "config.json").is_file() else {}
        if values.get("model_type") == MODEL_TYPE:
            denoiser = LatentDenoiser.load_path(path, str(name_or_path))
            if not isinstance(tokenizer, Tokenizer):
                location = tokenizer_location(path, tokenizer or values.get("tokenizer"))
                try:
                    tokenizer = load_tokenizer(location, **hub)
                except ModelNotFoundError as err:
                    raise ModelNotFoundError(
                        f"{path / 'config.json'} names the tokenizer {str(location)!r}, which "
                        f"cannot be found ({err}); pass the tokenizer folder as tokenizer=... "
                        "(--tokenizer FOLDER), e.g. when that name is a path relative to where "
                        "the model was trained"
                    ) from None
            model: nn.Module = TokenizerDenoiser(tokenizer, denoiser)
            model.tokenizer.set_compute_dtype(compute_dtype)
        elif is_official_checkpoint(path):
            model = DashengDenoiser.load_path(path, str(name_or_path))
            model.set_compute_dtype(_dtype(compute_dtype))
        else:
            raise CheckpointError(
                f"{name_or_path}: neither a sonotok enhancement folder (config.json with model_type "
                f"{MODEL_TYPE!r}) nor a dasheng-denoiser checkpoint (.pt or config.yaml + model.safetensors)"
            )
        return cls(model.to(device or "cpu").eval(), **options)


def tokenizer_location(folder: Path, reference) -> Path | str:
    """Where an enhancement folder's tokenizer reference points: inside the folder (a relative
    path), an absolute folder, or a hub id. A relative path that is not inside the folder (it
    was moved away from its tokenizer) is a ModelNotFoundError saying what to do."""
    where = folder / "config.json"
    if not reference or not isinstance(reference, (str, os.PathLike)):
        raise CheckpointError(
            f"{where} names no tokenizer; pass tokenizer='mispeech/dashengtokenizer' or a folder"
        )
    inside = folder / reference
    if inside.exists():
        return inside
    path = Path(reference).expanduser()
    if path.is_absolute() or path.exists():
        # (an existing relative path: an export written before references were made absolute,
        # loaded from the folder it was trained in)
        return path
    if is_hub_id(str(reference)):
        return str(reference)
    raise ModelNotFoundError(
        f"{where} names the tokenizer by the relative path {str(reference)!r}, which is not at "
        f"{inside} (the folder was moved away from its tokenizer); pass tokenizer=FOLDER "
        "(--tokenizer FOLDER), or re-save the pipeline with save_pretrained(), which stores the "
        "tokenizer inside the folder"
    )


def _dtype(name: torch.dtype | str | None) -> torch.dtype | None:
    table = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    return table.get(name, name) if isinstance(name, str) or name is None else name


def save_enhancement(
    folder: str | os.PathLike,
    denoiser: LatentDenoiser,
    tokenizer: Tokenizer | None,
    tokenizer_reference: str | os.PathLike | None = None,
) -> Path:
    """config.json + model.safetensors (+ tokenizer/ when no reference is given), atomic.

    `tokenizer_reference`: a hub id (kept as is) or an existing tokenizer folder (a relative
    path is read from the current directory, like any path argument; stored absolute), so
    the folder does not depend on where it was written from."""
    folder = Path(folder)
    if tokenizer_reference is None:
        if tokenizer is None:
            raise ValueError("give a tokenizer to save or a tokenizer_reference")
        tokenizer.save_pretrained(folder / "tokenizer")
        reference = "tokenizer"
    else:
        reference = portable_reference(tokenizer_reference, folder)
    config = {**denoiser.config_dict(), "tokenizer": reference}
    return write_pretrained(folder, config, denoiser.state_dict())


def portable_reference(reference: str | os.PathLike, folder: Path) -> str:
    """An existing local folder → its absolute path; a hub id → itself; else an error."""
    path = Path(reference).expanduser()
    if path.exists():
        return str(path.resolve())
    if is_hub_id(str(reference)):
        return str(reference)
    raise ModelNotFoundError(
        f"tokenizer_reference {str(reference)!r} for {folder}: no such folder (relative paths "
        "are read from the current directory) and not a hub id 'owner/name'; pass an existing "
        "tokenizer folder, a hub id, or no reference to store the tokenizer inside the folder"
    )

"""UniCodec's one domain-partitioned SimVQ codebook.

SimVQ (Zhu et al. 2024) keeps a frozen random codebook E and learns only a linear map W: the
codes are the rows of W(E). UniCodec splits the 16,384 rows by domain — speech [0, 4096),
music [4096, 8192), sound [8192, 16384) — and each frame is quantised to the nearest row inside
its clip's (or window's) partition, which is how the domain "experts" of the codebook are kept
apart. The domain is therefore recoverable from any code (`domain_of_codes`), and decoding
needs nothing else.

Distances are computed with the official code's operations (|z|² + |e|² − 2 z·e), over the
partition's columns only (the official code fills the other partitions' columns with +inf);
codes are identical to the reference's (tests/tokenizer/unicodec/test_parity.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sonotok.core.errors import ConfigError

from .configs import DOMAINS, UnicodecConfig


class SimVQCodebook(nn.Module):
    """features (B, T, D) + one domain per frame → codes (B, T) and their embeddings."""

    def __init__(self, config: UnicodecConfig):
        super().__init__()
        self.config = config
        n, d = config.codebook_size, config.dimension
        self.embedding = nn.Embedding(n, d)  # frozen (SimVQ): only `proj` is trained
        self.embedding.weight.requires_grad_(False)
        nn.init.normal_(self.embedding.weight, std=d**-0.5)
        self.proj = nn.Linear(d, d)

    def codebook(self) -> torch.Tensor:
        """(codebook_size, D): the code vectors W(E)."""
        return self.proj(self.embedding.weight)

    @staticmethod
    def _nearest(z: torch.Tensor, codebook: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """z (N, D) → the index of the nearest code in [start, stop), by |z|² + |e|² − 2 z·e
        as the official code computes it (it masks the other partitions of the full distance
        matrix; only the partition's columns are computed here, with the same operations)."""
        part = codebook[start:stop]
        dist = (
            torch.sum(z**2, dim=1, keepdim=True)
            + torch.sum(part**2, dim=1)
            - 2 * torch.einsum("bd,dn->bn", z, part.T)
        )
        return dist.argmin(dim=1) + start

    def quantize(
        self,
        z: torch.Tensor,
        frame_domains: list[list[str]],
        codebook: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, T, D), `frame_domains[b][t]` → (codes (B, T) int64, code vectors (B, T, D)).
        Frames are independent, so a long clip may be quantised in pieces (pass `codebook`,
        computed once, to each)."""
        b, t, d = z.shape
        codebook = self.codebook() if codebook is None else codebook
        flat = z.reshape(-1, d)
        names = [name for row in frame_domains for name in row]
        codes = torch.empty(len(names), dtype=torch.long, device=z.device)
        for domain in sorted(set(names)):
            if domain not in DOMAINS:
                raise ConfigError(f"domain {domain!r}: choose one of {list(DOMAINS)} or 'auto'")
            rows = torch.tensor([i for i, n in enumerate(names) if n == domain], device=z.device)
            codes[rows] = self._nearest(flat[rows], codebook, *self.config.partition(domain))
        codes = codes.view(b, t)
        return codes, F.embedding(codes, codebook)

    def forward(
        self, z: torch.Tensor, frame_domains: list[list[str]]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training view: (straight-through quantised z, codes, commitment loss). The loss is
        the official "legacy" SimVQ one: |sg(q) − z|² + 0.25 · |q − sg(z)|²."""
        codes, q = self.quantize(z, frame_domains)
        loss = torch.mean((q.detach() - z) ** 2) + 0.25 * torch.mean((q - z.detach()) ** 2)
        return z + (q - z).detach(), codes, loss

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (..., ) int64 → (..., D) their code vectors (what the decoder reads)."""
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.codebook_size):
            raise ConfigError(
                f"codes range over [{int(codes.min())}, {int(codes.max())}]; UniCodec codes lie "
                f"in [0, {self.config.codebook_size}) — were they made by another model?"
            )
        return self.proj(F.embedding(codes, self.embedding.weight))  # only the rows used

    def domain_of_codes(self, codes: torch.Tensor) -> list[str]:
        """The domain of each code (flattened), read from its partition."""
        quarter = self.config.codebook_size // 4
        part = torch.clamp(torch.as_tensor(codes).flatten() // quarter, max=2)
        return [DOMAINS[int(p)] for p in part]

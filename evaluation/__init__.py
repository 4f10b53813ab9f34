"""sonotok.evaluation: the metrics papers report, computed the standard way, and reports
people can listen to (metrics.json + static report.html).

Metric functions take 1-D waves (tensors or arrays); the ``evaluate_*`` functions run a whole
task over files and return the dict ``write_report`` writes. Model-based metrics import their
packages lazily (``pip install 'sonotok[eval]'``).
"""

from .data import EvaluationInputError, Item, discover, pair, read_captions
from .distribution import (
    cosine_similarity,
    frechet_distance,
    frechet_distance_from_embeddings,
    gaussian_stats,
    kl_divergence_sigmoid,
    kl_divergence_softmax,
)
from .embedders import (
    EMBEDDERS,
    EmbedderUnavailableError,
    EmbeddingCache,
    SonotokEmbedder,
    build_embedder,
    embed_item,
)
from .enhance import enhancement_metrics, evaluate_enhancement
from .generate import evaluate_generation
from .quality import MissingDependencyError, SpeakerSimilarity, dnsmos
from .reconstruct import evaluate_reconstruction, reconstruction_metrics
from .report import Clip, Example, write_report
from .spectral import MEL_DISTANCE, STFT_DISTANCE, SpectralDistance, mel_distance, stft_distance
from .speech import pesq_wb, si_sdr, speech_metrics, stoi
from .stats import mean_ci95, summarize

__all__ = [
    "EMBEDDERS",
    "MEL_DISTANCE",
    "STFT_DISTANCE",
    "Clip",
    "EmbedderUnavailableError",
    "EmbeddingCache",
    "EvaluationInputError",
    "Example",
    "Item",
    "MissingDependencyError",
    "SonotokEmbedder",
    "SpeakerSimilarity",
    "SpectralDistance",
    "build_embedder",
    "cosine_similarity",
    "discover",
    "dnsmos",
    "embed_item",
    "enhancement_metrics",
    "evaluate_enhancement",
    "evaluate_generation",
    "evaluate_reconstruction",
    "frechet_distance",
    "frechet_distance_from_embeddings",
    "gaussian_stats",
    "kl_divergence_sigmoid",
    "kl_divergence_softmax",
    "mean_ci95",
    "mel_distance",
    "pair",
    "pesq_wb",
    "read_captions",
    "reconstruction_metrics",
    "si_sdr",
    "speech_metrics",
    "stft_distance",
    "stoi",
    "summarize",
    "write_report",
]

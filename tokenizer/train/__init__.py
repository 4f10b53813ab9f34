"""sonotok.tokenizer.train: the tokenizer GAN recipe on accelerate, plus generic training
plumbing other trainers import.

Generic pieces (no tokenizer specifics):
- `config`: the core's one YAML loader (`sonotok.core.config.load_yaml_config`) re-exported.
- `sampling`: deterministic, sharded, resumable sample positions.

Tokenizer recipe: `recipe` (settings), `data` (audio sources → crops), `discriminators`,
`losses`, `validation`, `gan` (`CropTrainer`, `GANTrainer`, on the core's `Trainer`),
`trainer` (`train_tokenizer`).

Codec recipe (every discrete codec family): `codec_recipe` (settings), `codec`
(`CodecGANTrainer`, `register_codec_recipe`, `train_codec`), `codec_families` (SQCodec, UniCodec).

Importing this package does not import accelerate or datasets; the trainer does.
"""

from .config import apply_overrides, build, dump_yaml, load_config, to_dict
from .recipe import TokenizerTrainConfig
from .sampling import ShardedPositionSampler, position_rng, weighted_choice

__all__ = [
    "ShardedPositionSampler",
    "TokenizerTrainConfig",
    "apply_overrides",
    "build",
    "dump_yaml",
    "load_config",
    "position_rng",
    "to_dict",
    "train_tokenizer",
    "weighted_choice",
]


def train_tokenizer(*args, **kwargs):
    """See `sonotok.tokenizer.train.trainer.train_tokenizer` (imported lazily: it needs accelerate)."""
    from .trainer import train_tokenizer as run

    return run(*args, **kwargs)

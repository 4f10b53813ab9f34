"""Loading the official release layout strictly and safely (no unpickling, exact keys)."""

import numpy as np
import pytest
import torch

from sonotok.core.errors import CheckpointError, ModelNotFoundError
from sonotok.tokenizer.semanticodec import SemantiCodec
from sonotok.tokenizer.semanticodec.configs import centroid_file, checkpoint_folder
from sonotok.tokenizer.semanticodec.loading import official_encoder_state

# official LSTM depth per token rate (the reference's get_config)
LSTM_LAYERS = {100: 4, 50: 3, 25: 2}
OVERRIDES = {"num_heads": 2, "contextual_depth": 0}


def write_release(folder, codec, rate, vocab, extra=None, drop=None):
    """`codec`'s encoder as the hub repo lays it out: encoder.ckpt + the centroid .npy."""
    state, centroids = official_encoder_state(codec.encoder)
    state.update(extra or {})
    for key in drop or ():
        del state[key]
    ckpt = folder / checkpoint_folder(rate) / "encoder.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, ckpt)
    npy = folder / centroid_file(rate, vocab)
    npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(npy, centroids.numpy())
    return ckpt, npy


@pytest.mark.parametrize("rate", [100, 50, 25])
@pytest.mark.parametrize("vocab", [4096, 32768])
def test_every_configuration_loads_with_its_shapes(make_codec, tmp_path, rate, vocab):
    source = make_codec(rate, lstm_layers=LSTM_LAYERS[rate], num_centroids=vocab // 2048)
    write_release(tmp_path, source, rate, vocab)
    loaded = SemantiCodec.from_pretrained(
        f"{tmp_path}:{rate}tps-{vocab}", decoder=False, overrides=OVERRIDES
    )
    config = loaded.config
    assert (config.token_rate, config.semantic_vocab_size) == (rate, vocab)
    assert config.lstm_layers == LSTM_LAYERS[rate] and config.num_centroids == vocab // 2048
    assert config.feature_dim == 8 * (100 // rate) and config.embed_dim == 8
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    wave = torch.randn(3000) * 0.1
    assert torch.equal(loaded.encode_codes(wave), source.encode_codes(wave))


def test_unknown_or_missing_keys_are_refused(make_codec, tmp_path):
    codec = make_codec(100)
    write_release(tmp_path / "a", codec, 100, 4096, extra={"quantizer.extra_table": torch.ones(2)})
    with pytest.raises(CheckpointError, match="quantizer.extra_table"):
        SemantiCodec.from_pretrained(
            f"{tmp_path / 'a'}:100tps-4096", decoder=False, overrides=OVERRIDES
        )
    write_release(tmp_path / "b", codec, 100, 4096, drop=["encoder_output_linear.weight"])
    with pytest.raises(CheckpointError, match="residual_proj.weight"):
        SemantiCodec.from_pretrained(
            f"{tmp_path / 'b'}:100tps-4096", decoder=False, overrides=OVERRIDES
        )


def test_mae_decoder_and_ema_statistics_are_dropped(make_codec, tmp_path):
    codec = make_codec(100)
    extra = {
        "audiomae.model.decoder_embed.weight": torch.ones(4, 8),
        "audiomae.model.mask_token": torch.zeros(1, 1, 4),
        "quantizer._codebook.embed_avg": torch.zeros(1, 32, 8),
        "quantizer._codebook.initted": torch.tensor(True),
    }
    write_release(tmp_path, codec, 100, 4096, extra=extra)
    loaded = SemantiCodec.from_pretrained(
        f"{tmp_path}:100tps-4096", decoder=False, overrides=OVERRIDES
    )
    assert torch.equal(loaded.encoder.acoustic_codebook, codec.encoder.acoustic_codebook)


class Sneaky:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickled_objects_are_never_executed(make_codec, tmp_path, capsys):
    ckpt, npy = write_release(tmp_path, make_codec(100), 100, 4096)
    torch.save({"weights": Sneaky()}, ckpt)
    with pytest.raises(CheckpointError, match="refused"):
        SemantiCodec.from_pretrained(f"{tmp_path}:100tps-4096", decoder=False, overrides=OVERRIDES)
    write_release(tmp_path, make_codec(100), 100, 4096)
    with open(npy, "wb") as handle:
        np.save(handle, np.array([Sneaky()], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="not a plain .npy"):
        SemantiCodec.from_pretrained(f"{tmp_path}:100tps-4096", decoder=False, overrides=OVERRIDES)
    assert "unpickled" not in capsys.readouterr().out  # what a bare torch.load would print


def test_centroids_of_another_token_rate_are_refused(make_codec, tmp_path):
    _, npy = write_release(tmp_path, make_codec(100), 100, 4096)
    np.save(npy, np.zeros((4, 16), dtype=np.float32))  # 50 tokens/s width
    with pytest.raises(CheckpointError, match="another token rate"):
        SemantiCodec.from_pretrained(f"{tmp_path}:100tps-4096", decoder=False, overrides=OVERRIDES)


def test_missing_files_name_the_download(tmp_path):
    (tmp_path / "semanticodec_tokenrate_50").mkdir()
    with pytest.raises(ModelNotFoundError, match="hf download haoheliu/SemantiCodec"):
        SemantiCodec.from_pretrained(f"{tmp_path}:50tps-8192", decoder=False)


def test_missing_decoder_says_how_to_skip_it(make_codec, tmp_path):
    write_release(tmp_path, make_codec(100), 100, 4096)
    with pytest.raises(ModelNotFoundError, match="decoder=False"):
        SemantiCodec.from_pretrained(f"{tmp_path}:100tps-4096", overrides=OVERRIDES)

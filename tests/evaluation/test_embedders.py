"""Embedders: real architectures and loading code, exercised offline with random weights."""

import urllib.error

import numpy as np
import pytest
import torch

from sonotok.evaluation import (
    EmbedderUnavailableError,
    EmbeddingCache,
    Item,
    SonotokEmbedder,
    embed_item,
)
from sonotok.evaluation.clap import ClapEmbedder
from sonotok.evaluation.panns import VARIANTS, Cnn14, PANNsEmbedder
from sonotok.evaluation.spectral import mel_filters
from sonotok.evaluation.vggish import (
    VGGish,
    VGGishEmbedder,
    num_examples,
    vggish_examples,
    vggish_mel_matrix,
)
from sonotok.tokenizer import write_audio


def test_vggish_front_end_frames_and_mel_bands(tone):
    wave = torch.from_numpy(tone(16000 * 3))
    examples = vggish_examples(wave)
    # 3 s -> 1 + (48000 - 400) // 160 = 298 frames -> 3 whole 96-frame examples
    assert examples.shape == (3, 1, 96, 64) and num_examples(48000) == 3
    weights = vggish_mel_matrix()
    assert weights.shape == (257, 64) and torch.all(weights[0] == 0)
    peaks = weights.argmax(dim=0) * 8000 / 256  # band centres rise from ~125 Hz to ~7.5 kHz
    assert (
        torch.all(peaks[1:] >= peaks[:-1]) and 125 <= peaks[0] <= 250 and 6500 <= peaks[-1] <= 7500
    )
    assert vggish_examples(torch.zeros(1000)).shape == (1, 1, 96, 64)  # short clips padded


def test_vggish_loads_released_layout_strictly_and_embeds(tmp_path, tone):
    torch.manual_seed(0)
    state = VGGish().state_dict()
    assert "features.13.weight" in state and "embeddings.4.weight" in state  # torchvggish names
    torch.save(state, tmp_path / "vggish.pth")
    embedder = VGGishEmbedder.from_pretrained(str(tmp_path / "vggish.pth"))
    out = embedder.embed(torch.from_numpy(tone(16000 * 2)))
    assert out["embedding"].shape == (2, 128) and np.isfinite(out["embedding"]).all()


def test_missing_download_gives_clear_offline_message(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(EmbedderUnavailableError, match="--vggish-weights PATH"):
        VGGishEmbedder.from_pretrained()
    with pytest.raises(EmbedderUnavailableError, match="--panns-weights PATH"):
        PANNsEmbedder.from_pretrained()


def test_cnn14_front_end_equals_power_mel_of_torch_stft(tone):
    model = Cnn14(VARIANTS["16k"]).eval()
    wave = torch.from_numpy(tone(16000))[None]
    power = model.spectrogram_extractor.stft(wave)[0, 0]  # (frames, 257)
    spec = torch.stft(
        wave,
        512,
        160,
        window=torch.hann_window(512),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    assert torch.allclose(power, spec.abs().pow(2)[0].T, rtol=1e-3, atol=1e-3)
    assert torch.equal(model.logmel_extractor.melW, mel_filters(16000, 512, 64, 50.0, 8000.0).T)


def test_cnn14_checkpoint_in_released_layout_loads_strictly(tmp_path, tone):
    torch.manual_seed(0)
    state = Cnn14(VARIANTS["16k"]).state_dict()
    for key in (
        "spectrogram_extractor.stft.conv_real.weight",
        "logmel_extractor.melW",
        "bn0.running_var",
        "conv_block6.bn2.weight",
        "fc1.weight",
        "fc_audioset.bias",
    ):
        assert key in state
    torch.save({"model": state}, tmp_path / "cnn14.pth")  # Zenodo files wrap the state in "model"
    embedder = PANNsEmbedder.from_pretrained(str(tmp_path / "cnn14.pth"))
    out = embedder.embed(torch.from_numpy(tone(4000)))  # shorter than 32 frames: padded
    assert out["embedding"].shape == (1, 2048) and out["logits"].shape == (527,)
    assert (out["embedding"] >= 0).all()


def test_clap_offline_fails_with_instructions(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
    with pytest.raises(EmbedderUnavailableError, match="--clap-model FOLDER"):
        ClapEmbedder.from_pretrained("laion/clap-htsat-unfused")


def test_clap_resolves_hub_ids_through_core_hub_with_the_options(monkeypatch, tmp_path):
    """Without safetensors in the snapshot, the .bin weights are fetched instead (never both)."""
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(tmp_path)  # an empty snapshot: transformers then fails to load it

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(EmbedderUnavailableError, match="--clap-model FOLDER"):
        ClapEmbedder.from_pretrained("laion/clap-htsat-unfused", revision="r1", token="t")
    asked = [(repo, kw["allow_patterns"][-1], kw["revision"], kw["token"]) for repo, kw in calls]
    assert asked == [
        ("laion/clap-htsat-unfused", "*.safetensors", "r1", "t"),
        ("laion/clap-htsat-unfused", "*.bin", "r1", "t"),
    ]


def test_sonotok_embedder_is_mean_semantic_latent(tiny_tokenizer, tone):
    embedder = SonotokEmbedder(tiny_tokenizer)
    wave = torch.from_numpy(tone(16000 * 2))
    out = embedder.embed(wave)["embedding"]
    z = tiny_tokenizer.encode(wave, features="semantic")
    assert out.shape == (1, tiny_tokenizer.latent_dim)
    assert np.allclose(out[0], z.mean(0).numpy(), atol=1e-6)
    assert embedder.cache_id == SonotokEmbedder(tiny_tokenizer).cache_id


def test_embedding_cache_reuses_results_by_file_content(tmp_path, tiny_tokenizer, tone):
    embedder = SonotokEmbedder(tiny_tokenizer)
    write_audio(tmp_path / "a.wav", tone(16000), 16000)
    (tmp_path / "copy").mkdir()
    write_audio(tmp_path / "copy" / "same.wav", tone(16000), 16000)
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_item(embedder, Item("a", tmp_path / "a.wav"), cache)
    again = embed_item(embedder, Item("same", tmp_path / "copy" / "same.wav"), cache)
    assert (cache.misses, cache.hits) == (1, 1)
    assert np.array_equal(first["embedding"], again["embedding"])
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1


def _tiny_clap() -> ClapEmbedder:
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(0)
    config = ClapConfig(
        text_config=dict(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=64, projection_dim=16),
        audio_config=dict(hidden_size=32, depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                          window_size=4, num_mel_bins=64, projection_dim=16),
        projection_dim=16,
    )  # fmt: skip

    def tokenizer(texts, padding=True, return_tensors="pt"):  # stands in for the RoBERTa tokenizer
        ids = torch.tensor([[0] + [2 + ord(c) % 90 for c in t[:8].ljust(8)] + [1] for t in texts])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    return ClapEmbedder(
        ClapModel(config), ClapFeatureExtractor(truncation="rand_trunc"), tokenizer, "clap-tiny"
    )


def test_clap_embedder_runs_transformers_clap_model(tone):
    clap = _tiny_clap()
    wave = torch.from_numpy(tone(48000 * 2, 48000))
    audio = clap.embed(wave)["embedding"]
    text = clap.embed_text(["a dog barks", "rain on a roof"])
    assert audio.shape == (1, 16) and text.shape == (2, 16)
    assert np.allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert np.allclose(clap.embed(wave)["embedding"], audio)  # clips up to 10 s: deterministic

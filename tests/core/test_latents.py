"""LatentFile: the latent file format, and how much of a latent file is trusted (nothing)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from sonotok.core.errors import AudioInputError, ModelOutputError
from sonotok.core.latents import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, LatentFile

MODEL = SimpleNamespace(latent_dim=8, frame_rate=25.0, sample_rate=16000)
GOOD_META = {
    "model": "tok",
    "features": "fused",
    "frame_rate": "25.0",
    "latent_sample_rate": "16000",
    "sample_rate": "44100",
    "num_samples": "88200",  # 2 s: 50 frames
    "channels": "2",
    "source": "in/a.wav",
}


def write(path, tensor=None, **meta):
    tensor = torch.randn(50, 8) if tensor is None else tensor
    save_file({"latents": tensor}, str(path), metadata={**GOOD_META, **meta})
    return path


def test_save_then_load_keeps_latents_and_metadata(tmp_path):
    z = torch.randn(50, 8)
    original = LatentFile(
        z,
        model="tok",
        frame_rate=25.0,
        latent_sample_rate=16000,
        sample_rate=44100,
        num_samples=88200,
        channels=2,
        source="in/a.wav",
        extra={"note": "kept"},
    )
    original.save(tmp_path / "a.safetensors")
    back = LatentFile.load(tmp_path / "a.safetensors")
    assert torch.equal(back.latents, z) and back.metadata() == original.metadata()
    assert back.metadata()["num_samples"] == "88200" and back.extra == {"note": "kept"}
    assert back.validate(MODEL, "tok") is None


def test_nan_latents_are_never_written(tmp_path):
    z = torch.zeros(5, 8)
    z[2, 3] = float("nan")
    with pytest.raises(ModelOutputError, match=r"in/a\.wav: NaN or infinite values in the latents"):
        LatentFile(z, source="in/a.wav").save(tmp_path / "a.safetensors")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "tensor, meta, message",
    [
        (torch.randn(1, 50, 8), {}, r"shape \(1, 50, 8\).*\(a batch of one: save z\[0\]\)"),
        (torch.ones(50, 8, dtype=torch.int32), {}, "torch.int32 values, not floats"),
        (torch.full((50, 8), float("inf")), {}, "NaN or infinite"),
        (torch.randn(0, 8), {}, "it is empty"),
        (None, {"num_samples": "1e10"}, r"num_samples='1e10' is not a whole number"),
        (None, {"num_samples": "-5"}, r"num_samples='-5' is not a whole number >= 1"),
        (None, {"num_samples": "0"}, r"num_samples='0'"),
        (None, {"sample_rate": "1"}, r"sample_rate=1 Hz is outside 1000–768000 Hz"),
        (None, {"frame_rate": "nan"}, r"frame_rate='nan' is not a positive number"),
    ],
)
def test_load_refuses_what_is_not_a_latent_file(tmp_path, tensor, meta, message):
    path = write(tmp_path / "x.safetensors", tensor, **meta)
    with pytest.raises(AudioInputError, match=message) as info:
        LatentFile.load(path)
    assert str(info.value).startswith(str(path))


def test_load_refuses_unreadable_files_and_other_tensors(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(AudioInputError, match="not a readable safetensors file"):
        LatentFile.load(tmp_path / "junk.safetensors")
    save_file({"embedding": torch.ones(3)}, str(tmp_path / "e.safetensors"))
    with pytest.raises(AudioInputError, match=r"no 'latents' tensor \(it has \['embedding'\]\)"):
        LatentFile.load(tmp_path / "e.safetensors")


@pytest.mark.parametrize(
    "meta, message",
    [
        (
            {"num_samples": "100000000"},
            r"num_samples=100000000 at 44100 Hz \(2267\.57 s\) does "
            r"not match its 50 latent frames \(2\.00 s\)",
        ),
        ({"num_samples": "44100"}, "does not match its 50 latent frames"),
        ({"sample_rate": "8000"}, "does not match"),  # 88200 samples at 8 kHz: 11 s
        ({"features": "semantic"}, "holds semantic features; only fused latents can be decoded"),
        ({"frame_rate": "50.0"}, "latents at 50 frames/s but the model works at 25"),
        ({"latent_sample_rate": "24000"}, "encoded at 24000 Hz but the model works at 16000 Hz"),
    ],
)
def test_validate_refuses_metadata_that_disagrees_with_the_latents(tmp_path, meta, message):
    latent = LatentFile.load(write(tmp_path / "x.safetensors", **meta))
    with pytest.raises(AudioInputError, match=message):
        latent.validate(MODEL, "tok")


def test_validate_refuses_another_latent_width(tmp_path):
    latent = LatentFile.load(write(tmp_path / "x.safetensors", torch.randn(50, 32)))
    with pytest.raises(AudioInputError, match=r"32-dimensional latents but the model makes 8-"):
        latent.validate(MODEL, "tok")


def test_num_samples_within_tolerance_of_the_frame_count_is_accepted(tmp_path):
    # T = (1 + N // 160) // 4 at 16 kHz: 20800 samples (1.3 s) give 32 frames, not 32.5
    latent = LatentFile.load(
        write(
            tmp_path / "x.safetensors", torch.randn(32, 8), sample_rate="16000", num_samples="20800"
        )
    )
    assert latent.validate(MODEL, "tok") is None


def test_another_model_name_warns_and_the_same_folder_does_not(tmp_path, monkeypatch):
    latent = LatentFile.load(write(tmp_path / "x.safetensors", model="other/model"))
    warning = latent.validate(MODEL, "tok")
    assert "encoded by model 'other/model' but decoded with 'tok'" in warning
    assert "--model other/model" in warning
    (tmp_path / "tok").mkdir()
    monkeypatch.chdir(tmp_path)
    latent = LatentFile.load(write(tmp_path / "y.safetensors", model=str(tmp_path / "tok")))
    assert latent.validate(MODEL, "./tok") is None  # two spellings of one folder


def test_rate_bounds_are_those_audio_files_are_read_with():
    from sonotok.core.audio import MAX_FILE_RATE, MIN_FILE_RATE

    assert (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE) == (MIN_FILE_RATE, MAX_FILE_RATE)

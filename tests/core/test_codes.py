"""CodeFile: the code file format of discrete tokenizers, and how much of one is trusted."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sonotok.core.codes import CodeFile, code_dtype, load_encoded
from sonotok.core.errors import AudioInputError
from sonotok.core.latents import LatentFile

# 2 codebooks of 1024 at 25 Hz: 25 · 2 · 10 = 500 bits/s
MODEL = SimpleNamespace(
    model_type="toy-coded",
    codebook_size=1024,
    num_codebooks=2,
    frame_rate=25.0,
    sample_rate=16000,
    bitrate=500.0,
    code_option_names=("domain",),
)
GOOD_META = {
    "model": "tok",
    "model_type": "toy-coded",
    "codebook_size": "1024",
    "num_codebooks": "2",
    "frame_rate": "25.0",
    "bitrate": "500.0",
    "latent_sample_rate": "16000",
    "sample_rate": "44100",
    "num_samples": "88200",  # 2 s: 50 frames
    "channels": "2",
    "source": "in/a.wav",
    "decode_options": '{"domain": "music"}',
}


def write(path, tensor=None, **meta):
    tensor = torch.randint(0, 1024, (50, 2), dtype=torch.int16) if tensor is None else tensor
    save_file({"codes": tensor}, str(path), metadata={**GOOD_META, **meta})
    return path


def test_save_then_load_keeps_codes_metadata_and_options(tmp_path):
    codes = torch.randint(0, 1024, (50, 2))
    original = CodeFile(
        codes,
        codebook_size=1024,
        model="tok",
        model_type="toy-coded",
        frame_rate=25.0,
        bitrate=500.0,
        latent_sample_rate=16000,
        sample_rate=44100,
        num_samples=88200,
        channels=2,
        source="in/a.wav",
        decode_options={"domain": "music", "gain": 0.5},
    )
    original.save(tmp_path / "a.safetensors")
    loaded = CodeFile.load(tmp_path / "a.safetensors")
    assert torch.equal(loaded.codes, codes) and loaded.codes.dtype == torch.int64
    assert loaded.metadata() == original.metadata()
    assert loaded.num_codebooks == 2 and loaded.decode_options == {"domain": "music", "gain": 0.5}
    takes_both = SimpleNamespace(**{**vars(MODEL), "code_option_names": ("domain", "gain")})
    assert loaded.validate(takes_both, "tok") is None
    with safe_open(str(tmp_path / "a.safetensors"), "pt") as f:  # stored small
        assert f.get_tensor("codes").dtype == torch.int16


def test_codes_are_stored_in_the_smallest_safe_integer_type():
    assert code_dtype(2**15) == torch.int16 and code_dtype(2**15 + 1) == torch.int32
    assert code_dtype(65536) == torch.int32  # int16 would wrap codes ≥ 32768 negative


def test_save_refuses_codes_load_would_refuse(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        CodeFile(torch.tensor([[0, 1024]]), codebook_size=1024).save(tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="integer"):
        CodeFile(torch.zeros(3, 2), codebook_size=1024).save(tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="finite"):
        CodeFile(torch.zeros(3, 2, dtype=torch.long), 1024, decode_options={"g": math.nan}).save(
            tmp_path / "x.safetensors"
        )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "tensor, meta, message",
    [
        (torch.rand(50, 2), {}, "float32 values, not integer codes"),
        (torch.zeros(1, 50, 2, dtype=torch.int16), {}, "has shape"),
        (torch.zeros(0, 2, dtype=torch.int16), {}, "has shape"),
        (torch.full((50, 2), 1024, dtype=torch.int16), {}, "code 1024, outside"),
        (torch.full((50, 2), -3, dtype=torch.int16), {}, "code -3, outside"),
        (None, {"codebook_size": "0"}, "codebook_size"),
        (None, {"num_codebooks": "3"}, "num_codebooks=3"),
        (None, {"frame_rate": "nan"}, "frame_rate"),
        (None, {"bitrate": "-1"}, "bitrate"),
        (None, {"sample_rate": "10"}, "outside"),
        (None, {"decode_options": "{not json"}, "not JSON"),
        (None, {"decode_options": "[1, 2]"}, "not a JSON object"),
        (None, {"decode_options": '{"domain": {"x": 1}}'}, "not a string or finite number"),
        (None, {"decode_options": '{"gain": NaN}'}, "not a string or finite number"),
        (None, {"decode_options": '{"flag": true}'}, "not a string or finite number"),
    ],
)
def test_load_refuses_what_is_not_a_code_file(tmp_path, tensor, meta, message):
    path = write(tmp_path / "bad.safetensors", tensor, **meta)
    with pytest.raises(AudioInputError, match=message) as err:
        CodeFile.load(path)
    assert str(path) in str(err.value)


def test_a_file_without_a_codebook_size_is_refused(tmp_path):
    path = tmp_path / "bare.safetensors"
    save_file({"codes": torch.zeros(50, 2, dtype=torch.int32)}, str(path))
    with pytest.raises(AudioInputError, match="codebook_size=None"):
        CodeFile.load(path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"codebook_size": 2048}, "1024 codes per codebook but the model uses 2048"),
        ({"num_codebooks": 4}, "2 codebooks but the model uses 4"),
        ({"frame_rate": 50.0}, "25 frames/s but the model works at 50"),
        ({"bitrate": 600.0}, "500 bits/s but the model works at 600"),
        ({"sample_rate": 24000}, "16000 Hz audio but the model uses 24000"),
        ({"model_type": "unicodec"}, "'toy-coded' model but the model is 'unicodec'"),
        ({"code_option_names": ()}, r"decode_options \['domain'\] are not options"),
        ({"codebook_size": None}, "continuous tokenizer"),
    ],
)
def test_validate_refuses_codes_the_model_cannot_decode(tmp_path, change, message):
    loaded = CodeFile.load(write(tmp_path / "a.safetensors"))
    model = SimpleNamespace(**{**vars(MODEL), **change})
    with pytest.raises(AudioInputError, match=message) as err:
        loaded.validate(model, "tok")
    assert "decode with the model that encoded it (it was made by tok)" in str(err.value)


def test_edited_num_samples_is_refused_and_another_model_name_warns(tmp_path):
    edited = CodeFile.load(write(tmp_path / "e.safetensors", num_samples="441000"))  # 10 s
    with pytest.raises(AudioInputError, match="does not match its 50 code frames"):
        edited.validate(MODEL)
    good = CodeFile.load(write(tmp_path / "g.safetensors"))
    warning = good.validate(MODEL, "finetuned")
    assert "encoded by model 'tok'" in warning and "--model tok" in warning


def test_load_encoded_tells_latent_and_code_files_apart_by_content(tmp_path):
    write(tmp_path / "codes.latents.safetensors")  # the name says latents; the content, codes
    LatentFile(torch.randn(4, 8)).save(tmp_path / "z.safetensors")
    save_file({"other": torch.zeros(2)}, str(tmp_path / "o.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    assert isinstance(load_encoded(tmp_path / "codes.latents.safetensors"), CodeFile)
    assert isinstance(load_encoded(tmp_path / "z.safetensors"), LatentFile)
    with pytest.raises(AudioInputError, match="neither a 'latents' nor a 'codes' tensor"):
        load_encoded(tmp_path / "o.safetensors")
    with pytest.raises(AudioInputError, match="not a readable safetensors file"):
        load_encoded(tmp_path / "junk.safetensors")


def test_each_codebook_has_its_own_range_and_the_file_records_it(tmp_path):
    codes = torch.stack([torch.full((50,), 1000), torch.full((50,), 255)], 1)  # 1024 and 256
    two = CodeFile(codes, codebook_size=1024, codebook_sizes=(1024, 256), frame_rate=25.0)
    two.save(tmp_path / "two.safetensors")
    loaded = CodeFile.load(tmp_path / "two.safetensors")
    assert loaded.codebook_sizes == (1024, 256) and loaded.tokens_per_second == 50.0
    meta = loaded.metadata()
    assert (meta["codebook_sizes"], meta["tokens_per_second"]) == ("1024,256", "50.0")
    codes[:, 1] = 256  # fits codebook_size, not the second codebook's own size
    with pytest.raises(ValueError, match=r"code 256, outside \[0, 256\) of codebook 1"):
        CodeFile(codes, 1024, codebook_sizes=(1024, 256)).save(tmp_path / "x.safetensors")
    bad = write(tmp_path / "b.safetensors", codes.to(torch.int16), codebook_sizes="1024,256")
    with pytest.raises(AudioInputError, match="code 256, outside"):
        CodeFile.load(bad)
    with pytest.raises(AudioInputError, match="sized \\[1024, 256\\] but the model's are"):
        loaded.validate(SimpleNamespace(**{**vars(MODEL), "codebook_sizes": (1024, 1024)}))


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"codebook_sizes": "1024"}, "do not fit 2 codebooks"),
        ({"codebook_sizes": "1024,2048"}, "at most codebook_size=1024"),
        ({"codebook_sizes": "1024,x"}, "not comma-separated integers"),
        ({"tokens_per_second": "25.0"}, "tokens_per_second=25 is not frame_rate × codebooks"),
    ],
)
def test_damaged_codebook_sizes_or_token_rate_are_refused(tmp_path, meta, message):
    with pytest.raises(AudioInputError, match=message):
        CodeFile.load(write(tmp_path / "d.safetensors", **meta))


def test_older_files_without_codebook_sizes_still_load_and_validate(tmp_path):
    old = CodeFile.load(write(tmp_path / "old.safetensors"))  # GOOD_META has no codebook_sizes
    assert old.codebook_sizes is None and old.sizes == (1024, 1024)
    sized = SimpleNamespace(**{**vars(MODEL), "codebook_sizes": (1024, 1024)})
    assert old.validate(sized, "tok") is None and old.validate(MODEL, "tok") is None
    assert old.metadata()["codebook_sizes"] == "1024,1024"  # re-saving records it
    high = torch.full((50, 2), 1023, dtype=torch.int16)  # both columns use codebook_size
    assert CodeFile.load(write(tmp_path / "h.safetensors", high)).codes.max() == 1023

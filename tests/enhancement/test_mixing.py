import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.enhancement.data import AudioSource, DataError, LatentPairs, MixedPairs, PairedFolders
from sonotok.enhancement.mixing import MixConfig, fit_length, mix, reverberate, snr


def test_mix_reaches_the_requested_snr(tone):
    clean = tone(16000, seed=1) * 0.3
    noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    for target in (-5.0, 0.0, 12.5):
        noisy, ref = mix(clean, noise, target)
        assert np.array_equal(ref, clean)
        assert snr(ref, noisy) == pytest.approx(target, abs=1e-3)


def test_gain_jitter_scales_both_and_nothing_clips(tone):
    clean = tone(16000, seed=2)  # peak 0.5
    noise = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    noisy, ref = mix(clean, noise, 0.0, gain_db=-6.0)
    assert np.allclose(ref, clean * 10 ** (-6 / 20), atol=1e-6)
    loud_noisy, loud_ref = mix(clean, noise, 0.0, gain_db=20.0)  # would reach ~10
    assert max(np.abs(loud_noisy).max(), np.abs(loud_ref).max()) == pytest.approx(0.99, abs=1e-5)
    assert snr(loud_ref, loud_noisy) == pytest.approx(0.0, abs=1e-3)  # both scaled together
    assert np.allclose(loud_ref / np.abs(loud_ref).max(), clean / np.abs(clean).max(), atol=1e-5)


def test_reverb_keeps_the_direct_path_aligned(tone):
    clean = tone(8000, seed=3)
    rir = np.zeros(400, np.float32)
    rir[100], rir[250] = 0.8, 0.4  # direct path at 100 samples, one echo 150 samples later
    wet = reverberate(clean, rir)
    expected = clean.copy()
    expected[150:] += 0.5 * clean[:-150]
    assert np.allclose(wet, expected, atol=1e-5)


def test_noise_is_looped_to_length():
    noise = np.arange(5, dtype=np.float32)
    assert fit_length(noise, 12, 3).tolist() == [3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]


def test_mixed_pairs_are_a_function_of_the_index(speech_dirs):
    clean_dir, noise_dir = speech_dirs
    data = MixedPairs(
        AudioSource(clean_dir, "clean"),
        AudioSource(noise_dir, "noise"),
        MixConfig(snr_db=(0, 10), gain_db=(-3, 3)),
        segment_samples=8000,
        seed=5,
    )
    a, b, again = data[3], data[4], data[3]
    assert a.noisy.shape == (8000,) and a.clean.shape == (8000,)
    assert np.array_equal(a.noisy, again.noisy) and np.array_equal(a.clean, again.clean)
    assert not np.array_equal(a.noisy, b.noisy)
    assert 0 - 3.5 < snr(a.clean.numpy(), a.noisy.numpy()) < 10 + 0.5
    with pytest.raises(ValueError, match="low end"):
        MixConfig(snr_db=(10, 0))


def test_paired_folders_match_names_and_crop_together(tmp_path, tone):
    for d in ("clean", "noisy"):
        (tmp_path / d / "spk1").mkdir(parents=True)
    for i in range(2):
        c = tone(24000, 48000, seed=i)
        sf.write(tmp_path / "clean" / "spk1" / f"p{i}.wav", c, 48000)
        sf.write(tmp_path / "noisy" / "spk1" / f"p{i}.wav", c + 0.1, 48000)
    data = PairedFolders(tmp_path / "noisy", tmp_path / "clean", segment_samples=4000, seed=0)
    e = data[0]
    assert e.noisy.shape == e.clean.shape == (4000,)
    assert np.allclose(e.noisy - e.clean, 0.1, atol=0.02)  # same crop (resampled to 16 kHz)
    sf.write(tmp_path / "noisy" / "extra.wav", tone(4000, 16000), 16000)
    with pytest.raises(DataError, match="no clean file of the same name.*extra.wav"):
        PairedFolders(tmp_path / "noisy", tmp_path / "clean", None, 0)


@pytest.mark.parametrize("storage", ["float32", "float16", "bfloat16"])
def test_latent_pairs_are_matched_by_key(tmp_path, storage):
    """Any storage `sonotok extract` writes (bfloat16 as raw uint16 bits) reads back as floats."""
    import datasets

    from sonotok.extraction.extract import to_storage

    arrow_dtype = "uint16" if storage == "bfloat16" else storage
    feats = datasets.Features(
        {
            "latents": datasets.Array2D(shape=(None, 4), dtype=arrow_dtype),
            "num_frames": datasets.Value("int32"),
            "id": datasets.Value("string"),
        }
    )
    rng = np.random.default_rng(0)
    clean = [rng.standard_normal((n, 4)).astype(np.float32).round(1) for n in (10, 6)]
    noisy = [clean[1] + 1, clean[0] + 1]  # stored in the other order
    for name, rows, ids in (("clean", clean, ["a", "b"]), ("noisy", noisy, ["b", "a"])):
        stored = [to_storage(torch.from_numpy(z), storage) for z in rows]
        datasets.Dataset.from_dict(
            {"latents": stored, "num_frames": [len(z) for z in rows], "id": ids}, features=feats
        ).save_to_disk(tmp_path / name)
    data = LatentPairs(str(tmp_path / "noisy"), str(tmp_path / "clean"), "id", None, seed=0)
    tolerance = {"float32": 1e-6, "float16": 2e-3, "bfloat16": 2e-2}[storage]
    for i in range(4):
        e = data[i]
        assert e.noisy.dtype == e.clean.dtype == torch.float32
        assert np.allclose(e.noisy.numpy() - e.clean.numpy(), 1.0, atol=2 * tolerance * 4)
        assert e.clean.abs().max() < 5  # real values, not bit patterns


def test_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="matched no audio files"):
        AudioSource(str(tmp_path / "nothing*.wav"), "clean")


def test_dataset_audio_column_is_a_source(tmp_path, speech_dirs):
    import datasets

    clean_dir, _ = speech_dirs
    files = sorted(str(p) for p in clean_dir.glob("*.wav"))[:2]
    ds = datasets.Dataset.from_dict({"audio": files}).cast_column("audio", datasets.Audio())
    ds.save_to_disk(tmp_path / "ds")
    source = AudioSource({"dataset": str(tmp_path / "ds"), "column": "audio"}, "clean")
    assert len(source) == 2
    expected, _ = sf.read(files[1], dtype="float32")
    assert np.allclose(source.read(1, 16000), expected, atol=1e-6)
    with pytest.raises(DataError, match="no column 'speech'"):
        AudioSource({"dataset": str(tmp_path / "ds"), "column": "speech"}, "clean")


def test_an_unreadable_training_file_costs_only_itself(tmp_path, speech_dirs, caplog):
    import shutil

    clean_dir, noise_dir = speech_dirs
    clean = tmp_path / "clean"
    shutil.copytree(clean_dir, clean)
    (clean / "c9_broken.wav").write_bytes(b"RIFF not really a wav file")
    data = MixedPairs(
        AudioSource(clean, "clean"),
        AudioSource(noise_dir, "noise"),
        MixConfig(snr_db=(0, 10), gain_db=(0, 0)),
        segment_samples=8000,
        seed=5,
    )
    with caplog.at_level("WARNING"):
        examples = [data[i] for i in range(14)]  # two epochs: the broken file is drawn twice
    assert all(e.noisy.shape == (8000,) and torch.isfinite(e.noisy).all() for e in examples)
    assert "c9_broken.wav" in caplog.text
    again = [data[i] for i in range(14)]  # the redraws are a function of the position too
    assert all(torch.equal(a.noisy, b.noisy) for a, b in zip(examples, again))
    (clean / "only.txt").write_text("")
    for f in clean.glob("*.wav"):
        f.write_bytes(b"RIFF broken")
    broken = MixedPairs(
        AudioSource(clean, "clean"),
        AudioSource(noise_dir, "noise"),
        MixConfig(),
        segment_samples=8000,
        seed=5,
    )
    broken.max_attempts = 3
    with pytest.raises(DataError, match="3 mixtures in a row"):
        broken[0]

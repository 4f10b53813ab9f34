"""Training data: sources, deterministic sharded crops, skipping bad and silent items."""

import io
import json

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.tokenizer import ConfigError
from sonotok.tokenizer.train.data import AudioCropDataset, SourceConfig, collate_crops, open_source
from sonotok.tokenizer.train.sampling import ShardedPositionSampler, position_rng, weighted_choice


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_two_shards_read_exactly_the_single_process_positions():
    one = _take(ShardedPositionSampler(4), 12)
    r0 = _take(ShardedPositionSampler(2, 2, 0), 6)
    r1 = _take(ShardedPositionSampler(2, 2, 1), 6)
    assert one == list(range(12))
    merged = [p for m in range(3) for p in r0[2 * m : 2 * m + 2] + r1[2 * m : 2 * m + 2]]
    assert merged == one
    assert _take(ShardedPositionSampler(2, 2, 1, start_position=8), 2) == [10, 11]


def test_weighted_choice_follows_weights():
    picks = [weighted_choice(position_rng(0, p), [1, 3]) for p in range(4000)]
    assert abs(np.mean(picks) - 0.75) < 0.03


def test_crops_are_a_function_of_seed_and_position(audio_folder):
    source = open_source(SourceConfig(path=str(audio_folder)))
    assert len(source) == 8
    a = AudioCropDataset([source], [1.0], 3200, seed=0)
    b = AudioCropDataset([source], [1.0], 3200, seed=0)
    assert all(torch.equal(a[p].wave, b[p].wave) for p in (5, 0, 17))
    assert not torch.equal(a[1].wave, AudioCropDataset([source], [1.0], 3200, seed=1)[1].wave)
    assert a[3].wave.shape == (3200,) and a[3].wave.dtype == torch.float32


def test_bad_file_is_skipped_and_counted(audio_folder):
    dataset = AudioCropDataset(
        [open_source(SourceConfig(path=str(audio_folder)))], [1.0], 3200, seed=0
    )
    batch = collate_crops([dataset[p] for p in range(80)])
    assert batch["audio"].shape == (80, 3200)
    assert batch["audio"].abs().amax(dim=1).min() > 0.05  # every crop holds sound
    assert 3 <= batch["unreadable"] <= 25  # one file in eight is broken
    assert len(batch["problems"]) == batch["unreadable"]
    assert all("broken.wav: skipped, unreadable" in m for m in batch["problems"])


def test_silent_and_short_items_are_redrawn(tmp_path, tone):
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "tiny.wav", tone(100), 16000)
    sf.write(tmp_path / "ok.wav", tone(2000), 16000)  # shorter than the crop: zero-padded
    dataset = AudioCropDataset([open_source(SourceConfig(path=str(tmp_path)))], [1.0], 3200, seed=0)
    crops = [dataset[p] for p in range(30)]
    assert sum(c.silent for c in crops) > 0 and sum(c.unreadable for c in crops) > 0
    assert any("tiny.wav" in m and "too short" in m for c in crops for m in c.problems)
    wave = crops[0].wave
    assert wave[:2000].abs().max() > 0.1 and torch.all(wave[2000:] == 0)


def test_only_unusable_items_stop_training_with_a_data_error(tmp_path):
    from sonotok.core.errors import DataError

    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "broken.wav").write_text("not audio")
    source = open_source(SourceConfig(path=str(tmp_path)))
    dataset = AudioCropDataset([source], [1.0], 3200, seed=0, max_attempts=20)
    with pytest.raises(DataError, match="20 draws in a row for sample position 4 were unusable"):
        dataset[4]


def test_check_sources_counts_usable_unreadable_and_silent_items(tmp_path, tone, audio_folder):
    from sonotok.tokenizer.train.data import check_sources

    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    sf.write(tmp_path / "quiet_start.wav", np.r_[np.zeros(8000), tone(24000)], 16000)
    (tmp_path / "broken.wav").write_text("not audio")
    sources = [open_source(SourceConfig(path=str(p))) for p in (tmp_path, audio_folder)]
    mixed, good = check_sources(sources, 3200)
    counts = (mixed.items, mixed.checked, mixed.usable, mixed.unreadable, mixed.silent)
    assert counts == (3, 3, 1, 1, 1)
    assert any("broken.wav: unreadable" in p for p in mixed.problems)
    assert (good.checked, good.usable, good.unreadable) == (8, 7, 1)
    mixed.require_usable()


def test_resampled_stereo_and_weights(tmp_path, tone):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    left = tone(44100, 44100)
    sf.write(
        tmp_path / "a" / "x.wav", np.stack([left, np.zeros_like(left)], 1), 44100, subtype="FLOAT"
    )
    sf.write(tmp_path / "b" / "y.wav", np.full(16000, 0.25, np.float32), 16000, subtype="FLOAT")
    sources = [open_source(SourceConfig(path=str(tmp_path / d))) for d in "ab"]
    crops = [AudioCropDataset(sources, [1.0, 9.0], 6400, seed=0)[p].wave for p in range(100)]
    from_b = [bool(torch.all(c == 0.25)) for c in crops]
    assert 80 <= sum(from_b) <= 98  # weights 1 : 9
    from_a = next(c for c, b in zip(crops, from_b) if not b)
    # channels averaged (right is silent, so peak ≈ half the left's 0.5 peak), 44.1 → 16 kHz
    assert 0.05 < from_a.abs().max() < 0.27 and from_a.shape == (6400,)


def test_manifest_and_hf_sources(tmp_path, tone):
    sf.write(tmp_path / "m.wav", tone(8000), 16000)
    (tmp_path / "list.txt").write_text("# comment\nm.wav\n")
    (tmp_path / "list.jsonl").write_text(json.dumps({"audio": "m.wav"}) + "\n")
    (tmp_path / "list.csv").write_text("path,label\nm.wav,x\n")
    for name in ("list.txt", "list.jsonl", "list.csv"):
        source = open_source(SourceConfig(path=str(tmp_path / name), type="manifest"))
        assert [source.path(i) for i in range(len(source))] == [tmp_path / "m.wav"]
    buf = io.BytesIO()
    sf.write(buf, tone(24000, 24000), 24000, format="WAV")
    ds = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": buf.getvalue(), "path": None}],
            "raw": [{"array": tone(8000).tolist(), "sampling_rate": 16000}],
        }
    ).cast_column("audio", datasets.Audio())
    ds.save_to_disk(str(tmp_path / "hf"))
    for column in ("audio", "raw"):
        source = open_source(
            SourceConfig(path=str(tmp_path / "hf"), type="hf", audio_column=column)
        )
        crop = AudioCropDataset([source], [1.0], 6400, seed=0)[0]
        assert crop.unreadable == 0 and crop.wave.shape == (6400,) and crop.wave.abs().max() > 0.1


def test_loader_batches_do_not_depend_on_worker_count(audio_folder):
    from torch.utils.data import DataLoader

    dataset = AudioCropDataset(
        [open_source(SourceConfig(path=str(audio_folder)))], [1.0], 3200, seed=0
    )

    def batches(workers):
        sampler = ShardedPositionSampler(3, 2, 1, start_position=12)
        loader = DataLoader(
            dataset, 3, sampler=sampler, num_workers=workers, collate_fn=collate_crops
        )
        it = iter(loader)
        return [next(it) for _ in range(3)]

    for a, b in zip(batches(0), batches(2)):
        assert torch.equal(a["audio"], b["audio"]) and a["unreadable"] == b["unreadable"]
    expected = torch.stack([dataset[p].wave for p in (15, 16, 17)])
    assert torch.equal(batches(0)[0]["audio"], expected)


def test_streamed_hf_source_is_cached_in_stream_order_and_sampled_deterministically(tmp_path, tone):
    encoded = []
    for i in range(5):
        buf = io.BytesIO()
        sf.write(buf, tone(8000, seed=i), 16000, format="WAV")
        encoded.append({"bytes": buf.getvalue(), "path": f"clip{i}.wav"})
    folder = tmp_path / "streamed"
    folder.mkdir()
    datasets.Dataset.from_dict({"audio": encoded, "id": list(range(5))}).to_parquet(
        str(folder / "train.parquet")
    )
    config = SourceConfig(path=str(folder), type="hf", streaming=True, max_items=3)
    source = open_source(config)
    assert len(source) == 3  # only the first max_items of the stream
    for i in range(3):
        np.testing.assert_allclose(source.open(i).read(), tone(8000, seed=i), atol=1 / 32768)
    again = open_source(config)  # the cache is reused: same items, same crops
    first = AudioCropDataset([source], [1.0], segment=3200, seed=7)
    second = AudioCropDataset([again], [1.0], segment=3200, seed=7)
    for position in (0, 5, 11):
        assert torch.equal(first[position].wave, second[position].wave)
        assert first[position].wave.abs().max() > 0.05


def test_streaming_is_only_for_hf_sources():
    with pytest.raises(ConfigError, match="streaming applies to type hf"):
        SourceConfig(path="x", type="folder", streaming=True)
    with pytest.raises(ConfigError, match="max_items must be >= 1"):
        SourceConfig(path="x", type="hf", streaming=True, max_items=0)

"""Fuzzing every audio-reading entry point with mutated wav/flac/ogg/mp3 files (issue 18).

Small valid files are written with soundfile, then mutated deterministically (seeded): header
fields (rates, channel counts, sample widths, stated lengths, codec ids), random byte flips,
truncation, zeroed, duplicated or appended bytes. Every mutant must be read or refused with one
`SonotokError` line — no other exception, no hang, no unbounded memory — by the readers
directly and by every command that reads audio, run in-process through `sonotok.cli.main`.
"""

from __future__ import annotations

import io
import resource
import signal
import struct
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sonotok.cli import main
from sonotok.core.audio import read_audio, read_clip, size_limit
from sonotok.core.errors import SonotokError
from sonotok.core.sources import decode_audio

SEED = 18
MUTANTS_PER_BASE = 32  # × 10 base files = 320 mutants
CLI_MUTANTS = 20  # of them, fed through every reading command (plus 3 fixed files)
READ_SECONDS = 2.0  # per file and reader; a valid file here reads in ~5 ms
# Per read (tracemalloc peak): SIZE_CHECK_FLOOR (2^22) samples may be decoded to mono float32
# (16 MB) and resampled (16 MB more), plus decode blocks; anything near the 4.4 GB of the
# unbounded case fails.
MAX_READ_BYTES = 96 << 20
MAX_RSS_GROWTH = 1 << 30  # the whole command run; ru_maxrss is in KiB on Linux
COMMAND_SECONDS = 60.0  # per command on CLI_MUTANTS + 2 files, model loading included

# (name, soundfile format, subtype, sample rate, channels)
BASES = [
    ("pcm16.wav", "WAV", "PCM_16", 22050, 2),
    ("float.wav", "WAV", "FLOAT", 16000, 1),
    ("adpcm.wav", "WAV", "IMA_ADPCM", 8000, 1),
    ("pcm16.flac", "FLAC", "PCM_16", 44100, 2),
    ("pcm24.flac", "FLAC", "PCM_24", 16000, 1),
    ("vorbis.ogg", "OGG", "VORBIS", 44100, 2),
    ("opus.ogg", "OGG", "OPUS", 48000, 1),
    ("stereo.mp3", "MP3", "MPEG_LAYER_III", 44100, 2),
    ("mono.mp3", "MP3", "MPEG_LAYER_III", 16000, 1),
    ("short.wav", "WAV", "PCM_U8", 8000, 1),
]


def _base_file(tone, name: str, fmt: str, subtype: str, rate: int, channels: int) -> bytes:
    seconds = 0.05 if name == "short.wav" else 0.3
    n = int(seconds * rate)
    wave = np.stack([tone(n, rate, seed=c) for c in range(channels)], 1)
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


# ---- mutations ------------------------------------------------------------------------------
def _put(data: bytearray, offset: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if 0 <= offset and offset + size <= len(data):
        struct.pack_into(fmt, data, offset, int(value) % (1 << (8 * size)))


def _pick(rng: np.random.Generator, values: list[int]) -> int:
    return int(values[rng.integers(len(values))])


RATES = [0, 1, 2, 999, 1000, 8000, 44100, 768000, 768001, 2**31 - 1, 2**32 - 1]
CHANNELS = [0, 1, 2, 3, 8, 255, 256, 1024, 1025, 65535]


def _wav_fields(data: bytearray, rng: np.random.Generator) -> str:
    fmt, body = data.find(b"fmt "), data.find(b"data")
    field = _pick(rng, list(range(7)))
    if field == 0:
        value = _pick(rng, RATES + [int(rng.integers(2**32))])
        _put(data, fmt + 12, "<I", value)
        return f"wav rate={value}"
    if field == 1:
        value = _pick(rng, CHANNELS)
        _put(data, fmt + 10, "<H", value)
        return f"wav channels={value}"
    if field == 2:
        value = _pick(rng, [0, 1, 4, 8, 12, 24, 32, 64, 65535])
        _put(data, fmt + 22, "<H", value)
        return f"wav bits={value}"
    if field == 3:
        value = _pick(rng, [0, 1, 3, 4096, 65535])
        _put(data, fmt + 20, "<H", value)
        return f"wav block_align={value}"
    if field == 4:
        value = _pick(rng, [0, 1, 2, 3, 6, 7, 0x11, 0x31, 0x55, 0xFFFE, 0xFFFF])
        _put(data, fmt + 8, "<H", value)
        return f"wav format_tag={value:#x}"
    if field == 5:
        value = _pick(rng, [0, 1, 2**31 - 1, 2**32 - 1, 2 * len(data)])
        _put(data, body + 4, "<I", value)
        return f"wav data_size={value}"
    value = _pick(rng, [0, 4, 2**32 - 1])
    _put(data, 4, "<I", value)
    return f"wav riff_size={value}"


def _flac_fields(data: bytearray, rng: np.random.Generator) -> str:
    info = int.from_bytes(data[18:26], "big")  # STREAMINFO: rate 20 b, ch-1 3 b, bps-1 5 b, N 36 b
    field = _pick(rng, list(range(5)))
    if field == 0:
        value = _pick(rng, [0, 1, 999, 1000, 655350, 768001, 2**20 - 1])
        info = info & ~(((1 << 20) - 1) << 44) | value << 44
        desc = f"flac rate={value}"
    elif field == 1:
        value = int(rng.integers(8))
        info = info & ~(7 << 41) | value << 41
        desc = f"flac channels={value + 1}"
    elif field == 2:
        value = int(rng.integers(32))
        info = info & ~(31 << 36) | value << 36
        desc = f"flac bits={value + 1}"
    elif field == 3:
        value = _pick(rng, [0, 1, 100, 2**32, 2**36 - 1])
        info = info & ~((1 << 36) - 1) | value
        desc = f"flac total_samples={value}"
    else:
        value = _pick(rng, [0, 1, 16, 65535])
        _put(data, 8 + 2 * int(rng.integers(2)), ">H", value)
        return f"flac block_size={value}"
    data[18:26] = info.to_bytes(8, "big")
    return desc


def _ogg_fields(data: bytearray, rng: np.random.Generator) -> str:
    vorbis, opus = data.find(b"\x01vorbis"), data.find(b"OpusHead")
    field = _pick(rng, list(range(4)))
    if field == 3:  # granule position of the last page: the stream's stated length
        last = data.rfind(b"OggS")
        value = _pick(rng, [0, 1, 2**40, 2**63 - 1, 2**64 - 1])
        _put(data, last + 6, "<Q", value)
        return f"ogg last_granule={value}"
    if vorbis >= 0:
        offset, fmt = [(vorbis + 11, "B"), (vorbis + 12, "<I"), (vorbis + 28, "B")][field]
    else:
        offset, fmt = [(opus + 9, "B"), (opus + 12, "<I"), (opus + 18, "B")][field]
    value = _pick(rng, [0, 1, 2, 8, 255] if fmt == "B" else RATES)
    _put(data, offset, fmt, value)
    return f"ogg field@{offset}={value}"


def _mp3_fields(data: bytearray, rng: np.random.Generator) -> str:
    xing = data.find(b"Xing")
    if xing >= 0 and rng.random() < 0.4:
        value = _pick(rng, [0, 1, 2**31, 2**32 - 1])
        _put(data, xing + 8, ">I", value)
        return f"mp3 xing_frames={value}"
    header = data.find(b"\xff", 1 if xing >= 0 and rng.random() < 0.5 else 0)
    byte = header + 1 + int(rng.integers(3))
    if byte < len(data):
        data[byte] = int(rng.integers(256))
    return f"mp3 frame_header[{byte}]"


FIELDS = {".wav": _wav_fields, ".flac": _flac_fields, ".ogg": _ogg_fields, ".mp3": _mp3_fields}


def _flip_bytes(data: bytearray, rng: np.random.Generator) -> str:
    count = int(rng.integers(1, 16))
    for _ in range(count):
        limit = min(len(data), 128) if rng.random() < 0.5 else len(data)
        data[int(rng.integers(limit))] = int(rng.integers(256))
    return f"{count} byte flips"


def _truncate(data: bytearray, rng: np.random.Generator) -> str:
    keep = int(rng.integers(len(data)))
    del data[keep:]
    return f"truncated to {keep}"


def _zero_region(data: bytearray, rng: np.random.Generator) -> str:
    start = int(rng.integers(len(data)))
    size = int(rng.integers(1, 512))
    data[start : start + size] = bytes(len(data[start : start + size]))
    return f"zeroed {size}@{start}"


def _duplicate_region(data: bytearray, rng: np.random.Generator) -> str:
    start = int(rng.integers(len(data)))
    piece = data[start : start + int(rng.integers(1, 2048))]
    at = int(rng.integers(len(data)))
    data[at:at] = piece * int(rng.integers(1, 4))
    return f"duplicated {len(piece)}@{start} into {at}"


def _append_garbage(data: bytearray, rng: np.random.Generator) -> str:
    size = int(rng.integers(1, 4096))
    data.extend(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    return f"appended {size}"


GENERIC = [_flip_bytes, _truncate, _zero_region, _duplicate_region, _append_garbage]


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_CRC = _ogg_crc_table()


def _fix_ogg_checksums(data: bytearray) -> None:
    """Recompute every parseable page's CRC so mutations reach the codec, not just libogg."""
    at = data.find(b"OggS")
    while 0 <= at and at + 27 <= len(data):
        segments = data[at + 26]
        end = at + 27 + segments + sum(data[at + 27 : at + 27 + segments])
        if end > len(data):
            return
        data[at + 22 : at + 26] = bytes(4)
        crc = 0
        for byte in data[at:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
        data[at + 22 : at + 26] = crc.to_bytes(4, "little")
        at = data.find(b"OggS", end)


def mutate(base: bytes, suffix: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """1-3 mutations of `base`; header-field mutations half of the time."""
    data, steps = bytearray(base), []
    for _ in range(int(rng.integers(1, 4))):
        if rng.random() < 0.5:
            steps.append(FIELDS[suffix](data, rng))
        else:
            steps.append(GENERIC[int(rng.integers(len(GENERIC)))](data, rng))
        if not data:
            break
    if suffix == ".ogg" and rng.random() < 0.7:
        _fix_ogg_checksums(data)
        steps.append("crc fixed")
    return bytes(data), ", ".join(steps)


@pytest.fixture(scope="module")
def mutants(tmp_path_factory, tone) -> list[tuple[Path, str]]:
    """(path, what was done) for every mutant, written under one folder."""
    folder = tmp_path_factory.mktemp("fuzz")
    out = []
    for b, (name, fmt, subtype, rate, channels) in enumerate(BASES):
        base = _base_file(tone, name, fmt, subtype, rate, channels)
        stem, suffix = name.rsplit(".", 1)
        for i in range(MUTANTS_PER_BASE):
            data, how = mutate(base, f".{suffix}", np.random.default_rng([SEED, b, i]))
            path = folder / f"{stem}_{suffix}_{i:03d}.{suffix}"  # ids unique across formats
            path.write_bytes(data)
            out.append((path, f"{name} #{i}: {how}"))
    return out


# ---- guards ---------------------------------------------------------------------------------
class _Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: float):
    """Raise _Hang in the main thread after `seconds` (the block decoder returns to Python
    between blocks, so a runaway read is interrupted there)."""

    def alarm(signum, frame):
        raise _Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _decode_bytes(path: Path):
    return decode_audio({"bytes": path.read_bytes(), "path": None}, 16000, name=path.name)


READERS: dict[str, Callable[[Path], object]] = {
    "read_clip": read_clip,  # encode, reconstruct, embed
    "read_clip(None)": lambda path: read_clip(path, None),  # load_audio(path, None)
    "read_audio": read_audio,  # enhance
    "decode_audio(bytes)": _decode_bytes,  # extract, probe, eval on datasets
}


def _samples(result) -> int:
    if isinstance(result, tuple):
        result = result[0]
    wave = getattr(result, "wave", result)
    return int(np.prod(wave.shape))


def test_every_reader_reads_or_refuses_each_mutant_in_bounded_time_and_memory(mutants):
    failures, outcomes = [], {"read": 0, "refused": 0}
    slowest, largest = 0.0, 0
    for path, how in mutants:
        for reader_name, reader in READERS.items():
            tracemalloc.start()
            start = time.perf_counter()
            try:
                with _deadline(5 * READ_SECONDS):
                    result = reader(path)
            except SonotokError as err:
                outcomes["refused"] += 1
                if "\n" in str(err) or path.name not in str(err):
                    failures.append(f"{how} [{reader_name}]: message {str(err)!r}")
            except Exception as err:  # noqa: BLE001 - any other exception is the failure sought
                failures.append(f"{how} [{reader_name}]: {type(err).__name__}: {err}")
            else:
                outcomes["read"] += 1
                if _samples(result) > size_limit(path.stat().st_size):
                    failures.append(f"{how} [{reader_name}]: {_samples(result)} samples")
            finally:
                elapsed = time.perf_counter() - start
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            slowest, largest = max(slowest, elapsed), max(largest, peak)
            if elapsed > READ_SECONDS:
                failures.append(f"{how} [{reader_name}]: took {elapsed:.1f} s")
            if peak > MAX_READ_BYTES:
                failures.append(f"{how} [{reader_name}]: peak memory {peak >> 20} MB")
    assert not failures, "\n".join(failures[:40])
    # The mutants exercise both outcomes: many still decode, many are refused.
    total = len(mutants) * len(READERS)
    assert outcomes["read"] > 0.15 * total and outcomes["refused"] > 0.15 * total, outcomes
    assert slowest < READ_SECONDS and largest < MAX_READ_BYTES


# ---- the commands ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, mutants, tone) -> Path:
    """CLI_MUTANTS mutants spread over every base, two valid clips and the 1 Hz repro."""
    folder = tmp_path_factory.mktemp("fuzz_cli")
    step = len(mutants) // CLI_MUTANTS
    for path, _ in mutants[::step][:CLI_MUTANTS]:
        (folder / path.name).write_bytes(path.read_bytes())
    sf.write(folder / "valid_a.wav", tone(16000, 16000, seed=1), 16000)
    sf.write(folder / "valid_b.flac", tone(22050, 22050, seed=2), 22050)
    # Issue 18's repro: 64 KB of 16-bit samples whose header says 1 Hz (once 2 GB at 16 kHz).
    sf.write(folder / "one_hz.wav", tone(32000, 16000, seed=3), 16000, subtype="PCM_16")
    data = bytearray((folder / "one_hz.wav").read_bytes())
    struct.pack_into("<II", data, 24, 1, 2)  # sample rate, byte rate
    (folder / "one_hz.wav").write_bytes(bytes(data))
    return folder


@pytest.fixture(scope="module")
def tiny_enhancer_dir(tmp_path_factory, tiny_tokenizer) -> str:
    from sonotok.enhancement import (
        DenoiserConfig,
        EnhancementPipeline,
        LatentDenoiser,
        TokenizerDenoiser,
    )

    torch.manual_seed(1)
    denoiser = LatentDenoiser(DenoiserConfig.tiny(tiny_tokenizer.latent_dim)).eval()
    folder = tmp_path_factory.mktemp("fuzz_enhancer")
    EnhancementPipeline(TokenizerDenoiser(tiny_tokenizer, denoiser)).save_pretrained(folder)
    return str(folder)


def _class_tree(root: Path, inputs: Path) -> Path:
    """DATA/<class>/…: the inputs split over two classes, each with six valid clips."""
    files = sorted(inputs.iterdir())
    for c, label in enumerate(("a", "b")):
        (root / label).mkdir(parents=True)
        for path in files[c::2]:
            (root / label / path.name).write_bytes(path.read_bytes())
        for i in range(6):
            sf.write(root / label / f"ok{i}.wav", _tone_for_class(c, i), 16000)
    return root


def _tone_for_class(c: int, i: int) -> np.ndarray:
    t = np.arange(8000) / 16000
    return (0.3 * np.sin(2 * np.pi * (300 + 900 * c + 20 * i) * t)).astype(np.float32)


def _commands(inputs: Path, out: Path, tokenizer: str, enhancer: str) -> dict[str, list[str]]:
    model = ["--model", tokenizer]
    return {
        "encode": ["encode", str(inputs), "-o", str(out / "enc"), *model],
        "reconstruct": ["reconstruct", str(inputs), "-o", str(out / "rec"), *model],
        "embed": ["embed", str(inputs), "-o", str(out / "emb"), *model],
        "extract": ["extract", str(inputs), "-o", str(out / "ext"), *model],
        "enhance": ["enhance", str(inputs), "-o", str(out / "enh"), "--model", enhancer],
        "eval reconstruct": ["eval", "reconstruct", str(inputs), "-o", str(out / "ev"), *model],
        "probe": [
            "probe",
            str(_class_tree(out / "classes", inputs)),
            "-o",
            str(out / "probe"),
            "--methods",
            "knn",
            "--folds",
            "3",
            "--cache-dir",
            str(out / "cache"),
            *model,
        ],
    }


def test_every_reading_command_reports_bad_files_in_one_line_each(
    cli_inputs, tmp_path, tiny_tokenizer_dir, tiny_enhancer_dir, capsys
):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    commands = _commands(cli_inputs, tmp_path, tiny_tokenizer_dir, tiny_enhancer_dir)
    problems = []
    for name, argv in commands.items():
        start = time.perf_counter()
        try:
            status = main(argv)
        except Exception as err:  # noqa: BLE001 - a traceback is the failure sought
            problems.append(f"{name}: {type(err).__name__}: {err}")
            continue
        elapsed = time.perf_counter() - start
        captured = capsys.readouterr()
        text = captured.out + captured.err
        errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
        if status not in (0, 1):
            problems.append(f"{name}: exit {status}\n{captured.err[-2000:]}")
        if "Traceback" in text:
            problems.append(f"{name}: traceback in output\n{text[-2000:]}")
        if not any("one_hz.wav" in e and "sample rate 1 Hz" in e for e in errors):
            problems.append(f"{name}: the 1 Hz file was not refused in one line")
        if elapsed > COMMAND_SECONDS:
            problems.append(f"{name}: took {elapsed:.0f} s")
    assert not problems, "\n".join(problems)
    # The valid clips made it through every command.
    assert (tmp_path / "enc" / "valid_a.safetensors").is_file()
    assert (tmp_path / "rec" / "valid_b.wav").is_file()
    assert (tmp_path / "emb" / "valid_a.safetensors").is_file()
    assert (tmp_path / "enh" / "valid_b.wav").is_file()
    assert (tmp_path / "probe" / "metrics.json").is_file()
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert growth_kib * 1024 < MAX_RSS_GROWTH

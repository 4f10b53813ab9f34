"""The `sonotok` command line as a whole: bad option values end in one usage line and exit
status 2 (never a traceback or a run that silently does nothing), every command spells its
options the same way, and `sonotok --version` works."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import soundfile as sf
import torch

from sonotok import __version__
from sonotok.cli import build_parser, main
from sonotok.core import options


@pytest.fixture()
def cpu_only(monkeypatch):
    """A machine whose torch build has no CUDA (what `--device cuda` must explain)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture()
def clip(tmp_path, tone):
    path = tmp_path / "a.wav"
    sf.write(path, tone(16000, 16000), 16000)
    return str(path)


BAD_OPTIONS = [
    (["encode", "{clip}", "-o", "{out}", "--batch-size", "-1"], "--batch-size"),
    (["encode", "{clip}", "-o", "{out}", "--batch-size", "0"], "--batch-size"),
    (["encode", "{clip}", "-o", "{out}", "--device", "bogus"], "--device"),
    (["encode", "{clip}", "-o", "{out}", "--device", "cuda"], "--device"),
    (["decode", "{clip}", "-o", "{out}", "--sample-rate", "0"], "--sample-rate"),
    (["reconstruct", "{clip}", "-o", "{out}", "--sample-rate", "-8000"], "--sample-rate"),
    (["enhance", "{clip}", "-o", "{out}", "--chunk-seconds", "-1"], "--chunk-seconds"),
    (["enhance", "{clip}", "-o", "{out}", "--chunk-seconds", "0.01"], "--chunk-seconds"),
    (["enhance", "{clip}", "-o", "{out}", "--crossfade-seconds", "-1"], "--crossfade-seconds"),
    (["enhance", "{clip}", "-o", "{out}", "--strength", "nan"], "--strength"),
    (["enhance", "{clip}", "-o", "{out}", "--device", "cuda:0"], "--device"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--cfg", "nan"], "--cfg"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--cfg", "1e30"], "--cfg"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--seed", "1e23"], "--seed"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--batch-size", "0"], "--batch-size"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--steps", "0"], "--steps"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--seconds", "inf"], "--seconds"),
    (["generate", "a dog", "-o", "{out}/x.wav", "--device", "bogus"], "--device"),
    (["extract", "{clip}", "-o", "{out}", "--shard-size", "0"], "--shard-size"),
    (["extract", "{clip}", "-o", "{out}", "--max-batch-seconds", "-1"], "--max-batch-seconds"),
    (["extract", "{clip}", "-o", "{out}", "--num-workers", "-2"], "--num-workers"),
    (["embed", "{clip}", "-o", "{out}", "--batch-size", "0"], "--batch-size"),
    (["probe", "{clip}", "-o", "{out}", "--folds", "2"], "--folds"),
    (["probe", "{clip}", "-o", "{out}", "--lr", "nan"], "--lr"),
    (["probe", "{clip}", "-o", "{out}", "--epochs", "0"], "--epochs"),
    (["probe", "{clip}", "-o", "{out}", "--seed", "-1"], "--seed"),
    (["eval", "reconstruct", "{clip}", "--decoded", "{clip}", "--examples", "-1"], "--examples"),
    (["eval", "reconstruct", "{clip}", "--model", "m", "--device", "cuda"], "--device"),
    (["corpus", "make", "{out}", "--speech", "-5"], "--speech"),
    (["corpus", "make", "{out}", "--val-fraction", "2"], "--val-fraction"),
    (["corpus", "make", "{out}", "--seconds", "0"], "--seconds"),
    (["corpus", "make", "{out}", "--workers", "0"], "--workers"),
    (["train", "tokenizer", "--config", "x.yaml", "--stop-after-steps", "0"], "--stop-after-steps"),
    (["demo", "-o", "{out}", "--steps", "0"], "--steps"),
    (["demo", "-o", "{out}", "--cfg", "inf"], "--cfg"),
    (["demo", "-o", "{out}", "--seed", "1.5"], "--seed"),
    (["demo", "-o", "{out}", "--device", "bogus"], "--device"),
]


@pytest.mark.parametrize(("argv", "option"), BAD_OPTIONS, ids=lambda v: " ".join(v)[-40:])
def test_bad_option_value_is_one_usage_line_and_exit_2(
    argv, option, clip, tmp_path, capsys, cpu_only
):
    out = tmp_path / "out"
    argv = [a.format(clip=clip, out=out) for a in argv]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert f"error: argument {option}: " in lines[0] and "Traceback" not in captured.err
    assert lines[0].endswith("--help)") and captured.out == ""
    assert not out.exists()  # nothing ran, nothing was written


def test_missing_arguments_are_one_line_too(capsys):
    with pytest.raises(SystemExit) as info:
        main(["encode"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "required: IN, -o/--output" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"sonotok {__version__}\n"


def test_version_from_the_console_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "sonotok.cli", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"sonotok {__version__}"


# ---- every command, checked from its parser -----------------------------------------------
def _commands(parser: argparse.ArgumentParser, prefix: str = "sonotok"):
    """(name, parser) for every command and sub-command below `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _commands(sub, f"{prefix} {name}")


ALL_COMMANDS = list(_commands(build_parser()))


def test_the_walk_finds_every_command():
    names = {name for name, _ in ALL_COMMANDS}
    assert {
        "sonotok encode",
        "sonotok enhance",
        "sonotok generate",
        "sonotok eval reconstruct",
        "sonotok train tokenizer",
        "sonotok corpus make",
        "sonotok demo",
        "sonotok probe",
    } <= names


def test_no_numeric_option_is_left_unvalidated():
    loose = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in ALL_COMMANDS
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert loose == []


def test_every_device_option_is_checked_and_defaults_to_auto():
    found = [
        (name, action)
        for name, parser in ALL_COMMANDS
        for action in parser._actions
        if "--device" in action.option_strings
    ]
    assert len(found) >= 9
    for name, action in found:
        assert action.type is options.device and action.default == "auto", name


def test_every_output_option_is_spelled_o_output():
    for name, parser in ALL_COMMANDS:
        for action in parser._actions:
            if (
                action.dest == "output"
                and action.option_strings
                and action.help != argparse.SUPPRESS
            ):
                assert action.option_strings == ["-o", "--output"], name


def test_eval_keeps_out_as_a_hidden_alias(capsys):
    args = build_parser().parse_args(["eval", "enhance", "n", "e", "c", "--out", "runs/x"])
    assert args.output == "runs/x"
    args = build_parser().parse_args(["eval", "enhance", "n", "e", "c", "-o", "runs/y"])
    assert args.output == "runs/y"
    args = build_parser().parse_args(["eval", "enhance", "n", "e", "c"])
    assert args.output == "runs/eval/enhance"
    with pytest.raises(SystemExit):
        main(["eval", "enhance", "--help"])
    assert "-o OUTPUT, --output OUTPUT" in capsys.readouterr().out.replace("\n", " ")


def test_enhance_help_names_the_denoiser_as_the_model_default(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no words split by wrapping
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    lines = capsys.readouterr().out.splitlines()
    (model_help,) = [line for line in lines if line.lstrip().startswith("--model ")]
    assert model_help.split(None, 2)[2] == (
        "denoiser hub id or local folder (default: mispeech/dasheng-denoiser if it is in the "
        "local Hugging Face cache, else the bundled offline sonotok-mini denoiser)"
    )


def test_good_values_still_parse():
    args = build_parser().parse_args(
        ["generate", "x", "--cfg", "3.5", "--seed", "1e3", "--batch-size", "2", "--device", "CPU"]
    )
    assert (args.cfg, args.seed, args.batch_size, args.device) == (3.5, 1000, 2, "cpu")
    args = build_parser().parse_args(["enhance", "x", "-o", "y", "--chunk-seconds", "0"])
    assert args.chunk_seconds == 0.0 and args.crossfade_seconds == 1.0


def test_shared_options_default_the_same_everywhere():
    defaults = {"--batch-size": 8, "--dtype": "fp32", "--model": None, "--overwrite": False}
    seen = {option: 0 for option in defaults}
    for name, parser in ALL_COMMANDS:
        for action in parser._actions:
            for option, default in defaults.items():
                if option in action.option_strings:
                    seen[option] += 1
                    assert action.default == default, f"{name} {option}"
    assert seen["--batch-size"] >= 5 and seen["--dtype"] >= 7 and seen["--model"] >= 9


TRAIN_COMMANDS = ["tokenizer", "semantic", "generation", "enhancement"]


@pytest.mark.parametrize("what", TRAIN_COMMANDS)
def test_every_train_command_resumes_only_when_asked(what, capsys):
    base = ["train", what, "--config", "x.yaml"]
    assert build_parser().parse_args(base).resume is None  # a fresh run by default
    assert build_parser().parse_args([*base, "--resume"]).resume == "latest"
    step = "runs/x/checkpoints/step_00000010"
    assert build_parser().parse_args([*base, "--resume", step]).resume == step
    assert capsys.readouterr().err == ""
    args = build_parser().parse_args([*base, "--no-resume"])  # the old enhancement flag
    assert args.resume is None and not hasattr(args, "no_resume")
    assert capsys.readouterr().err.splitlines() == [
        "note: --no-resume is deprecated and does nothing: a run resumes only with --resume "
        "(and refuses to start over an output folder that holds checkpoints)"
    ]


def test_no_resume_is_hidden_from_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "enhancement", "--help"])
    out = capsys.readouterr().out
    assert "--resume [CHECKPOINT]" in out and "--no-resume" not in out

"""Every shell command in README.md runs as written (issue 17 item 1).

The commands of every ```bash / ```sh / ```console block run in a fresh copy of the checkout
(the files `git ls-files --cached --others --exclude-standard` lists), offline, with the
bundled sonotok-mini models: each `##` section's commands in README order, sections side by
side (their outputs do not overlap). `RULES` says, for each command, either which
documented options are appended to scale it down (`--set train.max_steps=2`, smaller corpus
counts, the bundled model for an official hub one) or why it cannot run in a test. A README
command that no rule matches fails `test_every_readme_command_has_a_rule`, so a new block
cannot go untested by accident. The inputs the README names (`my_wavs/`, `noisy/`, ...) are
made first by `make_inputs`, from a small synthetic corpus.

Slow (a few minutes): deselect with `pytest -m "not readme"`.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
COMMAND_TIMEOUT_S = 300
MINI = "sonotok/mini"  # the bundled models, inside the checkout copy

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
SECTION = re.compile(r"^## (.*)$", re.M)


@dataclass(frozen=True)
class Command:
    """One shell command of the README: continuation lines joined, a heredoc kept whole."""

    text: str
    line: int  # README line of its first line
    section: str  # the `##` heading above it: commands of one section run in order

    @property
    def id(self) -> str:
        words = re.findall(r"[\w.-]+", self.text.split("\n")[0])[:3]
        return f"L{self.line}-" + "-".join(words)


@dataclass(frozen=True)
class Rule:
    """What the test does with the README commands `pattern` matches (re.search).

    `extra` is appended (documented options that scale the run down); `skip` says why the
    command cannot run here; `after` runs a command right after the first one matching
    `after` (it uses that one's output), in that one's section; `creates` are paths that must
    exist right after the command."""

    pattern: str
    extra: str = ""
    skip: str | None = None
    after: str | None = None
    creates: tuple[str, ...] = ()


# A few training steps on tiny batches: every trainer takes these keys.
STEPS = "--set train.max_steps=2 --set train.batch_size=2 --set train.log_every=1"
TOKENIZER_STEPS = (
    f"{STEPS} --set train.checkpoint_every=2 --set train.val_every=2 --set train.audio_every=0 "
    "--set data.val_items=1 --set data.num_workers=0"
)
# The paper recipes on the bundled 256-d tokenizer instead of the official one, CPU-sized.
PAPER_TOKENIZER = (
    f"--set model.pretrained={MINI}/tokenizer --set model.semantic_encoder=null "
    "--set model.semantic_dtype=fp32 --set train.mixed_precision=no "
    "--set discriminators.mfd_channels=4"
)
SMALL_VALIDATION = (
    "--set data.num_workers=0 --set data.segment_seconds=1.0 --set train.checkpoint_every=2 "
    "--set validation.every=2 --set validation.num_examples=1 --set validation.seconds=1.0"
)
PAPER_ENHANCEMENT = (
    f"--set tokenizer={MINI}/tokenizer --set tokenizer_dtype=fp32 --set model.latent_dim=256 "
    "--set model.dim=64 --set model.num_heads=2 --set model.num_layers=1 "
    f"--set train.mixed_precision=no {SMALL_VALIDATION}"
)
SMALL_CORPUS = "--speech 6 --music 3 --sounds 3 --noise 3 --seconds 2"
NEEDS_GPUS = "a multi-GPU `accelerate launch`; the same recipe runs in one process above"

RULES: tuple[Rule, ...] = (
    # --- set-up and the test suite itself
    Rule(
        r"^bash setup\.sh",
        skip="installs Debian packages and .venv; `sonotok demo` is tests/test_demo.py",
    ),
    Rule(r"activate && pytest", skip="runs the test suite this test is part of"),
    Rule(r"^pip install", skip="installs packages"),
    Rule(r"^sudo apt-get", skip="installs Debian packages"),
    # --- tokenizer training
    Rule(
        r"^sonotok train tokenizer --config configs/tokenizer/tiny\.yaml .*my_wavs/",
        extra=TOKENIZER_STEPS,
        creates=("runs/tok-tiny/checkpoints/step_00000002", "runs/tok-tiny/model/config.json"),
    ),
    Rule(
        r"^sonotok train tokenizer --config configs/tokenizer/paper\.yaml --check$",
        # "edit the data paths in the YAML first"
        extra="--set 'data.sources=[{path: my_wavs/}]' --set 'data.val_sources=[{path: my_wavs/}]'",
    ),
    Rule(r"^accelerate launch --num_processes 8 --mixed_precision bf16", skip=NEEDS_GPUS),
    Rule(
        r"^sonotok train tokenizer --config configs/tokenizer/paper\.yaml .*pretrained=mispeech",
        extra=f"{PAPER_TOKENIZER} {TOKENIZER_STEPS}",
        creates=("runs/tokenizer-paper/checkpoints/step_00000002", "runs/tokenizer-paper/model"),
    ),
    # --- seed codec training
    Rule(
        r"^sonotok train codec --config configs/codec/(sq|uni)codec_tiny\.yaml .*my_wavs/",
        extra=STEPS,
    ),
    Rule(
        r"^sonotok reconstruct my_wavs/ --model runs/sqcodec-tiny/model",
        creates=("recon-sqcodec",),
    ),
    Rule(
        r"^sonotok train semanticodec --config configs/semanticodec/tiny\.yaml",
        extra=STEPS,
        creates=("runs/semanticodec-tiny/model/config.json",),
    ),
    Rule(r"^sonotok train codec --config configs/codec/sqcodec_6kbps\.yaml --check"),
    # --- extract, embed, probe
    Rule(r"^sonotok extract clips/", creates=("latents/clips/dataset_info.json",)),
    Rule(r"^sonotok extract my_corpus", creates=("latents/train/dataset_info.json",)),
    Rule(
        r"^sonotok extract VB/.* --model mispeech/dashengtokenizer",
        extra=f"--model {MINI}/tokenizer",
        creates=("latents/noisy/dataset_info.json",),
    ),
    Rule(
        r"^accelerate launch --multi_gpu --num_processes 8 -m sonotok\.cli extract", skip=NEEDS_GPUS
    ),
    Rule(r"^sonotok embed clips/", creates=("emb/speech/*.safetensors",)),
    Rule(r"^sonotok embed a\.wav b\.flac", creates=("emb/a.npy", "emb/b.npy")),
    Rule(
        r"^sonotok probe ",
        extra="--config configs/probe/tiny.yaml",
        creates=("runs/probe/*/metrics.json",),
    ),
    # --- X-ARES: needs a clone of github.com/jimbozhang/xares (network)
    Rule(r"^git clone", skip="clones github.com/jimbozhang/xares (network)"),
    Rule(r"^echo .* > sonotok_encoder\.py", skip="runs inside the X-ARES clone"),
    Rule(
        r"xares_run .*src/tasks", skip="runs X-ARES' tasks from its clone, downloading their data"
    ),
    # --- generation
    # --- compare
    Rule(
        r"^sonotok corpus make compare-corpus/",
        extra="--speech 6 --music 3 --sounds 3 --seconds 1",
        creates=("compare-corpus/clips/dataset_dict.json",),
    ),
    Rule(r"^python -c .*save_pretrained\('runs/compare-tiny'\)", creates=("runs/compare-tiny",)),
    Rule(
        r"^sonotok compare compare-corpus/clips",
        extra="--no-speech-quality",
        creates=("runs/compare/report.html",),
    ),
    Rule(
        r"^accelerate launch --multi_gpu --num_processes 4 -m sonotok\.cli compare", skip=NEEDS_GPUS
    ),
    Rule(r"^python - <<'EOF'\nimport datasets", creates=("data/toy-latents/dataset_info.json",)),
    Rule(
        r"^python -c .*save_pretrained\('runs/tiny-tokenizer'\)", creates=("runs/tiny-tokenizer",)
    ),
    Rule(
        r"^sonotok train generation --config configs/generation/tiny\.yaml",
        extra=f"{STEPS} --set train.checkpoint_every=2",
        creates=("runs/generation-tiny/checkpoints/step_00000002", "runs/generation-tiny/pipeline"),
    ),
    Rule(r"^accelerate launch --num_processes 8 -m sonotok\.cli train generation", skip=NEEDS_GPUS),
    Rule(r"^printf "),
    Rule(
        r'^sonotok generate "a dog barks twice" .*-o out\.wav',
        extra="--steps 2",
        creates=("out.wav",),
    ),
    Rule(
        r"^sonotok generate --prompts prompts\.txt", extra="--steps 2", creates=("generated/*.wav",)
    ),
    Rule(
        r"^sonotok generate --prompts prompts\.csv",
        extra="--steps 2",
        creates=("generated/dog.wav", "generated/rain.wav"),
    ),
    Rule(r"^sonotok generate .*--inpaint out\.wav", extra="--steps 2", creates=("door.wav",)),
    Rule(r"^sonotok generate .*--continue out\.wav", extra="--steps 2", creates=("longer.wav",)),
    Rule(
        r"^sonotok generate .*--model mispeech/Dasheng-AudioGen",
        skip="downloads Dasheng-AudioGen, FLAN-T5-large and dashengtokenizer (several GB)",
    ),
    # --- enhancement
    Rule(r"^sonotok enhance noisy/ -o enhanced/$", creates=("enhanced/speech-*.wav",)),
    Rule(r"^sonotok enhance 'calls/", creates=("enhanced/**/call-0.flac",)),
    Rule(
        r"^sonotok enhance noisy/ .*--model runs/enhancement/model",
        creates=("enhanced-own/speech-*.wav",),
        after=r"^sonotok train enhancement .*data\.noise=corpora/noise",
    ),
    Rule(
        r"^sonotok train enhancement --config configs/enhancement/paper\.yaml .*corpora/clean",
        extra=f"{PAPER_ENHANCEMENT} {STEPS}",
        creates=("runs/enhancement/checkpoints/step_00000002", "runs/enhancement/model"),
    ),
    Rule(
        r"^sonotok train enhancement --config configs/enhancement/paper\.yaml .*data\.paired=",
        extra=f"{PAPER_ENHANCEMENT} {STEPS}",
        creates=("runs/enhancement-vb/checkpoints/step_00000002",),
    ),
    Rule(
        r"^sonotok train enhancement --config configs/enhancement/paper\.yaml .*data\.latents=",
        extra=f"{PAPER_ENHANCEMENT} {STEPS}",
        creates=("runs/enhancement-latents/checkpoints/step_00000002",),
    ),
    Rule(r"^accelerate launch -m sonotok\.cli train enhancement .*\.\.\.", skip=NEEDS_GPUS),
    Rule(
        r"^sonotok train enhancement --config configs/enhancement/tiny\.yaml",
        extra=f"{STEPS} --set train.checkpoint_every=2",
        creates=("runs/enhancement-tiny/checkpoints/step_00000002",),
        after=r"^python -c .*save_pretrained\('runs/tiny-tokenizer'\)",
    ),
    # --- evaluation
    Rule(
        r"^sonotok eval reconstruct --model mispeech/dashengtokenizer",
        extra=f"--model {MINI}/tokenizer",
        creates=("runs/eval/rec/metrics.json",),
    ),
    Rule(
        r"^sonotok eval reconstruct data/test_clips --decoded",
        creates=("runs/eval/rec/report.html",),
    ),
    Rule(r"^sonotok eval enhance ", creates=("runs/eval/se/metrics.json",)),
    Rule(
        r"^sonotok eval generate .*--embedders vggish,panns,clap",
        skip="downloads the VGGish, PANNs and CLAP weights",
    ),
    Rule(
        r"^sonotok eval generate .*--embedders sonotok",
        extra=f"--model {MINI}/tokenizer",
        creates=("runs/eval/tta/metrics.json",),
    ),
    # --- corpus and semantic pretraining
    Rule(
        r"^sonotok corpus make corpus/",
        extra=SMALL_CORPUS,
        creates=("corpus/clips/dataset_dict.json",),
    ),
    Rule(
        r"^sonotok train semantic --config configs/semantic/\w+\.yaml --data corpus/clips -o",
        extra=f"{STEPS} --set train.checkpoint_every=2 --set data.num_workers=0",
        creates=("runs/semantic-*/encoder",),
    ),
    Rule(r"^accelerate launch -m sonotok\.cli train semantic", skip=NEEDS_GPUS),
    Rule(
        r"^sonotok train tokenizer --config configs/tokenizer/tiny\.yaml .*path: corpus/clips",
        extra=TOKENIZER_STEPS,
        creates=("runs/tok-corpus/checkpoints/step_00000002",),
    ),
    Rule(
        r"^sonotok train enhancement --config configs/enhancement/mini\.yaml .*corpus/clips",
        extra=f"{STEPS} {SMALL_VALIDATION}",
        creates=("runs/denoiser-corpus/checkpoints/step_00000002",),
    ),
)


def strip_comment(command: str) -> str:
    """The command without a trailing `# comment` (outside quotes), so options can follow."""
    quote = None
    for i, char in enumerate(command):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or command[i - 1].isspace()):
            return command[:i].rstrip()
    return command.rstrip()


def block_commands(body: str, language: str) -> list[tuple[int, str]]:
    """(line offset in the block, command) for each command of a shell block."""
    lines = body.splitlines()
    commands, i = [], 0
    while i < len(lines):
        start, line = i, lines[i]
        i += 1
        if language == "console":
            if not line.startswith("$ "):
                continue  # output shown in the block
            line = line[2:]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        heredoc = HEREDOC.search(line)
        if heredoc:
            end = heredoc.group(2)
            body_lines = []
            while i < len(lines) and lines[i] != end:
                body_lines.append(lines[i])
                i += 1
            i += 1
            line = "\n".join([line, *body_lines, end])
        else:
            line = strip_comment(line)
        commands.append((start, line))
    return commands


def readme_commands(markdown: str) -> list[Command]:
    """Every command of every shell block, in README order."""
    commands = []
    for fence in FENCE.finditer(markdown):
        if fence.group(1) not in SHELL_LANGUAGES:
            continue
        before = markdown[: fence.start()]
        headings = SECTION.findall(FENCE.sub("", before))  # a `## comment` in a block is none
        first_line = before.count("\n") + 2
        for offset, text in block_commands(fence.group(2), fence.group(1)):
            commands.append(Command(text, first_line + offset, headings[-1] if headings else ""))
    return commands


def rule_for(command: Command) -> Rule | None:
    matches = [rule for rule in RULES if re.search(rule.pattern, command.text)]
    return matches[0] if matches else None


def run_order(commands: list[Command]) -> list[Command]:
    """The runnable commands in README order, each with an `after` rule moved behind the
    command it depends on."""
    runnable = [c for c in commands if (r := rule_for(c)) is not None and r.skip is None]
    delayed = [c for c in runnable if rule_for(c).after]
    ordered = [c for c in runnable if c not in delayed]
    for command in delayed:
        after = rule_for(command).after
        anchor = next(i for i, c in enumerate(ordered) if re.search(after, c.text))
        ordered.insert(anchor + 1, command)
    return ordered


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_readme_commands_are_found():
    """The parser sees the README's blocks: continuation lines joined, heredocs whole."""
    texts = [c.text for c in COMMANDS]
    assert len(COMMANDS) >= 30
    assert not any(t.endswith("\\") for t in texts)
    heredocs = [t for t in texts if HEREDOC.search(t)]
    assert heredocs and all(t.endswith("\nEOF") for t in heredocs)


def test_every_readme_command_has_a_rule():
    """A new README command must be run (with its scale-down) or skipped with a reason here."""
    unlisted = [f"README line {c.line}: {c.text}" for c in COMMANDS if rule_for(c) is None]
    assert not unlisted, "add a rule to RULES in tests/test_readme.py for:\n" + "\n".join(unlisted)
    unused = [r.pattern for r in RULES if not any(re.search(r.pattern, c.text) for c in COMMANDS)]
    assert not unused, f"rules that match no README command (remove or update them): {unused}"
    for rule in RULES:
        if rule.after:
            assert any(re.search(rule.after, c.text) for c in COMMANDS), rule.after


def test_new_blocks_of_any_shell_language_need_a_rule():
    markdown = (
        "## Try\n```console\n$ sonotok frobnicate a.wav \\\n    -o out/  # new\nwrote 1 file\n```\n"
        "```sh\nsonotok embed clips/ -o emb/\n```\n```python\nsonotok = 1\n```\n"
    )
    commands = readme_commands(markdown)
    assert [(c.text, c.line, c.section) for c in commands] == [
        ("sonotok frobnicate a.wav -o out/", 3, "Try"),
        ("sonotok embed clips/ -o emb/", 8, "Try"),
    ]
    assert rule_for(commands[0]) is None and rule_for(commands[1]) is not None


def test_strip_comment_keeps_quoted_hashes():
    assert (
        strip_comment("sonotok embed a.wav -o emb/   # frame-level")
        == "sonotok embed a.wav -o emb/"
    )
    assert strip_comment("echo '# not a comment' x") == "echo '# not a comment' x"


# --- the workspace: a copy of the checkout plus the inputs the README names


def _checkout_copy(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _environment(home: Path) -> dict[str, str]:
    """Offline, with empty caches (so the bundled models are the defaults)."""
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        PATH=venv_bin + os.pathsep + env.get("PATH", ""),
        HF_HOME=str(home / "hf"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        XDG_CACHE_HOME=str(home / "cache"),
        MPLBACKEND="Agg",
        TQDM_DISABLE="1",
    )
    return env


def _write(path: Path, wave: np.ndarray, sample_rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sample_rate)


def _corpus_waves(corpus: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """(id, wave) per domain from every split of a `sonotok corpus make` folder."""
    import datasets

    waves: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name in ("clips", "noise"):
        for split in datasets.load_from_disk(str(corpus / name)).values():
            for row in split:
                wave, _ = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
                waves.setdefault(row["domain"], []).append((row["id"], wave))
    return waves


def _mix(clean: np.ndarray, noise: np.ndarray) -> np.ndarray:
    noise = np.resize(noise, clean.shape)
    gain = 0.3 * np.sqrt(np.mean(clean**2) / max(np.mean(noise**2), 1e-8))
    return (clean + gain * noise).astype(np.float32)


def _save_dataset(path: Path, rows: dict, files: list[Path]) -> None:
    """A `save_to_disk` dataset whose `audio` column holds the files' bytes."""
    import datasets

    audio = [{"bytes": f.read_bytes(), "path": f.name} for f in files]
    ds = datasets.Dataset.from_dict({"audio": audio, **rows})  # a plain struct: no torchcodec
    ds.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(path))


def make_inputs(work: Path, env: dict[str, str]) -> None:
    """The audio inputs the README's commands name, made from a small synthetic corpus."""
    corpus = work.parent / "source-corpus"
    subprocess.run(
        [
            "sonotok",
            "corpus",
            "make",
            str(corpus),
            *"--speech 10 --music 5 --sounds 10 --noise 4 --seconds 2".split(),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    waves = _corpus_waves(corpus)
    speech, music, sound, noise = (waves[d] for d in ("speech", "music", "sound", "noise"))
    for name, wave in speech[:3] + music[:2]:
        _write(work / "my_wavs" / f"{name}.wav", wave)
    for name, wave in speech[:2] + music[:1]:
        _write(work / "clips" / name.split("-")[0] / f"{name}.wav", wave)
    shutil.copytree(corpus / "clips", work / "my_corpus")
    _write(work / "a.wav", speech[0][1])
    _write(work / "b.flac", music[0][1])
    # probes: 3 classes x 5 clips
    classes = {"speech": speech[:5], "music": music[:5], "sound": sound[:5]}
    files, labels = [], []
    for label, items in classes.items():
        for name, wave in items:
            files.append(work / "esc50_by_class" / label / f"{name}.wav")
            labels.append(label)
            _write(files[-1], wave)
    _save_dataset(
        work / "my_esc50",
        {"category": labels, "fold": [1 + i % 5 for i in range(len(files))]},
        files,
    )
    multi = [[label] if i % 3 else [label, "loud"] for i, label in enumerate(labels)]
    _save_dataset(work / "my_fsd50k", {"labels": multi}, files)
    events = [[{"label": label, "onset": 0.2, "offset": 1.5}] for label in labels]
    _save_dataset(work / "my_desed", {"events": events}, files)
    # enhancement
    for i, (name, wave) in enumerate(speech[:2]):
        mixed = _mix(wave, noise[i % len(noise)][1])
        _write(work / "noisy" / f"{name}.wav", mixed)
        _write(work / "VB/noisy_trainset_28spk_wav" / f"p{i}.wav", mixed)
        _write(work / "VB/clean_trainset_28spk_wav" / f"p{i}.wav", wave)
        _write(work / "data/vctk_demand/noisy" / f"p{i}.wav", mixed)
        _write(work / "data/vctk_demand/clean" / f"p{i}.wav", wave)
        _write(work / "runs/enhanced" / f"p{i}.wav", (0.5 * (mixed + wave)).astype(np.float32))
        _write(work / "calls/a" / f"call-{i}.flac", mixed)
        _write(work / "corpora/clean_speech" / f"{name}.wav", wave)
    for name, wave in noise:
        _write(work / "corpora/noise" / f"{name}.wav", wave)
    # evaluation
    rng = np.random.default_rng(0)
    for name, wave in speech[3:4] + music[1:2]:
        _write(work / "data/test_clips" / f"{name}.wav", wave)
        _write(
            work / "runs/decoded" / f"{name}.wav",
            wave + 0.01 * rng.standard_normal(wave.shape).astype(np.float32),
        )
    for name, wave in sound[:4]:
        _write(work / "data/audiocaps_test" / f"{name}.wav", wave)
        _write(work / "runs/generated" / f"{name}.wav", np.roll(wave, 800))
    (work / "data/audiocaps_test.csv").write_text(
        "id,caption\n" + "".join(f"{name},a sound\n" for name, _ in sound[:4])
    )


def _require_synthesizers() -> None:
    """The corpus needs its synthesizers (setup.sh installs them), as tests/corpus does."""
    from sonotok.corpus.tools import SOUNDFONTS

    missing = [t for t in ("espeak-ng", "flite", "fluidsynth", "sox") if shutil.which(t) is None]
    if not any(Path(p).is_file() for p in SOUNDFONTS):
        missing.append("fluid-soundfont-gm")
    if missing:
        pytest.skip(f"corpus synthesizers not installed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    _require_synthesizers()
    base = tmp_path_factory.mktemp("readme")
    work = base / "checkout"
    work.mkdir()
    _checkout_copy(work)
    env = _environment(base)
    make_inputs(work, env)
    return work, env


@dataclass(frozen=True)
class Outcome:
    shell: str  # what ran: the README command and the rule's extra options
    returncode: int
    output: str  # the end of stdout and stderr
    missing: tuple[str, ...]  # `creates` paths absent right after the command


def _run(command: Command, work: Path, env: dict[str, str]) -> Outcome:
    rule = rule_for(command)
    shell = f"{command.text} {rule.extra}".strip() if rule.extra else command.text
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", shell],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    missing = tuple(p for p in rule.creates if not any(work.glob(p)))
    output = (done.stdout[-2000:] + "\n" + done.stderr[-4000:]).strip()
    return Outcome(shell, done.returncode, output, missing)


def _lane(command: Command) -> str:
    """The section a command runs in: its own, or that of the command it runs `after`."""
    after = rule_for(command).after
    return (
        next(c for c in COMMANDS if re.search(after, c.text)).section if after else command.section
    )


@pytest.fixture(scope="module")
def outcomes(workspace):
    """A future Outcome per command. README sections are independent (their outputs do not
    overlap), so sections run side by side, the commands of each in order."""
    work, env = workspace
    sections: dict[str, list[Command]] = {}
    for command in run_order(COMMANDS):
        sections.setdefault(_lane(command), []).append(command)
    futures = {command: Future() for commands in sections.values() for command in commands}

    def run_section(commands: list[Command]) -> None:
        for command in commands:
            try:
                futures[command].set_result(_run(command, work, env))
            except BaseException as err:  # a timeout: reported by that command's test
                futures[command].set_exception(err)

    lanes = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=lanes) as pool:
        for commands in sorted(sections.values(), key=len, reverse=True):
            pool.submit(run_section, commands)
        yield futures


@pytest.mark.parametrize("command", run_order(COMMANDS), ids=lambda c: c.id)
def test_readme_command_runs(command: Command, outcomes):
    outcome = outcomes[command].result()
    where = f"README line {command.line} ({command.section})"
    assert outcome.returncode == 0, f"{where} failed:\n$ {outcome.shell}\n{outcome.output}"
    assert not outcome.missing, f"{where}: {list(outcome.missing)} not written\n{outcome.output}"

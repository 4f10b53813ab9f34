"""`sonotok corpus make DIR`: build the synthetic captioned corpus (see `build`)."""

from __future__ import annotations

import argparse
import sys

from sonotok.cli.common import command_group
from sonotok.core import options

EPILOG = """\
examples:
  sonotok corpus make corpus/                      # default size (~1400 clips)
  sonotok corpus make tiny/ --speech 20 --music 10 --sounds 10 --noise 10 --seconds 3
  sonotok corpus make big/ --speech 20000 --music 8000 --sounds 8000 --noise 4000 --workers 16

Needs espeak-ng and flite (speech), fluidsynth + fluid-soundfont-gm (music), sox (sounds,
noise): apt-get install espeak-ng flite fluidsynth fluid-soundfont-gm sox; and
pip install 'sonotok[corpus]' (mido). An interrupted run resumes from DIR.partial/.
"""


def register(subparsers) -> None:
    group = command_group(subparsers, "corpus", "make the synthetic captioned audio corpus")
    p = group.add_parser(
        "make",
        help="render a speech/music/sound corpus and a noise set as Hugging Face datasets",
        description="Render a captioned multi-domain corpus offline from local synthesizers. "
        "Writes DIR/clips (speech, music, sound) and DIR/noise (enhancement noises), each a "
        "datasets.DatasetDict with train/validation/test splits (load_from_disk). The same "
        "flags always give the same audio bytes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("output", metavar="DIR", help="folder to create")
    count = options.non_negative_int
    p.add_argument("--speech", type=count, default=600, help="speech clips (default %(default)s)")
    p.add_argument("--music", type=count, default=300, help="music clips (default %(default)s)")
    p.add_argument(
        "--sounds", type=count, default=300, help="sound-event clips (default %(default)s)"
    )
    p.add_argument(
        "--noise", type=count, default=200, help="noise clips, in DIR/noise (default %(default)s)"
    )
    p.add_argument(
        "--seconds",
        type=options.seconds,
        default=4.0,
        help="length of music, sound and noise clips; speech clips are their sentence, at most "
        "this long (default %(default)s)",
    )
    p.add_argument("--seed", type=options.seed, default=0, help="random seed (default %(default)s)")
    p.add_argument(
        "--val-fraction",
        type=options.probability,
        default=0.1,
        help="share of each domain (default %(default)s)",
    )
    p.add_argument(
        "--test-fraction",
        type=options.probability,
        default=0.1,
        help="share of each domain (default %(default)s)",
    )
    p.add_argument(
        "--soundfont",
        default=None,
        help="General MIDI .sf2 (default: FluidR3_GM from fluid-soundfont-gm)",
    )
    p.add_argument(
        "--workers",
        type=options.positive_int,
        default=None,
        help="parallel processes (default: CPU count, at most 8)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    p.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    from sonotok.corpus.build import CorpusSpec, make_corpus
    from sonotok.corpus.clip import CorpusError

    try:
        spec = CorpusSpec(
            speech=args.speech,
            music=args.music,
            sounds=args.sounds,
            noise=args.noise,
            seconds=args.seconds,
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            soundfont=args.soundfont,
        )
        summary = make_corpus(args.output, spec, workers=args.workers, overwrite=args.overwrite)
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for dataset, domains in summary["counts"].items():
        for domain, splits in domains.items():
            print(
                f"{args.output}/{dataset}: {domain} "
                + ", ".join(f"{k} {v}" for k, v in splits.items())
            )
    speed = summary["clips_per_second_per_worker"]
    if speed:
        print("clips/s per worker: " + ", ".join(f"{d} {v:.2f}" for d, v in speed.items()))
    return 0

from __future__ import annotations

import json
import re

import pytest

from sonotok.generation.errors import GenerationError
from sonotok.generation.prompts import PromptItem, read_prompt_file


def test_csv_manifest_header_is_not_a_prompt(tmp_path):
    path = tmp_path / "prompts.csv"
    path.write_text('id,caption,seconds,seed\nyt1,"a dog barks, twice",2.5,7\nyt2,rain,,\n')
    assert read_prompt_file(path) == [
        PromptItem("a dog barks, twice", id="yt1", seconds=2.5, seed=7),
        PromptItem("rain", id="yt2"),
    ]


def test_tsv_and_jsonl_manifests_and_the_prompt_column(tmp_path):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("prompt\tseconds\npiano music\t4\n")
    assert read_prompt_file(tsv) == [PromptItem("piano music", seconds=4.0)]
    jsonl = tmp_path / "p.jsonl"
    rows = [{"id": "speech/a", "caption": "a man speaks", "seed": 3}, {"id": "b", "prompt": "wind"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_prompt_file(jsonl) == [
        PromptItem("a man speaks", id="speech/a", seed=3),
        PromptItem("wind", id="b"),
    ]


def test_plain_text_is_one_prompt_per_line(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a dog barks\n# a comment\n\n  rain, on a roof  \n")
    assert read_prompt_file(path) == [PromptItem("a dog barks"), PromptItem("rain, on a roof")]


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("a.csv", "a dog barks\nrain\n", "no 'caption' or 'prompt' column"),
        ("a.csv", "id,caption\nx,a\nx,b\n", "'x' appears twice"),
        ("a.csv", "id,caption\nx,a\n,b\n", "some rows have an id"),
        ("a.csv", "id,caption\n../x,a\n", "not a relative file name"),
        ("a.csv", "caption,seconds\na,-1\n", "a.csv:2: '-1' must be > 0"),
        ("a.csv", "caption,seed\na,1.5\n", "a.csv:2: '1.5' is not a whole number"),
        ("a.csv", "caption,duration\na,1\n", "unknown columns ['duration']"),
        ("a.csv", "id,caption\nx,\n", "empty 'caption'"),
        ("a.jsonl", '{"caption": "a"}\nnot json\n', "a.jsonl:2: not valid JSON"),
        ("a.csv", "caption\n", "no rows"),
    ],
)
def test_bad_manifests_name_the_file_row_and_fix(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GenerationError, match=re.escape(message)):
        read_prompt_file(path)
    with pytest.raises(GenerationError, match="not found"):
        read_prompt_file(tmp_path / "missing.csv")

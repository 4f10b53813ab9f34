"""A loading error raised in one package ends any command in one `error:` line and exit 2."""

from __future__ import annotations

from sonotok.cli import main


def test_generate_with_a_missing_tokenizer_is_one_line_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "x.wav"
    rc = main(["generate", "a dog barks", "--tokenizer", str(tmp_path / "missing"), "-o", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert err[-1].startswith("error: model ") and "missing" in err[-1]
    assert "no such file or folder" in err[-1] and "Traceback" not in "\n".join(err)


def test_generate_with_a_damaged_tokenizer_folder(tmp_path, tiny_tokenizer_dir, capsys):
    import shutil

    folder = tmp_path / "tok"
    shutil.copytree(tiny_tokenizer_dir, folder)
    (folder / "model.safetensors").write_bytes(b"")
    rc = main(
        ["generate", "a dog barks", "--tokenizer", str(folder), "-o", str(tmp_path / "x.wav")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("error: ") and "not a readable safetensors" in err[-1]

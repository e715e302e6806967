"""`blt generate --compile / --no-compile`: the compiled step is switchable, and where the
compiler is unavailable generation goes on eagerly after a one-line notice."""

import blt_model.cli.commands as cli
from blt_model.inference import compiled


def test_no_compile_and_a_missing_compiler(monkeypatch, capfd):
    monkeypatch.setattr(cli, "default_model_path", lambda: None)  # the tiny random model: fast
    assert cli.main(["generate", "hi", "--max-bytes", "4", "--seed", "0", "--no-compile"]) == 0
    plain = capfd.readouterr()
    assert "compiled step" not in plain.err
    monkeypatch.setattr(compiled, "compiler_problem", lambda: "no C compiler (gcc) on PATH")
    assert cli.main(["generate", "hi", "--max-bytes", "4", "--seed", "0", "--compile"]) == 0
    out = capfd.readouterr()
    err = " ".join(out.err.split())  # the terminal may wrap the line
    assert err.count("compiled step unavailable (no C compiler (gcc) on PATH); generating eagerly") == 1
    assert out.out == plain.out  # the same bytes, eagerly

import builtins

from blt_chat.__main__ import build_parser, main


def test_serve_without_textual_serve_is_a_one_line_error(monkeypatch, capsys):
    real_import = builtins.__import__

    def fake_import(name, *a, **kw):
        if name.startswith("textual_serve"):
            raise ImportError(name)
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert main(["--serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "textual-serve" in err


def test_parser():
    a = build_parser().parse_args(["some/model", "--device", "cpu"])
    assert a.model_dir == "some/model" and a.device == "cpu" and not a.serve

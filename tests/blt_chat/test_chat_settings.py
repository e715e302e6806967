import json

import pytest

from blt_chat.settings import Settings, load_settings, parse_field, save_settings, settings_path


def test_roundtrip(config_dir):
    s = Settings(temperature=0.3, scheme="fixed", stride=3, seed=7)
    s.add_recent("/a/model")
    path = save_settings(s)
    assert path.parent == config_dir
    loaded, msg = load_settings()
    assert msg is None
    assert loaded == s
    assert loaded.last_model == "/a/model"


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"temperature": "hot"}),
                                     json.dumps({"scheme": "bogus"}), "\xff\xfe"])
def test_corrupt_file_backed_up(config_dir, content):
    config_dir.mkdir(parents=True)
    settings_path().write_text(content, encoding="latin-1")
    s, msg = load_settings()
    assert s == Settings()
    assert msg and "backed up" in msg
    backups = list(config_dir.glob("settings.json.corrupt-*"))
    assert len(backups) == 1 and not settings_path().exists()


def test_unknown_keys_ignored(config_dir):
    config_dir.mkdir(parents=True)
    settings_path().write_text(json.dumps({"temperature": 0.5, "future_option": 1}))
    s, msg = load_settings()
    assert msg is None and s.temperature == 0.5


def test_parse_field():
    assert parse_field("temperature", "0.5") == 0.5
    assert parse_field("seed", "") is None
    assert parse_field("top_k", "40") == 40
    for name, raw in [("temperature", "abc"), ("temperature", "-1"), ("top_k", "1.5"), ("top_p", "0"),
                      ("max_new_bytes", ""), ("threshold", "nan"), ("stride", "0")]:
        with pytest.raises(ValueError):
            parse_field(name, raw)


def test_recent_list_is_bounded_and_deduplicated():
    s = Settings()
    for i in range(15):
        s.add_recent(f"/m/{i}")
    s.add_recent("/m/3")
    assert s.recent_models[0] == "/m/3" and len(s.recent_models) == 10
    assert len(set(s.recent_models)) == 10


def test_sampling_settings_are_the_librarys_sampling_config():
    """The app's sampling values become blt_model's SamplingConfig, whose checks are the ones
    that count (the panel's ranges only bound what it offers)."""
    from blt_model import SamplingConfig

    s = Settings(temperature=0.5, top_k=7, top_p=0.9, repetition_penalty=1.2, max_new_bytes=33, seed=4)
    assert s.sampling_config() == SamplingConfig(temperature=0.5, top_k=7, top_p=0.9, repetition_penalty=1.2,
                                                 max_new_bytes=33, seed=4)
    s.top_p = float("nan")
    with pytest.raises(ValueError, match="top_p"):
        s.sampling_config()

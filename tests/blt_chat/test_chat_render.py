from blt_chat.render import (
    KIND_ESCAPE,
    KIND_MARK,
    N_BUCKETS,
    NO_BUCKET,
    ByteRecord,
    GlyphDecoder,
    StyleBook,
    entropy_bucket,
    escape_char,
    visible_text,
)


def glyphs_of(data: bytes, starts=()):
    dec = GlyphDecoder()
    out = []
    for i, b in enumerate(data):
        dec.feed(ByteRecord(byte=b, entropy=1.0, patch_start=i in starts, patch_index=i), out)
    dec.flush(out)
    return out


def test_multibyte_characters_come_out_whole():
    g = glyphs_of("é漢🦊".encode())
    assert [x.text for x in g] == ["é", "漢", "🦊"]
    assert [x.width for x in g] == [1, 2, 2]


def test_invalid_and_control_bytes_are_visible_escapes():
    g = glyphs_of(b"a\x1b\xff\x07\r\x7f")
    texts = [x.text for x in g]
    assert texts == ["a", "\\e", "\\xff", "\\x07", "\\r", "\\x7f"]
    assert all(x.kind == KIND_ESCAPE for x in g[1:])
    assert not any("\x1b" in t or "\x07" in t for t in texts)


def test_truncated_multibyte_sequence_is_flushed_as_escapes():
    g = glyphs_of("漢".encode()[:2])
    assert [x.text for x in g] == ["\\xe6", "\\xbc"]


def test_c1_and_bidi_controls_escaped():
    assert escape_char("\u0085") == "\\u0085"
    assert escape_char("\u202e") == "\\u202e"
    assert escape_char("a") is None
    assert visible_text(b"x\x1b[2Jy\n") == "x\\e[2Jy\n"


def test_patch_start_inside_character_marks_the_character():
    g = glyphs_of("ab漢".encode(), starts={0, 3})
    kinds = [x.kind for x in g]
    assert kinds.count(KIND_MARK) == 2
    assert g[-1].text == "漢" and g[-2].kind == KIND_MARK


def test_entropy_buckets():
    assert entropy_bucket(float("nan")) == NO_BUCKET
    assert entropy_bucket(0.0) == 0
    assert entropy_bucket(100.0) == N_BUCKETS - 1
    assert entropy_bucket(1.0) < entropy_bucket(3.0)


def test_stylebook_caches_and_contrasts():
    book = StyleBook()
    a = book.style(0, 3, 0)
    assert book.style(0, 3, 0) is a
    assert a.bgcolor is not None and a.color is not None
    assert book.style(0, 3, 1).bgcolor != a.bgcolor  # alternating patch shade
    book.configure(show_entropy=False, dark=True)
    assert book.style(0, 3, 0).bgcolor is None


def test_combining_mark_at_patch_start_gets_a_base():
    g = glyphs_of("e\u0301".encode(), starts={0, 1})
    assert [x.text for x in g if x.kind != KIND_MARK] == ["e", "◌\u0301"]
    g = glyphs_of("e\u0301".encode(), starts={0})
    assert [x.text for x in g if x.kind != KIND_MARK] == ["e", "\u0301"]

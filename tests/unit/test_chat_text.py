"""store.chat_text: how a search's terms are counted in the lines it found (their relevance)
and marked in snippets, without the index."""
from __future__ import annotations

from store.chat_text import relevance, snippet, terms_of, token_spans


def counts(query: str, texts: list[str]) -> list[bool]:
    return [score > 0 for score in relevance(texts, terms_of(query))]


def marked(query: str, text: str) -> str:
    terms = [(t.words, t.prefix) for t in terms_of(query)]
    return snippet(text, token_spans(text), terms)


def test_terms_match_whole_tokens_without_case_or_diacritics():
    texts = ["Zoë said hi", "ZOE", "zoey", "a_zoe", "xzoe", "zo\u00eb\u00eb"]
    assert counts("zoe", texts) == [True, True, False, True, False, False]
    assert counts("ZOË", ["zoe", "Zoè"]) == [True, True]


def test_phrases_and_prefixes():
    texts = ["the brown fox", "fox, brown", "brown\n  fox!", "brownfox", "meetings"]
    assert counts('"brown fox"', texts) == [True, False, True, False, False]
    assert counts("meet*", ["meetings", "a meeting", "unmeet", "meet"]) == \
        [True, True, False, True]
    assert counts('"the bro"*', texts) == [True, False, False, False, False]


def test_more_occurrences_and_shorter_lines_rank_higher():
    one, three = relevance(["alpha beta gamma", "alpha alpha alpha"], terms_of("alpha"))
    assert three > one > 0
    short, long = relevance(["alpha", "alpha " + "filler " * 20], terms_of("alpha"))
    assert short > long > 0
    # Overlapping occurrences of a phrase count, as in FTS5: "a a" occurs twice in "a a a".
    two, once = relevance(["a a a", "a a b"], terms_of('"a a"'))
    assert two > once > 0


def test_every_term_adds_to_the_score():
    both, first = relevance(["red apple", "red car"], terms_of("red apple"))
    assert both > first > 0


def test_a_nul_in_a_text_does_not_shift_the_lines():
    assert counts("x", ["a\x00x", "b", "x"]) == [True, False, True]


def test_snippet_marks_hits_around_the_first_one():
    assert marked("budget", "quick question about the budget") == \
        "quick question about the «budget»"
    assert marked("zoe", "Zoë said the meeting moved") == "«Zoë» said the meeting moved"
    long = " ".join(f"w{i}" for i in range(100)) + " needle " + " ".join(
        f"v{i}" for i in range(100))
    cut = marked("needle", long)
    assert cut.startswith("…w96 ") and "«needle»" in cut and cut.endswith("…")
    assert marked('"brown fox"', "brown dog, brown fox") == "brown dog, «brown» «fox»"
    assert marked("nothing", "no hit here") == "no hit here"

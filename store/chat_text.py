"""A search query's terms matched against message texts in Python: the relevance of the
lines a chat search found, and the snippet that marks the hits.

The index finds the lines (SQLite FTS5, MongoDB's text index); this ranks the few thousand
it found and marks the page's hits. Tokens follow SQLite's ``unicode61`` tokenizer with
``remove_diacritics 2``: runs of letters and digits (``_`` and everything else separate),
lowercased, letters without their diacritics (``Zoë`` → ``zoe``). Where this reading of a
line and the index's differ (rare: characters without a canonical decomposition), only
the line's rank or marks can differ; which lines match is the index's decision alone.

Relevance is BM25's term-frequency part: each term scores ``tf·(K1+1) / (tf + K1·(1 − B +
B·len/avglen))`` in a line (``tf`` its occurrences, a phrase counted where it occurs whole,
a prefix term by the tokens it starts; ``len`` the line's length in characters, ``avglen``
the mean over the lines ranked together), summed over the terms. Terms are not weighted by
their rarity (BM25's IDF): weighing them would mean counting each term over the whole
index, which for a common word or phrase costs more than the whole search, and every
ranked line holds every term anyway. MongoDB's ``textScore`` likewise depends on the line
alone.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from store.query import parse_query

K1, B = 1.2, 0.75
SNIPPET_TOKENS = 16
MARK_OPEN, MARK_CLOSE, ELLIPSIS = "«", "»", "…"

_TOKEN = re.compile(r"[^\W_]+")
# Combining marks vanish after NFD: the diacritics of precomposed letters.
_MARK_RANGES = ((0x300, 0x370), (0x1AB0, 0x1B00), (0x1DC0, 0x1E00), (0x20D0, 0x2100),
                (0xFE20, 0xFE30))
_MARKS: dict[int, None] = {c: None for lo, hi in _MARK_RANGES for c in range(lo, hi)}


def fold(text: str) -> str:
    """``text`` lowercased, its letters without diacritics."""
    text = text.lower()
    if text.isascii():
        return text
    return unicodedata.normalize("NFD", text).translate(_MARKS)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(fold(text))


@functools.cache
def _letter_classes() -> dict[str, str]:
    """For each letter some other letter folds to, a regex class of all of them (``e``:
    ``[eÈÉÊËèéêë…]``): terms are matched on the texts as they are, as folding the whole
    window of lines would cost more than the search. Built once (~15 ms): only letters with
    a canonical decomposition lose diacritics."""
    groups: dict[str, list[str]] = {}
    for cp in range(0x80, 0x10000):
        ch = chr(cp)
        decomposition = unicodedata.decomposition(ch)
        if not decomposition or decomposition[0] == "<" or not ch.isalnum():
            continue
        folded = fold(ch)
        if len(folded) == 1 and folded != ch.lower():
            groups.setdefault(folded, []).append(ch)
    return {f: "[" + re.escape(f + "".join(chars)) + "]" for f, chars in groups.items()}


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]  # folded tokens, in order (several: a phrase)
    prefix: bool  # the last token is a prefix
    find: Callable[[str], list]  # its occurrences in a lowercased text


def terms_of(query: str) -> list[Term]:
    """The query's terms (``store.query.parse_query``), folded; a term this reading finds
    no token in is dropped (it still counts for the index's match)."""
    classes = _letter_classes()
    out = []
    for text, prefix in parse_query(query):
        words = tuple(tokens(text))
        if not words:
            continue
        chars = [[classes.get(c, re.escape(c)) for c in word] for word in words]
        # The first character is consumed and the one before it checked (not a letter or
        # digit), the rest is looked ahead: overlapping occurrences count ("a a" occurs
        # twice in "a a a", as in FTS5), and a pattern that starts with a plain character
        # or class is one the regex engine scans for quickly.
        head = chars[0][0]
        rest = "".join(chars[0][1:]) + "".join(r"[\W_]+" + "".join(c) for c in chars[1:]) \
            + ("" if prefix else r"(?![^\W_])")
        pattern = f"{head}(?<![^\\W_]{head})(?={rest})"
        out.append(Term(words, prefix, re.compile(pattern).findall))
    return out


def relevance(texts: Sequence[str], terms: Sequence[Term]) -> list[float]:
    """Each text's score for ``terms`` (see the module's docstring), texts ranked together;
    a line's length is its characters."""
    if not texts:
        return []
    lowered = [t.lower() for t in texts]
    mean = sum(map(len, texts)) / len(texts) or 1.0
    norms = [K1 * (1 - B + B * len(t) / mean) for t in texts]
    scores = [0.0] * len(texts)
    for term in terms:
        find = term.find
        scores = [s + n * (K1 + 1) / (n + norm) if (n := len(find(t))) else s
                  for s, t, norm in zip(scores, lowered, norms)]
    return scores


Words = tuple[Sequence[str], bool]  # a term's folded tokens, and whether the last is a prefix


def occurs(folded: Sequence[str], i: int, words: Sequence[str], prefix: bool) -> bool:
    """Whether the term ``words`` occurs at token ``i`` of the folded tokens ``folded``."""
    size = len(words)
    if i + size > len(folded) or list(folded[i:i + size - 1]) != list(words[:-1]):
        return False
    last = folded[i + size - 1]
    return last.startswith(words[-1]) if prefix else last == words[-1]


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded token) of each token of ``text``."""
    return [(m.start(), m.end(), fold(m.group())) for m in _TOKEN.finditer(text)]


def snippet(text: str, spans: Sequence[tuple[int, int, str]], terms: Sequence[Words]) -> str:
    """About ``SNIPPET_TOKENS`` tokens of ``text`` around its first hit, each hit token in
    « », … where text was cut. ``spans`` and ``terms`` are read the backend's way
    (``token_spans`` and ``Term`` here; MongoDB folds as its text index does)."""
    if not spans:
        return text
    folded = [s[2] for s in spans]
    hit = [False] * len(spans)
    for words, prefix in terms:
        size = len(words)
        for i in range(len(spans) - size + 1):
            if occurs(folded, i, words, prefix):
                hit[i:i + size] = [True] * size
    first = hit.index(True) if True in hit else 0
    start = max(0, min(first - SNIPPET_TOKENS // 4, len(spans) - SNIPPET_TOKENS))
    end = min(len(spans), start + SNIPPET_TOKENS)
    out, pos = [], spans[start][0] if start else 0
    for (a, b, _), marked in zip(spans[start:end], hit[start:end]):
        out.append(text[pos:a])
        out.append(f"{MARK_OPEN}{text[a:b]}{MARK_CLOSE}" if marked else text[a:b])
        pos = b
    out.append(text[pos:] if end == len(spans) else "")
    return (ELLIPSIS if start else "") + "".join(out) + (ELLIPSIS if end < len(spans) else "")

"""Name normalisation: unicode and case folding, punctuation, suffixes, nicknames, phonetics."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import jellyfish
from nicknames import NickNamer

# Generational suffixes mark different people (father and son): they are split off the
# name and compared apart, never folded into it.
SUFFIXES: dict[str, str] = {
    "jr": "JR",
    "junior": "JR",
    "sr": "SR",
    "senior": "SR",
    "i": "I",
    "ii": "II",
    "iii": "III",
    "iv": "IV",
    "v": "V",
    "2nd": "II",
    "3rd": "III",
    "4th": "IV",
}
# Single-letter "i"/"v" are only suffixes at the end of a multi-token surname.
_TOKEN_RE = re.compile(r"[^\w\s'-]+")
_SPACES_RE = re.compile(r"\s+")


@lru_cache(maxsize=200_000)
def fold(text: str | None) -> str | None:
    """Case- and accent-fold, drop punctuation; hyphens and apostrophes join name parts."""
    if text is None:
        return None
    # ASCII text has no decomposition and no combining marks: most names skip the pass
    bare = text if text.isascii() else _strip_accents(text)
    cleaned = _TOKEN_RE.sub(" ", bare.casefold())
    cleaned = cleaned.replace("'", "").replace("-", " ").replace("_", " ")
    cleaned = _SPACES_RE.sub(" ", cleaned).strip()
    return cleaned or None


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def clean_display(text: str | None) -> str | None:
    """Trim and collapse whitespace, keeping the person's own spelling for display."""
    if text is None:
        return None
    cleaned = _SPACES_RE.sub(" ", text).strip()
    return cleaned or None


def normalise_suffix(text: str | None) -> str | None:
    """'Jr.' -> 'JR', 'iii' -> 'III'. Unknown suffixes are kept upper-cased."""
    folded = fold(text)
    if folded is None:
        return None
    return SUFFIXES.get(folded.replace(" ", ""), folded.upper())


def split_suffix(name: str | None) -> tuple[str | None, str | None]:
    """Split a trailing generational suffix off a name: 'Smith Jr.' -> ('Smith', 'JR')."""
    name = clean_display(name)
    if name is None:
        return None, None
    tokens = name.replace(",", " ").split()
    if len(tokens) >= 2:
        last = tokens[-1].strip(".").lower()
        if last in SUFFIXES:
            return " ".join(tokens[:-1]), SUFFIXES[last]
    return name, None


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=100_000)
def name_group(first_name: str | None) -> tuple[str, ...] | None:
    """The folded name with every name it is a nickname of, or that is a nickname of it.

    From the curated `nicknames` dataset: 'bill' and 'william' share a group member, so
    a comparison can treat them as the same given name.
    """
    folded = fold(first_name)
    if folded is None:
        return None
    token = folded.split(" ")[0]
    namer = _nicknamer()
    group = {token} | namer.canonicals_of(token) | namer.nicknames_of(token)
    return tuple(sorted(group))


@lru_cache(maxsize=100_000)
def soundex(name: str | None) -> str | None:
    folded = fold(name)
    if folded is None:
        return None
    letters = folded.replace(" ", "")
    return jellyfish.soundex(letters) if letters.isalpha() else None


@lru_cache(maxsize=100_000)
def metaphone(folded_name: str | None) -> str | None:
    """Metaphone of an already folded name: 'chris' and 'kris', 'jeff' and 'geoff' agree."""
    if not folded_name:
        return None
    letters = folded_name.replace(" ", "")
    return jellyfish.metaphone(letters) if letters.isalpha() else None

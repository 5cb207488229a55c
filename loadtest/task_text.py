"""Realistic task titles and descriptions for benchmarks: words drawn from one vocabulary with a
Zipf-like distribution (the word of rank r has probability proportional to 1/r), so a few words
are in a large share of tasks ("fix", "api") and most are rare, as in a real tracker.

The head of the vocabulary is real tracker words; the long tail is pronounceable made-up words
(product names, identifiers, people), generated deterministically from a seed.
"""

from __future__ import annotations

import itertools
import random
from typing import Final

HEAD: Final = """
fix update add the api login error page user test bug remove for to and in on with when
refactor deploy release check data migration database cache build ci docs review
endpoint support config dashboard report email notification search task project team
admin mobile android ios web frontend backend server client timeout crash slow
performance memory leak security token password session payment invoice billing
customer order checkout cart product image upload download export import csv pdf sync
queue worker job retry failed broken missing wrong incorrect duplicate empty invalid
null exception stack trace log logging metrics alert monitor kafka postgres redis
docker kubernetes helm terraform aws staging production rollback hotfix feature flag
experiment onboarding signup settings profile avatar permissions role access audit
history comment mention reply thread draft schedule calendar reminder deadline overdue
priority status label filter sort pagination layout style button modal form input
validation translation locale timezone date format
""".split()  # noqa: SIM905 - reads as prose

_CONSONANTS: Final = "b c d f g h j k l m n p r s t v w z br ch dr fl gr kr pl sh st tr"
_VOWELS: Final = "a e i o u ai ea io ou"
_SYLLABLES: Final = [a + b for a in _CONSONANTS.split() for b in _VOWELS.split()]


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """``size`` distinct words, most frequent first: the real head, then made-up words."""
    rng = random.Random(seed)
    words = list(dict.fromkeys(HEAD))
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


class TaskText:
    """Draws titles and descriptions; ``rank_of`` tells how common a word is."""

    def __init__(self, size: int = 50_000, seed: int = 11) -> None:
        self.words = vocabulary(size)
        self.rank_of = {w: r for r, w in enumerate(self.words, start=1)}
        self._cumulative = list(itertools.accumulate(1 / r for r in range(1, size + 1)))
        self._rng = random.Random(seed)

    def draw(self, k: int) -> list[str]:
        return self._rng.choices(self.words, cum_weights=self._cumulative, k=k)

    def title(self) -> str:
        return " ".join(self.draw(self._rng.randint(3, 8)))

    def description(self) -> str | None:
        if self._rng.random() < 0.25:
            return None
        return " ".join(self.draw(self._rng.randint(5, 40)))

"""Negation outside English (issue 18): a negated sexual or gore term is dropped in every main language,
as English "no nudity" has always been; the same term without the negator is still refused."""

from __future__ import annotations

import pytest

from moderation import Moderator


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    return Moderator(semantic=False, learned=True)


@pytest.mark.parametrize(("negated", "plain"), [
    ("a woman on the beach, no nudity", "a woman on the beach, nudity"),
    ("una mujer en la playa, no desnuda", "una mujer en la playa, desnuda"),
    ("una mujer en la playa, sin desnudos", "una mujer en la playa, desnudos"),
    ("um homem, sem nudez", "um homem, nudez"),
    ("une femme, pas nue", "une femme nue"),
    ("une femme sans nudité", "une femme, nudité"),
    ("eine Frau am Strand, nicht nackt", "eine Frau am Strand, nackt"),
    ("eine Frau, keine Nacktheit", "eine Frau, nackt"),
    ("una donna, non nuda", "una donna nuda"),
    ("een vrouw, niet naakt", "een vrouw, naakt"),
    ("kobieta, nie naga", "kobieta naga"),
    ("bir kadın, çıplak değil", "bir kadın, çıplak"),
    ("seorang wanita, tidak telanjang", "seorang wanita telanjang"),
    ("женщина, не голая", "женщина голая"),
    ("zhenshchina ne golaya", "zhenshchina golaya"),
    ("女性、裸ではない", "女性、裸"),
    ("女人，没有裸体", "女人，裸体"),
    ("여자, 노출 없음", "노출한 여자"),
])
def test_a_negated_term_is_dropped_in_its_language(moderator: Moderator, negated: str, plain: str) -> None:
    for semantic in (False, True):  # the lists, and the learned layers after them
        assert moderator.check(negated, semantic=semantic).action.value == "allow", (negated, semantic)
        assert moderator.check(plain, semantic=semantic).action.value == "block", (plain, semantic)


def test_a_phrase_that_starts_with_a_negator_is_still_itself(moderator: Moderator) -> None:
    # "sin ropa" (without clothes) and "ohne Kleidung" are nudity: the negator is part of the listed phrase.
    assert moderator.check("una mujer sin ropa", semantic=False).categories == ["sexual"]
    assert moderator.check("une femme sans vêtements", semantic=False).categories == ["sexual"]


def test_a_negator_of_one_language_does_not_negate_another_languages_term(moderator: Moderator) -> None:
    # Spanish "sin" before the English list's "naked" is no negation (English negators only there).
    assert moderator.check("sin naked woman", semantic=False).action.value == "block"
    # Russian look-alike "he" only negates Russian terms: English "he naked" stays refused.
    assert moderator.check("he naked on the beach", semantic=False).action.value == "block"


def test_negation_does_not_hide_a_minor(moderator: Moderator) -> None:
    # Only the negated term goes: another sexual term next to an age cue is still minors.
    v = moderator.check("una niña de 10 años, no desnuda, en lencería sexy", semantic=False)
    assert v.categories and v.categories[0] == "minors"

"""Context rules (moderation/context.py, data/context.toml): place names that are listed words, and a
nudity word beside a thing it describes, in every language (issue 18, item 4)."""

from __future__ import annotations

import pytest

from moderation import Moderator


@pytest.mark.parametrize("prompt", [
    "the village of Fucking in Austria",
    "Ortsschild von Fucking in Oberösterreich",
    "a road sign for Condom, France",
    "cartel del pueblo de Condom en Francia",
    "Fransa'daki Condom kasabasının tabelası",
    "дорожный знак деревни Fucking в Австрии",
    "オーストリアのFucking村の標識",
])
def test_a_place_name_about_the_place_passes(rules: Moderator, prompt: str) -> None:
    assert rules.check(prompt).action.value == "allow"


@pytest.mark.parametrize("prompt", [
    "a couple fucking in the village",  # a verb, not the proper noun
    "fucking village",  # not capitalised
    "Fucking, a photo",  # no place cue
    "Fucking in Austria, a naked girl",  # the other words still count
    "a woman with a condom in her hand",
])
def test_the_word_itself_is_still_refused(rules: Moderator, prompt: str) -> None:
    assert rules.check(prompt).action.value == "block"


@pytest.mark.parametrize("prompt", [
    "bare concrete walls", "paredes de hormigón desnudo en un loft", "Wände aus nacktem Beton",
    "pareti in cemento nudo", "ściany z gołego betonu", "brütalist dairede çıplak beton duvarlar",
    "dinding beton telanjang", "стены из голого бетона", "голые бетонные стены", "브루탈리즘 아파트의 노출 콘크리트 벽",
    "粗野主义公寓里的裸露混凝土墙", "una rata topo desnuda en el zoo", "un ratto talpa nudo", "голый землекоп в зоопарке",
    "havuç yiyen çıplak köstebek faresi", "tikus mondok telanjang", "동물원에서 굴을 파는 벌거숭이두더지쥐", "动物园里挖地道的裸鼹鼠",
])
def test_a_nudity_word_beside_a_thing_passes(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow"


def test_peeled_fruit_passes_the_word_model(learned: Moderator) -> None:
    # "soyulmuş" is also "undressed": beside a fruit the word model leaves it alone; beside a woman it is read.
    assert learned.check("kahvaltı tabağında soyulmuş bir muz").action.value == "allow"
    assert learned.check("soyulmuş kadın, beton duvar").action.value == "block"


@pytest.mark.parametrize("prompt", [
    "a woman posing nude, concrete wall",  # the comma ends the clause: "nude" describes her
    "nackte Frau vor nacktem Beton",
    "naked woman on a concrete floor",
    "desnuda en la pared de hormigon",
])
def test_a_person_beside_the_thing_is_still_refused(rules: Moderator, prompt: str) -> None:
    assert rules.check(prompt).action.value == "block"


@pytest.mark.parametrize("prompt", [
    "labial color nude en un tocador, foto de catálogo",
    "esmalte nude em unhas curtas, fundo branco",
    "vernis à ongles nude, flacon en verre",
    "Nagellack in Nude-Farbe, Flasche auf Holz",
    "palette di ombretti nude, vista dall'alto",
    "lakier do paznokci w kolorze nude",
    "nude renkli oje şişesi, stüdyo ışığı",
    "누드 베이지 립 제품, 스튜디오 조명",
    "裸粉色指甲油，产品照片",
])
def test_nude_as_a_colour_is_allowed(prompt: str) -> None:
    assert Moderator(semantic=False).check(prompt, semantic=False).action.value == "allow", prompt


@pytest.mark.parametrize("prompt", ["nude woman, red lipstick", "nude woman with red lipstick",
                                    "nude girl, pink nail polish", "mujer nude con labial rojo"])
def test_nude_person_beside_make_up_still_blocks(prompt: str) -> None:
    assert Moderator(semantic=False).check(prompt, semantic=False).action.value == "block", prompt


@pytest.mark.parametrize("prompt", [
    "blood orange halves on a marble plate, food photo",  # fruit beside a gore word
    "sinaasappel in plakjes, bloedrood vruchtvlees, stilleven",
    "anatomical plate of the human skull, cross-section, vintage textbook",
    "ilustración anatómica de un corazón humano, libro de medicina",
    "解剖図、脳の断面、医学書のイラスト",
    "with bare hands he lifts the rock, a mani nude, epic",
    "der Hund wedelt mit dem Schwanz vor Freude",
])
def test_fruit_anatomy_plates_and_idioms_pass(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow"


@pytest.mark.parametrize("prompt", [
    "a man skinned alive, blood everywhere, anatomy of horror",  # the anatomy word is another clause
    "a naked man catching fish with his bare hands",
])
def test_the_contexts_do_not_reach_past_their_clause(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "block"


@pytest.mark.parametrize("prompt", [
    "a marble statue of a nude Apollo in the Louvre, soft light",
    "estatua de mármol de una diosa desnuda en el museo del Prado",
    "nackte Marmorskulptur im Museum, Besucher",
    "rzeźba nagiej bogini z marmuru, muzeum",
    "çıplak mermer heykel, müze salonu",
    "голая мраморная статуя в музее",
    "美術館の大理石の裸婦像",
    "classical nude painting, gallery wall",
])
def test_nudity_in_classical_art_passes(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow", learned.check(prompt)


@pytest.mark.parametrize("prompt", [
    "medical illustration of the female genitals, textbook figure",
    "ilustración médica anatómica de los genitales masculinos",
    "anatomische Zeichnung der Genitalien, Lehrbuch",
])
def test_body_parts_in_a_medical_figure_pass(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow", learned.check(prompt)


@pytest.mark.parametrize("prompt", [
    "naked woman posing beside a marble statue",  # a person
    "naked, in a museum at night",  # a museum in another clause is not enough
    "classic pinup, nude",  # "classic" is not classical art, and only counts in its own clause
    "couple having sex in a museum, marble statues",  # an act, never art
    "nude marble statue of a young girl",  # a person (and a minor)
    "medical anatomy, pussy",  # slang is never anatomy
    "a naked woman reading a medical textbook",  # nudity is not a body part in a figure
])
def test_art_and_anatomy_do_not_cover_people_acts_or_slang(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "block", prompt


@pytest.mark.parametrize("prompt", [
    "a peacock spreading its feathers, long Schwanz, castle garden",
    "Fuchs im Schnee, buschiger Schwanz",
    "a fluffy pussy cat asleep on the sofa",
    "une chatte tigrée qui dort au soleil",
    "polla de agua en el estanque, juncos",
])
def test_slang_words_for_an_animal_pass_beside_the_animal(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow", learned.check(prompt)


@pytest.mark.parametrize("prompt", ["his cock out, horse in the background", "man showing his Schwanz, dog",
                                    "a woman's pussy, cat ears"])
def test_a_person_keeps_the_slang_reading_beside_an_animal(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "block", prompt


def test_an_allowlisted_word_beats_the_stem_it_starts_with(rules: Moderator) -> None:
    assert rules.check("naaktslakken in de moestuin").action.value == "allow"  # slugs, under "naakt*"
    assert rules.check("naakte vrouw in de moestuin").action.value == "block"


@pytest.mark.parametrize("prompt", ["夜景、長時間露出、光の軌跡", "장노출로 찍은 도시 야경"])
def test_an_allowlisted_phrase_in_a_script_without_spaces_vouches_for_its_clause(learned: Moderator,
                                                                                    prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow", learned.check(prompt)


@pytest.mark.parametrize("prompt, category", [
    ("bouteille d'Orangina sur une table", "trademark"),  # the elided article no longer hides the name
    ("la scatola dell'Nutella sul tavolo", "trademark"),
    ("l'écolière toute nue", "minors"),
])
def test_an_elided_article_does_not_hide_the_word(rules: Moderator, prompt: str, category: str) -> None:
    v = rules.check(prompt)
    assert category in v.categories, v


@pytest.mark.parametrize("prompt", [
    "Wandfarbe in Nude und Hautfarbe, Farbmuster nebeneinander",  # a colour past a short word
    "un rape a la plancha con patatas",  # monkfish
    "kue kering dalam toples kaca di meja",  # a jar in Indonesian
])
def test_more_benign_traps_pass(learned: Moderator, prompt: str) -> None:
    assert learned.check(prompt).action.value == "allow", learned.check(prompt)


def test_a_person_in_a_kitchen_scene_keeps_the_gore(learned: Moderator) -> None:
    """"someone" names a person: a meat cleaver no longer makes their chopped-off fingers cooking."""
    v = learned.check("someone getting their fingers chopped off with a meat cleaver, blood spray")
    assert v.action.value == "block" and "gore" in v.categories, v
    assert learned.check("chopping chicken wings with a meat cleaver, cutting board").action.value == "allow"


@pytest.mark.parametrize("prompt", ["kids playing naked on the beach", "children playing in the nude",
                                    "baby bath time, naked baby"])
def test_an_allowlisted_phrase_never_hides_a_child(rules: Moderator, prompt: str) -> None:
    """"kids playing" was allowlisted as a phrase, and so hid its child word from the minors rule."""
    v = rules.check(prompt)
    assert v.action.value == "block" and "minors" in v.categories, v


@pytest.mark.parametrize("prompt, expected", [
    ("10 sai no onna no ko, nude", "minors"),  # romaji "no" is a particle, and the comma ends its clause
    ("12 sai no onna no ko nude", "minors"),  # "no" after a romaji word ("ko") is "of", not a negator
    ("no clothes, nude", "sexual"),
    ("a woman on the beach, no nudity", None),
    ("çıplak değil, kadın portresi", None),
])
def test_a_negator_reaches_no_further_than_its_clause(rules: Moderator, prompt: str, expected: str | None) -> None:
    v = rules.check(prompt)
    assert (expected in v.categories and v.action.value == "block") if expected else v.action.value == "allow", v


def test_the_age_finders_alternations_match_what_a_plain_alternation_does() -> None:
    """``ages._alternation`` factors the number words and units as a trie for speed; it must match the same words."""
    import re

    from moderation.ages import _alternation

    words = ["on", "one", "onze", "once", "dix", "dix-sept", "zwolf", "zwolfte", "12-летка"]
    pattern = re.compile(r"\b" + _alternation(words) + r"\b")
    assert all(pattern.fullmatch(w) for w in words)
    assert not any(pattern.fullmatch(w) for w in ("onz", "dixs", "zwolft", "o", ""))
    assert pattern.findall("dix-sept ans, onze anos, zwolfte") == ["dix-sept", "onze", "zwolfte"]


@pytest.mark.parametrize("prompt, category", [
    ("Mônica e Cebolinha brincando na rua", "copyright"),  # two ambiguous names of a kind confirm each other
    ("Chaves dentro do barril", "copyright"),  # a context word confirms an ambiguous character
])
def test_ambiguous_localised_characters_need_a_second_signal(rules: Moderator, prompt: str, category: str) -> None:
    assert category in rules.check(prompt).categories
    assert rules.check("chaves do carro em cima da mesa").action.value == "allow"  # keys
    assert rules.check("arroz com cebolinha e ovo").action.value == "allow"  # chives


@pytest.mark.parametrize("prompt, expected", [
    ("abandoned manor in the fog, eerie mood, gothic horror", "allow"),  # a genre, no injury
    ("gothic horror, decapitated body", "block"),  # a listed gore word still counts
    ("bodybuilder doing the full monty on stage", "block"),
    ("the full monty breakfast, fried eggs and beans", "allow"),
])
def test_horror_as_a_genre_and_the_full_monty(learned: Moderator, prompt: str, expected: str) -> None:
    assert learned.check(prompt).action.value == expected, learned.check(prompt)

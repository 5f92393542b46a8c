"""Label sets (VOC, EmojiVOC, COCO 2014, NUS-WIDE), pluralisation and label extraction."""
import pytest

from lcmc_core.text.label_sets import COCO2014_CATEGORY_IDS, available_label_sets, get_label_set
from lcmc_core.text.labels import LabelSet, _squeeze, join_names, plural_forms, pluralize, with_article

ALL_SETS = ["voc2007", "emoji-voc", "coco2014", "nuswide"]

NUS_CONCEPTS = """airport animal beach bear birds boats book bridge buildings cars castle cat cityscape
clouds computer coral cow dancing dog earthquake elk fire fish flags flowers food fox frost garden
glacier grass harbor horses house lake leaf map military moon mountain nighttime ocean person plane
plants police protest railroad rainbow reflection road rocks running sand sign sky snow soccer sports
statue street sun sunset surf swimmers tattoo temple tiger tower town toy train tree valley vehicle
water waterfall wedding whales window zebra""".split()


def ex(label_set, text):
    ls = get_label_set(label_set)
    return sorted(ls.classnames[i] for i in ls.extract(text))


# --- the label sets themselves ----------------------------------------------------------------

def test_registry():
    for name in ALL_SETS:
        assert name in available_label_sets()
    with pytest.raises(KeyError, match="expected one of"):
        get_label_set("imagenet")


def test_sizes_and_orders():
    voc, coco, nus = (get_label_set(n) for n in ("voc2007", "coco2014", "nuswide"))
    assert len(voc) == 20 and voc.classnames[0] == "aeroplane" and voc.classnames[-1] == "tvmonitor"
    assert len(coco) == 80
    assert coco.classnames[:5] == ("person", "bicycle", "car", "motorcycle", "airplane")
    assert coco.classnames[-4:] == ("scissors", "teddy bear", "hair drier", "toothbrush")
    for name in ("dining table", "tv", "couch", "potted plant", "hair drier", "skis", "sports ball"):
        assert name in coco.classnames
    assert len(nus) == 81
    assert list(nus.classnames) == NUS_CONCEPTS
    assert list(nus.classnames) == sorted(nus.classnames)  # Concepts81.txt is alphabetical


def test_coco_category_ids():
    coco = get_label_set("coco2014")
    ids = list(COCO2014_CATEGORY_IDS.values())
    assert list(COCO2014_CATEGORY_IDS) == list(coco.classnames)
    assert ids == sorted(ids) and len(set(ids)) == 80 and ids[0] == 1 and ids[-1] == 90
    assert set(range(1, 91)) - set(ids) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    assert COCO2014_CATEGORY_IDS["dining table"] == 67
    assert COCO2014_CATEGORY_IDS["tv"] == 72
    assert COCO2014_CATEGORY_IDS["hair drier"] == 89


def test_emoji_voc_shares_voc_words():
    voc, emoji = get_label_set("voc2007"), get_label_set("emoji-voc")
    assert emoji.classnames == voc.classnames and emoji.synonyms == voc.synonyms
    assert emoji.prompt_names == voc.prompt_names


@pytest.mark.parametrize("name", ALL_SETS)
def test_every_class_names_itself(name):
    ls = get_label_set(name)
    for i in range(len(ls)):
        for text in (ls.classnames[i], ls.prompt_names[i], pluralize(ls.prompt_names[i]),
                     ls.prompt_names[i].upper(), f"There is {with_article(ls.prompt_names[i])} here.",
                     f"A photo of many {pluralize(ls.prompt_names[i])}."):
            assert ls.extract(text) == {i}, (name, ls.classnames[i], text)


@pytest.mark.parametrize("name", ALL_SETS)
def test_every_surface_form_names_only_its_class(name):
    ls = get_label_set(name)
    for i in range(len(ls)):
        assert ls.synonyms[i][0] == ls.prompt_names[i]
        for form in ls.surface_forms(i):
            assert ls.extract(form) == {i}, (name, ls.classnames[i], form)
            assert ls.extract(f"Look at the {form}, please.") == {i}, (name, form)


@pytest.mark.parametrize("name", ALL_SETS)
def test_surface_forms_not_shared(name):
    ls = get_label_set(name)
    owner = {}
    for i in range(len(ls)):
        for form in ls.surface_forms(i):
            key = _squeeze(form)
            assert owner.setdefault(key, i) == i, (name, form, ls.classnames[owner[key]], ls.classnames[i])
    for phrase in ls.stop_phrases:
        assert _squeeze(phrase) not in owner, (name, phrase)


def test_constructor_rejects_bad_sets():
    with pytest.raises(ValueError, match="both 'a' and 'b'"):
        LabelSet("x", ("a", "b"), ("cat", "dog"), (("cat",), ("dog", "cats")))
    with pytest.raises(ValueError, match="same length"):
        LabelSet("x", ("a", "b"), ("cat",), (("cat",), ("dog",)))
    with pytest.raises(ValueError, match="duplicate"):
        LabelSet("x", ("a", "a"), ("cat", "dog"), (("cat",), ("dog",)))
    with pytest.raises(ValueError, match="stop phrase"):
        LabelSet("x", ("a",), ("cat",), (("cat",),), ("cats",))
    with pytest.raises(KeyError, match="not a class"):
        get_label_set("voc2007").index("zebra")


# --- extraction ------------------------------------------------------------------------------

def test_word_boundaries():
    for text in ("A catalogue on the table", "scattered leaves", "concatenated files", "dogma",
                 "a carpet", "a busy day", "a cowboy hat", "ball bearing", "a scattering of hats"):
        assert "cat" not in ex("coco2014", text) and "dog" not in ex("coco2014", text)
        assert "car" not in ex("coco2014", text) and "bus" not in ex("coco2014", text)
        assert "cow" not in ex("coco2014", text) and "bear" not in ex("coco2014", text)
    assert ex("coco2014", "A catalogue on the table") == ["dining table"]


def test_plurals_and_irregulars():
    assert ex("coco2014", "Three knives, two mice and many people") == ["knife", "mouse", "person"]
    assert ex("coco2014", "dining tables and couches") == ["couch", "dining table"]
    assert ex("coco2014", "a pair of skis, a ski and some scissors") == ["scissors", "skis"]
    assert ex("coco2014", "two policemen and some buses") == ["bus", "person"]
    assert ex("voc2007", "persons and sheep") == ["person", "sheep"]
    assert ex("nuswide", "birds over the boats and horses") == ["birds", "boats", "horses"]
    assert ex("nuswide", "autumn leaves under blue skies") == ["leaf", "sky"]
    assert ex("nuswide", "several cacti") == ["plants"]


def test_multiword_and_longest_match():
    assert ex("coco2014", "a teddy bear") == ["teddy bear"]
    assert ex("coco2014", "a teddy bear next to a brown bear") == ["bear", "teddy bear"]
    assert ex("coco2014", "a hot dog") == ["hot dog"]
    assert ex("coco2014", "a hot dog and a dog") == ["dog", "hot dog"]
    assert ex("voc2007", "a hot dog on a plate") == []
    assert ex("coco2014", "a tv remote") == ["remote"]
    assert ex("coco2014", "a toilet bowl") == ["toilet"]
    assert ex("coco2014", "a microwave oven") == ["microwave"]
    assert ex("nuswide", "a teddy bear") == ["toy"]
    assert ex("nuswide", "a fire truck") == ["vehicle"]
    assert ex("nuswide", "a police car and a sports car") == ["cars", "police"]


def test_hyphens_spaces_case_possessives():
    assert ex("coco2014", "A Teddy-Bear") == ["teddy bear"]
    assert ex("coco2014", "a teddybear") == ["teddy bear"]
    assert ex("coco2014", "a cell-phone, a cellphone, a CELL PHONE") == ["cell phone"]
    assert ex("coco2014", "HOT-DOGS") == ["hot dog"]
    assert ex("voc2007", "the dog's ball and the cats' bowl") == ["cat", "dog"]
    assert ex("voc2007", "a diningtable, a tvmonitor and a pottedplant") == \
        ["diningtable", "pottedplant", "tvmonitor"]
    assert ex("coco2014", "a  dining\ttable") == ["dining table"]
    assert ex("coco2014", "a dining_table and potted_plant.jpg") == ["dining table", "potted plant"]
    assert ex("coco2014", "the dog\u2019s bowl") == ["bowl", "dog"]
    assert ex("coco2014", "a bird\u2019s eye view") == []
    assert ex("coco2014", "2dogs or dog2") == []


def test_modifiers_and_stop_phrases():
    assert ex("coco2014", "a cat-shaped cookie and a dog-like toy") == []
    assert ex("coco2014", "a cat and a dog-friendly cafe") == ["cat", "dog"]
    assert ex("voc2007", "a cable car near the train station") == []
    assert ex("coco2014", "a remote village") == []
    assert ex("coco2014", "a remote on the couch") == ["couch", "remote"]
    assert ex("nuswide", "a fire hydrant") == []
    assert ex("nuswide", "ice cream") == ["food"]


def test_mentions_spans():
    ls = get_label_set("coco2014")
    text = "A dog's toy and two Teddy Bears."
    spans = ls.mentions(text)
    assert [(text[s:e], ls.classnames[i]) for s, e, i in spans] == [("dog", "dog"), ("Teddy Bears", "teddy bear")]
    with pytest.raises(TypeError, match="str"):
        ls.extract(None)


# --- pluralize and articles ------------------------------------------------------------------

@pytest.mark.parametrize("singular, plural", [
    ("dog", "dogs"), ("bus", "buses"), ("box", "boxes"), ("couch", "couches"), ("brush", "brushes"),
    ("puppy", "puppies"), ("toy", "toys"), ("sky", "skies"), ("knife", "knives"), ("leaf", "leaves"),
    ("person", "people"), ("mouse", "mice"), ("policeman", "policemen"), ("human", "humans"),
    ("grandchild", "grandchildren"), ("sheep", "sheep"), ("fish", "fish"), ("scissors", "scissors"),
    ("ski", "skis"), ("skis", "skis"), ("teddy bear", "teddy bears"), ("dining table", "dining tables"),
    ("hair drier", "hair driers"), ("double-decker", "double-deckers"), ("stomach", "stomachs"),
    ("tattoo", "tattoos"), ("potato", "potatoes"), ("cactus", "cacti"), ("TV", "TVs"), ("Dog", "Dogs"),
])
def test_pluralize(singular, plural):
    assert pluralize(singular) == plural


def test_plural_forms_and_errors():
    assert plural_forms("person") == ["people", "persons"]
    assert plural_forms("dog") == ["dogs"]
    with pytest.raises(ValueError, match="non-empty"):
        pluralize("  ")


@pytest.mark.parametrize("noun, phrase", [
    ("dog", "a dog"), ("airplane", "an airplane"), ("umbrella", "an umbrella"),
    ("unicorn", "a unicorn"), ("hour", "an hour"), ("European car", "a European car"),
    ("snow", "snow"), ("scissors", "scissors"), ("tv", "a tv"), ("oven", "an oven"),
])
def test_with_article(noun, phrase):
    assert with_article(noun) == phrase


def test_join_names_reads_like_a_sentence():
    assert join_names([]) == "" and join_names(["a dog"]) == "a dog"
    assert join_names(["a dog", "a cat"]) == "a dog and a cat"
    assert join_names(["a", "b", "c"]) == "a, b and c"
    assert join_names(["a", "b", "c"], "or", serial_comma=True) == "a, b, or c"
    assert join_names(["a", "b"], serial_comma=True) == "a and b"  # no comma with two names


# --- COCO 2014 with the official CoMC code's names ----------------------------------------------

def test_official_coco_names_are_the_official_codes_first_synonyms():
    from lcmc_core.text.label_sets import COCO2014_OFFICIAL_NAMES
    coco = get_label_set("coco2014")
    assert len(COCO2014_OFFICIAL_NAMES) == 80 == len(set(COCO2014_OFFICIAL_NAMES))
    assert COCO2014_OFFICIAL_NAMES[:6] == ("person", "bicycle", "car", "motor bike", "aeroplane", "bus")
    assert COCO2014_OFFICIAL_NAMES[30] == "skis" and COCO2014_OFFICIAL_NAMES[62] == "tv"
    assert COCO2014_OFFICIAL_NAMES[-4:] == ("scissors", "teddy bear", "hair drier", "toothbrush")
    # against the COCO category names, only two differ (the official list keeps 'skis', 'tv', 'hair drier')
    differ = [(c, o) for c, o in zip(coco.classnames, COCO2014_OFFICIAL_NAMES) if c != o]
    assert differ == [("motorcycle", "motor bike"), ("airplane", "aeroplane")]


def test_coco2014_official_has_the_same_classes_with_the_official_prompt_names():
    from lcmc_core.text.label_sets import COCO2014_OFFICIAL_NAMES
    coco, official = get_label_set("coco2014"), get_label_set("coco2014-official")
    assert official.name == "coco2014-official" and "coco2014-official" in available_label_sets()
    assert official.classnames == coco.classnames == tuple(COCO2014_CATEGORY_IDS)
    assert official.prompt_names == COCO2014_OFFICIAL_NAMES
    assert official.stop_phrases == coco.stop_phrases
    for i in range(80):  # both names are synonyms of the class, the official one first
        assert official.synonyms[i][0] == COCO2014_OFFICIAL_NAMES[i]
        assert coco.prompt_names[i] in official.synonyms[i]
        assert set(coco.synonyms[i]) | {COCO2014_OFFICIAL_NAMES[i]} == set(official.synonyms[i])


def test_coco2014_itself_is_unchanged():
    coco = get_label_set("coco2014")
    assert coco.name == "coco2014" and get_label_set("coco") is coco
    assert (coco.prompt_names[3], coco.prompt_names[4], coco.prompt_names[30]) == ("motorcycle", "airplane", "ski")
    assert coco.synonyms[3] == ("motorcycle", "motorbike", "motor bike", "dirt bike", "scooter", "moped")
    assert coco.synonyms[30] == ("ski", "pair of skis")


def test_official_name_differences_lists_exactly_the_three_prompt_names():
    from lcmc_core.text.label_sets import official_name_differences
    expected = [("motorcycle", "motorcycle", "motor bike"), ("airplane", "airplane", "aeroplane"), ("skis", "ski", "skis")]
    assert official_name_differences() == expected
    assert official_name_differences("coco") == expected == official_name_differences("coco2014-official")
    with pytest.raises(KeyError, match="no official CoMC class names"):
        official_name_differences("voc2007")


def test_get_label_set_names_choice():
    coco, official = get_label_set("coco2014"), get_label_set("coco2014-official")
    assert get_label_set("coco2014", names="official") is official
    assert get_label_set("coco", names="official") is official
    assert get_label_set(coco, names="official") is official
    assert get_label_set("coco2014-official", names="official") is official
    assert get_label_set("coco2014-official", names="ours") is coco
    assert get_label_set("coco2014", names="ours") is coco and get_label_set("coco2014") is coco
    assert get_label_set("nuswide", names="ours") is get_label_set("nuswide")
    with pytest.raises(KeyError, match="'voc2007' has no official CoMC class names"):
        get_label_set("voc2007", names="official")
    with pytest.raises(ValueError, match="names: expected one of"):
        get_label_set("coco2014", names="theirs")


@pytest.mark.parametrize("name", ["coco2014", "coco2014-official"])
def test_both_coco_sets_extract_both_names(name):
    cases = {
        "A motor bike parked by a motorcycle.": ["motorcycle"],
        "Two motor bikes and three motorcycles.": ["motorcycle"],
        "An aeroplane above an airplane.": ["airplane"],
        "Aeroplanes and airplanes at the gate.": ["airplane"],
        "A pair of skis next to a ski.": ["skis"],
        "Skis on a TV next to a motorbike.": ["motorcycle", "skis", "tv"],
        "A photo of a aeroplane.": ["airplane"],
    }
    for text, classes in cases.items():
        assert ex(name, text) == classes, (name, text)


def test_coco2014_official_keeps_the_label_set_invariants():
    ls = get_label_set("coco2014-official")
    for i in range(len(ls)):
        name = ls.prompt_names[i]
        for text in (name, pluralize(name), f"There is {with_article(name)} here.", ls.classnames[i]):
            assert ls.extract(text) == {i}, (ls.classnames[i], text)
        for form in ls.surface_forms(i):
            assert ls.extract(f"Look at the {form}, please.") == {i}, form


def test_official_composition_of_prompts_with_the_official_names():
    from lcmc_core.text.corpus import prompt_augmentation
    recs = prompt_augmentation("coco2014-official", copies=9, templates="openai")
    texts = [r["text"] for r in recs]
    for prompt in ("a photo of a motor bike.", "a photo of a aeroplane.", "a photo of a skis.", "a photo of a tv."):
        assert texts.count(prompt) == 10, prompt  # 9 copies + the same template among OpenAI's 80
    ls = get_label_set("coco2014-official")
    assert all(ls.extract(r["text"]) == set(r["label_ids"]) for r in recs)

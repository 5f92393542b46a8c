"""Label sets of the benchmarks: official class names, prompt names, synonyms, and label extraction.

A :class:`LabelSet` knows, for each class, its official name (as in the dataset's files), the
natural name used in prompts ("a photo of a potted plant."), and the singular surface forms
(synonyms) that count as a mention of the class in free text. Plurals are derived by rule
(:func:`pluralize`, plus a few alternative plurals such as "persons"), never listed.
:meth:`LabelSet.extract` finds the classes a sentence names:

- case-insensitive, on word boundaries ("catalogue" and "scatter" do not name a cat);
- singular and plural forms ("dining tables", "people", "knives");
- multi-word forms joined by spaces, hyphens, underscores or nothing ("teddy bear", "teddy-bear",
  "teddy_bear", "teddybear"); underscores also delimit words ("a_dog" names a dog);
- possessives, with straight or typographic apostrophes ("the dog's bowl" names a dog);
- the longest form wins at a position, so "teddy bear" is not a bear and "hot dog" not a dog in
  COCO; phrases listed as ``stop_phrases`` (e.g. "hot dog" in VOC) name no class at all;
- a form followed by a hyphenated "-like", "-shaped", "-themed", "-style" or "-print" is not a
  mention ("a cat-shaped cookie" has no cat).

Every surface form (singular or plural) belongs to exactly one class of a set; the constructor
checks it. Known ambiguous words are kept because they name the class far more often than not in
photo descriptions: COCO "orange" (also a colour), "remote" (also an adjective; common adjective
uses are stop phrases), "tie" and "sink" (also verbs), "mouse" and "bat" (also animals).

Label sets: ``voc2007`` (20), ``emoji-voc`` (the VOC classes of the toy world), ``coco2014`` (80;
official category ids in :data:`COCO2014_CATEGORY_IDS`) and ``nuswide`` (81 concepts in
``Concepts81.txt`` order). NUS-WIDE's concepts overlap in meaning (a "dog" is an "animal", a
"car" a "vehicle"); extraction reports only the concepts a sentence names literally.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["LabelSet", "pluralize", "plural_forms", "with_article", "indefinite_article", "join_names",
           "build_label_set"]

# Irregular plurals; everything else follows the spelling rules in `pluralize`.
_IRREGULAR_PLURALS = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "foot": "feet",
    "mouse": "mice", "goose": "geese", "ox": "oxen", "calf": "calves", "knife": "knives",
    "leaf": "leaves", "shelf": "shelves", "wolf": "wolves", "half": "halves", "elf": "elves",
    "life": "lives", "wife": "wives", "thief": "thieves", "loaf": "loaves",
    "scarf": "scarves", "hoof": "hooves", "tooth": "teeth", "potato": "potatoes",
    "tomato": "tomatoes", "hero": "heroes", "volcano": "volcanoes", "echo": "echoes",
    "cactus": "cacti", "fungus": "fungi", "louse": "lice", "dice": "dice", "die": "dice",
    "index": "indices", "analysis": "analyses", "crisis": "crises", "oasis": "oases",
    "axis": "axes", "torpedo": "torpedoes", "mosquito": "mosquitoes", "buffalo": "buffaloes",
}
# Irregular last parts of compounds ("policeman", "grandchild", "dormouse", "salesperson").
_IRREGULAR_SUFFIXES = ("woman", "man", "child", "mouse", "foot", "tooth", "goose", "person")
_NOT_COMPOUNDS = {"human", "german", "roman", "shaman", "talisman", "caiman", "ottoman", "walkman",
                  "doberman", "pullman", "bigfoot", "barefoot", "afoot", "underfoot"}
# Nouns whose plural is the same word.
_INVARIANT_PLURALS = {
    "sheep", "fish", "deer", "aircraft", "cattle", "people", "skis", "scissors", "moose",
    "bison", "series", "species", "swine", "elk", "shrimp", "salmon", "trout", "police",
    "military", "food", "sand", "snow", "water", "grass", "frost", "surf", "fire",
    "running", "dancing", "nighttime", "broccoli", "glasses", "news", "clothing",
    "luggage", "furniture", "equipment", "offspring", "wildlife", "foliage", "soccer",
    "sunshine", "sunlight", "moonlight", "jogging", "swimming", "surfing", "ballet", "cod",
    "reindeer", "wapiti", "pants", "jeans", "trousers", "shorts", "binoculars", "tongs",
    "pliers", "headphones", "earphones", "sunglasses", "goggles", "rubble", "debris", "traffic",
    "spaghetti", "pasta", "rice", "bread", "hoarfrost", "rime", "snowfall", "rainfall",
    "aircrafts", "spacecraft", "hovercraft", "watercraft", "shellfish", "goldfish", "swordfish",
    "jellyfish", "starfish", "catfish", "dusk", "dawn", "twilight", "ice",
    "shears", "alps", "falls", "woods", "stairs", "clothes", "outskirts", "reflected", "tattooed",
    "frosty", "snowy", "sunny", "overcast", "skiing", "cycling", "golf", "tennis", "rugby",
    "hockey",
}
# Ending in "ch" but pronounced /k/: plural by "s".
_CH_K = {"stomach", "monarch", "epoch", "loch", "czech", "eunuch", "matriarch", "patriarch", "tech"}
# Further accepted plurals besides the one `pluralize` gives.
_EXTRA_PLURALS = {
    "person": ("persons",), "fish": ("fishes",), "cactus": ("cactuses",), "bus": ("busses",),
    "mouse": ("mouses",), "food": ("foods",), "hoof": ("hoofs",), "scarf": ("scarfs",),
    "fungus": ("funguses",), "buffalo": ("buffalos",), "mosquito": ("mosquitos",),
    "volcano": ("volcanos",), "tornado": ("tornadoes",), "mango": ("mangoes",),
    "flamingo": ("flamingoes",), "halo": ("haloes",), "zero": ("zeroes",), "die": ("dies",),
    "army": ("armies",), "ice": ("ices",), "deer": ("deers",), "elk": ("elks",),
    "moose": ("mooses",), "bread": ("breads",), "grass": ("grasses",), "sand": ("sands",),
    "water": ("waters",), "fire": ("fires",), "frost": ("frosts",), "snow": ("snows",),
}
# Nouns used without an indefinite article in prompts ("a photo of snow.", "a photo of scissors.").
_NO_ARTICLE = {
    "dancing", "fire", "food", "frost", "grass", "military", "night", "nighttime", "police",
    "running", "sand", "sky", "snow", "soccer", "surf", "water", "broccoli", "scissors", "skis",
    "luggage", "foliage", "wildlife", "people", "cattle", "glasses", "sunglasses", "rain",
    "sunlight", "sunshine", "coral", "traffic", "furniture", "jeans", "pants", "rubble",
}
# Vowel-letter words said with a consonant sound, and consonant-letter words said with a vowel.
_A_BEFORE_VOWEL = re.compile(r"^(uni|use|usu|uti|euro|eu|ewe|one|once|ufo|uk|us\b|ure|uri|uvu)", re.I)
_AN_BEFORE_CONSONANT = re.compile(
    r"^(hour|honest|honor|honour|heir|herb\b|x-ray|fbi|mri|suv|lcd|led\b|nba|nfl|nhl|mp3|sms|hd\b|f1\b)", re.I)


def pluralize(noun: str) -> str:
    """Return the English plural of a (possibly multi-word) noun; only the last word changes."""
    if not isinstance(noun, str) or not noun.strip():
        raise ValueError(f"pluralize: expected a non-empty noun, got {noun!r}")
    noun = noun.strip()
    head, sep, last = noun.rpartition(" ")
    if "-" in last:  # "double-decker" -> "double-deckers"
        lhead, lsep, last = last.rpartition("-")
        head, sep = head + sep + lhead, lsep
    return head + sep + _match_case(last, _plural_word(last.lower()))


def _plural_word(lower: str) -> str:
    if lower in _INVARIANT_PLURALS:
        return lower
    if lower in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[lower]
    if lower not in _NOT_COMPOUNDS:
        for suffix in _IRREGULAR_SUFFIXES:
            if lower.endswith(suffix) and len(lower) > len(suffix):
                return lower[: -len(suffix)] + _IRREGULAR_PLURALS[suffix]
    if lower in _CH_K:
        return lower + "s"
    if re.search(r"(s|x|z|ch|sh)$", lower):
        return lower + "es"
    if re.search(r"[^aeiou]y$", lower):
        return lower[:-1] + "ies"
    return lower + "s"


def plural_forms(noun: str) -> list[str]:
    """Return every accepted plural of ``noun``: :func:`pluralize` first, then alternatives ("persons")."""
    forms = [pluralize(noun)]
    head, sep, last = noun.strip().rpartition(" ")
    for alt in _EXTRA_PLURALS.get(last.lower(), ()):
        form = head + sep + _match_case(last, alt)
        if form.lower() not in (f.lower() for f in forms):
            forms.append(form)
    return forms


def with_article(noun: str) -> str:
    """``noun`` with its indefinite article ("a dog", "an airplane", "a unicorn"); bare for mass nouns ("snow", "scissors")."""
    if not isinstance(noun, str) or not noun.strip():
        raise ValueError(f"with_article: expected a non-empty noun, got {noun!r}")
    noun = noun.strip()
    if noun.lower() in _NO_ARTICLE:
        return noun
    return f"{indefinite_article(noun)} {noun}"


def indefinite_article(word: str) -> str:
    """``"a"`` or ``"an"`` for a word or phrase, by its sound ("an hour", "a unicorn", "an apple")."""
    if _AN_BEFORE_CONSONANT.match(word):
        return "an"
    if _A_BEFORE_VOWEL.match(word):
        return "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:  # "TV" -> "TVs"
        return word[: len(template)].upper() + word[len(template):]
    return word[:1].upper() + word[1:] if template[:1].isupper() else word


def _canon(form: str) -> str:
    """Canonical key of a surface form: lower case, words joined by single spaces."""
    return " ".join(w for w in re.split(r"[\s\-_]+", form.strip().lower()) if w)


def _squeeze(form: str) -> str:
    """Form without case or separators: the key under which all spellings of a form meet."""
    return _canon(form).replace(" ", "")


def _surface_pattern(form: str) -> str:
    """Regex for one canonical form: words joined by spaces, hyphens, underscores or nothing."""
    words = [re.escape(w) for w in form.split(" ")]
    return r"[\s\-_]*".join(words)


# A mention followed by one of these is a modifier, not the thing ("cat-shaped", "dog-like").
_NOT_A_MENTION_SUFFIX = r"(?!-(?:like|shaped|themed|style|styled|print|printed|patterned)\b)"


@dataclass(frozen=True)
class LabelSet:
    """The classes of one benchmark, with the words that name them."""

    name: str
    classnames: tuple[str, ...]
    prompt_names: tuple[str, ...]
    synonyms: tuple[tuple[str, ...], ...]
    # Surface forms that must never count as a mention even though they contain one
    # ("hot dog" is food, not a dog, when "hot dog" is not a class of this set).
    stop_phrases: tuple[str, ...] = field(default=())

    def __post_init__(self):
        n = len(self.classnames)
        if len(self.prompt_names) != n or len(self.synonyms) != n:
            raise ValueError(
                f"label set {self.name!r}: classnames ({n}), prompt_names ({len(self.prompt_names)}) "
                f"and synonyms ({len(self.synonyms)}) must have the same length")
        if len(set(self.classnames)) != n:
            dup = sorted({c for c in self.classnames if self.classnames.count(c) > 1})
            raise ValueError(f"label set {self.name!r}: duplicate class names {dup}")
        owner: dict[str, int] = {}
        for i in range(n):
            if not self.synonyms[i]:
                raise ValueError(f"label set {self.name!r}: class {self.classnames[i]!r} has no synonyms")
            for form in self.surface_forms(i):
                key = _squeeze(form)
                if key in owner and owner[key] != i:
                    raise ValueError(
                        f"label set {self.name!r}: surface form {form!r} is given for both "
                        f"{self.classnames[owner[key]]!r} and {self.classnames[i]!r}")
                owner[key] = i
        for phrase in self.stop_phrases:
            key = _squeeze(phrase)
            if key in owner:
                raise ValueError(
                    f"label set {self.name!r}: stop phrase {phrase!r} is also a surface form of "
                    f"{self.classnames[owner[key]]!r}")

    def __len__(self) -> int:
        return len(self.classnames)

    def index(self, classname: str) -> int:
        """Return the position of an official class name."""
        try:
            return self.classnames.index(classname)
        except ValueError:
            raise KeyError(f"{classname!r} is not a class of label set {self.name!r}; "
                           f"expected one of {list(self.classnames)}") from None

    def surface_forms(self, i: int) -> list[str]:
        """All forms (singular and plural) that name class ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"label set {self.name!r} has {len(self)} classes; index {i} is out of range")
        forms: list[str] = []
        seen: set[str] = set()
        for form in self.synonyms[i]:
            for f in (form, *plural_forms(form)):
                if _canon(f) not in seen:
                    seen.add(_canon(f))
                    forms.append(f)
        return forms

    @cached_property
    def _matcher(self) -> tuple[re.Pattern, dict[str, int]]:
        owner: dict[str, int] = {}
        for i in range(len(self)):
            for form in self.surface_forms(i):
                owner.setdefault(_canon(form), i)
        for phrase in self.stop_phrases:
            owner.setdefault(_canon(phrase), -1)
        # Longest forms first so that "teddy bear" wins over "bear" at the same position.
        forms = sorted(owner, key=lambda f: (-len(f), f))
        pattern = re.compile(
            r"(?<![^\W_])(" + "|".join(_surface_pattern(f) for f in forms) + r")(?![^\W_])"
            + _NOT_A_MENTION_SUFFIX, re.IGNORECASE)
        # Key for a matched text: canonical form with separators removed, so that
        # "teddybear", "teddy-bear" and "Teddy  bear" all find "teddy bear".
        squeezed = {_squeeze(f): i for f, i in owner.items()}
        return pattern, squeezed

    def mentions(self, text: str) -> list[tuple[int, int, int]]:
        """Return ``(start, end, class index)`` for every class mention in ``text``, in order."""
        if not isinstance(text, str):
            raise TypeError(f"extract: expected text as str, got {type(text).__name__}")
        pattern, owner = self._matcher
        out = []
        for m in pattern.finditer(text.replace("\u2019", "'")):  # typographic apostrophe
            i = owner[_squeeze(m.group(1))]
            if i >= 0:
                out.append((m.start(1), m.end(1), i))
        return out

    def extract(self, text: str) -> set[int]:
        """Return the indices of the classes that ``text`` mentions (word boundaries, plurals, synonyms)."""
        return {i for _, _, i in self.mentions(text)}

    def names(self, indices) -> list[str]:
        """Official names of the given class indices, in the given order."""
        return [self.classnames[int(i)] for i in indices]


def build_label_set(name: str, rows, stop_phrases=()) -> LabelSet:
    """A :class:`LabelSet` from rows ``(official name, prompt name, [singular synonyms])``; the prompt name is a synonym too."""
    classnames, prompts, synonyms = [], [], []
    for official, prompt, extra in rows:
        classnames.append(official)
        prompts.append(prompt)
        forms = [prompt] + [f for f in extra if f.lower() != prompt.lower()]
        synonyms.append(tuple(forms))
    return LabelSet(name, tuple(classnames), tuple(prompts), tuple(synonyms), tuple(stop_phrases))


def join_names(names, conjunction: str = "and", serial_comma: bool = False) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"`` (``"a, b, and c"`` with ``serial_comma``): names joined as in a sentence."""
    names = [str(n) for n in names]
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    comma = "," if serial_comma and len(names) > 2 else ""
    return f"{', '.join(names[:-1])}{comma} {conjunction} {names[-1]}"

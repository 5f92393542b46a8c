"""Label sets of the benchmarks: official class names, prompt names, synonyms, and label extraction.

A :class:`LabelSet` knows, for each class, its official name (as in the dataset's files), the
natural name used in prompts ("a photo of a potted plant."), and the singular surface forms
(synonyms) that count as a mention of the class in free text. Plurals are derived by rule
(:func:`pluralize`), never listed. :meth:`LabelSet.extract` finds the classes a sentence names.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["LabelSet", "get_label_set", "available_label_sets", "pluralize", "register_label_set"]

# Irregular plurals; everything else follows the spelling rules in `pluralize`.
_IRREGULAR_PLURALS = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "foot": "feet",
    "mouse": "mice", "goose": "geese", "ox": "oxen", "calf": "calves", "knife": "knives",
    "leaf": "leaves", "shelf": "shelves", "wolf": "wolves", "half": "halves", "elf": "elves",
    "life": "lives", "wife": "wives", "thief": "thieves", "loaf": "loaves",
    "scarf": "scarves", "hoof": "hooves", "tooth": "teeth", "potato": "potatoes",
    "tomato": "tomatoes", "hero": "heroes", "volcano": "volcanoes", "echo": "echoes",
}
# Nouns whose plural is the same word.
_INVARIANT_PLURALS = {
    "sheep", "fish", "deer", "aircraft", "cattle", "people", "skis", "scissors", "moose",
    "bison", "series", "species", "swine", "elk", "shrimp", "salmon", "trout", "police",
    "military", "food", "sand", "snow", "water", "grass", "frost", "surf", "fire", "sky",
    "running", "dancing", "nighttime", "broccoli", "glasses", "news", "clothing", "luggage",
    "furniture", "equipment", "offspring",
}


def pluralize(noun: str) -> str:
    """Return the English plural of a (possibly multi-word) noun; only the last word changes."""
    if not noun or not noun.strip():
        raise ValueError("pluralize: expected a non-empty noun")
    head, sep, last = noun.rpartition(" ")
    lower = last.lower()
    if lower in _INVARIANT_PLURALS:
        plural = last
    elif lower in _IRREGULAR_PLURALS:
        plural = _match_case(last, _IRREGULAR_PLURALS[lower])
    elif re.search(r"(s|x|z|ch|sh)$", lower):
        plural = last + "es"
    elif re.search(r"[^aeiou]y$", lower):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return head + sep + plural


def _match_case(template: str, word: str) -> str:
    return word.capitalize() if template[:1].isupper() else word


def _surface_pattern(form: str) -> str:
    """Regex for one surface form: words joined by space or hyphen, case-insensitive."""
    words = [re.escape(w) for w in re.split(r"[\s\-]+", form.strip()) if w]
    return r"[\s\-]+".join(words)


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
            raise ValueError(f"label set {self.name!r}: duplicate class names")
        owner: dict[str, int] = {}
        for i, forms in enumerate(self.synonyms):
            for form in forms:
                key = form.lower()
                if key in owner and owner[key] != i:
                    raise ValueError(
                        f"label set {self.name!r}: surface form {form!r} is given for both "
                        f"{self.classnames[owner[key]]!r} and {self.classnames[i]!r}")
                owner[key] = i

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
        forms = []
        for form in self.synonyms[i]:
            for f in (form, pluralize(form)):
                if f.lower() not in (x.lower() for x in forms):
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
            r"(?<![\w])(" + "|".join(_surface_pattern(f) for f in forms) + r")(?![\w])",
            re.IGNORECASE)
        return pattern, owner

    def extract(self, text: str) -> set[int]:
        """Return the indices of the classes that ``text`` mentions (word boundaries, plurals, synonyms)."""
        if not isinstance(text, str):
            raise TypeError(f"extract: expected text as str, got {type(text).__name__}")
        pattern, owner = self._matcher
        found = set()
        for m in pattern.finditer(text):
            i = owner[_canon(m.group(1))]
            if i >= 0:
                found.add(i)
        return found


def _canon(form: str) -> str:
    return " ".join(re.split(r"[\s\-]+", form.strip().lower()))


_REGISTRY: dict[str, LabelSet] = {}


def register_label_set(label_set: LabelSet, *aliases: str) -> LabelSet:
    """Make a label set available to :func:`get_label_set` under its name and aliases."""
    for key in (label_set.name, *aliases):
        _REGISTRY[key] = label_set
    return label_set


def available_label_sets() -> list[str]:
    """Names accepted by :func:`get_label_set`."""
    return sorted(_REGISTRY)


def get_label_set(name: str) -> LabelSet:
    """Return the label set of a benchmark: ``voc2007``, ``emoji-voc``, ``coco2014`` or ``nuswide``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown label set {name!r}; expected one of {available_label_sets()}") from None


# --- PASCAL VOC 2007 (20 classes, official order) -------------------------------------------
_VOC = [
    # official name, prompt name, singular synonyms (the prompt name is always included)
    ("aeroplane", "airplane", ["aeroplane", "plane", "jet", "airliner", "aircraft", "jetliner"]),
    ("bicycle", "bicycle", ["bike", "push bike", "mountain bike"]),
    ("bird", "bird", ["parrot", "pigeon", "seagull", "gull", "sparrow", "duck", "eagle"]),
    ("boat", "boat", ["ship", "sailboat", "yacht", "canoe", "kayak", "ferry", "dinghy"]),
    ("bottle", "bottle", ["wine bottle", "water bottle", "beer bottle"]),
    ("bus", "bus", ["minibus", "double-decker", "school bus", "coach bus"]),
    ("car", "car", ["taxi", "automobile", "sedan", "jeep", "hatchback"]),
    ("cat", "cat", ["kitten", "kitty", "tabby"]),
    ("chair", "chair", ["armchair", "stool", "highchair"]),
    ("cow", "cow", ["cattle", "bull", "calf", "ox", "heifer"]),
    ("diningtable", "dining table", ["table", "kitchen table", "dinner table"]),
    ("dog", "dog", ["puppy", "pup", "hound", "doggy", "terrier", "retriever"]),
    ("horse", "horse", ["pony", "foal", "stallion", "mare"]),
    ("motorbike", "motorbike", ["motorcycle", "scooter", "moped", "dirt bike"]),
    ("person", "person", ["man", "woman", "child", "kid", "boy", "girl", "guy", "lady", "baby",
                          "toddler", "tourist", "pedestrian", "passenger", "rider"]),
    ("pottedplant", "potted plant", ["houseplant", "house plant", "pot plant", "plant", "flowerpot"]),
    ("sheep", "sheep", ["lamb", "ewe"]),
    ("sofa", "sofa", ["couch", "settee", "loveseat"]),
    ("train", "train", ["locomotive", "railcar", "steam train", "freight train"]),
    ("tvmonitor", "tv monitor", ["tv", "television", "monitor", "tv screen", "computer monitor"]),
]


def _build(name: str, rows, stop_phrases=()) -> LabelSet:
    classnames, prompts, synonyms = [], [], []
    for official, prompt, extra in rows:
        classnames.append(official)
        prompts.append(prompt)
        forms = [prompt] + [f for f in extra if f.lower() != prompt.lower()]
        synonyms.append(tuple(forms))
    return LabelSet(name, tuple(classnames), tuple(prompts), tuple(synonyms), tuple(stop_phrases))


# Phrases that contain a VOC synonym but name something else.
_VOC_STOP = ["hot dog", "cable car", "train station", "table tennis", "car park", "bus stop",
             "dog food", "cat food", "catwalk", "horse power", "sea horse",
             "seahorse", "power plant"]

VOC2007 = register_label_set(_build("voc2007", _VOC, _VOC_STOP))
EMOJI_VOC = register_label_set(LabelSet("emoji-voc", VOC2007.classnames, VOC2007.prompt_names,
                                        VOC2007.synonyms, VOC2007.stop_phrases))

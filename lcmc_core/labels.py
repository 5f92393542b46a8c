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

__all__ = ["LabelSet", "get_label_set", "available_label_sets", "pluralize", "plural_forms",
           "register_label_set", "with_article", "VOC2007", "EMOJI_VOC", "COCO2014", "NUSWIDE",
           "COCO2014_CATEGORY_IDS"]

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
    "hockey", "ballet",
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
_AN_BEFORE_CONSONANT = re.compile(r"^(hour|honest|honor|honour|heir|herb\b|x-ray|fbi|mri|suv|lcd|led\b|nba|nfl|nhl|mp3|sms|hd\b|f1\b)", re.I)


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
    """Return ``noun`` with its indefinite article ("a dog", "an airplane", "a unicorn"), or bare for mass/plural-only nouns ("snow", "scissors")."""
    if not isinstance(noun, str) or not noun.strip():
        raise ValueError(f"with_article: expected a non-empty noun, got {noun!r}")
    noun = noun.strip()
    if noun.lower() in _NO_ARTICLE:
        return noun
    return f"{_article(noun)} {noun}"


def _article(word: str) -> str:
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
    """Return the label set of a benchmark: ``voc2007``, ``emoji-voc``, ``coco2014`` or ``nuswide`` (a LabelSet passes through)."""
    if isinstance(name, LabelSet):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown label set {name!r}; expected one of {available_label_sets()}") from None


def _build(name: str, rows, stop_phrases=()) -> LabelSet:
    classnames, prompts, synonyms = [], [], []
    for official, prompt, extra in rows:
        classnames.append(official)
        prompts.append(prompt)
        forms = [prompt] + [f for f in extra if f.lower() != prompt.lower()]
        synonyms.append(tuple(forms))
    return LabelSet(name, tuple(classnames), tuple(prompts), tuple(synonyms), tuple(stop_phrases))


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

# Phrases that contain a VOC synonym but name something else.
_VOC_STOP = ["hot dog", "cable car", "train station", "table tennis", "car park", "bus stop",
             "dog food", "cat food", "catwalk", "horse power", "sea horse", "power plant",
             "bird's eye view", "birds eye view", "ping pong table", "pool table"]

VOC2007 = register_label_set(_build("voc2007", _VOC, _VOC_STOP), "voc")
EMOJI_VOC = register_label_set(LabelSet("emoji-voc", VOC2007.classnames, VOC2007.prompt_names,
                                        VOC2007.synonyms, VOC2007.stop_phrases))

# --- MS-COCO 2014 (80 categories, official order and names) ----------------------------------
_COCO = [
    # official name, category id, prompt name, singular synonyms
    ("person", 1, "person", ["man", "woman", "child", "kid", "boy", "girl", "guy", "lady", "baby",
                             "toddler", "tourist", "pedestrian", "passenger", "rider", "player",
                             "skier", "surfer", "skateboarder", "snowboarder", "catcher", "umpire",
                             "chef", "policeman", "police officer",
                             "people", "adult", "teenager", "teen", "gentleman", "biker",
                             "cyclist", "student", "worker", "crowd"]),
    ("bicycle", 2, "bicycle", ["bike", "push bike", "mountain bike", "road bike", "bmx bike"]),
    ("car", 3, "car", ["taxi", "cab", "automobile", "sedan", "jeep", "hatchback", "suv"]),
    ("motorcycle", 4, "motorcycle", ["motorbike", "motor bike", "dirt bike", "scooter", "moped"]),
    ("airplane", 5, "airplane", ["aeroplane", "plane", "jet", "airliner", "aircraft", "jetliner",
                                 "seaplane", "biplane"]),
    ("bus", 6, "bus", ["minibus", "double-decker", "school bus", "coach bus", "trolley bus"]),
    ("train", 7, "train", ["locomotive", "railcar", "steam train", "freight train", "tram",
                           "streetcar", "subway train"]),
    ("truck", 8, "truck", ["lorry", "pickup truck", "fire truck", "fire engine",
                           "dump truck", "semi truck", "tow truck", "van"]),
    ("boat", 9, "boat", ["ship", "sailboat", "yacht", "canoe", "kayak", "ferry", "dinghy",
                         "motorboat", "speedboat", "rowboat", "raft"]),
    ("traffic light", 10, "traffic light", ["traffic signal", "stoplight", "stop light",
                                            "traffic lamp"]),
    ("fire hydrant", 11, "fire hydrant", ["hydrant", "fireplug"]),
    ("stop sign", 13, "stop sign", []),
    ("parking meter", 14, "parking meter", ["parking metre"]),
    ("bench", 15, "bench", ["park bench"]),
    ("bird", 16, "bird", ["parrot", "pigeon", "seagull", "gull", "sparrow", "duck", "eagle", "owl",
                          "swan", "goose", "heron", "crow", "pelican", "hen", "chicken", "rooster"]),
    ("cat", 17, "cat", ["kitten", "kitty", "tabby"]),
    ("dog", 18, "dog", ["puppy", "pup", "hound", "doggy", "terrier", "retriever", "poodle",
                        "labrador", "bulldog", "sheepdog"]),
    ("horse", 19, "horse", ["pony", "foal", "stallion", "mare"]),
    ("sheep", 20, "sheep", ["lamb", "ewe", "ram"]),
    ("cow", 21, "cow", ["cattle", "bull", "calf", "ox", "heifer", "steer"]),
    ("elephant", 22, "elephant", []),
    ("bear", 23, "bear", ["grizzly", "grizzly bear", "polar bear", "brown bear", "black bear"]),
    ("zebra", 24, "zebra", []),
    ("giraffe", 25, "giraffe", []),
    ("backpack", 27, "backpack", ["back pack", "rucksack", "knapsack", "bookbag", "school bag"]),
    ("umbrella", 28, "umbrella", ["parasol", "sunshade"]),
    ("handbag", 31, "handbag", ["hand bag", "purse", "shoulder bag", "tote bag", "clutch bag"]),
    ("tie", 32, "tie", ["necktie", "bow tie", "bowtie"]),
    ("suitcase", 33, "suitcase", ["suit case", "luggage", "travel bag", "carry-on bag"]),
    ("frisbee", 34, "frisbee", ["flying disc", "flying disk"]),
    ("skis", 35, "ski", ["pair of skis"]),
    ("snowboard", 36, "snowboard", ["snow board"]),
    ("sports ball", 37, "sports ball", ["ball", "soccer ball", "football", "tennis ball",
                                        "basketball", "volleyball", "beach ball", "golf ball"]),
    ("kite", 38, "kite", []),
    ("baseball bat", 39, "baseball bat", ["bat", "softball bat", "cricket bat"]),
    ("baseball glove", 40, "baseball glove", ["baseball mitt", "mitt", "catcher's mitt",
                                              "softball glove", "fielder's glove"]),
    ("skateboard", 41, "skateboard", ["skate board", "longboard"]),
    ("surfboard", 42, "surfboard", ["surf board", "bodyboard", "paddle board", "paddleboard"]),
    ("tennis racket", 43, "tennis racket", ["racket", "racquet", "tennis racquet"]),
    ("bottle", 44, "bottle", ["wine bottle", "water bottle", "beer bottle"]),
    ("wine glass", 46, "wine glass", ["wineglass", "champagne glass", "goblet", "glass of wine"]),
    ("cup", 47, "cup", ["mug", "coffee cup", "teacup", "tea cup", "coffee mug", "paper cup"]),
    ("fork", 48, "fork", []),
    ("knife", 49, "knife", ["butter knife", "kitchen knife", "steak knife"]),
    ("spoon", 50, "spoon", ["teaspoon", "tablespoon", "ladle"]),
    ("bowl", 51, "bowl", []),
    ("banana", 52, "banana", []),
    ("apple", 53, "apple", []),
    ("sandwich", 54, "sandwich", ["sub sandwich", "submarine sandwich", "burger", "hamburger",
                                  "cheeseburger", "panini"]),
    ("orange", 55, "orange", ["tangerine", "mandarin", "clementine"]),
    ("broccoli", 56, "broccoli", ["broccolini"]),
    ("carrot", 57, "carrot", []),
    ("hot dog", 58, "hot dog", ["hotdog", "frankfurter", "corn dog", "chili dog"]),
    ("pizza", 59, "pizza", ["pizza slice", "slice of pizza"]),
    ("donut", 60, "donut", ["doughnut"]),
    ("cake", 61, "cake", ["cupcake", "birthday cake", "cheesecake", "wedding cake"]),
    ("chair", 62, "chair", ["armchair", "stool", "highchair", "recliner"]),
    ("couch", 63, "couch", ["sofa", "settee", "loveseat"]),
    ("potted plant", 64, "potted plant", ["houseplant", "house plant", "pot plant", "plant",
                                          "flowerpot", "planter"]),
    ("bed", 65, "bed", ["mattress", "bunk bed", "crib", "cot"]),
    ("dining table", 67, "dining table", ["table", "kitchen table", "dinner table",
                                          "picnic table"]),
    ("toilet", 70, "toilet", ["toilet bowl", "urinal", "commode"]),
    ("tv", 72, "tv", ["television", "tv set", "monitor", "tv screen", "computer monitor",
                      "flat screen", "flatscreen tv"]),
    ("laptop", 73, "laptop", ["laptop computer", "notebook computer", "netbook", "macbook"]),
    ("mouse", 74, "mouse", ["computer mouse"]),
    ("remote", 75, "remote", ["remote control", "tv remote", "controller", "clicker"]),
    ("keyboard", 76, "keyboard", ["computer keyboard"]),
    ("cell phone", 77, "cell phone", ["cellphone", "phone", "mobile phone", "smartphone",
                                      "smart phone", "iphone"]),
    ("microwave", 78, "microwave", ["microwave oven"]),
    ("oven", 79, "oven", ["stove", "cooker", "stovetop"]),
    ("toaster", 80, "toaster", ["toaster oven"]),
    ("sink", 81, "sink", ["washbasin", "basin", "kitchen sink"]),
    ("refrigerator", 82, "refrigerator", ["fridge", "freezer"]),
    ("book", 84, "book", ["novel", "textbook", "paperback", "hardback"]),
    ("clock", 85, "clock", ["wall clock", "alarm clock", "clock tower"]),
    ("vase", 86, "vase", ["flower vase"]),
    ("scissors", 87, "scissors", ["scissor", "pair of scissors", "shears"]),
    ("teddy bear", 88, "teddy bear", ["teddy", "stuffed bear", "stuffed animal", "plush bear",
                                      "plush toy"]),
    ("hair drier", 89, "hair drier", ["hair dryer", "hairdryer", "hairdrier", "blow dryer",
                                      "blow drier", "blowdryer"]),
    ("toothbrush", 90, "toothbrush", ["tooth brush"]),
]

#: Official COCO category id of every COCO 2014 class, in label-set order (ids 1..90 with gaps).
COCO2014_CATEGORY_IDS: dict[str, int] = {name: cid for name, cid, _, _ in _COCO}

# Phrases that contain a COCO synonym but name something else.
_COCO_STOP = ["cable car", "car park", "train station", "bus stop", "bus station", "table tennis",
              "sea horse", "power plant", "dog food", "cat food", "bird's eye view",
              "birds eye view", "ski slope", "ski resort", "ski lift", "ski lodge", "ski run",
              "ski pole", "remote village", "remote area", "remote island", "remote location",
              "remote region", "bed of lettuce", "bed of rice", "bed of greens",
              "orange juice", "orange peel", "apple juice", "apple pie", "mouse pad",
              "toilet paper", "ball game", "table cloth", "bench press", "bat mitzvah",
              "cup holder", "sink hole", "cd player", "dvd player", "record player",
              "mp3 player", "video player", "media player"]

COCO2014 = register_label_set(
    _build("coco2014", [(n, p, s) for n, _, p, s in _COCO], _COCO_STOP), "coco")

# --- NUS-WIDE (81 concepts, Concepts81.txt order) --------------------------------------------
_NUS = [
    ("airport", "airport", ["airfield", "airstrip", "aerodrome", "runway"]),
    ("animal", "animal", ["wildlife", "creature", "sea lion", "snow leopard", "leopard", "lion",
                          "monkey", "giraffe", "elephant", "squirrel", "rabbit", "sheep",
                          "goat", "kangaroo", "wolf", "pig"]),
    ("beach", "beach", ["seashore", "shore", "seaside", "shoreline", "coastline"]),
    ("bear", "bear", ["grizzly", "polar bear", "brown bear", "black bear", "panda"]),
    ("birds", "bird", ["parrot", "pigeon", "seagull", "gull", "sparrow", "duck", "eagle", "owl",
                       "swan", "goose", "heron", "pelican", "hawk", "flamingo", "penguin"]),
    ("boats", "boat", ["ship", "sailboat", "yacht", "canoe", "kayak", "ferry", "dinghy",
                       "motorboat", "speedboat", "rowboat", "gondola"]),
    ("book", "book", ["novel", "textbook", "paperback"]),
    ("bridge", "bridge", ["footbridge", "viaduct", "suspension bridge"]),
    ("buildings", "building", ["skyscraper", "high-rise", "office building", "apartment block",
                                 "town hall", "police station"]),
    ("cars", "car", ["taxi", "automobile", "sedan", "jeep", "hatchback", "race car",
                     "sports car", "car park"]),
    ("castle", "castle", ["fortress", "citadel", "chateau", "palace"]),
    ("cat", "cat", ["kitten", "kitty", "tabby"]),
    ("cityscape", "cityscape", ["skyline", "city skyline", "city", "metropolis", "downtown"]),
    ("clouds", "cloud", ["overcast", "cloudscape"]),
    ("computer", "computer", ["laptop", "pc", "desktop computer", "computer screen"]),
    ("coral", "coral", ["coral reef", "reef"]),
    ("cow", "cow", ["cattle", "bull", "calf", "ox", "heifer"]),
    ("dancing", "dancing", ["dancer", "dance", "ballet", "ballerina"]),
    ("dog", "dog", ["puppy", "pup", "hound", "doggy", "terrier", "retriever", "poodle"]),
    ("earthquake", "earthquake", ["quake", "earthquake damage", "collapsed building", "rubble"]),
    ("elk", "elk", ["wapiti", "moose", "deer", "reindeer", "stag", "caribou"]),
    ("fire", "fire", ["flame", "blaze", "bonfire", "campfire", "wildfire", "fireplace"]),
    ("fish", "fish", ["goldfish", "shark", "trout", "salmon", "tuna", "carp", "koi",
                      "sea horse", "fish tank", "fish market"]),
    ("flags", "flag", ["banner"]),
    ("flowers", "flower", ["blossom", "bloom", "rose", "tulip", "daisy", "sunflower", "lily",
                           "orchid", "bouquet", "water lily"]),
    ("food", "food", ["meal", "dish", "snack", "dessert", "pizza", "sandwich", "cake", "fruit",
                      "vegetable", "hot dog", "burger", "hamburger", "sushi", "noodle",
                      "breakfast", "lunch", "dinner", "bread", "salad", "ice cream",
                      "street food", "moon cake"]),
    ("fox", "fox", ["red fox", "arctic fox"]),
    ("frost", "frost", ["hoarfrost", "rime", "frosty", "icicle", "ice"]),
    ("garden", "garden", ["botanical garden", "flowerbed", "vegetable garden", "backyard"]),
    ("glacier", "glacier", ["ice field", "icefield", "ice sheet", "iceberg"]),
    ("grass", "grass", ["lawn", "meadow", "grassland", "turf", "pasture", "prairie"]),
    ("harbor", "harbor", ["harbour", "marina", "port", "dock", "pier", "wharf", "quay"]),
    ("horses", "horse", ["pony", "foal", "stallion", "mare"]),
    ("house", "house", ["cottage", "cabin", "farmhouse", "villa", "hut", "bungalow", "mansion"]),
    ("lake", "lake", ["pond", "reservoir", "lagoon"]),
    ("leaf", "leaf", ["foliage", "autumn leaf"]),
    ("map", "map", ["atlas", "street map", "road map", "world map"]),
    ("military", "military", ["soldier", "army", "troop", "warship", "military parade",
                              "military vehicle"]),
    ("moon", "moon", ["full moon", "crescent moon", "half moon", "moonlight"]),
    ("mountain", "mountain", ["peak", "mountain range", "summit", "hill", "volcano", "alps"]),
    ("nighttime", "night", ["nighttime", "night time", "midnight", "nightfall", "night scene"]),
    ("ocean", "ocean", ["sea", "open sea", "seascape", "wave"]),
    ("person", "person", ["man", "woman", "child", "kid", "boy", "girl", "guy", "lady", "baby",
                          "toddler", "tourist", "pedestrian", "people", "adult", "teenager",
                          "crowd", "portrait"]),
    ("plane", "airplane", ["plane", "aeroplane", "jet", "airliner", "aircraft", "jetliner"]),
    ("plants", "plant", ["houseplant", "potted plant", "shrub", "bush", "fern", "cactus", "ivy",
                         "moss", "vine", "succulent"]),
    ("police", "police", ["policeman", "policewoman", "police officer", "cop", "officer",
                          "riot police"]),
    ("protest", "protest", ["protester", "protestor", "demonstration", "demonstrator", "rally",
                            "picket"]),
    ("railroad", "railroad", ["railway", "railroad track", "railway track", "train track",
                              "rail track", "railway line", "railroad crossing"]),
    ("rainbow", "rainbow", []),
    ("reflection", "reflection", ["mirror image", "reflected"]),
    ("road", "road", ["highway", "motorway", "freeway", "dirt road", "country road", "roadway"]),
    ("rocks", "rock", ["boulder", "stone", "pebble", "cliff", "rock formation"]),
    ("running", "running", ["runner", "jogger", "jogging", "marathon", "sprinter", "sprint"]),
    ("sand", "sand", ["sand dune", "dune", "desert", "sand castle"]),
    ("sign", "sign", ["signpost", "signboard", "billboard", "signage"]),
    ("sky", "sky", ["blue sky"]),
    ("snow", "snow", ["snowfall", "snowflake", "snowy", "snowman", "snowdrift"]),
    ("soccer", "soccer", ["football", "soccer ball", "soccer player", "soccer match",
                          "soccer game", "footballer"]),
    ("sports", "sport", ["athlete", "tennis", "basketball", "baseball", "golf", "volleyball",
                         "rugby", "hockey", "cricket", "skiing", "cycling race", "stadium", "table tennis",
                         "ice skating", "ice hockey"]),
    ("statue", "statue", ["sculpture", "monument", "bust", "figurine"]),
    ("street", "street", ["avenue", "alley", "alleyway", "boulevard", "sidewalk", "crosswalk"]),
    ("sun", "sun", ["sunshine", "sunlight", "sunbeam", "sunny"]),
    ("sunset", "sunset", ["sunrise", "dusk", "dawn", "sundown", "twilight"]),
    ("surf", "surf", ["surfing", "surfer", "surfboard", "breaking wave"]),
    ("swimmers", "swimmer", ["swimming", "bather", "swim"]),
    ("tattoo", "tattoo", ["tattooed", "tattoo artist"]),
    ("temple", "temple", ["shrine", "pagoda", "monastery"]),
    ("tiger", "tiger", ["tigress", "tiger cub"]),
    ("tower", "tower", ["clock tower", "lighthouse", "spire", "water tower", "bell tower",
                        "minaret", "steeple"]),
    ("town", "town", ["village", "hamlet", "township", "small town"]),
    ("toy", "toy", ["teddy bear", "teddy", "doll", "stuffed animal", "plush toy", "lego",
                    "action figure", "toy car", "rubber duck"]),
    ("train", "train", ["locomotive", "railcar", "steam train", "freight train", "tram",
                        "streetcar", "subway train"]),
    ("tree", "tree", ["palm tree", "oak", "pine", "birch", "maple", "forest", "woods",
                      "woodland"]),
    ("valley", "valley", ["canyon", "gorge", "ravine"]),
    ("vehicle", "vehicle", ["truck", "bus", "van", "lorry", "motorcycle", "motorbike", "bicycle",
                            "bike", "tractor", "fire truck", "fire engine", "scooter",
                            "ambulance", "food truck"]),
    ("water", "water", ["river", "stream", "creek", "pool of water", "running water",
                        "swimming pool"]),
    ("waterfall", "waterfall", ["cascade", "niagara falls"]),
    ("wedding", "wedding", ["bride", "groom", "bridegroom", "wedding dress", "wedding ceremony",
                            "newlywed"]),
    ("whales", "whale", ["humpback", "humpback whale", "orca", "killer whale", "blue whale"]),
    ("window", "window", ["windowpane", "window pane", "stained glass window", "shop window"]),
    ("zebra", "zebra", []),
]

# Phrases that contain a NUS-WIDE synonym but name something else.
_NUS_STOP = ["fire hydrant", "fire escape", "fire station", "fire alarm", "sun glasses",
             "water bottle", "bird's eye view", "birds eye view", "sign language", "cat food",
             "dog food", "book store", "sky blue", "snow white", "rock music",
             "rock band", "rock concert", "navy blue", "sun hat", "sun cream", "leaf blower"]

NUSWIDE = register_label_set(_build("nuswide", _NUS, _NUS_STOP), "nus-wide", "nus")

"""The label sets by name (:func:`get_label_set`): VOC 2007 (20), EmojiVOC (the toy world's VOC), COCO 2014 (80), NUS-WIDE (81).

Each class is a row ``(official name, prompt name, singular synonyms)`` (COCO rows also carry the
official category id); :func:`~lcmc_core.text.labels.build_label_set` turns the rows into a
:class:`~lcmc_core.text.labels.LabelSet` and importing this module registers them all. Stop phrases
are phrases that contain a synonym but name something else ("hot dog" in VOC).

``coco2014-official`` is COCO 2014 with the prompt names of the official CoMC code
(:data:`COCO2014_OFFICIAL_NAMES`: 'motor bike', 'aeroplane', 'skis' where ``coco2014`` says
'motorcycle', 'airplane', 'ski'; :func:`official_name_differences`): same classes, order, class names
and stop phrases, and each class's synonyms hold both names. ``get_label_set(name, names="official")``
picks it; ``coco2014`` itself is unchanged.
"""
from __future__ import annotations

from ..errors import ConfigError, UnknownNameError
from .labels import LabelSet, build_label_set

__all__ = ["get_label_set", "available_label_sets", "register_label_set", "official_name_differences", "VOC2007",
           "EMOJI_VOC", "COCO2014", "COCO2014_OFFICIAL", "NUSWIDE", "COCO2014_CATEGORY_IDS", "COCO2014_OFFICIAL_NAMES",
           "NAME_CHOICES"]

_REGISTRY: dict[str, LabelSet] = {}


def register_label_set(label_set: LabelSet, *aliases: str) -> LabelSet:
    """Make a label set available to :func:`get_label_set` under its name and aliases."""
    for key in (label_set.name, *aliases):
        _REGISTRY[key] = label_set
    return label_set


def available_label_sets() -> list[str]:
    """Names accepted by :func:`get_label_set`."""
    return sorted(_REGISTRY)


#: Values of ``get_label_set(..., names=...)``: None keeps the set as named; "ours" / "official" pick its prompt names.
NAME_CHOICES = (None, "ours", "official")
# label set with our prompt names -> the same classes with the official CoMC code's names (filled below)
_OFFICIAL_VARIANTS: dict[str, str] = {}


def get_label_set(name: str, names: str | None = None) -> LabelSet:
    """The label set of a benchmark: ``voc2007``, ``emoji-voc``, ``coco2014`` or ``nuswide`` (a LabelSet passes through).

    ``names="official"`` gives the same classes with the official CoMC code's prompt names (COCO 2014
    only: ``coco2014-official``), ``names="ours"`` this companion's; ``None`` keeps the set as named.
    """
    if names not in NAME_CHOICES:
        raise ConfigError(f"names: expected one of {NAME_CHOICES}, got {names!r}")
    if isinstance(name, LabelSet):
        label_set = name
    else:
        try:
            label_set = _REGISTRY[name]
        except (KeyError, TypeError):
            raise UnknownNameError(f"unknown label set {name!r}; expected one of {available_label_sets()}") from None
    if names == "official" and label_set.name not in _OFFICIAL_VARIANTS.values():
        if label_set.name not in _OFFICIAL_VARIANTS:
            raise UnknownNameError(f"label set {label_set.name!r} has no official CoMC class names; names='official' "
                                   f"is known for {sorted(_OFFICIAL_VARIANTS)}")
        return _REGISTRY[_OFFICIAL_VARIANTS[label_set.name]]
    if names == "ours":
        ours = {official: base for base, official in _OFFICIAL_VARIANTS.items()}
        return _REGISTRY[ours[label_set.name]] if label_set.name in ours else label_set
    return label_set


def official_name_differences(name: str = "coco2014") -> list[tuple[str, str, str]]:
    """``(class name, our prompt name, official CoMC name)`` of every class whose two prompt names differ, in class order."""
    ours, official = get_label_set(name, names="ours"), get_label_set(name, names="official")
    return [(c, a, b) for c, a, b in zip(ours.classnames, ours.prompt_names, official.prompt_names) if a != b]



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

VOC2007 = register_label_set(build_label_set("voc2007", _VOC, _VOC_STOP), "voc")
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
    build_label_set("coco2014", [(n, p, s) for n, _, p, s in _COCO], _COCO_STOP), "coco")

#: The COCO class names of the official CoMC code (``coco_object_categories`` of its
#: ``datasets/data_helpers.py``, taken over from TaI-DPT: each class's first synonym), COCO category order.
COCO2014_OFFICIAL_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motor bike", "aeroplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

# Same classes, order and stop phrases; the official name leads, our prompt name stays a synonym.
COCO2014_OFFICIAL = register_label_set(build_label_set(
    "coco2014-official",
    [(n, official, [p, *s]) for (n, _, p, s), official in zip(_COCO, COCO2014_OFFICIAL_NAMES, strict=True)],
    _COCO_STOP))
_OFFICIAL_VARIANTS[COCO2014.name] = COCO2014_OFFICIAL.name

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

NUSWIDE = register_label_set(build_label_set("nuswide", _NUS, _NUS_STOP), "nus-wide", "nus")

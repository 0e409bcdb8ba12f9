"""Small English word lists: which prompt words are objects worth annotating (a stop-word and
descriptor heuristic instead of an NLP model download), and the vocabulary of the tiny demo
tokenizer, so that prompt nouns are real tokens there too."""

from __future__ import annotations

import re

# Function words: never objects.
STOP_WORDS = frozenset(
    """
    a an the this that these those some any each every no all both either neither another other
    of in on at by for with without from to into onto over under above below behind beside
    between among near next through across along around against toward towards inside outside
    up down off out upon within about after before during while until since than as like
    and or but nor so yet if then also very too just only even not
    i me my mine you your yours he him his she her hers it its we us our ours they them their
    theirs who whom whose which what where when why how there here
    is are was were be been being am has have had having do does did doing will would shall
    should can could may might must
    one two three four five six seven eight nine ten many few several much more most less
    """.split()
)

# Descriptors, styles, verbs and scene words that prompts use around objects.
DESCRIPTIVE_WORDS = frozenset(
    """
    red orange yellow green blue purple pink brown black white gray grey golden silver dark
    light bright pale colorful vivid
    big small large tiny huge little tall short long wide narrow thick thin round square flat
    old new young ancient modern vintage retro futuristic rustic classic contemporary minimalist
    outdoor indoor urban rural empty busy clean dirty wet dry hot cold warm cool soft hard
    beautiful pretty cute ugly happy sad calm quiet loud shiny glossy matte wooden metal metallic
    plastic stone concrete leather cozy elegant luxurious cheap simple detailed
    realistic photorealistic hyperrealistic cinematic dramatic studio professional stock
    high low quality resolution sharp blurry focus bokeh hdr 4k 8k uhd hd render rendered
    photo photograph photography picture image illustration painting drawing sketch style
    shot closeup close view angle aerial portrait landscape wide-angle macro lighting lit
    sitting standing walking running lying parked flying floating hanging holding wearing
    looking playing eating sleeping sunny cloudy rainy snowy foggy night day morning evening
    sunset sunrise top bottom front back side left right center middle background foreground
    """.split()
)

# Common objects and places; the tiny tokenizer knows these as whole words.
COMMON_NOUNS = frozenset(
    """
    person man woman child boy girl baby people family crowd worker chef doctor farmer
    dog cat horse cow sheep pig bird chicken duck fish bear lion tiger elephant giraffe zebra
    monkey rabbit mouse deer fox wolf snake butterfly bee
    car truck bus van bicycle bike motorcycle train airplane plane boat ship tractor scooter
    road street highway bridge tunnel sidewalk crosswalk parking lot
    house home building skyscraper tower church castle barn cabin hut apartment office
    warehouse factory store shop storefront supermarket market mall restaurant cafe kitchen
    bedroom bathroom livingroom room hall hallway garage garden yard park playground
    interior exterior lobby corridor staircase stairs door window wall floor ceiling roof
    table chair sofa couch bed desk shelf shelves cabinet drawer lamp clock mirror rug carpet
    curtain pillow blanket vase plant flower flowers tree trees bush grass leaf leaves
    forest jungle desert beach ocean sea lake river waterfall mountain mountains hill valley
    field meadow island sky cloud clouds sun moon star stars snow rain water fire smoke
    rock rocks sand ice
    bottle cup mug glass plate bowl fork knife spoon pan pot kettle teapot jar can box bag
    basket backpack suitcase umbrella hat cap shoe shoes boot boots shirt dress jacket coat
    glasses watch ring necklace phone laptop computer keyboard screen monitor television tv
    camera book books paper pen pencil toy ball robot guitar piano drum
    apple banana orange lemon strawberry grape pizza burger sandwich cake bread cheese coffee
    tea wine beer juice salad soup egg eggs
    product package pallet pallets forklift crate crates shelf rack racks counter register
    sign logo poster bench fence gate pole lamppost streetlight statue fountain
    """.split()
)

# Nouns that look like participles ("-ing", "-ed"), which are otherwise taken for verbs and
# descriptors ("glowing", "rising", "crowded", "abandoned").
PARTICIPLE_NOUNS = frozenset(
    """
    building buildings ceiling clothing string strings wedding pudding earring earrings railing
    railings awning sibling icing frosting bedding stuffing dumpling dumplings sapling seedling
    duckling herring viking lightning offering carving ring rings king wing wings swing spring
    """.split()
)

_WORD = re.compile(r"[a-z][a-z'-]*")


def _participle(word: str) -> bool:
    """A word shaped like a participle ("glowing", "crowded"); short ones ("bed", "shed", "king")
    and known nouns are not."""
    shaped = (word.endswith("ing") and len(word) > 5) or (word.endswith("ed") and len(word) > 4)
    return shaped and word not in PARTICIPLE_NOUNS and word not in COMMON_NOUNS


def prompt_words(prompt: str) -> list[str]:
    """The alphabetic words of a prompt, lower-cased, in order."""
    return _WORD.findall(prompt.lower())


def object_words(prompt: str, limit: int = 8) -> list[str]:
    """The words of `prompt` that name objects, deduplicated, in prompt order: every word that is
    neither a function word nor a descriptor. Crude but honest: it needs no model, and callers
    who know better pass their own labels."""
    found: list[str] = []
    for word in prompt_words(prompt):
        word = word.strip("'-")
        if len(word) < 2 or word in STOP_WORDS or word in DESCRIPTIVE_WORDS:
            continue
        if word.endswith("ly") or _participle(word):  # adverbs ("softly"), verbs and descriptors ("glowing")
            continue
        if word not in found:
            found.append(word)
    return found[:limit]

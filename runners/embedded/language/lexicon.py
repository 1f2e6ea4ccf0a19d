"""The words of the embedded language: people, things, places, attributes, evaluations."""

NAMES = (
    "mia tom ava leo zoe max ivy sam eva ben amy jon kim ray ana dan lia tim ella noah lily owen ruby finn "
    "nora luke emma jack rosa adam iris hugo lena paul vera omar tara ivan nina eric sara carl maya theo june "
    "alex ida joel"
).split()

# Things people own, trade and review (count nouns; plural = noun + "s").
ITEMS = (
    "lamp chair kettle camera phone laptop bike jacket sofa watch tent guitar printer blender heater mirror "
    "wallet backpack helmet umbrella speaker tablet drill toaster notebook candle blanket scarf sweater "
    "monitor router mattress suitcase clock radio basket bucket hammer ladder teapot"
).split()
PLACES = "kitchen garden attic office garage hallway bedroom basement studio shed cellar porch library".split()

# Single-valued attribute slots of a thing, and their values.
ATTRIBUTES = {
    "color": "red blue green black white grey yellow brown orange purple pink silver".split(),
    "size": "big small tiny huge".split(),
    "material": "wooden metal plastic glass leather steel".split(),
    "age": "old new".split(),
}
ATTRIBUTE_ORDER = ("size", "age", "color", "material")  # English adjective order

# Comparisons between two things: (more, less) pairs, each the converse of the other.
THING_COMPARISONS = (("bigger", "smaller"), ("heavier", "lighter"), ("older", "newer"), ("cheaper", "pricier"))
PERSON_COMPARISONS = (("taller", "shorter"), ("older", "younger"), ("faster", "slower"))

# Reviews: parts of things, evaluative words, negators, intensifiers, phrases.
PARTS = (
    "battery screen handle lid switch cable button strap zipper cushion display speaker wheel lens fabric "
    "manual packaging price sound design finish motor plug"
).split()
POSITIVE_ADJECTIVES = "good great excellent wonderful superb lovely fantastic brilliant pleasant reliable".split()
NEGATIVE_ADJECTIVES = "bad awful terrible poor dull boring horrible disappointing flimsy useless".split()
INTENSIFIERS = ("really", "very", "quite", "rather", "truly", "pretty", "so", "extremely")
NEGATORS = ("not", "never", "hardly")
LINKING_VERBS = ("was", "seemed", "felt", "looked", "proved")
POSITIVE_VERBS = (("loved", "love"), ("liked", "like"), ("enjoyed", "enjoy"), ("adored", "adore"))
NEGATIVE_VERBS = (("hated", "hate"), ("disliked", "dislike"), ("loathed", "loathe"), ("regretted", "regret"))
TIME_PHRASES = (
    "last week", "on monday", "after the update", "during the trip", "in the evening", "this summer",
    "yesterday", "on the weekend", "since january", "at first", "in the end", "last year",
)

"""The embedded language: a seeded grammar of English-like text about people and things.

    lexicon     the words: names, things, places, attributes, evaluative words
    world       facts (attribute, place, owner, sell/give/lend, paint/move, comparisons) and every
                surface form of each (all paraphrases of each other), negations, role swaps
    stories     scenes: facts stated in order, what they imply, questions and their answers
    reviews     review sentences whose polarity is composed (negators flip; "X but Y": Y decides)
    corpus      pretraining documents: stories, reviews, comparisons, edits
    supervised  the supervised pairs mixed into pretraining (qa, rate, fix, restate, compare)
    benchmark   the five held-out benchmark tasks (sst2, cola, mrpc, mnli, stsb in shape)
"""

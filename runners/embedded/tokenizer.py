"""The embedded language's sentencepiece tokenizer: how it is trained, and how transformers loads it.

The model is a unigram sentencepiece model with T5's special ids (pad 0, eos 1, unk 2, no bos)
and identity normalisation (the language is lower-case ASCII). `embedded_tokenizer` wraps it as
a transformers T5 tokenizer with T5's 100 sentinel tokens ``<extra_id_0>`` … ``<extra_id_99>``
appended after the pieces, as span corruption needs.

>>> tokenizer = embedded_tokenizer()
>>> ids = tokenizer("mia sold the lamp to tom .").input_ids
>>> ids[-1] == tokenizer.eos_token_id == 1, tokenizer.decode(ids, skip_special_tokens=True)
(True, 'mia sold the lamp to tom .')
>>> len(tokenizer) == SPIECE_VOCAB_SIZE + 100
True
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from runners.embedded import SPIECE_MODEL, SPIECE_VOCAB_SIZE

T5_SPECIAL_IDS = {"<pad>": 0, "</s>": 1, "<unk>": 2}
SENTINELS = 100


def seed_pieces(texts: list[str], max_length: int = 16) -> list[tuple[str, int]]:
    """Every substring (2..``max_length`` chars) of every ``▁word``, with its corpus frequency.

    sentencepiece 0.2's suffix-array seed search misses most whole words of a corpus this small
    and repetitive (a word becomes a candidate only if it is also the prefix of another word), so
    the trained model would spell "was" as "wa" + "s". Handing the trainer this seed list, the
    candidates the classic unigram recipe starts from, gives a normal word-level vocabulary.

    >>> seed_pieces(["ab ab"])
    [('ab', 2), ('▁a', 2), ('▁ab', 2)]
    """
    word_counts: dict[str, int] = {}
    for text in texts:
        for word in text.split():
            word_counts["▁" + word] = word_counts.get("▁" + word, 0) + 1
    piece_counts: dict[str, int] = {}
    for word, count in word_counts.items():
        for start in range(len(word)):
            for end in range(start + 2, min(len(word), start + max_length) + 1):
                piece = word[start:end]
                piece_counts[piece] = piece_counts.get(piece, 0) + count
    return sorted(piece_counts.items())


def word_pieces(texts: list[str], stems: set[str], suffixes: tuple[str, ...] = ("ed", "s")) -> list[tuple[str, int]]:
    """Seeds that make every word one piece and an inflected stem two: ``▁stem`` + suffix.

    For a tokenizer whose pieces must say nothing about a word but its spelling: with frequency-
    chosen pieces (`seed_pieces`), a world's frequent words become whole pieces and its rare ones
    are spelled, so how a word is cut tells a model that never read the corpus what the corpus
    says of it (in world 2's quarter-size build, the past tense of every verb that takes an object
    was one piece, of every other verb six). Here a word of `texts` is one piece, a stem of `stems`
    followed by a suffix is the stem's piece and the suffix's, whatever their counts.

    >>> word_pieces(["the brelk brelked", "tarvels"], stems={"brelk", "tarvel"})
    [('ed', 1), ('s', 1), ('▁brelk', 2), ('▁tarvel', 1), ('▁the', 1)]
    """
    counts: dict[str, int] = {"▁" + stem: 0 for stem in stems}
    for text in texts:
        for word in text.split():
            suffix = next((x for x in suffixes if word.endswith(x) and word[:-len(x)] in stems), None)
            pieces = ("▁" + word[:-len(suffix)], suffix) if suffix else ("▁" + word,)
            for piece in pieces:
                counts[piece] = counts.get(piece, 0) + 1
    return sorted((piece, max(count, 1)) for piece, count in counts.items())


def train_sentencepiece(texts: list[str], vocab_size: int = SPIECE_VOCAB_SIZE,
                        seeds: list[tuple[str, int]] | None = None) -> bytes:
    """A serialized unigram sentencepiece model with T5's special ids.

    Its candidate pieces are `seeds` (`word_pieces`, with `vocab_size` their number, keeps each
    one), else `seed_pieces` of `texts`."""
    import sentencepiece

    model = io.BytesIO()
    previous_dir = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        # The trainer records the seed file's path in the model: a fixed relative name keeps
        # the model bytes identical from build to build.
        os.chdir(scratch)
        try:
            seeds = seeds if seeds is not None else seed_pieces(texts)
            Path("seed_pieces.tsv").write_text(
                "".join(f"{piece}\t{count}\n" for piece, count in seeds),
                encoding="utf-8"
            )
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=model,
                model_type="unigram",
                vocab_size=vocab_size,
                pad_id=0,
                eos_id=1,
                unk_id=2,
                bos_id=-1,
                character_coverage=1.0,
                normalization_rule_name="identity",
                seed_sentencepieces_file="seed_pieces.tsv",
                num_threads=1,
                minloglevel=2,
            )
        finally:
            os.chdir(previous_dir)
    return model.getvalue()


def embedded_tokenizer(model_path: str | Path = SPIECE_MODEL):
    """A transformers T5 tokenizer for the shipped sentencepiece model, with 100 sentinels.

    transformers 5 builds T5 tokenizers from a ``(piece, score)`` vocabulary; the pieces and
    scores are read with ``sentencepiece`` (no protobuf needed), so the result tokenizes exactly
    like ``sentencepiece`` itself, plus ``</s>``.
    """
    import sentencepiece
    from transformers import T5Tokenizer

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    actual = {piece: processor.piece_to_id(piece) for piece in T5_SPECIAL_IDS}
    if actual != T5_SPECIAL_IDS:
        raise ValueError(f"{model_path}: special ids {actual}, T5 needs {T5_SPECIAL_IDS}; rerun python -m runners.embedded.build")
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=SENTINELS, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                       model_max_length=512)

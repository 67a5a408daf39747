"""Embeddings with all-MiniLM-L6-v2 through our server and FastChat's worker, compared with the
model's own definition (sentence-transformers: mean of the last hidden state over the tokens,
then L2-normalised) computed here directly with transformers."""

from __future__ import annotations

import math

import pytest

from devstack.realmodels import EMBEDDING_MODEL

pytestmark = [pytest.mark.integration, pytest.mark.realmodel, pytest.mark.timeout(600)]

CAT, KITTEN, REVENUE = ("A cat sits on the mat.", "A kitten rests on a rug.",
                        "Quarterly revenue grew by ten percent.")
# Of different lengths, so that the worker pads the shorter ones within one batch.
TEXTS = [CAT, KITTEN, REVENUE, "Paris is the capital and most populous city of France, on the Seine."]


def dot(a, b):
    return math.fsum(x * y for x, y in zip(a, b))


def reference(model_path, texts):
    """Each text's sentence-transformers vector, one text at a time (no padding)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_path), AutoModel.from_pretrained(model_path)
    vectors = []
    with torch.inference_mode():
        for text in texts:
            encoded = tokenizer(text, return_tensors="pt")
            hidden = model(**encoded).last_hidden_state[0]
            vectors.append(torch.nn.functional.normalize(hidden.mean(dim=0), dim=0).tolist())
    return vectors


def test_vectors_are_the_models(real_openai, model_paths):
    data = real_openai.embeddings.create(model=EMBEDDING_MODEL, input=TEXTS).data
    vectors = [item.embedding for item in data]
    assert [len(v) for v in vectors] == [384] * len(TEXTS)
    assert all(abs(math.sqrt(dot(v, v)) - 1) < 1e-5 for v in vectors)
    # measured: cosine 1.0000 for each (without the attention mask, 0.94 for the padded ones)
    for ours, theirs in zip(vectors, reference(model_paths[EMBEDDING_MODEL], TEXTS)):
        assert dot(ours, theirs) > 0.999


def test_similar_sentences_are_closer(real_openai):
    cat, kitten, revenue = (item.embedding for item in
                            real_openai.embeddings.create(model=EMBEDDING_MODEL,
                                                          input=[CAT, KITTEN, REVENUE]).data)
    # measured: 0.665 and -0.025
    assert dot(cat, kitten) > dot(cat, revenue) + 0.3

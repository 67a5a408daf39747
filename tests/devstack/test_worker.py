"""devstack.worker: it serves a sentence-transformers model only when FastChat's pooling is the
model's own. (Serving the real models is the real-model set's, tests/realmodels/.)"""

from __future__ import annotations

import json

import pytest

from devstack.worker import model_path_arg, sentence_transformers_pooling

MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def model_dir(tmp_path, modules=MODULES, **pooling):
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_cls_token": False,
         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False, **pooling}))
    return tmp_path


def test_mean_pooling_and_normalize_accepted(tmp_path):
    sentence_transformers_pooling(model_dir(tmp_path))


def test_cls_pooling_refused(tmp_path):
    path = model_dir(tmp_path, pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    with pytest.raises(ValueError, match="pooling_mode_cls_token"):
        sentence_transformers_pooling(path)


def test_vectors_not_normalised_refused(tmp_path):
    with pytest.raises(ValueError, match=r"modules \['Transformer', 'Pooling'\]"):
        sentence_transformers_pooling(model_dir(tmp_path, modules=MODULES[:2]))


def test_model_path_found_in_the_worker_flags():
    assert model_path_arg(["--port", "2", "--model-path", "/m/x", "--device", "cpu"]) == "/m/x"
    assert model_path_arg(["--model-path=/m/y"]) == "/m/y"
    assert model_path_arg(["--port", "2"]) is None

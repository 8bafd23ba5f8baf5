"""Mutated model files and sidecars from strangers: TorchScript archives and ONNX graphs with
bytes flipped or cut off load or raise only ModelFormatError, print nothing, and every sidecar
document is read or refused with SidecarError."""
from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foreign_models import save_onnx, save_torchscript
from segstudio.io.model_sidecar import ModelFacts, SidecarError, parse_facts
from segstudio.models.formats import ModelFormatError, load_any

SECONDS = 5.0          # each load must answer within this, whatever the bytes
MUTANTS = 40


def _mutants(data: bytes, rng: random.Random):
    for _ in range(MUTANTS):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.3:
            b = b[: rng.randrange(len(b))]
        yield bytes(b)


@pytest.mark.parametrize("suffix, save", [(".pt", save_torchscript), (".onnx", save_onnx)])
def test_mutated_model_files_load_or_raise_only_model_format_error(tmp_path, capfd, suffix,
                                                                   save):
    good = tmp_path / f"good{suffix}"
    save(good, sidecar=False)
    capfd.readouterr()
    rng = random.Random(suffix)
    refused = 0
    for i, data in enumerate(_mutants(good.read_bytes(), rng)):
        path = tmp_path / f"mutant{i}{suffix}"
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            load_any(path)
        except ModelFormatError as exc:
            refused += 1
            assert str(exc).startswith(f"{path.name}: ") and "\n" not in str(exc)
        assert time.perf_counter() - start < SECONDS
    assert refused >= MUTANTS // 4                  # the mutations do damage
    out, _ = capfd.readouterr()
    assert out == ""                                # no runtime's banner on standard output


SIDECAR_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=12)
KEYS = st.sampled_from(["classes", "mean", "std", "stride", "input_size", "output", "other"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, SIDECAR_VALUES, max_size=6))
def test_any_sidecar_document_is_read_or_refused_with_sidecar_error(document):
    json.dumps(document, allow_nan=True)         # a document a JSON file can hold
    try:
        facts = parse_facts(document, "x.segstudio.json")
    except SidecarError as exc:
        assert str(exc).startswith("x.segstudio.json: ") and "\n" not in str(exc)
        return
    assert isinstance(facts, ModelFacts)
    for values in (facts.mean, facts.std):
        assert values is None or all(0 <= v <= 1 for v in values)
    assert facts.std is None or all(v > 0 for v in facts.std)

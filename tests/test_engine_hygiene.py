"""Engine hygiene: a method's bug is not reported as a bad recipe, hooks are removed by their
handles, nothing writes PyTorch's private module dicts, and the model is patched by one mechanism
the engine owns and unpatched when the last adapter goes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

import surgery
from conftest import tiny_model
from surgery import RecipeError
from surgery.method import METHODS, Method, register_method

ROOT = Path(__file__).resolve().parent.parent


def _state(model):
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


def _unchanged(model, before):
    after = model.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[n], before[n]) for n in before)


class _Raising(Method):
    """A method whose site module build raises whatever the test puts in `error`."""
    name = "hygiene-raising"
    error: BaseException = ValueError("bug")

    def size_key(self, dims):
        return "options"

    def build_site_module(self, site, shared):
        raise type(self).error


@pytest.fixture
def raising_method():
    register_method(_Raising)
    yield _Raising
    METHODS.pop(_Raising.name, None)


@pytest.mark.parametrize("error", [ValueError("bug"), RuntimeError("shape mismatch in my method"), KeyError("k")])
def test_a_method_bug_propagates_unchanged_and_the_model_is_untouched(raising_method, error):
    raising_method.error = error
    model = tiny_model()
    before = _state(model)
    for call in (surgery.plan, surgery.apply):
        with pytest.raises(type(error)) as caught:
            call(model, {"method": raising_method.name, "sites": ["after_ffn"]})
        assert caught.value is error and not isinstance(caught.value, RecipeError)
    assert _unchanged(model, before) and not hasattr(model, "surgery")


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                                "can't allocate memory: you tried to allocate 1099511627776 bytes"),
                                   MemoryError()])
def test_an_allocation_failure_still_names_the_size_option(raising_method, error):
    raising_method.error = error
    model = tiny_model()
    before = _state(model)
    with pytest.raises(RecipeError) as caught:
        surgery.apply(model, {"method": raising_method.name, "sites": ["after_ffn"]})
    assert caught.value.key == "options" and "cannot be built" in str(caught.value)
    assert _unchanged(model, before) and not hasattr(model, "surgery")

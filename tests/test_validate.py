"""helpers.validate: the one wording for each bad number or choice (whole counts: tests/test_helpers_basics.py)."""

import math

import pytest

from helpers.validate import number_in, one_of, positive_number


@pytest.mark.parametrize("value", [0, -0.1, float("nan"), math.inf, True, "0.1", None])
def test_positive_number_refuses_what_is_not_a_positive_finite_number(value):
    with pytest.raises(ValueError, match=r"^lr must be a positive, finite number, got .*\. Try 0\.1\.$"):
        positive_number(value, "lr", advice="Try 0.1.")


def test_positive_number_returns_a_float():
    assert positive_number(3, "lr") == 3.0 and isinstance(positive_number(3, "lr"), float)


@pytest.mark.parametrize("value, message", [
    (1.0, "betas[1] must be at least 0 and below 1, got 1. Each beta is a decay rate."),
    (-0.5, "betas[1] must be at least 0 and below 1, got -0.5. Each beta is a decay rate."),
    (float("nan"), "betas[1] must be a number, got nan. Each beta is a decay rate."),
    (False, "betas[1] must be a number, got False. Each beta is a decay rate."),
])
def test_number_in_names_the_range_and_what_it_got(value, message):
    with pytest.raises(ValueError) as info:
        number_in(value, "betas[1]", 0.0, 1.0, high_open=True, advice="Each beta is a decay rate.")
    assert str(info.value) == message


def test_number_in_keeps_its_bounds():
    assert number_in(0, "momentum") == 0.0 and number_in(1.0, "dampening", high=1.0) == 1.0
    assert number_in(1e9, "weight_decay") == 1e9  # no upper bound unless one is given
    with pytest.raises(ValueError, match="at most 1"):
        number_in(1.5, "dampening", high=1.0)


def test_one_of_lists_the_choices():
    assert one_of("sgd", "optimizer", ("sgd", "adam")) == "sgd"
    with pytest.raises(ValueError) as info:
        one_of("rmsprop", "optimizer", ("sgd", "adam"))
    assert str(info.value) == "optimizer must be one of 'sgd', 'adam', got 'rmsprop'."


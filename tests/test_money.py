from decimal import Decimal

import pytest

from ops_pipeline.errors import InvalidInput
from ops_pipeline.money import exponent, fee_minor, to_major, to_minor


@pytest.mark.parametrize(("currency", "exp"), [("JPY", 0), ("EUR", 2), ("BHD", 3), ("CLF", 4), ("KWD", 3)])
def test_iso_4217_minor_units(currency, exp):
    assert exponent(currency) == exp


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("100", "JPY", 100), ("12.5", "EUR", 1250), ("12.50", "EUR", 1250), ("0.005", "BHD", 5), ("1.10", "JPY", None)],
)
def test_to_minor(text, currency, minor):
    if minor is None:
        with pytest.raises(InvalidInput, match=r"amount: '1.10' has 1 decimals, JPY allows 0"):
            to_minor(text, currency)
    else:
        assert to_minor(text, currency) == minor


def test_to_minor_refuses_what_is_not_money():
    with pytest.raises(InvalidInput, match="currency: 'XXX'"):
        to_minor("1", "XXX")
    with pytest.raises(InvalidInput, match=r"amount: '1e3' is not"):
        to_minor("1e3", "EUR")
    with pytest.raises(InvalidInput, match=r"fee_fixed: '0' must be positive"):
        to_minor("0", "EUR", field="fee_fixed", allow_zero=False)


def test_to_major_is_exact_decimal():
    assert to_major(123456789012345678, "EUR") == Decimal("1234567890123456.78")
    assert str(to_major(5, "BHD")) == "0.005"
    assert str(to_major(-1050, "EUR")) == "-10.50"


@pytest.mark.parametrize(
    ("amount", "percent_micros", "fixed", "fee"),
    [
        (10000, 2_900_000, 30, 320),  # 100.00 x 2.9% + 0.30
        (50, 1_000_000, 0, 1),  # 0.50 x 1% = 0.005 -> half up -> 0.01
        (49, 1_000_000, 0, 0),  # 0.0049 -> 0.00
        (1235, 1_250_000, 5, 20),  # BHD 1.235 x 1.25% = 0.0154375 -> 0.015 + 0.005
        (9_000_000_000_000_000, 99_999_999, 0, 8_999_999_910_000_000),  # no overflow in Python ints
    ],
)
def test_fee_rounds_half_up_in_minor_units(amount, percent_micros, fixed, fee):
    assert fee_minor(amount, percent_micros, fixed) == fee

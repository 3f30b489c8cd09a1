"""One parser for noise rates everywhere: '10%', '10' and '0.1' all mean ten percent."""
from __future__ import annotations

from nmlbench.errors import UserError


def parse_rate(text: str | float | int) -> float:
    """Parse a noise rate into a fraction in [0, 1).

    A trailing '%' or a bare number above 1 is read as a percentage; a bare number below 1 as a
    fraction. A bare 1 (or 1.0) could mean one percent or all samples, so it is refused: write '1%'.
    Every rate goes through here (--rate, --noise, --set rate=, --set noise.rate=, recipe and config
    files). Rates are returned rounded to 1e-9 so '10%' and '0.1' give the same float.
    """
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1]) / 100.0
        else:
            value = float(raw)
            if value == 1.0:
                raise UserError(
                    f"noise rate {raw!r} is ambiguous (1 % or 100 %?); write '1%' or '0.01' for one percent"
                )
            if value > 1.0:  # '10' means 10 %
                value = value / 100.0
    except ValueError:
        raise UserError(f"cannot read noise rate {raw!r}; write it as '10%', '10' or '0.1'") from None
    if value != value or not 0.0 <= value < 1.0:  # NaN fails both comparisons
        raise UserError(f"noise rate {raw!r} is outside [0, 1); use e.g. '10%' or '0.1'")
    return round(value, 9)


def parse_rates(text: str) -> list[float]:
    """Parse a comma-separated list: '0,5,10,20,30%' (a trailing % applies to every item)."""
    raw = str(text).strip()
    pct = raw.endswith("%")
    parts = [p.strip() for p in raw.rstrip("%").split(",") if p.strip()]
    if not parts:
        raise UserError(f"no noise rate in {raw!r}; write e.g. '10%' or '0,10,30%'")
    rates = [parse_rate(p + "%" if pct and not p.endswith("%") else p) for p in parts]
    if len(set(rates)) != len(rates):
        raise UserError(f"noise rates {raw!r} repeat a value; list each rate once")
    return rates


def rate_tag(rate: float) -> str:
    """10 % -> '10', 2.5 % -> '2.5': used in directory and checkpoint names."""
    pct = round(rate * 100, 6)
    return f"{pct:g}"

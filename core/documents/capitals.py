"""Amounts in Chinese capital figures (大写金额), as printed on order confirmations and contracts.

Capital figures (壹贰叁…) cannot be turned into another amount with a stroke of the pen,
so Chinese commercial documents print the total in them beside the Arabic figures.
The wording follows the usual rules for RMB amounts (as in the People's Bank of China's
settlement rules): one 零 for each run of zeros inside the number, 整 after an amount
that ends at 元 or 角, none after 分, and 壹拾 written out (壹拾万, not 拾万).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

DIGITS = "零壹贰叁肆伍陆柒捌玖"
#: The places inside one group of four digits, from the highest.
PLACES = ("仟", "佰", "拾", "")
#: Group units from the lowest: ones, ten thousands (万), hundred millions (亿), 万亿.
GROUPS = ("", "万", "亿", "万亿")
#: The largest amount that has a capital-figure wording here (below 10 000 万亿).
LIMIT = Decimal(10) ** (4 * len(GROUPS))


def _integer_words(number: int) -> str:
    """The capital figures of a whole number > 0 (without 元)."""
    text = str(number)
    text = text.zfill(-(-len(text) // 4) * 4)
    groups = [text[i : i + 4] for i in range(0, len(text), 4)]
    words: list[str] = []
    zero_pending = False
    for index, group in enumerate(groups):
        unit = GROUPS[len(groups) - 1 - index]
        if group == "0000":
            zero_pending = zero_pending or bool(words)
            continue
        for place, digit in zip(PLACES, group, strict=True):
            if digit == "0":
                zero_pending = zero_pending or bool(words)
                continue
            if zero_pending:
                words.append("零")
                zero_pending = False
            words.append(DIGITS[int(digit)] + place)
        words.append(unit)
    return "".join(words)


def chinese_capitals(amount: Decimal) -> str:
    """``amount`` (rounded half up to the fen) in capital figures, e.g. 4011.50 → 肆仟零壹拾壹元伍角整.

    Negative amounts read 负…; zero reads 零元整. Raises ``ValueError`` for amounts that
    are not finite or reach 10 000 万亿 (no document carries them; better refuse than misprint).
    """
    if not amount.is_finite():
        raise ValueError(f"{amount} is not an amount")
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if abs(cents) >= LIMIT:
        raise ValueError(f"{amount} is too large to write in capital figures")
    sign = "负" if cents < 0 else ""
    fen_total = int(abs(cents) * 100)
    yuan, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    if fen_total == 0:
        return "零元整"
    words = _integer_words(yuan) + "元" if yuan else ""
    if jiao:
        words += DIGITS[jiao] + "角"
    elif fen and yuan:
        words += "零"  # 325.04 → 叁佰贰拾伍元零肆分
    if fen:
        words += DIGITS[fen] + "分"
    else:
        words += "整"
    return sign + words

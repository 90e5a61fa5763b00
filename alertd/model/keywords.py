"""The keyword baseline: the Boolean query an analyst would otherwise set up in a
news-alert service. It is what the model has to beat, per label and per language."""

from __future__ import annotations

import re

from alertd.text.normalise import normalise

# Terms an analyst would type, in the languages alertd supports. Word starts only
# (``\b`` prefix) for spaced scripts; plain substrings for unspaced scripts.
_SANCTIONS = [
    r"\bsanction", r"\bembargo", r"\basset freeze", r"\bblacklist", r"\bsanksi", r"\bsanción", r"\bsanciones",
    r"\bsanktion", r"\bсанкци", r"\bэмбарго", r"عقوبات", r"حظر", "制裁", "禁运", "禁輸", "제재", "금수",
]
_ARMS = [
    r"\bweapon", r"\barms\b", r"\bmunition", r"\bammunition", r"\bmissile", r"\bdrone", r"\bshells\b",
    r"\bsenjata", r"\bamunisi", r"\brudal", r"\barmes?\b", r"\bmunitions?\b", r"\barmas?\b", r"\bmisil",
    r"\bwaffe", r"\bmunition", r"\bоружи", r"\bвооружен", r"\bбоеприпас", r"\bракет", r"أسلحة", r"سلاح", r"ذخائر", r"صواريخ",
    "武器", "军火", "弹药", "导弹", "兵器", "弾薬", "ミサイル", "무기", "포탄", "미사일", "탄약",
]
_TRANSFER = [
    r"\bship", r"\bdeliver", r"\bsuppl", r"\btransfer", r"\bsale", r"\bsell", r"\bsold\b", r"\bsmuggl", r"\bexport", r"\bdeal\b",
    r"\bkirim", r"\bpasok", r"\bjual", r"\bselundup", r"\bekspor", r"\btransfer", r"\blivr", r"\bvent", r"\bexport", r"\bentreg",
    r"\benví", r"\bcontraband", r"\bliefer", r"\bexport", r"\bпостав", r"\bпередач", r"\bконтрабанд", r"\bэкспорт",
    r"تهريب", r"شحن", r"تسليم", r"إرسال", "运送", "提供", "出口", "走私", "转让", "供与", "輸出", "密輸", "提供", "供給", "지원", "수출", "밀수", "공급", "이전", "제공",
]


def _any(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


SANCTIONS_QUERY = _any(_SANCTIONS)
ARMS_QUERY = _any(_ARMS)
TRANSFER_QUERY = _any(_TRANSFER)


def keyword_labels(title: str, text: str) -> dict[str, int]:
    """sanctions: any sanctions term; arms_transfer: a weapons term AND a transfer term."""
    body = normalise(f"{title}\n{text[:1500]}")
    return {
        "sanctions": int(bool(SANCTIONS_QUERY.search(body))),
        "arms_transfer": int(bool(ARMS_QUERY.search(body) and TRANSFER_QUERY.search(body))),
    }

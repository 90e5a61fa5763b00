"""Which sanctioned or supplier states an article mentions, in the languages alertd supports.

Keys are ISO 3166-1 alpha-2 codes, plus ISIL and ALQAIDA for the UN 1267 regime. Names are
matched on normalised (lower-case, NFKC) text: at word starts for spaced scripts, as
substrings for Chinese, Japanese and Korean (which do not space words; Korean particles
attach to names).
"""

from __future__ import annotations

import re
from functools import lru_cache

# States under UN Security Council sanctions regimes (current or recent), the targets of
# the main unilateral regimes, and common supplier or transit states in arms and evasion
# stories. Names: English, Indonesian, French, Spanish, German, Russian, Arabic, Chinese,
# Japanese, Korean (and common short forms).
COUNTRIES: dict[str, tuple[str, ...]] = {
    "KP": ("north korea", "dprk", "pyongyang", "korea utara", "korut", "corée du nord", "nord-corée", "corea del norte",
           "rpdc", "nordkorea", "kndr", "северная корея", "кндр", "пхеньян", "كوريا الشمالية", "بيونغ يانغ", "朝鲜", "北韩",
           "北朝鮮", "북한"),
    "IR": ("iran", "tehran", "teheran", "téhéran", "teherán", "иран", "тегеран", "إيران", "طهران", "伊朗", "イラン", "이란"),
    "RU": ("russia", "moscow", "kremlin", "rusia", "russie", "moscou", "moskow", "moskau", "russland", "россия", "москв", "кремл",
           "روسيا", "موسكو", "俄罗斯", "俄", "ロシア", "러시아"),
    "SY": ("syria", "damascus", "suriah", "syrie", "siria", "syrien", "сирия", "дамаск", "سوريا", "دمشق", "叙利亚", "シリア", "시리아"),
    "LY": ("libya", "tripoli", "libia", "libye", "libyen", "ливия", "ليبيا", "利比亚", "リビア", "리비아"),
    "YE": ("yemen", "houthi", "huthi", "yaman", "yémen", "jemen", "йемен", "хусит", "اليمن", "الحوثي", "也门", "胡塞", "イエメン", "フーシ",
           "예멘", "후티"),
    "SD": ("sudan", "khartoum", "soudan", "sudán", "судан", "السودان", "苏丹", "スーダン", "수단"),
    "SS": ("south sudan", "sudan selatan", "soudan du sud", "sudán del sur", "südsudan", "южный судан", "جنوب السودان", "南苏丹",
           "南スーダン", "남수단"),
    "CD": ("congo", "drc", "kinshasa", "kongo", "rdc", "конго", "الكونغو", "刚果", "コンゴ", "콩고"),
    "CF": ("central african republic", "republik afrika tengah", "centrafrique", "centroafricana", "zentralafrika",
           "центральноафриканск", "أفريقيا الوسطى", "中非", "中央アフリカ", "중앙아프리카"),
    "SO": ("somalia", "al-shabaab", "al shabaab", "somalie", "somalien", "сомали", "الصومال", "الشباب", "索马里", "ソマリア", "소말리아"),
    "HT": ("haiti", "haïti", "haití", "гаити", "هايتي", "海地", "ハイチ", "아이티"),
    "MM": ("myanmar", "burma", "birmanie", "birmania", "мьянма", "ميانمار", "缅甸", "ミャンマー", "미얀마"),
    "AF": ("afghanistan", "taliban", "afganistan", "afganistán", "афганистан", "талибан", "أفغانستان", "طالبان", "阿富汗", "塔利班",
           "アフガニスタン", "タリバン", "아프가니스탄", "탈레반"),
    "IQ": ("iraq", "irak", "ирак", "العراق", "伊拉克", "イラク", "이라크"),
    "LB": ("lebanon", "hezbollah", "hizbullah", "liban", "líbano", "libanon", "ливан", "хезболл", "لبنان", "حزب الله", "黎巴嫩",
           "真主党", "レバノン", "ヒズボラ", "레바논", "헤즈볼라"),
    "ML": ("mali", "bamako", "мали", "مالي", "马里", "マリ共和国", "말리"),
    "BY": ("belarus", "minsk", "biélorussie", "bielorrusia", "weißrussland", "беларус", "белорусс", "بيلاروسيا", "白俄罗斯",
           "ベラルーシ", "벨라루스"),
    "VE": ("venezuela", "caracas", "венесуэл", "فنزويلا", "委内瑞拉", "ベネズエラ", "베네수엘라"),
    "CU": ("cuba", "havana", "kuba", "куба", "كوبا", "古巴", "キューバ", "쿠바"),
    "ER": ("eritrea", "érythrée", "эритре", "إريتريا", "厄立特里亚", "エリトリア", "에리트레아"),
    "CN": ("china", "beijing", "tiongkok", "chine", "pékin", "pekín", "peking", "китай", "пекин", "الصين", "بكين", "中国", "中國", "中共"),
    "TR": ("turkey", "türkiye", "turki", "turquie", "turquía", "türkei", "турци", "تركيا", "土耳其", "トルコ", "튀르키예", "터키"),
    "AE": ("united arab emirates", "uae", "dubai", "uni emirat arab", "emirats arabes", "emiratos", "emirate", "оаэ", "الإمارات",
           "阿联酋", "アラブ首長国連邦", "아랍에미리트"),
    "PK": ("pakistan", "пакистан", "باكستان", "巴基斯坦", "パキスタン", "파키스탄"),
    "ISIL": ("isil", "isis", "islamic state", "daesh", "negara islam", "état islamique", "estado islámico", "islamischer staat",
             "игил", "исламское государство", "داعش", "الدولة الإسلامية", "伊斯兰国", "イスラム国", "이슬람국가"),
    "ALQAIDA": ("al-qaida", "al-qaeda", "al qaeda", "al qaida", "alkaida", "al-kaida", "аль-каида", "القاعدة", "基地组织",
                "アルカイダ", "알카에다"),
}
# Korean and Japanese headlines write North Korea as a bare 北; it is also part of many
# place names (北京, 台北, 北海道) and directions, which the lookarounds exclude.
_NORTH = r"(?<![台东東西华華河湖南])北(?![京海部方欧歐米美约約极極上東东西])"

_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    compiled = {}
    for code, names in COUNTRIES.items():
        parts = [re.escape(n) if _UNSPACED.search(n) else rf"(?<!\w){re.escape(n)}" for n in names]
        if code == "KP":
            parts.append(_NORTH)
        compiled[code] = re.compile("|".join(parts))
    return compiled


def countries_mentioned(normalised_text: str) -> set[str]:
    """Codes of the gazetteer entries named in the (normalised) text."""
    return {code for code, pattern in _patterns().items() if pattern.search(normalised_text)}


def known_codes() -> set[str]:
    return set(COUNTRIES)

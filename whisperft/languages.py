"""One table for language codes: ISO 639-1 <-> Common Voice locale <-> FLEURS config <-> Whisper token.

Whisper's own list (code -> name) is copied from transformers; this module adds the
Common Voice locale and the FLEURS config where they differ from the plain code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from whisperft.errors import UsageError

# Whisper's languages in its token order (code -> name), as transformers and openai-whisper list them;
# kept here so that the CTranslate2 path runs without importing transformers (a test checks they agree).
_WHISPER_LANGUAGES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian", "ko": "korean",
    "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish", "pl": "polish", "ca": "catalan",
    "nl": "dutch", "ar": "arabic", "sv": "swedish", "it": "italian", "id": "indonesian", "hi": "hindi",
    "fi": "finnish", "vi": "vietnamese", "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay",
    "cs": "czech", "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian", "la": "latin",
    "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak", "te": "telugu", "fa": "persian",
    "lv": "latvian", "bn": "bengali", "sr": "serbian", "az": "azerbaijani", "sl": "slovenian", "kn": "kannada",
    "et": "estonian", "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer", "sn": "shona",
    "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan", "ka": "georgian", "be": "belarusian",
    "tg": "tajik", "sd": "sindhi", "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog", "mg": "malagasy",
    "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala", "ha": "hausa", "ba": "bashkir",
    "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

# Whisper code -> FLEURS config (google/fleurs). Languages FLEURS lacks are absent.
_FLEURS = {
    "af": "af_za", "am": "am_et", "ar": "ar_eg", "as": "as_in", "az": "az_az", "be": "be_by",
    "bg": "bg_bg", "bn": "bn_in", "bs": "bs_ba", "ca": "ca_es", "cs": "cs_cz", "cy": "cy_gb",
    "da": "da_dk", "de": "de_de", "el": "el_gr", "en": "en_us", "es": "es_419", "et": "et_ee",
    "fa": "fa_ir", "fi": "fi_fi", "tl": "fil_ph", "fr": "fr_fr", "gl": "gl_es", "gu": "gu_in",
    "ha": "ha_ng", "he": "he_il", "hi": "hi_in", "hr": "hr_hr", "hu": "hu_hu", "hy": "hy_am",
    "id": "id_id", "is": "is_is", "it": "it_it", "ja": "ja_jp", "jw": "jv_id", "ka": "ka_ge",
    "kk": "kk_kz", "km": "km_kh", "kn": "kn_in", "ko": "ko_kr", "lb": "lb_lu", "ln": "ln_cd",
    "lo": "lo_la", "lt": "lt_lt", "lv": "lv_lv", "mi": "mi_nz", "mk": "mk_mk", "ml": "ml_in",
    "mn": "mn_mn", "mr": "mr_in", "ms": "ms_my", "mt": "mt_mt", "my": "my_mm", "no": "nb_no",
    "ne": "ne_np", "nl": "nl_nl", "oc": "oc_fr", "pa": "pa_in", "pl": "pl_pl", "ps": "ps_af",
    "pt": "pt_br", "ro": "ro_ro", "ru": "ru_ru", "sd": "sd_in", "sk": "sk_sk", "sl": "sl_si",
    "sn": "sn_zw", "so": "so_so", "sr": "sr_rs", "sv": "sv_se", "sw": "sw_ke", "ta": "ta_in",
    "te": "te_in", "tg": "tg_tj", "th": "th_th", "tr": "tr_tr", "uk": "uk_ua", "ur": "ur_pk",
    "uz": "uz_uz", "vi": "vi_vn", "yo": "yo_ng", "zh": "cmn_hans_cn", "yue": "yue_hant_hk",
}  # fmt: skip

# Whisper code -> Common Voice locale, where the locale is not the plain code.
_COMMON_VOICE = {
    "sv": "sv-SE", "zh": "zh-CN", "hy": "hy-AM", "ga": "ga-IE", "pa": "pa-IN", "ne": "ne-NP",
    "nn": "nn-NO", "no": "nb-NO", "yue": "zh-HK",
}  # fmt: skip

# Scripts written without spaces between words: CER is the headline metric.
_SPACELESS = {"zh", "ja", "th", "lo", "km", "my", "yue", "bo"}


@dataclass(frozen=True)
class Language:
    """One language under all the names our data sources and Whisper use."""

    code: str  # Whisper's code, usually ISO 639-1 ("sv")
    name: str  # Whisper's name ("swedish")
    common_voice: str  # Common Voice locale ("sv-SE")
    fleurs: str | None  # FLEURS config ("sv_se"), None when FLEURS lacks the language

    @property
    def token(self) -> str:
        """The Whisper language token, e.g. ``<|sv|>``."""
        return f"<|{self.code}|>"

    @property
    def spaceless(self) -> bool:
        """True when the language is written without spaces, so CER is the headline metric."""
        return self.code in _SPACELESS


def _build_table() -> dict[str, Language]:
    table: dict[str, Language] = {}
    for code, name in _WHISPER_LANGUAGES.items():
        table[code] = Language(code, name, _COMMON_VOICE.get(code, code), _FLEURS.get(code))
    return table


LANGUAGES: dict[str, Language] = _build_table()

_ALIASES: dict[str, str] = {}
for _lang in LANGUAGES.values():
    for _alias in (_lang.code, _lang.name, _lang.common_voice, _lang.fleurs):
        if _alias:
            _ALIASES.setdefault(_alias.lower().replace("-", "_"), _lang.code)


def get_language(value: str) -> Language:
    """Resolve a code, Whisper name, Common Voice locale or FLEURS config to a Language.

    Raises UsageError naming the closest valid codes when the value is unknown.
    """
    key = value.strip().lower().replace("-", "_")
    if key in _ALIASES:
        return LANGUAGES[_ALIASES[key]]
    raise UsageError(f"unknown language {value!r}; {suggest_languages(value)}")


def require_language(multilingual: bool, language: str | None) -> Language | None:
    """Validate a requested language for a model; English-only models accept only English. None for auto."""
    if language in (None, "auto"):
        return None
    lang = get_language(language)
    if not multilingual and lang.code != "en":
        raise UsageError(
            f"this model is English-only (*.en) and cannot be trained or decoded for {lang.name}; "
            "use a multilingual model such as base or small"
        )
    return lang


def suggest_languages(value: str) -> str:
    """A short 'did you mean' hint for an unknown language."""
    key = value.strip().lower().replace("-", "_")
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.5)
    codes = list(dict.fromkeys(_ALIASES[c] for c in close))
    if not codes:
        return "see `whisperft languages` for the list"
    return "did you mean " + ", ".join(f"{c} ({LANGUAGES[c].name})" for c in codes) + "?"

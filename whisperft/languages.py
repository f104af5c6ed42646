"""One table for language codes: ISO 639 <-> Common Voice locale <-> FLEURS config <-> Whisper token.

Whisper's own list (code -> name) is copied from transformers; this module adds the
Common Voice locale and the FLEURS config where they differ from the plain code.

Anything else a user may type, ISO 639-3 codes (``swe``), BCP 47 locales (``sv-SE``, ``nan-tw``)
and English names (``Esperanto``), goes through ``langcodes`` and its ``language_data`` tables
(the IANA subtag registry and CLDR names). A language Whisper has no token for is still a
``Language``, with ``whisper=False``; training gives it a related language's token or a new one
(``train.language_token``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import langcodes
from language_data.names import code_to_names, normalize_name

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

# Language code -> FLEURS config (google/fleurs, 102 languages). Languages FLEURS lacks are absent.
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
    # FLEURS languages Whisper lacks
    "ast": "ast_es", "ceb": "ceb_ph", "ckb": "ckb_iq", "ff": "ff_sn", "ga": "ga_ie", "ig": "ig_ng",
    "kam": "kam_ke", "kea": "kea_cv", "ky": "ky_kg", "lg": "lg_ug", "luo": "luo_ke", "nso": "nso_za",
    "ny": "ny_mw", "om": "om_et", "or": "or_in", "umb": "umb_ao", "wo": "wo_sn", "xh": "xh_za", "zu": "zu_za",
}  # fmt: skip

# Language code -> Common Voice locale, where the locale is not the plain code.
_COMMON_VOICE = {
    "sv": "sv-SE", "zh": "zh-CN", "hy": "hy-AM", "ga": "ga-IE", "pa": "pa-IN", "ne": "ne-NP",
    "nn": "nn-NO", "no": "nb-NO", "yue": "zh-HK", "gu": "gu-IN", "fy": "fy-NL", "nan": "nan-tw",
    "rm": "rm-sursilv", "pap": "pap-AW", "jw": "jv",
}  # fmt: skip

# ISO 639 code (as langcodes normalises it) -> Whisper's code, where Whisper uses another one.
_TO_WHISPER = {"jv": "jw", "nb": "no", "fil": "tl", "cmn": "zh"}
# Chinese of these territories is Cantonese to Common Voice (zh-HK) and to Whisper (yue).
_CANTONESE_TERRITORIES = {"HK", "MO"}
# ISO 639-2 special codes: valid tags, but no one language to transcribe.
_NOT_A_LANGUAGE = {"mis", "mul", "und", "zxx", "sgn"}
# config.json key (of a transformers or CTranslate2 model folder) recording a fine-tune's language
MODEL_KEY = "whisperft_language"

# Scripts written without spaces between words: CER is the headline metric.
_SPACELESS = {"zh", "ja", "th", "lo", "km", "my", "yue", "bo", "dz",  # and Chinese varieties Whisper lacks:
              "nan", "hak", "wuu", "gan", "hsn", "cdo", "cjy", "lzh"}  # fmt: skip


@dataclass(frozen=True)
class Language:
    """One language under all the names our data sources and Whisper use."""

    code: str  # Whisper's code, usually ISO 639-1 ("sv"); ISO 639-1 or -3 when Whisper lacks it ("eo", "hsb")
    name: str  # Whisper's name ("swedish"), or the English name in lower case ("esperanto")
    common_voice: str  # Common Voice locale ("sv-SE")
    fleurs: str | None  # FLEURS config ("sv_se"), None when FLEURS lacks the language
    whisper: bool = True  # False when Whisper has no token for the language

    @property
    def token(self) -> str:
        """The language token, e.g. ``<|sv|>``; for a language Whisper lacks, the token training may add."""
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

# Whisper's other names for its languages (openai-whisper's TO_LANGUAGE_CODE, as transformers copies it)
_ALIASES: dict[str, str] = {
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}  # fmt: skip
for _lang in LANGUAGES.values():
    for _alias in (_lang.code, _lang.name, _lang.common_voice, _lang.fleurs):
        if _alias:
            _ALIASES.setdefault(_alias.lower().replace("-", "_"), _lang.code)


def get_language(value: str) -> Language:
    """Resolve a language as users write it to a Language.

    Accepts Whisper's codes and names, ISO 639-1 and 639-3 codes, Common Voice locales and other
    BCP 47 tags (``sv-SE``, ``zh-TW``, ``nan-tw``), FLEURS configs, and English names. A real language
    Whisper has no token for (``eo``, ``Guarani``) comes back with ``whisper=False``.

    Raises UsageError naming the closest valid codes when the value is no language at all.
    """
    key = value.strip().lower().replace("-", "_")
    if key in _ALIASES:
        return LANGUAGES[_ALIASES[key]]
    found = _lookup(value.strip())
    if found is None:
        raise UsageError(f"unknown language {value!r}; {suggest_languages(value)}")
    return found


def _lookup(value: str) -> Language | None:
    """A tag or a language's name through langcodes; None when it names no language."""
    try:
        tag = langcodes.Language.get(value)
    except (ValueError, LookupError):
        tag = _by_name(value, exact=True)
        if tag is None:
            return None
    code = tag.language
    if not code or code in _NOT_A_LANGUAGE or tag.language_name().startswith("Unknown"):
        return None
    if code == "zh" and tag.territory in _CANTONESE_TERRITORIES:
        code = "yue"
    code = _TO_WHISPER.get(code, code)
    if code in LANGUAGES:
        return LANGUAGES[code]
    # an individual language that is what Whisper's macrolanguage means (arb Standard Arabic is ar, swh is sw)
    macro = str(tag.prefer_macrolanguage().language)
    macro = _TO_WHISPER.get(macro, macro)
    if macro in LANGUAGES:
        return LANGUAGES[macro]
    name = langcodes.Language.get(code).language_name().lower()
    return Language(code, name, _COMMON_VOICE.get(code, code), _FLEURS.get(code), whisper=False)


def _by_name(value: str, exact: bool) -> Any:
    """The langcodes tag of a language named ``value`` in any language (Esperanto, svenska, Kirgisisch).

    ``exact``: the name must be one of the language's names; otherwise langcodes' prefix matching
    (``Hakka Chinese`` for Hakka) is allowed, which is only good enough for a suggestion.
    """
    try:
        tag = langcodes.find(value)
    except (LookupError, ValueError):
        return None
    if exact and normalize_name(value) not in {normalize_name(n) for n in code_to_names(tag.language).values()}:
        return None
    return tag


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


@dataclass(frozen=True)
class ModelLanguage:
    """The language a fine-tuned model transcribes, and the language token its decoder is prompted with.

    For a language Whisper knows, both are the same (``sv``, ``<|sv|>``). For one it lacks, ``token``
    is a related language's code (a proxy: Esperanto under ``<|es|>``) or the language's own code,
    when training added that token (``<|eo|>``).
    """

    language: Language
    token: str  # code of the prompting token: "sv", "es" (a proxy), or "eo" (a token training added)
    fallback: str | None = None  # an added token's related Whisper language, for clients that know only Whisper's

    @property
    def proxy(self) -> bool:
        """True when the model prompts with another language's token."""
        return self.token != self.language.code

    @property
    def added_token(self) -> bool:
        """True when the prompting token is not one of Whisper's own (training added it)."""
        return self.token not in LANGUAGES

    def to_dict(self) -> dict[str, str]:
        """What the model folder's config.json keeps under ``MODEL_KEY``."""
        out = {"language": self.language.code, "token": self.token}
        return {**out, "fallback": self.fallback} if self.fallback else out

    @classmethod
    def read(cls, config: Mapping[str, Any] | None, generation_language: str | None = None) -> ModelLanguage | None:
        """A model's language from its config.json (``MODEL_KEY``), else from ``generation_config.language``
        (a Whisper code, or a token such as ``<|eo|>``); None when the model records no language."""
        entry = (config or {}).get(MODEL_KEY)
        if isinstance(entry, Mapping) and entry.get("language") and entry.get("token"):
            fallback = entry.get("fallback")
            return cls(get_language(str(entry["language"])), str(entry["token"]), str(fallback) if fallback else None)
        if generation_language:
            code = generation_language.strip("<|>")
            return cls(get_language(code), get_language(code).code)
        return None


def prompt_language(token: str) -> str:
    """What transformers' ``generate(language=...)`` takes for a token code.

    Whisper's own codes pass as they are; an added token passes as itself (``<|eo|>``), which
    transformers looks up in ``generation_config.lang_to_id`` (it rejects codes outside Whisper's list).
    """
    return token if token in LANGUAGES else f"<|{token}|>"


@dataclass(frozen=True)
class Decoding:
    """The language a model decodes in, decided once when the model is loaded and then passed down, as
    openai/whisper's ``DecodingOptions.language`` is: ``language``, the code to report, and ``token``, the
    code of the language token to prompt with (a fine-tune's proxy, or a token training added). Both None:
    detect the language of each recording (``DETECT``)."""

    language: str | None = None
    token: str | None = None

    @property
    def detect(self) -> bool:
        """True when the language is detected per recording."""
        return self.token is None


DETECT = Decoding()


def decode_language(
    requested: str | None,
    own: ModelLanguage | None,
    multilingual: bool = True,
    known: Collection[str] | None = None,
    model: str = "this model",
) -> Decoding:
    """The ``Decoding`` for a model asked to decode ``requested``: None for the model's own language
    (detect when it has none), ``auto`` to detect, or a language. A language Whisper lacks decodes only on
    a model fine-tuned for it. ``known``: the codes of the language tokens the model has
    (``token_languages``; None: not checked), ``model`` its name for messages. Raises UsageError for an
    English-only model asked for another language, or for a language this model has no token for ("yue"
    on a model older than large-v3), naming its languages.
    """
    if requested == "auto" or (requested is None and own is None):
        return DETECT
    if requested is None:
        assert own is not None
        return Decoding(own.language.code, own.token)
    lang = require_language(multilingual, requested)
    assert lang is not None
    if own is not None and lang.code == own.language.code:
        return Decoding(own.language.code, own.token)
    if not lang.whisper:
        raise UsageError(
            f"Whisper has no token for {lang.name} ({lang.code}) and {model} was not fine-tuned for it; "
            "fine-tune it first (docs/languages.md: 'A language Whisper does not know')"
        )
    if known is not None and lang.code not in known:
        listed = ", ".join(sorted(known))
        raise UsageError(f"{model} has no token for {lang.name} ({lang.code}); its {len(known)} languages: {listed}")
    return Decoding(lang.code, lang.code)


def detection_warning(requested: str | None, own: ModelLanguage | None, model: str = "this model") -> str | None:
    """The warning for ``--lang auto`` on a model fine-tuned for one language, else None. Its decoder learns
    to follow the audio with that language's token, and its detection drifts there: after 12 steps of
    Swedish, bundled base heard 9 of 20 English clips as Swedish (issue #33; BENCHMARKS.md,
    language_detection_after_finetuning, measures it against steps)."""
    if requested != "auto" or own is None:
        return None
    return (
        f"{model} was fine-tuned for {own.language.name} only, and its --lang auto tends to detect "
        f"{own.language.name}; pass --lang for recordings in other languages"
    )


def token_languages(has_token: Callable[[str], bool]) -> frozenset[str]:
    """The codes of the languages in the table whose token (``<|sv|>``) ``has_token`` finds in a model's
    vocabulary: 99 for Whisper v1-v2 and ``*.en``'s none, 100 for large-v3 (with ``yue``)."""
    return frozenset(code for code in LANGUAGES if has_token(f"<|{code}|>"))


def reported_language(detected: str, own: ModelLanguage | None) -> str:
    """The language to report for a detected token code: a fine-tune's proxy token means its own language."""
    if own is not None and detected == own.token:
        return own.language.code
    return detected


def suggest_languages(value: str) -> str:
    """A short 'did you mean' hint for an unknown language: close Whisper names and codes, and a
    language whose name starts like ``value``."""
    key = value.strip().lower().replace("-", "_")
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.5)
    found = [f"{c} ({LANGUAGES[c].name})" for c in dict.fromkeys(_ALIASES[c] for c in close)]
    tag = _by_name(value, exact=False) if value.strip() else None
    if tag is not None and tag.language not in _NOT_A_LANGUAGE:
        found.insert(0, f"{tag.language} ({tag.language_name().lower()})")
    if not found:
        return "see `whisperft languages` for the list"
    return "did you mean " + ", ".join(dict.fromkeys(found)) + "?"

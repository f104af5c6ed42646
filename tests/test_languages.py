"""Language codes as users write them: every Common Voice locale, ISO 639-1/-3, names; tokens a model uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisperft.config import config_from_dict
from whisperft.errors import ConfigError, UsageError
from whisperft.languages import (
    DETECT,
    LANGUAGES,
    Decoding,
    ModelLanguage,
    decode_language,
    get_language,
    prompt_language,
    reported_language,
)

# Every Common Voice locale (as of Common Voice 21) -> the Whisper language it is.
CV_WHISPER = {
    "af": "af", "am": "am", "ar": "ar", "as": "as", "az": "az", "ba": "ba", "be": "be", "bg": "bg", "bn": "bn",
    "bo": "bo", "br": "br", "bs": "bs", "ca": "ca", "cs": "cs", "cy": "cy", "da": "da", "de": "de", "el": "el",
    "en": "en", "es": "es", "et": "et", "eu": "eu", "fa": "fa", "fi": "fi", "fo": "fo", "fr": "fr", "gl": "gl",
    "gu-IN": "gu", "ha": "ha", "he": "he", "hi": "hi", "hr": "hr", "ht": "ht", "hu": "hu", "hy-AM": "hy",
    "id": "id", "is": "is", "it": "it", "ja": "ja", "jv": "jw", "ka": "ka", "kk": "kk", "km": "km", "kn": "kn",
    "ko": "ko", "lb": "lb", "ln": "ln", "lo": "lo", "lt": "lt", "lv": "lv", "mg": "mg", "mk": "mk", "ml": "ml",
    "mn": "mn", "mr": "mr", "ms": "ms", "mt": "mt", "my": "my", "nb-NO": "no", "ne-NP": "ne", "nl": "nl",
    "nn-NO": "nn", "oc": "oc", "pa-IN": "pa", "pl": "pl", "ps": "ps", "pt": "pt", "ro": "ro", "ru": "ru",
    "sd": "sd", "si": "si", "sk": "sk", "sl": "sl", "so": "so", "sq": "sq", "sr": "sr", "sv-SE": "sv",
    "sw": "sw", "ta": "ta", "te": "te", "tg": "tg", "th": "th", "tk": "tk", "tl": "tl", "tr": "tr", "tt": "tt",
    "uk": "uk", "ur": "ur", "uz": "uz", "vi": "vi", "yi": "yi", "yo": "yo", "yue": "yue", "zh-CN": "zh",
    "zh-HK": "yue", "zh-TW": "zh",
}  # fmt: skip
# ...and every Common Voice locale of a language Whisper lacks -> its ISO 639 code.
CV_LACKING = {
    "ab": "ab", "ace": "ace", "ady": "ady", "an": "an", "arn": "arn", "ast": "ast", "bas": "bas", "bm": "bm",
    "bxr": "bxr", "byv": "byv", "cak": "cak", "ckb": "ckb", "cnh": "cnh", "co": "co", "crh": "crh", "cv": "cv",
    "dag": "dag", "dsb": "dsb", "dv": "dv", "dyu": "dyu", "eo": "eo", "ewo": "ewo", "ff": "ff", "fuf": "fuf",
    "fy-NL": "fy", "ga-IE": "ga", "gn": "gn", "gom": "gom", "guc": "guc", "hil": "hil", "hsb": "hsb",
    "hyw": "hyw", "ia": "ia", "ie": "ie", "ig": "ig", "izh": "izh", "jbo": "jbo", "kaa": "kaa", "kab": "kab",
    "kbd": "kbd", "ki": "ki", "kmr": "kmr", "knn": "knn", "kpv": "kpv", "kw": "kw", "ky": "ky", "lg": "lg",
    "lij": "lij", "ltg": "ltg", "lzz": "lzz", "mai": "mai", "mdf": "mdf", "mhr": "mhr", "mni": "mni",
    "mos": "mos", "mrj": "mrj", "myv": "myv", "nan-tw": "nan", "nd": "nd", "nhe": "nhe", "nhi": "nhi",
    "nia": "nia", "nr": "nr", "nso": "nso", "ny": "ny", "nyn": "nyn", "om": "om", "or": "or", "os": "os",
    "pap-AW": "pap", "quc": "quc", "quy": "quy", "qvi": "qvi", "rm-sursilv": "rm", "rm-vallader": "rm",
    "rw": "rw", "sah": "sah", "sat": "sat", "sc": "sc", "scn": "scn", "sco": "sco", "sdh": "sdh", "shi": "shi",
    "skr": "skr", "snk": "snk", "ss": "ss", "st": "st", "syr": "syr", "ti": "ti", "tig": "tig", "tn": "tn",
    "tok": "tok", "ts": "ts", "tw": "tw", "ty": "ty", "tyv": "tyv", "uby": "uby", "udm": "udm", "ug": "ug",
    "ve": "ve", "vec": "vec", "vmw": "vmw", "vot": "vot", "wep": "wep", "wo": "wo", "xh": "xh", "zgh": "zgh",
    "zu": "zu", "zza": "zza",
}  # fmt: skip


@pytest.mark.parametrize(("locale", "code"), sorted(CV_WHISPER.items()))
def test_common_voice_locale_of_a_whisper_language(locale: str, code: str) -> None:
    lang = get_language(locale)
    assert (lang.code, lang.whisper) == (code, True)
    assert lang.code in LANGUAGES


@pytest.mark.parametrize(("locale", "code"), sorted(CV_LACKING.items()))
def test_common_voice_locale_of_a_language_whisper_lacks(locale: str, code: str) -> None:
    lang = get_language(locale)
    assert (lang.code, lang.whisper) == (code, False)
    assert lang.name and not lang.name.startswith("unknown")


def test_the_table_covers_whisper() -> None:
    """Every Whisper language Common Voice has is in the table once; the two lists do not overlap."""
    assert not set(CV_WHISPER) & set(CV_LACKING)
    assert len(CV_WHISPER) + len(CV_LACKING) == 205


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("sv", "sv"), ("swe", "sv"), ("Swedish", "sv"), ("svenska", "sv"), ("sv_se", "sv"),  # FLEURS config
        ("jv", "jw"), ("jav", "jw"), ("jw", "jw"), ("javanese", "jw"), ("jv_id", "jw"),
        ("epo", "eo"), ("Esperanto", "eo"), ("grn", "gn"), ("Guarani", "gn"), ("kir", "ky"), ("Kyrgyz", "ky"),
        ("uig", "ug"), ("Uighur", "ug"), ("gle", "ga"), ("Irish", "ga"), ("ina", "ia"), ("chv", "cv"),
        ("fil", "tl"), ("iw", "he"), ("cmn", "zh"), ("castilian", "es"), ("haitian creole", "ht"),
        ("nob", "no"), ("yue", "yue"), ("zh-Hant-HK", "yue"),
        ("arb", "ar"), ("swh", "sw"), ("zsm", "ms"), ("pes", "fa"), ("ydd", "yi"), ("khk", "mn"),  # individual
        ("uzn", "uz"), ("npi", "ne"), ("azj", "az"), ("pbu", "ps"), ("als", "sq"), ("ekk", "et"),  # of a macro
    ],
)  # fmt: skip
def test_codes_and_names(value: str, code: str) -> None:
    assert get_language(value).code == code


def test_chinese_varieties_whisper_lacks_are_scored_by_characters() -> None:
    assert get_language("nan-tw").spaceless and get_language("hak").spaceless and not get_language("eo").spaceless


@pytest.mark.parametrize(("value", "hint"), [("swedsh", "sv (swedish)"), ("Esperanto language", "eo (esperanto)"),
                                             ("xx", "whisperft languages"), ("und", "did you mean"),
                                             ("mul", "did you mean")])  # fmt: skip
def test_not_a_language(value: str, hint: str) -> None:
    with pytest.raises(UsageError, match=f"unknown language '{value}'") as err:
        get_language(value)
    assert hint in str(err.value)


def test_decode_language_for_models() -> None:
    eo = get_language("eo")
    proxy, added = ModelLanguage(eo, "es"), ModelLanguage(eo, "eo")
    assert proxy.proxy and not proxy.added_token and added.added_token and not added.proxy
    assert decode_language(None, proxy) == Decoding("eo", "es")  # the model's own language, under its token
    assert decode_language("epo", proxy) == Decoding("eo", "es")
    assert decode_language(None, added) == Decoding("eo", "eo")
    assert decode_language("auto", proxy) == DETECT and decode_language(None, None).detect
    assert decode_language("fr", proxy) == Decoding("fr", "fr")
    with pytest.raises(UsageError, match="no token for esperanto"):
        decode_language("eo", None)
    with pytest.raises(UsageError, match="English-only"):
        decode_language("sv", None, multilingual=False)
    assert reported_language("es", proxy) == "eo" and reported_language("fr", proxy) == "fr"
    assert prompt_language("es") == "es" and prompt_language("eo") == "<|eo|>"


def test_model_language_round_trip() -> None:
    own = ModelLanguage(get_language("ky"), "kk")
    assert ModelLanguage.read({"whisperft_language": own.to_dict()}) == own
    assert ModelLanguage.read({}, "sv") == ModelLanguage(get_language("sv"), "sv")  # a model from before
    assert ModelLanguage.read({}, "<|eo|>") == ModelLanguage(get_language("eo"), "eo")
    assert ModelLanguage.read(None) is None


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"language": "sv", "language_token": "new"}, "language_token: new adds a token for a language Whisper lacks"),
        ({"language": "eo", "language_token": "gn"}, "language_token: Whisper has no token for guarani"),
        ({"language": "eo", "language_token": "swedsh"}, "language_token: expected auto, new or a language code"),
        ({"language": "eo", "language_token": "new", "train": {"method": "lora"}}, "new needs train.method full"),
    ],
)
def test_language_token_config(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        config_from_dict(data)
    for token in ("auto", "new", "es", "spanish"):
        config_from_dict({"language": "eo", "language_token": token})


# Three scripts of languages Whisper lacks: Uyghur (Arabic script), Kyrgyz (Cyrillic), Irish (Latin with fadas).
SCRIPTS = {
    "ug": "بۈگۈن ھاۋا ناھايىتى ياخشى، بالىلار مەكتەپكە بارىدۇ.",
    "ky": "Жекшемби күнү студенттер мектепте жылуу кийим сатып алат.",
    "ga": "Chuaigh mé go hÉirinn anuraidh le mo dheirfiúr.",
}


@pytest.mark.parametrize("lang", sorted(SCRIPTS))
def test_scripts_survive_cleaning_normalizing_and_the_tokenizer(lang: str, tiny_model: Path) -> None:
    from whisperft.metrics import score
    from whisperft.models.registry import load_processor
    from whisperft.text import clean_text, normalize_text, speech_chars

    text = SCRIPTS[lang]
    assert clean_text(text) == text
    norm = normalize_text(text)
    assert speech_chars(norm) == speech_chars(text)  # every letter kept, only punctuation gone
    assert norm == norm.casefold() and "," not in norm and "،" not in norm and "." not in norm
    tok = load_processor(str(tiny_model)).tokenizer  # the real Whisper tokenizer: byte-level BPE
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text and len(ids) < 448 - 5
    # CER counts one changed letter as one error
    first = next(i for i, ch in enumerate(text) if ch.isalpha())
    changed = text[:first] + ("x" if text[first] != "x" else "y") + text[first + 1 :]
    metrics, _ = score(["0"], [text], [changed], lang)
    assert metrics["cer"] == pytest.approx(1 / len(text))
    assert metrics["wer"] == pytest.approx(1 / len(text.split()))


def test_a_zero_width_non_joiner_stays_inside_its_word() -> None:
    from whisperft.text import normalize_text

    assert normalize_text("می\u200cخواهم بروم") == "میخواهم بروم"  # Persian: one word, not two
    assert normalize_text("ئۇ\u200cلار") == "ئۇلار"


def test_a_fast_uyghur_speaker_stays_within_the_token_limit(tiny_model: Path, tmp_path: Path) -> None:
    """Uyghur costs Whisper's tokenizer the most tokens per second of the languages it lacks (31/s from
    espeak-ng at 320 wpm); ``token_limit`` must not cut a correct transcript short."""
    import soundfile as sf

    from whisperft.models.registry import load_processor
    from whisperft.synth import speak
    from whisperft.text import token_limit

    tok = load_processor(str(tiny_model)).tokenizer
    for text in ("مەن ئۈرۈمچىدە ياشايمەن ۋە ھەر كۈنى ئىشقا ماڭىمەن.", SCRIPTS["ug"]):
        audio, rate = sf.read(speak(text, tmp_path / "ug.wav", voice="ug", speed=320))
        loud = [i for i, x in enumerate(abs(audio) > 0.01) if x]
        seconds = (loud[-1] - loud[0]) / rate
        assert len(tok.encode(text, add_special_tokens=False)) <= token_limit(seconds)


def test_every_fleurs_config_resolves_to_its_language() -> None:
    """FLEURS' 102 configs, 19 of them languages Whisper lacks (ky_kg, ga_ie, zu_za...): prepare's default source."""
    from whisperft.languages import _FLEURS

    assert len(_FLEURS) == 102
    lacking = {code for code, config in _FLEURS.items() if not get_language(config).whisper}
    assert len(lacking) == 19 and {"ky", "ga", "zu"} <= lacking
    for code, config in _FLEURS.items():
        assert (get_language(config).code, get_language(config).fleurs) == (code, config)

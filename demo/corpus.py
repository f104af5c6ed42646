"""Synthesize a speech corpus in Common Voice layout (48 kHz mp3 + TSVs), offline.

Each sentence is spoken by espeak-ng with a random voice variant, speed and pitch; some
clips get reverb and/or background noise through sox. Sentences are split into
train/dev/test *by sentence*, so dev and test sentences are never heard in training.

Swedish (the demo) reads ``sentences_sv.txt``. Esperanto and Kyrgyz, two languages Whisper has no
token for (one in Latin script, one in Cyrillic), are written from small grammars: a time, a
subject, a place and a verb with a fitting object, in each language's own word order and cases.
"""

from __future__ import annotations

import csv
import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devkit.synth import render_clip

HERE = Path(__file__).parent


# Esperanto: "Hodiaŭ mia frato aĉetas freŝan panon en la vendejo." (time, subject, verb, object, place)
EO = {
    "time": ["Hodiaŭ", "Morgaŭ", "Hieraŭ", "Vespere", "Matene", "Ĉiutage", "Nun", "Dimanĉe"],
    "subject": ["mia frato", "la instruisto", "nia najbaro", "la knabino", "mia patrino", "la studentoj",
                "Petro", "Maria", "la kuracisto", "mia amiko", "la infanoj", "ŝia avino"],
    "verb_object": [
                    (("legas", "legis", "legos"), ["novan libron", "la gazeton", "longan leteron"]),
                    (("aĉetas", "aĉetis", "aĉetos"), ["freŝan panon", "ruĝajn pomojn", "varman mantelon",
                                                      "du biletojn"]),
                    (("manĝas", "manĝis", "manĝos"), ["bongustan supon", "dolĉan kukon", "verdan salaton"]),
                    (("trinkas", "trinkis", "trinkos"), ["varman teon", "malvarman akvon", "fortan kafon"]),
                    (("skribas", "skribis", "skribos"), ["mallongan poemon", "leteron al la urbestro"]),
                    (("serĉas", "serĉis", "serĉos"), ["la ŝlosilojn", "sian telefonon", "malgrandan katon"]),
                    (("desegnas", "desegnis", "desegnos"), ["belan domon", "altan arbon"])],
    "past": ["Hieraŭ"], "future": ["Morgaŭ"],
    "place": ["en la vendejo", "en la parko", "hejme", "en la lernejo", "en la biblioteko", "en la kuirejo",
              "sur la strato", "en la ĝardeno", "ĉe la stacidomo", "en la urbo"],
}  # fmt: skip
# Kyrgyz: "Бүгүн Айгүл базарда нан сатып алат." (time, subject, place in the locative, object, verb)
KY = {
    "time": ["Бүгүн", "Эртең", "Кечээ", "Кечинде", "Эртең менен", "Ар дайым", "Азыр", "Жекшемби күнү"],
    "subject": ["Айгүл", "Бакыт", "менин атам", "биздин мугалим", "кичинекей бала", "апам", "студенттер",
                "менин досум", "кошуна кыз", "чоң энем", "Азамат", "дарыгер"],
    "verb_object": [
                    (("окуйт", "окуду", "окуйт"), ["жаңы китеп", "гезит", "узун кат"]),
                    (("сатып алат", "сатып алды", "сатып алат"), ["жаңы нан", "кызыл алма", "жылуу кийим",
                                                                 "эки билет"]),
                    (("жейт", "жеди", "жейт"), ["даамдуу шорпо", "таттуу торт", "жашыл салат"]),
                    (("ичет", "ичти", "ичет"), ["ысык чай", "муздак суу", "кымыз"]),
                    (("жазат", "жазды", "жазат"), ["кыска ыр", "кат"]),
                    (("издейт", "издеди", "издейт"), ["ачкыч", "телефон", "кичинекей мышык"]),
                    (("тартат", "тартты", "тартат"), ["кооз үй", "бийик дарак"])],
    "past": ["Кечээ"], "future": ["Эртең"],
    "place": ["базарда", "паркта", "үйдө", "мектепте", "китепканада", "ашканада", "көчөдө", "бакчада",
              "вокзалда", "шаарда"],
}  # fmt: skip
GRAMMARS = {"eo": EO, "ky": KY}


def grammar_sentences(lang: str, n: int = 200, seed: int = 20) -> list[str]:
    """``n`` different sentences of ``GRAMMARS[lang]``, drawn with ``seed``; the verb (present, past,
    future) agrees with the time."""
    g, rng, out = GRAMMARS[lang], random.Random(seed), {}
    while len(out) < n:
        time, subject, place = rng.choice(g["time"]), rng.choice(g["subject"]), rng.choice(g["place"])
        forms, objects = rng.choice(g["verb_object"])
        verb = forms[1] if time in g["past"] else forms[2] if time in g["future"] else forms[0]
        obj = rng.choice(objects)
        words = [time, subject, verb, obj, place] if lang == "eo" else [time, subject, place, obj, verb]
        out.setdefault(" ".join(words) + ".", None)
    return list(out)


def sentences(lang: str = "sv") -> list[str]:
    if lang in GRAMMARS:
        return grammar_sentences(lang)
    lines = (HERE / f"sentences_{lang}.txt").read_text(encoding="utf-8").splitlines()
    return [s.strip() for s in lines if s.strip()]


def build(
    root: Path, train_variants: int = 2, n_dev: int = 20, n_test: int = 45, seed: int = 1, lang: str = "sv"
) -> Path:
    """Write ``root/clips/*.mp3`` and train/dev/test TSVs; reuse them when the corpus is unchanged."""
    texts = sentences(lang)
    tag = "" if lang == "sv" else lang  # the Swedish corpus keeps its key (and the demo its cached clips)
    key = hashlib.sha256(("\n".join(texts) + f"{train_variants}{n_dev}{n_test}{seed}{tag}").encode()).hexdigest()[:12]
    marker = root / f".complete-{key}"
    if marker.exists():
        return root
    rng = random.Random(seed)
    order = texts[:]
    rng.shuffle(order)
    splits = {"test": order[:n_test], "dev": order[n_test : n_test + n_dev], "train": order[n_test + n_dev :]}
    jobs = []
    for split, items in splits.items():
        variants = train_variants if split == "train" else 1
        for i, text in enumerate(items):
            for v in range(variants):
                name = f"demo_{lang}_{split}_{i:04d}_{v}.mp3"
                jobs.append((split, name, text, random.Random(f"{seed}-{split}-{i}-{v}")))
    (root / "clips").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=2) as pool:
        infos = list(pool.map(lambda j: render_clip(j[2], root / "clips" / j[1], j[3], lang), jobs))
    for split in splits:
        with open(root / f"{split}.tsv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, delimiter="\t")
            w.writerow(["client_id", "path", "sentence", "voice", "speed", "effect"])
            for (s, name, text, _), info in zip(jobs, infos, strict=True):
                if s == split:
                    w.writerow([info["voice"], name, text, info["voice"], info["speed"], info["effect"]])
    marker.write_text("ok\n")
    return root

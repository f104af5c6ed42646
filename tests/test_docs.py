"""The configuration reference (docs/config.md) is generated from the schema: it must be current, and every
key of the schema must have a doc."""

from __future__ import annotations

import dataclasses

from docs import gen_config
from whisperft.config import Config


def test_every_config_key_has_a_doc():
    assert gen_config.undocumented() == [], "add a # comment to these fields in whisperft/config.py"


def test_config_reference_is_current():
    on_disk = gen_config.PAGE.read_text(encoding="utf-8")
    assert on_disk == gen_config.render(), "docs/config.md is out of date: run python -m docs.gen_config"


def test_reference_lists_every_key():
    names = {k.name for k in gen_config.reference_keys()}
    for f in dataclasses.fields(Config):
        assert f.name in names
    assert {"train.max_steps", "train.lora.r", "data.augment.telephone_prob", "data.mix.N.weight"} <= names


def test_a_field_without_a_doc_is_found():
    @dataclasses.dataclass
    class Section:
        documented: int = 1  # says what it does
        bare: int = 2

    docs = gen_config.field_docs(Section)
    assert docs == {"documented": "says what it does", "bare": ""}

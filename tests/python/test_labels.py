"""Labels: the dictionary's French text when present, neutral text otherwise, never Jinja."""

from __future__ import annotations

from snds.catalog.dictionary import DictTable
from snds.catalog.labels import NO_LABEL, render_labels


def test_labels_carry_the_dictionary_text(dictionary: list[DictTable]) -> None:
    text = render_labels(dictionary)
    block = text[text.index("{% docs snds_table__T_MCOaaB %}") :]
    block = block[: block.index("{% enddocs %}")]
    assert "Description du Séjour" in block
    assert "| AGE_ANN | Age en années | integer (3) |  | 2005- |" in block


def test_labels_without_the_dictionary_are_neutral_and_complete(dictionary: list[DictTable]) -> None:
    with_dictionary, without = render_labels(dictionary), render_labels(None)
    assert without.count("{% docs ") == with_dictionary.count("{% docs ") > 600
    assert NO_LABEL in without and "Description du Séjour" not in without


def test_dictionary_text_cannot_inject_jinja(dictionary: list[DictTable]) -> None:
    table = dictionary[0]
    hostile = DictTable(
        name=table.name,
        product=table.product,
        columns=table.columns,
        primary_key=table.primary_key,
        years=table.years,
        source=table.source,
        label="{{ exec('x') }} {% enddocs %}",
    )
    text = render_labels([hostile])
    assert "exec" in text and "{{ exec" not in text
    assert text.count("{% enddocs %}") == text.count("{% docs ")

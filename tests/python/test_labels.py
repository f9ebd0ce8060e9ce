"""Labels: the dictionary's French text when installed, committed neutral text otherwise, never Jinja, and
nothing tracked changes when `snds labels` installs or removes them."""

from __future__ import annotations

import re
from pathlib import Path

import pathspec
import pytest

from snds import config
from snds.catalog.dictionary import DictTable
from snds.catalog.labels import (
    DBT_IGNORE,
    INSTALLED_LABELS,
    NEUTRAL_LABELS,
    NO_LABEL,
    render_labels,
    write_labels,
)

_BLOCK = re.compile(r"\{% docs (\w+) %\}")
_DOC_CALL = re.compile(r"doc\(\"(\w+)\"\)")


def test_labels_carry_the_dictionary_text(dictionary: list[DictTable]) -> None:
    text = render_labels(dictionary)
    block = text[text.index("{% docs snds_table__T_MCOaaB %}") :]
    block = block[: block.index("{% enddocs %}")]
    assert "Description du Séjour" in block
    assert "| AGE_ANN | Age en années | integer (3) |  | 2005- |" in block


def test_neutral_labels_define_every_block_the_models_call(dictionary: list[DictTable]) -> None:
    neutral = (config.PROJECT_ROOT / NEUTRAL_LABELS).read_text(encoding="utf-8")
    called = {
        name
        for path in (config.PROJECT_ROOT / "models" / "staging" / "snds").rglob("_*__models.yml")
        for name in _DOC_CALL.findall(path.read_text(encoding="utf-8"))
    }
    defined = _BLOCK.findall(neutral)
    assert len(defined) == len(set(defined)) and called <= set(defined)
    assert set(defined) == set(_BLOCK.findall(render_labels(dictionary)))  # the installed ones replace them all
    assert NO_LABEL in neutral and "Description du Séjour" not in neutral


def test_installing_labels_hides_the_neutral_ones_and_removing_restores_them(
    tmp_path: Path, dictionary: list[DictTable]
) -> None:
    assert write_labels(dictionary, root=tmp_path) == tmp_path / INSTALLED_LABELS
    assert "Description du Séjour" in (tmp_path / INSTALLED_LABELS).read_text(encoding="utf-8")
    # dbt reads .dbtignore with gitignore rules: it must hide the neutral file, and only it
    spec = pathspec.PathSpec.from_lines(
        pathspec.patterns.GitWildMatchPattern, (tmp_path / DBT_IGNORE).read_text(encoding="utf-8").splitlines()
    )
    assert spec.match_file(str(NEUTRAL_LABELS)) and not spec.match_file(str(INSTALLED_LABELS))
    assert write_labels(dictionary, root=tmp_path) == tmp_path / INSTALLED_LABELS  # again: same files
    assert write_labels(None, root=tmp_path) == tmp_path / NEUTRAL_LABELS
    assert not (tmp_path / INSTALLED_LABELS).exists() and not (tmp_path / DBT_IGNORE).exists()


def test_a_dbtignore_of_someone_else_is_not_overwritten(tmp_path: Path, dictionary: list[DictTable]) -> None:
    (tmp_path / DBT_IGNORE).write_text("analyses/scratch/\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="not written by `snds labels`"):
        write_labels(dictionary, root=tmp_path)
    assert (tmp_path / DBT_IGNORE).read_text(encoding="utf-8") == "analyses/scratch/\n"


def test_installed_files_are_ignored_by_git() -> None:
    ignored = (config.PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {str(INSTALLED_LABELS), str(DBT_IGNORE)} <= set(ignored)
    assert str(NEUTRAL_LABELS) not in ignored


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

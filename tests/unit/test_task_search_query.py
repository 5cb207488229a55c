"""Reading q and the list cursors, without services: what reaches SQL is always safe."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskstream.enums import TaskPriority
from taskstream.errors import ValidationFailedError
from taskstream.tasks.listing import TaskFilter, TaskSort, decode_cursor, encode_cursor
from taskstream.tasks.models import Task
from taskstream.tasks.search import MAX_PREFIX_TERMS, parse_search

# What a prefix tsquery may contain: quoted runs of letters and digits, ":*" and " & ".
SAFE_PREFIXES = re.compile(r"^'[^\W_]+':\*( & '[^\W_]+':\*)*$")


def test_words_go_to_websearch_and_marked_prefixes_to_a_built_tsquery() -> None:
    search = parse_search('login "time out" deplo* -android rel*')
    assert search is not None
    assert search.prefixes == "'deplo':* & 'rel':*"
    assert "deplo" not in search.words and "login" in search.words


@pytest.mark.parametrize("q", [None, "", "   "])
def test_blank_q_is_no_search(q: str | None) -> None:
    assert parse_search(q) is None


@pytest.mark.parametrize("q", ["'", ":*", "-login", "-a -b", "a\x00", "x" * 201])
def test_unsearchable_q_is_a_validation_error(q: str) -> None:
    with pytest.raises(ValidationFailedError):
        parse_search(q)


def test_too_many_prefix_terms_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailedError):
        parse_search(" ".join(f"w{i}*" for i in range(MAX_PREFIX_TERMS + 1)))


@given(st.text(max_size=80))
def test_any_q_is_refused_or_yields_only_safe_prefix_syntax(q: str) -> None:
    try:
        search = parse_search(q)
    except ValidationFailedError:
        return
    if search is not None and search.prefixes is not None:
        assert SAFE_PREFIXES.match(search.prefixes), search.prefixes


def _task(**values: object) -> Task:
    return Task(
        id=uuid.uuid4(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        updated_at=datetime(2026, 1, 2, tzinfo=UTC),
        deadline=values.get("deadline"),
        priority=TaskPriority.HIGH,
    )


@pytest.mark.parametrize("sort", list(TaskSort))
def test_a_cursor_round_trips_for_its_sort_and_filters_only(sort: TaskSort) -> None:
    task = _task()
    filters = TaskFilter(search=parse_search("fix"))
    position = decode_cursor(encode_cursor(task, sort, filters), sort, filters)
    assert position.task_id == task.id
    other_sort = next(s for s in TaskSort if s is not sort)
    for wrong_sort, wrong_filters in ((other_sort, filters), (sort, TaskFilter(overdue=True))):
        with pytest.raises(ValidationFailedError):
            decode_cursor(encode_cursor(task, sort, filters), wrong_sort, wrong_filters)


def test_a_null_deadline_is_a_position_of_the_deadline_sort() -> None:
    task = _task(deadline=None)
    cursor = encode_cursor(task, TaskSort.DEADLINE_DESC, TaskFilter())
    assert decode_cursor(cursor, TaskSort.DEADLINE_DESC, TaskFilter()).value is None

"""The shared cache-entry check: an entry is used only once it passes; any failure drops it."""

import logging

import pytest

from segstudio.io.cache_entry import (EntryMismatch, expect_count, expect_equal, expect_number,
                                      take_entry)


def _take(read, check):
    dropped = []
    value = take_entry("c/e.bin", read, check, lambda: dropped.append(1))
    return value, dropped


def test_an_entry_that_passes_its_check_is_used_and_kept():
    assert _take(lambda: 3, lambda v: expect_equal(v, 3, "the value")) == (3, [])


@pytest.mark.parametrize("read, check, reason", [
    (lambda: 4, lambda v: expect_equal(v, 3, "the value"), "the value is 4, not 3"),
    (lambda: {}["x"], lambda v: None, "unreadable (KeyError: 'x')"),
    (lambda: -1e308, lambda v: expect_number(v, "a mean", low=0, high=255),
     "a mean is -1e+308, outside 0–255"),
    (lambda: 10 ** 400, lambda v: expect_number(v, "a time"),
     "a time is a whole number too large to be real"),
    (lambda: 2.5, lambda v: expect_count(v, "a count"), "a count is 2.5, not a whole number"),
])
def test_a_failed_read_or_check_drops_the_entry_with_one_line(caplog, read, check, reason):
    with caplog.at_level(logging.WARNING, logger="segstudio.cache"):
        assert _take(read, check) == (None, [1])
    (record,) = caplog.records
    assert record.getMessage() == (f"warning: dropped cache entry c/e.bin: {reason}; it is "
                                   "computed again")


def test_a_drop_that_fails_is_still_only_a_slower_cache(caplog):
    def drop():
        raise PermissionError("read-only")

    assert take_entry("e", lambda: 1, lambda v: expect_equal(v, 2, "v"), drop) is None


def test_the_checks_name_what_is_wrong():
    with pytest.raises(EntryMismatch, match="a flag is True, not a number"):
        expect_number(True, "a flag")
    with pytest.raises(EntryMismatch, match="a time is 0, not above 0"):
        expect_number(0, "a time", positive=True)
    assert expect_count(3.0, "a count") == 3

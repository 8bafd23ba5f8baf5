"""Merging the workspace file three ways: what this process holds, what the file holds now,
and the base both started from.

A workspace remembers the bytes and content of the file as it last read or wrote it (its
*base*). When another segstudio has written the file since, each item record is ours where we
changed it since the base and theirs otherwise; where both changed it, the later ``updated``
wins (labels are separate files, so no pixels are lost either way, only which status is
recorded). The class set is theirs if we left it alone, ours if they did, the longer one if one
only appends classes to the other; two different changes are refused, because the labels of
one side would silently change meaning. Records of files not present now are merged the same
way. No lock here: :mod:`segstudio.io.workspace_lock` holds it around the merge and the write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from segstudio.core.classes import ClassSet, ClassSetError
from segstudio.io.workspace_error import WorkspaceError

Key = tuple  # (source, frame) of an item record
_EARLIEST = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Base:
    """The workspace file as a workspace last read or wrote it: its bytes (None when there was
    no file, or when the base no longer is exactly the file) and its content (None: no file)."""

    raw: bytes | None
    data: dict | None
    # Set when this workspace wrote the file with its own content as it was (no merge): the
    # number of the snapshot (or direct write) it came from; 0 otherwise.
    own: int = 0


class Snapshot(dict):
    """Content for the workspace file taken at one moment, with the base it changes and its
    place in the workspace's order of snapshots (later ones hold everything earlier ones do)."""

    def __init__(self, data: dict, base: Base, number: int = 0) -> None:
        super().__init__(data)
        self.base = base
        self.number = number


@dataclass(frozen=True)
class Merge:
    """What another segstudio had changed: ``ours`` is what this workspace held, ``merged``
    what it should hold; ``records`` (keys) and ``classes`` say where the two differ."""

    ours: dict
    merged: dict
    records: frozenset
    classes: bool


@dataclass(frozen=True)
class Adoption:
    """What a workspace took in from a :class:`Merge`: the class set or not, and which rows."""

    classes: bool
    rows: list[int]


@dataclass(frozen=True)
class Plan:
    """How a workspace takes in a :class:`Merge`: the records to give its items (by key), the
    class set to take (None: keep its own), its new foreign records and base."""

    records: dict
    classes: dict | None
    foreign: list[dict]
    base: Base


def canonical(value: object) -> str:
    """A text equal for equal JSON values (tuples and lists alike, keys in any order)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def record_key(record: dict) -> Key:
    return (record.get("source"), record.get("frame"))


def records_by_key(data: dict | None) -> dict[Key, dict]:
    """A file's item records by (source, frame), in file order (the first of duplicates)."""
    found: dict[Key, dict] = {}
    for record in (data or {}).get("items", []):
        found.setdefault(record_key(record), record)
    return found


# -- the merge ------------------------------------------------------------------------------------
def merge_workspace_data(base: dict | None, ours: dict, theirs: dict) -> dict:
    """The three-way merge of workspace-file contents (see the module's docstring)."""
    b, o, t = records_by_key(base), records_by_key(ours), records_by_key(theirs)
    merged: dict[Key, dict] = {}
    for key in list(o) + [k for k in t if k not in o]:
        _put(merged, key, _merge_record(b.get(key), o.get(key), t.get(key)))
    result = {k: v for k, v in ours.items() if k not in ("items", "files")}
    scans = (ours.get("scan"), theirs.get("scan"))
    result["scan"] = "folder" if "folder" in scans else scans[0] or scans[1]
    _put(result, "classes", merge_classes((base or {}).get("classes"), ours.get("classes"),
                                          theirs.get("classes")))
    files = sorted(set(ours.get("files", [])) | set(theirs.get("files", [])))
    if result["scan"] == "files":
        result["files"] = files
    result["items"] = list(merged.values())
    return result


def _merge_record(base: dict | None, ours: dict | None, theirs: dict | None) -> dict | None:
    if canonical(ours) == canonical(base):
        return theirs
    if canonical(theirs) in (canonical(base), canonical(ours)):
        return ours
    if ours is None or theirs is None:          # one side has no record: keep the other's
        return ours if theirs is None else theirs
    return theirs if _when(theirs) > _when(ours) else ours


def _when(record: dict) -> datetime:
    try:
        moment = datetime.fromisoformat(str(record.get("updated")))
    except ValueError:
        return _EARLIEST
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def merge_classes(base: dict | None, ours: dict | None, theirs: dict | None) -> dict | None:
    """The class set both sides agree on; a :class:`WorkspaceError` when they changed it apart
    (or the other side's is damaged)."""
    if ours is None or canonical(ours) == canonical(base):
        chosen = theirs if theirs is not None else ours
    elif theirs is None or canonical(theirs) in (canonical(base), canonical(ours)):
        chosen = ours
    else:
        chosen = _extension(ours, theirs) or _extension(theirs, ours)
        if chosen is None:
            raise WorkspaceError(
                "the class set was changed by another segstudio at the same time ("
                + _describe(ours, theirs) + "); nothing was saved, so no label changes meaning. "
                "Reopen the workspace to see its classes, then make the change again")
    if chosen is not None and chosen is not ours:
        try:
            ClassSet.from_dict(chosen)
        except (ClassSetError, TypeError, AttributeError) as e:
            raise WorkspaceError(f"the class set another segstudio saved is damaged ({e}); "
                                 "nothing was saved") from None
    return chosen


def _extension(short: dict, long: dict) -> dict | None:
    """``long`` when it is ``short`` with classes appended, else None."""
    a, b = _entries(short), _entries(long)
    if a is None or b is None or len(b) <= len(a):
        return None
    rest = canonical({k: v for k, v in short.items() if k != "classes"}) == \
        canonical({k: v for k, v in long.items() if k != "classes"})
    same = [canonical(e) for e in b[:len(a)]] == [canonical(e) for e in a]
    return long if rest and same else None


def _entries(classes: object) -> list | None:
    entries = classes.get("classes") if isinstance(classes, dict) else None
    return entries if isinstance(entries, list) else None


def _describe(ours: dict, theirs: dict) -> str:
    def names(classes: dict) -> list[str]:
        return [str(e.get("name"))[:40] for e in _entries(classes) or [] if isinstance(e, dict)]
    mine, other = names(ours), names(theirs)
    only_mine = [n for n in mine if n not in other][:3]
    only_other = [n for n in other if n not in mine][:3]
    if not only_mine and not only_other:
        return "the same names, in another order or colour"
    return (f"here: {', '.join(only_mine) or 'no new class'}; there: "
            f"{', '.join(only_other) or 'no new class'}")


# -- after a merge: the new base, and taking in the other side's changes --------------------------
def settle(base: Base, ours: dict, merged: dict, held: dict,
           raw: bytes, number: int = 0) -> tuple[Base, Merge | None]:
    """The new base and what is left to take in, once the file holds ``held`` (bytes ``raw``):
    this workspace held ``ours`` (whose base was ``base``) and should become ``merged``.

    Where ``merged`` differs from ``ours`` the workspace still has to take theirs in; until it
    does, the base of those records (and of the class set) stays the old one, so that a change
    made here meanwhile meets theirs as a change on both sides, never as an overwrite.
    """
    if merged is ours:                              # written as it was: nothing to take in
        return Base(raw, held, number), None
    mine, goal = records_by_key(ours), records_by_key(merged)
    keys = frozenset(k for k in set(mine) | set(goal)
                     if canonical(mine.get(k)) != canonical(goal.get(k)))
    classes = canonical(ours.get("classes")) != canonical(merged.get("classes"))
    if not keys and not classes:
        return Base(raw, held), None
    kept, records = records_by_key(base.data), records_by_key(held)
    for key in keys:
        _put(records, key, kept.get(key))
    data = dict(held, items=list(records.values()))
    if classes:
        _put(data, "classes", (base.data or {}).get("classes"))
    return Base(None, data), Merge(dict(ours), merged, keys, classes)


def plan_adoption(merge: Merge, base: Base, current: dict[Key, dict | None], classes: dict,
                  foreign: list[dict]) -> Plan:
    """How a workspace whose items' records are now ``current`` (by key, None for an item never
    labelled), whose class set is ``classes`` and whose base is ``base`` takes ``merge`` in: only
    what it has not changed since the merge was made; the rest keeps its old base."""
    mine, goal = records_by_key(merge.ours), records_by_key(merge.merged)
    data = dict(base.data or {})
    records = records_by_key(data)
    others = {record_key(r): r for r in foreign}
    take: dict[Key, dict | None] = {}
    for key in merge.records:
        target = goal.get(key)
        if key not in current:                      # the record of a file not here now
            _put(others, key, target)
        elif canonical(current[key]) == canonical(mine.get(key)):
            take[key] = target
        elif canonical(current[key]) != canonical(target):
            continue                                # changed here since: left to the next merge
        _put(records, key, target)
    new_classes = None
    if merge.classes:
        target = merge.merged.get("classes")
        if target is not None and canonical(classes) == canonical(merge.ours.get("classes")):
            new_classes = target
        if canonical(new_classes or classes) == canonical(target):
            _put(data, "classes", target)
    data["items"] = list(records.values())
    return Plan(take, new_classes, list(others.values()), Base(None, data))


def _put(mapping: dict, key, value) -> None:
    """``mapping[key] = value``, or the key removed for None."""
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value

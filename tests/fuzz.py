"""What the fuzz tests share: one mutation of a JSON-shaped document at a random place."""

from typing import Any

from hypothesis import strategies as st


def paths(value: Any, at: tuple = ()) -> list[tuple]:
    """Every place in nested dicts and lists: keys and indexes."""
    out = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*at, i))
    return out


def mutate(doc: Any, data: st.DataObject, values: st.SearchStrategy, keys: st.SearchStrategy) -> Any:
    """`doc` with one thing changed at a random place: a value replaced, a key deleted, renamed or
    added, a value wrapped in a list or emptied."""
    where = data.draw(st.sampled_from(paths(doc)))
    op = data.draw(st.sampled_from(["replace", "replace", "delete", "rename", "add", "wrap", "empty"]))
    if not where:
        return data.draw(values) if op == "replace" else doc
    parent = doc
    for part in where[:-1]:
        parent = parent[part]
    last = where[-1]
    if op == "replace":
        parent[last] = data.draw(values)
    elif op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[data.draw(keys)] = parent.pop(last)
    elif op == "add" and isinstance(parent[last], dict):
        parent[last][data.draw(keys)] = data.draw(values)
    elif op == "wrap":
        parent[last] = [parent[last]]
    elif op == "empty":
        parent[last] = type(parent[last])() if isinstance(parent[last], (dict, list, str)) else None
    return doc

"""params.yaml as a whole: names DVC treats specially never appear as params keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

# DVC's run-cache key drops every key with these names anywhere in a stage's lock entry, params
# included (it strips file metadata recursively; treeverse/dvc#10296). A param with such a name
# can change without DVC noticing: `-S weighted.sets.size=400` restored the 480-row sets from cache.
DVC_METADATA_KEYS = {"size", "nfiles"}


def _keys(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            dotted = f"{path}.{key}" if path else str(key)
            yield str(key), dotted
            yield from _keys(value, dotted)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _keys(value, f"{path}[{index}]")


def test_no_params_key_is_named_like_dvc_file_metadata():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    offending = sorted(dotted for key, dotted in _keys(params) if key in DVC_METADATA_KEYS)
    assert not offending, f"rename these params (DVC's run cache ignores them, treeverse/dvc#10296): {offending}"


def test_the_check_sees_nested_keys():
    found = {dotted for key, dotted in _keys({"a": {"b": [{"size": 1}]}, "nfiles": 2}) if key in DVC_METADATA_KEYS}
    assert found == {"a.b[0].size", "nfiles"}

"""GrowthBook's published SDK test cases, the parts about bucketing and conditions.

Vendored from https://github.com/growthbook/growthbook/blob/main/packages/sdk-js/test/cases.json
(specVersion 0.5.4; MIT License, Copyright (c) GrowthBook): the sections evalCondition,
versionCompare, hash, getBucketRange, chooseVariation, inNamespace, getEqualWeights and the
`run` cases that need no URL, feature or filter machinery. Compacted, otherwise unchanged.
"""

import json
from pathlib import Path

CASES = json.loads((Path(__file__).parent / "data" / "growthbook_cases.json").read_text())


def cases(section: str) -> list:
    return CASES[section]


def ids(section: str) -> list[str]:
    return [str(c[0]) for c in CASES[section]]

"""Bucketing against GrowthBook: its published cases and its Python package, id by id."""

import random

import pytest
from gbcases import cases, ids
from scipy.stats import chi2_contingency, chisquare

from server.experiments.bucketing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a32,
    gb_hash,
    hash_string,
    in_namespace,
)
from server.experiments.decide import CompiledExperiment
from server.experiments.definitions import Experiment, Variant


@pytest.mark.parametrize("seed,value,version,expected", [c for c in cases("hash")])
def test_hash_matches_published_cases(seed, value, version, expected):
    assert gb_hash(seed, value, version) == expected


@pytest.mark.parametrize("case", cases("getBucketRange"), ids=ids("getBucketRange"))
def test_bucket_ranges_match_published_cases(case):
    _, (n, coverage, weights), expected = case
    got = bucket_ranges(n, coverage, weights)
    assert [[round(a, 6), round(b, 6)] for a, b in got] == expected


@pytest.mark.parametrize("case", cases("chooseVariation"), ids=ids("chooseVariation"))
def test_choose_variation_matches_published_cases(case):
    _, n, ranges, expected = case
    assert choose_variation(n, [tuple(r) for r in ranges]) == expected


@pytest.mark.parametrize("case", cases("inNamespace"), ids=ids("inNamespace"))
def test_in_namespace_matches_published_cases(case):
    _, unit, namespace, expected = case
    assert in_namespace(unit, tuple(namespace)) is expected


@pytest.mark.parametrize("n,expected", cases("getEqualWeights"))
def test_equal_weights_match_published_cases(n, expected):
    assert [round(w, 8) for w in equal_weights(n)] == expected


def test_fnv1a_hashes_utf16_code_units_like_the_js_sdk():
    # "é" is one UTF-16 unit (0xE9), "😀" two surrogates: hashing UTF-8 bytes would differ
    assert fnv1a32("é") == ((0x811C9DC5 ^ 0xE9) * 0x01000193) & 0xFFFFFFFF
    h = 0x811C9DC5
    for unit in (0xD83D, 0xDE00):
        h = ((h ^ unit) * 0x01000193) & 0xFFFFFFFF
    assert fnv1a32("😀") == h


def test_numeric_ids_hash_as_js_writes_them():
    assert hash_string(123) == hash_string(123.0) == "123"
    assert hash_string(0) == hash_string(True) == hash_string(None) == ""


# Experiments spanning what changes the answer: weights, coverage, namespaces, hash versions,
# seeds, several variants
EXPERIMENTS = [
    dict(key="hero", weights=[0.5, 0.5]),
    dict(key="promo", weights=[0.2, 0.3, 0.5], hash_version=1),
    dict(key="cover", weights=[0.1, 0.9], coverage=0.37),
    dict(key="ns-a", weights=[0.34, 0.33, 0.33], namespace=("checkout", 0.0, 0.5)),
    dict(key="ns-b", weights=[0.5, 0.5], namespace=("checkout", 0.5, 1.0), coverage=0.8,
         hash_seed="abc-seed"),
    dict(key="ns-v1", weights=[0.25, 0.25, 0.25, 0.25], namespace=("x", 0.2, 0.7), hash_version=1,
         coverage=0.5),
]


def _experiment(spec: dict) -> Experiment:
    spec = dict(spec)
    weights = spec.pop("weights")
    variants = [Variant(f"v{i}", w) for i, w in enumerate(weights)]
    return Experiment(variants=variants, slots=["s"], status="running", **spec)


@pytest.mark.parametrize("spec", EXPERIMENTS, ids=[e["key"] for e in EXPERIMENTS])
def test_same_variant_as_the_growthbook_package_for_10000_ids(spec):
    gb = pytest.importorskip("growthbook")
    exp = _experiment(spec)
    ce = CompiledExperiment(exp)
    gb_exp = gb.Experiment(
        key=exp.key, variations=[v.key for v in exp.variants], weights=exp.weights,
        coverage=exp.coverage, namespace=exp.namespace, seed=exp.hash_seed or None,
        hashVersion=exp.hash_version,
    )
    rng = random.Random(20)
    unit_ids = [f"u{i}" for i in range(5000)] + [
        "".join(rng.choices("abcdef0123456789-é", k=rng.randint(1, 36))) for _ in range(5000)
    ]
    mismatches = []
    included = 0
    for uid in unit_ids:
        result = gb.GrowthBook(attributes={"id": uid}).run(gb_exp)
        expected = result.variationId if result.inExperiment else -1
        got = ce.bucket({"id": uid})
        included += got >= 0
        if got != expected:
            mismatches.append((uid, got, expected))
    assert not mismatches[:5]
    assert included > 1000  # the comparison covered assignments, not only exclusions


def test_assignment_is_uniform_over_100k_ids():
    ce = CompiledExperiment(_experiment(dict(key="uniform", weights=[0.2, 0.3, 0.5])))
    counts = [0, 0, 0]
    for i in range(100_000):
        counts[ce.bucket({"id": f"unit-{i}"})] += 1
    assert chisquare(counts, [20_000, 30_000, 50_000]).pvalue > 0.01


def test_uniformity_check_would_catch_a_skewed_split():
    # The check above can fail: weights 0.21/0.29/0.5 against the declared 0.2/0.3/0.5
    ce = CompiledExperiment(_experiment(dict(key="uniform", weights=[0.21, 0.29, 0.5])))
    counts = [0, 0, 0]
    for i in range(100_000):
        counts[ce.bucket({"id": f"unit-{i}"})] += 1
    assert chisquare(counts, [20_000, 30_000, 50_000]).pvalue < 0.01


def test_two_experiments_assign_independently():
    a = CompiledExperiment(_experiment(dict(key="exp-a", weights=[0.5, 0.5])))
    b = CompiledExperiment(_experiment(dict(key="exp-b", weights=[0.5, 0.5])))
    table = [[0, 0], [0, 0]]
    for i in range(40_000):
        attrs = {"id": f"shopper-{i}"}
        table[a.bucket(attrs)][b.bucket(attrs)] += 1
    assert chi2_contingency(table).pvalue > 0.01


def test_namespaces_make_experiments_mutually_exclusive():
    a = CompiledExperiment(_experiment(dict(key="a", weights=[0.5, 0.5], namespace=("n", 0, 0.5))))
    b = CompiledExperiment(_experiment(dict(key="b", weights=[0.5, 0.5], namespace=("n", 0.5, 1))))
    both = either = 0
    for i in range(10_000):
        attrs = {"id": str(i)}
        in_a, in_b = a.bucket(attrs) >= 0, b.bucket(attrs) >= 0
        both += in_a and in_b
        either += in_a or in_b
    assert both == 0 and either == 10_000


def test_raising_coverage_only_adds_units():
    low = CompiledExperiment(_experiment(dict(key="k", weights=[0.5, 0.5], coverage=0.3)))
    high = CompiledExperiment(_experiment(dict(key="k", weights=[0.5, 0.5], coverage=0.9)))
    for i in range(5000):
        attrs = {"id": str(i)}
        if low.bucket(attrs) >= 0:
            assert high.bucket(attrs) == low.bucket(attrs)

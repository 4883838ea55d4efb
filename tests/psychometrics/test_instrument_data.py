"""The shipped instrument data: counts, keys and layout against measurement.md A.1."""

import json
from collections import Counter
from importlib import resources

import pytest

from agents.instruments import (
    BIG_FIVE,
    Instrument,
    available_instruments,
    load_instrument,
)
from sim.errors import TraitLabError

ANCHORS = ("Very inaccurate", "Moderately inaccurate", "Neither accurate nor inaccurate",
           "Moderately accurate", "Very accurate")

# measurement.md A.1.1 (Open-Source Psychometrics ids; -1 = reversed)
IPIP50_KEYS = {
    "EXT": [1, -1, 1, -1, 1, -1, 1, -1, 1, -1],
    "EST": [1, -1, 1, -1, 1, 1, 1, 1, 1, 1],
    "AGR": [-1, 1, -1, 1, -1, 1, -1, 1, 1, 1],
    "CSN": [1, -1, 1, -1, 1, -1, 1, -1, 1, 1],
    "OPN": [1, -1, 1, -1, 1, -1, 1, 1, 1, 1],
}
IPIP50_TRAIT = {"EXT": "extraversion", "EST": "neuroticism", "AGR": "agreeableness",
                "CSN": "conscientiousness", "OPN": "openness"}
MINI_REVERSED = {6, 7, 8, 9, 10, 15, 16, 17, 18, 19, 20}
NEO_REVERSED = {9, 19, 24, 30, 39, 40, 48, 49, 51, 53, 54, 60, 62, 67, 68, 69, 70, 73, 74, 75,
                78, 79, 80, 81, 83, 84, 85, 88, 89, 90, 92, 94, *range(96, 112), 113, 114, 115,
                116, 118, 119, 120}
NEO_DOMAIN_ORDER = ["neuroticism", "extraversion", "openness", "agreeableness",
                    "conscientiousness"]


def reversed_positions(inst: Instrument) -> set[int]:
    return {it.position for it in inst.items if it.keyed == -1}


@pytest.mark.parametrize(("name", "n_items", "n_reversed", "per_trait"), [
    ("ipip-50", 50, 18, 10), ("mini-ipip", 20, 11, 4), ("ipip-neo-120", 120, 55, 24),
])
def test_public_instrument_shape(name, n_items, n_reversed, per_trait):
    inst = load_instrument(name)
    assert len(inst.items) == n_items
    assert sum(it.keyed == -1 for it in inst.items) == n_reversed
    assert Counter(it.trait for it in inst.items) == dict.fromkeys(BIG_FIVE, per_trait)
    assert len({it.id for it in inst.items}) == n_items
    assert len({it.text for it in inst.items}) == n_items
    assert [it.position for it in inst.items] == list(range(1, n_items + 1))
    assert inst.anchors == ANCHORS
    assert (inst.scale_min, inst.scale_max, inst.midpoint) == (1, 5, 3.0)
    assert inst.licence == "public domain"
    assert not inst.restricted
    assert inst.stem and inst.source and inst.citation
    for it in inst.items:
        assert it.keyed in (1, -1)
        assert it.text.startswith("I ") and it.text.endswith(".")
        assert it.text == "I " + it.source_text[0].lower() + it.source_text[1:]


def test_ipip50_keys_match_measurement_notes():
    inst = load_instrument("ipip-50")
    for prefix, keys in IPIP50_KEYS.items():
        for k, keyed in enumerate(keys, start=1):
            item = inst.item(f"{prefix}{k}")
            assert (item.trait, item.keyed) == (IPIP50_TRAIT[prefix], keyed), item.id
    # interleaved administration order EXT1, AGR1, CSN1, EST1, OPN1, EXT2, ...
    assert [it.id for it in inst.items[:6]] == ["EXT1", "AGR1", "CSN1", "EST1", "OPN1", "EXT2"]
    assert inst.item("EXT1").text == "I am the life of the party."
    assert inst.item("OPN10").text == "I am full of ideas."


def test_mini_ipip_reversed_positions_and_parent_items():
    mini, parent = load_instrument("mini-ipip"), load_instrument("ipip-50")
    assert reversed_positions(mini) == MINI_REVERSED
    for it in mini.items:
        src = parent.item(it.ipip50_id)
        assert (it.text, it.trait, it.keyed) == (src.text, src.trait, src.keyed), it.id


def test_neo120_layout_and_keys():
    inst = load_instrument("ipip-neo-120")
    assert reversed_positions(inst) == NEO_REVERSED
    for it in inst.items:
        j = (it.position - 1) % 30
        assert it.trait == NEO_DOMAIN_ORDER[j % 5]
        assert it.facet == f"{it.trait[0].upper()}{j // 5 + 1}"
    facets = Counter(it.facet for it in inst.items)
    assert len(facets) == 30 and set(facets.values()) == {4}
    assert inst.items[0].text == "I worry about things."
    assert inst.item("NEO120").text == "I act without thinking."


def test_instruments_are_package_data():
    root = resources.files("agents.instruments")
    for name in ("ipip50.json", "mini_ipip.json", "ipip_neo_120.json",
                 "restricted/bfi44.json", "restricted/oejts.json",
                 "restricted/LICENSE-NOTICE.md", "restricted/README.md"):
        assert root.joinpath(name).is_file(), name


def test_available_instruments_excludes_restricted_by_default():
    assert available_instruments() == ["ipip-50", "mini-ipip", "ipip-neo-120"]
    assert available_instruments(allow_restricted=True) == [
        "ipip-50", "mini-ipip", "ipip-neo-120", "bfi-44", "oejts"]


@pytest.mark.parametrize(("name", "licence"), [
    ("bfi-44", "non-commercial"), ("oejts", "CC BY-NC-SA 4.0")])
def test_restricted_refused_without_opt_in(name, licence):
    with pytest.raises(TraitLabError) as err:
        load_instrument(name)
    msg = str(err.value)
    assert "restricted" in msg and licence in msg
    assert "allow_restricted=True" in msg and "--allow-restricted-instruments" in msg
    inst = load_instrument(name, allow_restricted=True)
    assert inst.restricted and inst.name == name


def test_unknown_instrument_lists_known_names():
    with pytest.raises(TraitLabError) as err:
        load_instrument("neo-pi-r")
    for name in ("ipip-50", "mini-ipip", "ipip-neo-120", "bfi-44", "oejts"):
        assert name in str(err.value)
    assert load_instrument("IPIP_50").name == "ipip-50"


def test_licence_notice_sits_beside_restricted_data():
    notice = resources.files("agents.instruments").joinpath("restricted/LICENSE-NOTICE.md")
    text = notice.read_text(encoding="utf-8")
    assert "BFI-44" in text and "Oliver P. John" in text and "non-commercial" in text.lower()
    assert "CC BY-NC-SA 4.0" in text


def test_bfi44_key():
    inst = load_instrument("bfi-44", allow_restricted=True)
    assert len(inst.items) == 44
    assert Counter(it.trait for it in inst.items) == {
        "extraversion": 8, "agreeableness": 9, "conscientiousness": 9, "neuroticism": 8,
        "openness": 10}
    assert reversed_positions(inst) == {6, 21, 31, 2, 12, 27, 37, 8, 18, 23, 43, 9, 24, 34,
                                        35, 41}
    assert inst.anchors[0] == "Disagree strongly" and inst.anchors[-1] == "Agree strongly"
    assert inst.items[0].text == "I see myself as someone who is talkative."


def test_oejts_data_matches_scoring_code():
    from agents.instruments import OEJTS_AXES

    inst = load_instrument("oejts", allow_restricted=True)
    assert inst.kind == "bipolar" and len(inst.items) == 32
    assert Counter(it.trait for it in inst.items) == dict.fromkeys(OEJTS_AXES, 8)
    for axis, spec in OEJTS_AXES.items():
        for q, sign in spec["signs"].items():
            item = inst.item(f"Q{q}")
            assert (item.trait, item.keyed) == (axis, sign)
            assert item.left and item.right
    raw = json.loads(resources.files("agents.instruments").joinpath(
        "restricted/oejts.json").read_text(encoding="utf-8"))
    for axis, spec in OEJTS_AXES.items():
        assert raw["scoring"]["axes"][axis]["constant"] == spec["constant"]

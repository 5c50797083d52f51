"""The words users write, mapped to Sluice's vocabulary: activity names,
region names, and the column headers of a carbon file.

Matching is forgiving because files come from many hands: case, spaces,
hyphens, underscores, brackets, plurals and word order do not matter
("Flights (short haul)", "short-haul flight" and "FLIGHT_SHORT_HAUL" are one
activity). It is not fuzzy: a near miss is an error that names the closest
accepted names, because guessing "coal" for "cola" would put a wrong number
in someone's carbon report.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.jobs.model import InputError

__all__ = [
    "Activity",
    "ACTIVITIES",
    "resolve_activity",
    "suggest_activities",
    "normalise_region",
    "REQUIRED_ROLES",
    "OPTIONAL_ROLES",
    "match_columns",
]


@dataclass(frozen=True)
class Activity:
    id: str
    label: str
    #: named dimensions (chalicelib.carbon.units) a row's unit may have
    measured_in: tuple[str, ...]
    synonyms: tuple[str, ...] = ()


_FUEL = ("volume", "energy", "mass")
_FLIGHT = ("passenger_distance",)


def _flight(haul: str, words: Sequence[str], bare: bool = True) -> list[Activity]:
    """A haul with and without the radiative-forcing uplift (DESNZ publishes
    both; 'with RF' is the default because it is the fuller climate impact).
    `bare`: the haul alone ("short haul") names the flight."""
    with_rf, without_rf = [], []
    for w in words:
        if bare:
            with_rf.append(w)
            without_rf.append(f"{w} without rf")
        with_rf += [f"{w} flight", f"flight {w}", f"{w} flights", f"{w} air travel",
                    f"{w} flight with rf", f"{w} flight including rf", f"{w} flight incl rf"]
        without_rf += [f"{w} flight without rf", f"{w} flight no rf", f"{w} flight excluding rf",
                       f"{w} flight excl rf", f"{w} air travel without rf"]
    return [
        Activity(f"flight_{haul}", f"{words[0]} flights", _FLIGHT, tuple(with_rf)),
        Activity(f"flight_{haul}_no_rf", f"{words[0]} flights without RF", _FLIGHT,
                 tuple(without_rf)),
    ]


ACTIVITIES: tuple[Activity, ...] = (
    Activity("electricity", "electricity", ("energy",), (
        "grid electricity", "power", "electric", "electricity grid", "purchased electricity",
        "mains electricity", "electrical energy", "electricity consumption", "elec",
        "electricity generated", "grid power", "electric power")),
    Activity("natural_gas", "natural gas", _FUEL, (
        "gas", "mains gas", "nat gas", "natural gas mains", "piped gas", "pipeline natural gas")),
    Activity("diesel", "diesel", _FUEL, (
        "diesel fuel", "derv", "road diesel", "diesel average biofuel blend", "automotive diesel",
        "diesel oil")),
    Activity("petrol", "petrol", _FUEL, (
        "gasoline", "motor gasoline", "unleaded", "unleaded petrol", "motor spirit",
        "petrol average biofuel blend", "gas petrol")),
    Activity("lpg", "LPG", _FUEL, (
        "liquefied petroleum gas", "liquified petroleum gas", "autogas", "lp gas")),
    Activity("propane", "propane", _FUEL, ("propane gas", "bottled propane")),
    Activity("burning_oil", "burning oil (heating oil, kerosene)", _FUEL, (
        "heating oil", "kerosene", "home heating oil", "domestic heating oil", "paraffin",
        "kerosine", "28 second oil")),
    Activity("gas_oil", "gas oil (red diesel)", _FUEL, (
        "gasoil", "red diesel", "35 second oil", "marked gas oil", "off road diesel")),
    Activity("fuel_oil", "fuel oil", _FUEL, (
        "heavy fuel oil", "residual fuel oil", "hfo", "bunker fuel")),
    Activity("coal", "coal", ("energy", "mass"), ("industrial coal", "coal industrial")),
    # "domestic" alone could be domestic gas or heating oil, so it is not a flight.
    *_flight("domestic", ["domestic"], bare=False),
    *_flight("short_haul", ["short haul", "shorthaul"]),
    *_flight("long_haul", ["long haul", "longhaul"]),
    Activity("rail", "rail", ("passenger_distance",), (
        "train", "national rail", "rail travel", "train travel", "railway", "rail journey",
        "train journey", "intercity rail")),
    Activity("road_freight", "road freight (HGV)", ("freight_distance",), (
        "hgv", "truck", "lorry", "heavy goods vehicle", "road haulage", "trucking", "freight truck",
        "hgv freight", "road freight hgv", "freight road", "haulage")),
    Activity("waste_landfill", "waste to landfill", ("mass",), (
        "waste", "landfill", "waste landfill", "landfill waste", "general waste", "mixed waste",
        "commercial waste", "commercial and industrial waste", "c and i waste",
        "residual waste", "waste to landfill", "waste sent to landfill")),
    Activity("waste_combustion", "waste incineration", ("mass",), (
        "incineration", "waste incineration", "waste combustion", "energy from waste",
        "efw", "incinerated waste", "waste to energy")),
)

_STOPWORDS = {"the", "of", "to", "from", "and", "a", "an", "uk", "average"}
# Plurals to drop; words that merely end in "s" ("gas", "bus") are left alone.
_NOT_PLURAL = {"gas", "gasoil", "bus", "less", "pass", "mass", "process", "class"}


def _tokens(text: str) -> list[str]:
    words = re.sub(r"&", " and ", text.lower())
    words = re.sub(r"[^a-z0-9]+", " ", words).split()
    out = []
    for w in words:
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss") and w not in _NOT_PLURAL:
            w = w[:-1]
        if w not in _STOPWORDS:
            out.append(w)
    return out


def _activity_key(text: str) -> str:
    # Word order does not matter: "short haul flight" == "flight short haul".
    return " ".join(sorted(_tokens(text)))


def _build_index() -> dict[str, Activity]:
    index: dict[str, Activity] = {}
    for activity in ACTIVITIES:
        for name in (activity.id, activity.label, *activity.synonyms):
            key = _activity_key(name)
            existing = index.setdefault(key, activity)
            if existing is not activity:
                raise AssertionError(f"'{name}' names both {existing.id} and {activity.id}")
    return index


_INDEX = _build_index()
_BY_ID = {a.id: a for a in ACTIVITIES}


def resolve_activity(text: str) -> Activity | None:
    """The activity a cell names, or None."""
    if text in _BY_ID:
        return _BY_ID[text]
    return _INDEX.get(_activity_key(text))


def suggest_activities(text: str, limit: int = 3) -> list[str]:
    """Accepted names closest to `text`, best first, for 'did you mean'.
    Names containing every word of `text` come first ("flights" -> the
    flights), then spelling neighbours ("electrcity" -> electricity)."""
    words = set(_tokens(text))
    names: dict[str, str] = {}
    for activity in ACTIVITIES:
        for name in (activity.label, activity.id.replace("_", " "), *activity.synonyms):
            names.setdefault(_activity_key(name), name)
    containing = [k for k in names if words and words <= set(k.split())]
    close = difflib.get_close_matches(_activity_key(text), list(names), n=limit * 3, cutoff=0.6)
    labels: list[str] = []
    for key in sorted(containing, key=len) + close:
        label = _INDEX[key].label
        if label not in labels:
            labels.append(label)
    return labels[:limit]


# --- regions -----------------------------------------------------------------

_REGION_ALIASES = {
    "GB": ("gb", "uk", "united kingdom", "great britain", "britain", "england", "scotland",
           "wales", "northern ireland", "gbr", "united kingdom of great britain and northern ireland"),
    "US": ("us", "usa", "united states", "united states of america", "america", "us average",
           "usa average", "us national"),
}
_REGION_INDEX = {alias: code for code, aliases in _REGION_ALIASES.items() for alias in aliases}
# eGRID subregion acronyms, also written "US-CAMX" or "CAMX (WECC California)".
EGRID_SUBREGIONS = frozenset({
    "AKGD", "AKMS", "AZNM", "CAMX", "ERCT", "FRCC", "HIMS", "HIOA", "MROE", "MROW", "NEWE",
    "NWPP", "NYCW", "NYLI", "NYUP", "PRMS", "RFCE", "RFCM", "RFCW", "RMPA", "SPNO", "SPSO",
    "SRMV", "SRMW", "SRSO", "SRTV", "SRVC",
})


def normalise_region(text: str) -> str:
    """'UK', 'United Kingdom' -> 'GB'; 'USA' -> 'US'; 'US-CAMX',
    'camx (WECC California)' -> 'CAMX'. Anything else comes back stripped,
    so the factor source can say it has no such region."""
    cleaned = re.sub(r"[^a-z0-9() ]+", " ", text.strip().lower().replace(".", ""))
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if cleaned in _REGION_INDEX:
        return _REGION_INDEX[cleaned]
    words = re.sub(r"[()]", " ", cleaned).upper().split()
    for word in words[:3]:
        if word in EGRID_SUBREGIONS:
            return word
    if words and words[0] == "EGRID" and len(words) > 1 and words[1] in EGRID_SUBREGIONS:
        return words[1]
    return text.strip()


# --- columns -----------------------------------------------------------------

REQUIRED_ROLES = ("activity", "amount", "unit")
OPTIONAL_ROLES = ("region", "year")

_COLUMN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "activity": ("activity", "activity type", "activity name", "fuel", "fuel type", "category",
                 "emission source", "emissions source", "source type", "type", "item",
                 "energy type", "energy source", "activity description", "fuel name"),
    "amount": ("amount", "quantity", "qty", "value", "consumption", "usage", "activity amount",
               "activity value", "activity data", "total", "volume", "quantity used",
               "amount used", "units consumed", "distance"),
    "unit": ("unit", "units", "uom", "unit of measure", "unit of measurement", "measure",
             "amount unit", "quantity unit", "units of measure", "u o m"),
    "region": ("region", "country", "grid region", "location", "egrid subregion", "subregion",
               "grid", "country code", "site country", "market", "egrid region", "grid area",
               "state country"),
    "year": ("year", "reporting year", "period", "fiscal year", "financial year", "date",
             "reporting period", "calendar year", "activity year", "data year"),
}


def _column_key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def match_columns(header: Sequence[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Which header is which role: {"activity": "Fuel type", "amount": "Qty", ...}.

    `overrides` ({"activity": "Fuel type"}, from the job's options "columns")
    wins over guessing and is matched as forgivingly as the synonyms. Raises
    InputError naming the missing role, the header seen and how to map it.
    """
    overrides = dict(overrides or {})
    unknown_roles = set(overrides) - set(REQUIRED_ROLES) - set(OPTIONAL_ROLES)
    if unknown_roles:
        raise InputError(
            f"options.columns has unknown role(s) {', '.join(sorted(unknown_roles))}; "
            f"the roles are {', '.join(REQUIRED_ROLES + OPTIONAL_ROLES)}"
        )
    keys = {h: _column_key(h) for h in header}
    chosen: dict[str, str] = {}
    for role, wanted in overrides.items():
        found = [h for h in header if h == wanted] or [h for h in header if keys[h] == _column_key(wanted)]
        if not found:
            raise InputError(
                f"options.columns maps {role} to '{wanted}', but the header has no such column "
                f"(the header is {_quote(header)})"
            )
        chosen[role] = found[0]

    taken = set(chosen.values())
    # First exact synonyms for every role, then headers that contain one
    # ("Energy consumption" -> amount), so an exact match is never stolen.
    for exact in (True, False):
        for role in REQUIRED_ROLES + OPTIONAL_ROLES:
            if role in chosen:
                continue
            for h in header:
                if h in taken:
                    continue
                if _fits(keys[h], _COLUMN_SYNONYMS[role], exact):
                    chosen[role] = h
                    taken.add(h)
                    break

    missing = [role for role in REQUIRED_ROLES if role not in chosen]
    if missing:
        role = missing[0]
        example = ", ".join(_COLUMN_SYNONYMS[role][:4])
        raise InputError(
            f"no {role} column found: the header is {_quote(header)}. Name it with options "
            f'{{"columns": {{"{role}": "<column header>"}}}} '
            f"(a {role} column is recognised by names such as {example})"
            + (f"; also missing: {', '.join(missing[1:])}" if len(missing) > 1 else "")
        )
    return chosen


def _fits(key: str, synonyms: Iterable[str], exact: bool) -> bool:
    if exact:
        return key in synonyms
    words = f" {key} "
    return any(f" {s} " in words for s in synonyms if len(s) > 3)


def _quote(header: Sequence[str]) -> str:
    return ", ".join(f"'{h}'" for h in header) or "(empty)"

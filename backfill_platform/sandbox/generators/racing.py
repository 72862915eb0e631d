"""The Racing API: courses, daily racecards and results whose horses, jockeys, trainers and pedigrees recur."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from backfill_platform.sandbox.generators import daily_count, hex_id, rng_for

REGIONS = (("gb", "Great Britain"), ("ire", "Ireland"), ("fr", "France"), ("usa", "USA"), ("aus", "Australia"))
COURSE_NAMES = {
    "gb": (
        "Ascot",
        "Cheltenham",
        "Newmarket",
        "York",
        "Epsom",
        "Aintree",
        "Goodwood",
        "Doncaster",
        "Kempton",
        "Sandown",
    ),
    "ire": ("Leopardstown", "Curragh", "Punchestown", "Fairyhouse", "Galway", "Naas"),
    "fr": ("Longchamp", "Chantilly", "Deauville", "Saint-Cloud"),
    "usa": ("Belmont Park", "Churchill Downs", "Santa Anita", "Saratoga", "Gulfstream Park"),
    "aus": ("Flemington", "Randwick", "Caulfield", "Moonee Valley"),
}
BOOKMAKERS = (
    "Bet365",
    "William Hill",
    "Paddy Power",
    "Betfair Sportsbook",
    "Ladbrokes",
    "Coral",
    "Sky Bet",
    "Betfred",
    "Unibet",
    "BetVictor",
    "Boylesports",
    "888sport",
)
RACES_PER_DAY = 30
TYPES = ("flat", "flat", "hurdle", "chase", "nh_flat")
GOINGS = ("Good", "Good To Firm", "Good To Soft", "Soft", "Heavy", "Standard")
NON_FINISH = ("PU", "F", "UR", "BD", "RR")
POOL_SIZES = {"horse": 6000, "jockey": 300, "trainer": 400, "owner": 1500, "sire": 250, "dam": 3000, "damsire": 180}
PREFIX = {
    "horse": "hrs",
    "jockey": "jky",
    "trainer": "trn",
    "owner": "own",
    "sire": "sir",
    "dam": "dam",
    "damsire": "dsi",
}
RACECARDS_FROM = date(2023, 1, 23)
RESULTS_FROM = date(1988, 1, 1)
# GB and Ireland race on neither day; Boxing Day's cards are the year's busiest (more races than one page of 100).
NO_RACING = ((12, 24), (12, 25))
BUSY_DAY, BUSY_MEETINGS = (12, 26), 18
SUFFIX_FROM_YEAR = 2020


def meetings_on(day: date, seed: int, scale: float, rng) -> int:
    """How many meetings race on `day`: none on the blank days, many on Boxing Day, else about 30 races' worth."""
    if (day.month, day.day) in NO_RACING:
        return 0
    if (day.month, day.day) == BUSY_DAY:
        return min(len(courses(seed)), BUSY_MEETINGS)
    return min(len(courses(seed)), max(1, daily_count(RACES_PER_DAY, scale, rng) // 7))


@dataclass(frozen=True)
class Course:
    id: str
    course: str
    region_code: str
    region: str


@lru_cache(maxsize=4)
def courses(seed: int) -> tuple[Course, ...]:
    out = []
    for code, region in REGIONS:
        for name in COURSE_NAMES[code]:
            out.append(Course(f"crs_{int(hex_id(4, seed, 'course', name), 16) % 90000 + 1000}", name, code, region))
    return tuple(out)


def entity_id(seed: int, kind: str, n: int) -> str:
    """Unique per kind (a bijection on 0..9M: 7,654,321 is coprime to 9,000,000), scrambled by the seed."""
    return f"{PREFIX[kind]}_{(n * 7_654_321 + _offset(seed, kind)) % 9_000_000 + 1_000_000}"


@lru_cache(maxsize=64)
def _offset(seed: int, kind: str) -> int:
    return int(hex_id(4, seed, kind), 16)


def race_id(day: date, index: int) -> str:
    """Unique over every day since 1988 (the API's first results day): at most 200 races a day."""
    return f"rac_{10_000_000 + (day - RESULTS_FROM).days * 200 + index}"


def entity_name(kind: str, n: int) -> str:
    syllables = ("Star", "Dancer", "Royal", "Storm", "Gold", "Shadow", "Bay", "Rock", "Wind", "Frost", "Night", "Sea")
    if kind in ("horse", "sire", "dam", "damsire"):
        return f"{syllables[n % 12]} {syllables[(n // 12) % 12]}{'' if n < 144 else f' {n // 144}'}"
    first = ("J", "P", "R", "W", "H", "S", "T", "A", "C", "D")
    last = ("Moore", "Doyle", "Murphy", "Buick", "Dettori", "Spencer", "Kingscote", "Fanning", "Hughes", "Crowley")
    return f"{first[n % 10]} {last[(n // 10) % 10]}{'' if n < 100 else f' {n // 100}'}"


@lru_cache(maxsize=4)
def horse_pedigrees(seed: int) -> tuple[tuple[int, int, int, int, int], ...]:
    """Per horse: (sire, dam, damsire, trainer, owner) — fixed, so entities recur across days."""
    rng = rng_for(seed, "racing-pedigree")
    return tuple(
        (
            rng.randrange(POOL_SIZES["sire"]),
            rng.randrange(POOL_SIZES["dam"]),
            rng.randrange(POOL_SIZES["damsire"]),
            rng.randrange(POOL_SIZES["trainer"]),
            rng.randrange(POOL_SIZES["owner"]),
        )
        for _ in range(POOL_SIZES["horse"])
    )


def horse_name(horse: int, day: date) -> str:
    """A horse's name as the API spells it on `day`: since 2020 with its country suffix, so an older race's
    spelling differs from a newer one's (what newest-wins merging must keep straight)."""
    name = entity_name("horse", horse)
    return name if day.year < SUFFIX_FROM_YEAR else f"{name} ({('GB', 'IRE', 'FR', 'USA')[horse % 4]})"


def _runner(seed: int, horse: int, rng, day: date) -> dict:
    sire, dam, damsire, trainer, owner = horse_pedigrees(seed)[horse]
    jockey = rng.randrange(POOL_SIZES["jockey"])
    foaled = 2022 - horse % 9
    return {
        "horse_id": entity_id(seed, "horse", horse),
        "horse": horse_name(horse, day),
        "age": str(max(2, day.year - foaled)),
        "sex": ("gelding", "colt", "filly", "mare")[horse % 4],
        "sire": entity_name("sire", sire),
        "sire_id": entity_id(seed, "sire", sire),
        "dam": entity_name("dam", dam),
        "dam_id": entity_id(seed, "dam", dam),
        "damsire": entity_name("damsire", damsire),
        "damsire_id": entity_id(seed, "damsire", damsire),
        "trainer": entity_name("trainer", trainer),
        "trainer_id": entity_id(seed, "trainer", trainer),
        "owner": entity_name("owner", owner),
        "owner_id": entity_id(seed, "owner", owner),
        "jockey": entity_name("jockey", jockey),
        "jockey_id": entity_id(seed, "jockey", jockey),
        "weight_lbs": str(112 + rng.randrange(50)),
        "draw": str(rng.randrange(1, 20)),
        "headgear": rng.choice(("", "", "b", "t", "p", "v")),
        "dob": f"{foaled}-0{1 + horse % 9}-1{horse % 9}",
        "sex_code": ("G", "C", "F", "M")[horse % 4],
        "colour": ("b", "br", "ch", "gr")[horse % 4],
        "region": ("GB", "IRE", "FR", "USA")[horse % 4],
        "breeder": f"{entity_name('owner', owner)} Stud",
    }


def races_on(seed: int, day: date, scale: float = 1.0) -> int:
    """How many races `day` holds (seven a meeting), without building them: what `_races` draws first."""
    return 7 * meetings_on(day, seed, scale, rng_for(seed, "racing", day))


@lru_cache(maxsize=512)
def _races(seed: int, day: date, scale: float) -> tuple[dict, ...]:
    rng = rng_for(seed, "racing", day)
    meetings = rng.sample(courses(seed), k=meetings_on(day, seed, scale, rng))
    races = []
    for m, course in enumerate(meetings):
        tz = timezone(
            timedelta(
                hours=1
                if course.region_code in ("gb", "ire")
                else 2
                if course.region_code == "fr"
                else -4
                if course.region_code == "usa"
                else 10
            )
        )
        for n in range(7):
            off = datetime(day.year, day.month, day.day, 13, tzinfo=tz) + timedelta(minutes=35 * n)
            horses = rng.sample(range(POOL_SIZES["horse"]), k=rng.randrange(5, 15))
            race_type = rng.choice(TYPES)
            races.append(
                {
                    "race_id": race_id(day, m * 7 + n),
                    "date": day.isoformat(),
                    "region": course.region_code.upper(),
                    "course": course.course,
                    "course_id": course.id,
                    "off": f"{(off.hour - 1) % 12 + 1}:{off.minute:02d}",
                    "off_dt": off.isoformat(),
                    "race_name": f"{course.course} {race_type.title()} Stakes ({n + 1})",
                    "type": race_type.replace("_", " ").title(),
                    "class": f"Class {rng.randrange(1, 8)}",
                    "going": rng.choice(GOINGS),
                    "dist_f": f"{rng.randrange(5, 25)}f",
                    "dist_y": str(rng.randrange(1100, 5500)),
                    "surface": "Turf",
                    "dist": f"{rng.randrange(5, 25)}f",
                    "dist_m": str(rng.randrange(1000, 5000)),
                    "pattern": rng.choice(("", "", "", "Group 1", "Group 3", "Listed")),
                    "rating_band": rng.choice(("", "0-75", "0-90")),
                    "age_band": rng.choice(("2yo", "3yo+", "4yo+")),
                    "sex_rest": rng.choice(("", "", "F", "C&G")),
                    "prize": f"£{rng.randrange(3, 500) * 1000:,}",
                    "runners": [_runner(seed, h, rng, day) for h in horses],
                }
            )
    return tuple(sorted(races, key=lambda r: (r["off_dt"], r["race_id"])))


def _finish(seed: int, race: dict, revision: int) -> list[dict]:
    rng = rng_for(seed, "racing-result", race["race_id"])
    order = list(range(len(race["runners"])))
    rng.shuffle(order)
    amended = any(rng_for(seed, "racing-amend", race["race_id"], r).random() < 0.03 for r in range(1, revision + 1))
    if amended and len(order) > 1:  # a stewards' inquiry swaps the first two home
        order[0], order[1] = order[1], order[0]
    runners = []
    for place, idx in enumerate(order, start=1):
        r = dict(race["runners"][idx])
        fell = rng.random() < 0.04
        r.update(
            position=rng.choice(NON_FINISH) if fell else str(place),
            btn="0" if place == 1 else f"{place * 0.75:.2f}",
            sp=f"{rng.randrange(1, 30)}/{rng.choice((1, 2, 4))}",
            sp_dec=f"{1 + rng.random() * 30:.2f}",
            prize=f"{max(0, 50_000 // place - 3000):.2f}" if place <= 4 else "",
            rpr=str(rng.randrange(40, 140)),
            number=str(place if not fell else len(order)),
            ovr_btn="0" if place == 1 else f"{place * 1.5:.2f}",
            weight=f"{int(r['weight_lbs']) // 14}-{int(r['weight_lbs']) % 14}",
            time=f"1:{10 + place:02d}.{rng.randrange(100):02d}" if not fell else "-",
            tsr=str(rng.randrange(30, 130)),
            comment="Prominent, ridden over 1f out, kept on" if not fell else "Pulled up",
            silk_url=f"https://www.rp-assets.com/svg/{rng.randrange(10**6)}.svg",
            jockey_claim_lbs="0",
        )
        r["or"] = str(rng.randrange(40, 130))
        runners.append(r)
    return runners


def results_for_day(seed: int, day: date, revision: int = 0, scale: float = 1.0) -> list[dict]:
    """Results of one day (off time order); a revision may amend placings."""
    return [
        {
            **race,
            "runners": _finish(seed, race, revision),
            "winning_time_detail": "1m 12.34s (fast by 0.5s)",
            "comments": "",
            "non_runners": "",
        }
        for race in _races(seed, day, scale)
    ]


def racecards_for_day(seed: int, day: date, scale: float = 1.0) -> list[dict]:
    """Pro racecards of one day, with odds from the bookmakers (the only place bookmakers appear)."""
    cards = []
    for race in _races(seed, day, scale):
        rng = rng_for(seed, "racecard", race["race_id"])
        runners = []
        for r in race["runners"]:
            odds = [
                {
                    "bookmaker": b,
                    "fractional": f"{n}/1",
                    "decimal": f"{n + 1:.2f}",
                    "ew_places": "3",
                    "ew_denom": "5",
                    "updated": f"{race['date']} 10:{rng.randrange(60):02d}:00",
                    "history": [],
                }
                for b, n in zip(rng.sample(BOOKMAKERS, k=rng.randrange(3, 7)), [rng.randrange(1, 40)] * 7, strict=False)
            ]
            runners.append(
                {
                    **r,
                    "number": r["draw"],
                    "lbs": r["weight_lbs"],
                    "ofr": str(rng.randrange(40, 120)),
                    "form": "".join(rng.choice("1234567890-P") for _ in range(5)),
                    "rpr": str(rng.randrange(40, 140)),
                    "ts": str(rng.randrange(30, 130)),
                    "last_run": str(rng.randrange(7, 120)),
                    "trainer_rtf": str(rng.randrange(0, 60)),
                    "odds": odds,
                }
            )
        cards.append(
            {
                "race_id": race["race_id"],
                "course": race["course"],
                "course_id": race["course_id"],
                "date": race["date"],
                "off_time": race["off"],
                "off_dt": race["off_dt"],
                "race_name": race["race_name"],
                "region": race["region"],
                "type": race["type"],
                "race_class": race["class"],
                "going": race["going"],
                "distance_f": race["dist_f"],
                "distance_round": race["dist"],
                "distance": race["dist"],
                "pattern": race["pattern"],
                "age_band": race["age_band"],
                "rating_band": race["rating_band"],
                "prize": race["prize"],
                "going_detailed": race["going"],
                "rail_movements": "",
                "stalls": "Centre",
                "weather": rng.choice(("Sunny", "Overcast", "Light rain")),
                "surface": race["surface"],
                "field_size": str(len(runners)),
                "is_abandoned": False,
                "runners": runners,
            }
        )
    return cards

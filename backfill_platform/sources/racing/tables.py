"""Racing tables: masters, raw results and racecards (the record in `payload`), and everything derived in SQL.

Runners and racecard runners are replaced with their day. Entities (horses, jockeys, …, bookmakers) are merged by
id with `newer_by`: a row from an older race never overwrites one from a newer race, whatever the loading order.
"""

from backfill_platform.io_managers.spec import Column, Derivation, TableSpec, register


def as_int(expr: str) -> str:
    """The API sends numbers as strings, with '' or '-' for none: only digits become integers."""
    return f"CASE WHEN ({expr}) ~ '^-?[0-9]+$' THEN ({expr})::integer END"


def as_numeric(expr: str) -> str:
    return f"CASE WHEN ({expr}) ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN ({expr})::numeric END"


# What results and racecards both say of a race, as real columns (the rest stays in `payload`).
RACE_COLUMNS = (
    Column("race_id", "text"),
    Column("date", "date"),
    Column("region", "text"),
    Column("course", "text"),
    Column("course_id", "text"),
    Column("off_dt", "timestamptz"),
    Column("race_name", "text"),
    Column("type", "text"),
)

COURSES = TableSpec(
    schema="racing",
    name="courses",
    columns=(Column("id", "text"), Column("course", "text"), Column("region_code", "text"), Column("region", "text")),
    primary_key=("id",),
    description="Every course (/v1/courses), refreshed whole by any run that selects it.",
)

REGIONS = TableSpec(
    schema="racing",
    name="regions",
    columns=(Column("region_code", "text"), Column("region", "text")),
    primary_key=("region_code",),
    description="Region codes and names (/v1/courses/regions), refreshed whole by any run that selects it.",
)

RESULTS = TableSpec(
    schema="racing",
    name="results",
    columns=(
        *RACE_COLUMNS,
        Column("class", "text"),
        Column("pattern", "text"),
        Column("dist_f", "text"),
        Column("dist_y", "integer"),
        Column("going", "text"),
        Column("surface", "text"),
        Column("runner_count", "integer"),
        Column("payload", "jsonb"),
    ),
    primary_key=("race_id",),
    partition_column="date",
    indexes=(("course_id",),),
    description="One row per race result (/v1/results), by race date. A ranged run asks for multi-day chunks, 100 "
    "races a page with skip, buckets the races by date and commits day by day; re-materialising a day replaces it, "
    "so an amended placing shows.",
)

RUNNERS_FROM = (
    "FROM {parent} t CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'runners', '[]')) r "
    "WHERE t.date >= %(start)s AND t.date < %(end)s"
)

RUNNERS = TableSpec(
    schema="racing",
    name="runners",
    columns=(
        Column("race_id", "text", expr="t.race_id"),
        Column("horse_id", "text", expr="r->>'horse_id'"),
        Column("date", "date", expr="t.date"),
        Column("horse", "text", expr="r->>'horse'"),
        Column("position", "text", expr="r->>'position'"),
        Column("finish", "integer", expr=as_int("r->>'position'")),
        Column("number", "integer", expr=as_int("r->>'number'")),
        Column("draw", "integer", expr=as_int("r->>'draw'")),
        Column("btn", "text", expr="r->>'btn'"),
        Column("sp", "text", expr="r->>'sp'"),
        Column("sp_dec", "numeric", expr=as_numeric("r->>'sp_dec'")),
        Column("official_rating", "integer", expr=as_int("r->>'or'")),
        Column("rpr", "integer", expr=as_int("r->>'rpr'")),
        Column("tsr", "integer", expr=as_int("r->>'tsr'")),
        Column("weight_lbs", "integer", expr=as_int("r->>'weight_lbs'")),
        Column("age", "integer", expr=as_int("r->>'age'")),
        Column("prize", "numeric", expr=as_numeric("r->>'prize'")),
        Column("jockey_id", "text", expr="r->>'jockey_id'"),
        Column("trainer_id", "text", expr="r->>'trainer_id'"),
        Column("owner_id", "text", expr="r->>'owner_id'"),
        Column("sire_id", "text", expr="r->>'sire_id'"),
        Column("dam_id", "text", expr="r->>'dam_id'"),
        Column("damsire_id", "text", expr="r->>'damsire_id'"),
    ),
    primary_key=("race_id", "horse_id"),
    partition_column="date",
    indexes=(("horse_id",),),
    description="Each runner of each result race (position, SP, ratings, jockey/trainer/owner ids), computed in "
    "PostgreSQL from the raw results and replaced with its day.",
    derived_from=Derivation(RESULTS, RUNNERS_FROM),
)


def latest_per(parent: TableSpec, cte: str, element: str, key: str) -> Derivation:
    """One row per `key` from this partition's races: the one of the latest race (by off time) of the day."""
    return Derivation(
        parent,
        f"FROM {cte}",
        with_=f"{cte} AS (SELECT DISTINCT ON (e->>'{key}') t.race_id, t.date, e "
        f"FROM {{parent}} t CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'{element}', '[]')) e "
        f"WHERE t.date >= %(start)s AND t.date < %(end)s AND coalesce(e->>'{key}', '') <> '' "
        f"ORDER BY e->>'{key}', t.off_dt DESC, t.race_id DESC)",
    )


def entity(name: str, key: str, fields: dict[str, tuple[str, str]], description: str) -> TableSpec:
    """An entity seen in runners, merged by id; its attributes are those of its most recent race."""
    cte = f"latest_{name}"
    return TableSpec(
        schema="racing",
        name=name,
        columns=(
            Column("id", "text", expr=f"e->>'{key}'"),
            *(Column(col, typ, expr=expr) for col, (typ, expr) in fields.items()),
            Column("last_race_id", "text", expr="race_id"),
            Column("race_date", "date", expr="date"),
        ),
        primary_key=("id",),
        partition_column="race_date",
        write_mode="merge",
        newer_by="race_date",
        description=description,
        derived_from=latest_per(RESULTS, cte, "runners", key),
    )


def named_entity(name: str, key: str, label: str) -> TableSpec:
    return entity(
        name,
        key,
        {"name": ("text", f"e->>'{label}'")},
        f"Every {label} seen in a result, merged by id: the name of its most recent race by race date wins.",
    )


HORSES = entity(
    "horses",
    "horse_id",
    {"name": ("text", "e->>'horse'"), "sex": ("text", "e->>'sex'"), "age": ("integer", as_int("e->>'age'"))},
    "Every horse seen in a result, merged by id: name, sex and age of its most recent race by race date win.",
)
JOCKEYS = named_entity("jockeys", "jockey_id", "jockey")
TRAINERS = named_entity("trainers", "trainer_id", "trainer")
OWNERS = named_entity("owners", "owner_id", "owner")
SIRES = named_entity("sires", "sire_id", "sire")
DAMS = named_entity("dams", "dam_id", "dam")
DAMSIRES = named_entity("damsires", "damsire_id", "damsire")
HORSE_PEDIGREE = TableSpec(
    schema="racing",
    name="horse_pedigree",
    columns=(
        Column("horse_id", "text", expr="e->>'horse_id'"),
        Column("sire_id", "text", expr="nullif(e->>'sire_id', '')"),
        Column("dam_id", "text", expr="nullif(e->>'dam_id', '')"),
        Column("damsire_id", "text", expr="nullif(e->>'damsire_id', '')"),
        Column("race_date", "date", expr="date"),
    ),
    primary_key=("horse_id",),
    partition_column="race_date",
    write_mode="merge",
    newer_by="race_date",
    description="Each horse's sire, dam and damsire as its most recent result gives them.",
    derived_from=latest_per(RESULTS, "latest_pedigree", "runners", "horse_id"),
)
ENTITIES = (HORSES, JOCKEYS, TRAINERS, OWNERS, SIRES, DAMS, DAMSIRES, HORSE_PEDIGREE)

RACECARDS = TableSpec(
    schema="racing",
    name="racecards",
    columns=(
        *RACE_COLUMNS,
        Column("race_class", "text"),
        Column("distance_f", "text"),
        Column("going", "text"),
        Column("field_size", "integer"),
        Column("is_abandoned", "boolean"),
        Column("payload", "jsonb"),
    ),
    primary_key=("race_id",),
    partition_column="date",
    description="Pro racecards (/v1/racecards/pro), one row per race, one call per day from 2023-01-23 (the API's "
    "first racecard day); re-materialising a day replaces it.",
)

RACECARD_RUNNERS = TableSpec(
    schema="racing",
    name="racecard_runners",
    columns=(
        Column("race_id", "text", expr="t.race_id"),
        Column("horse_id", "text", expr="r->>'horse_id'"),
        Column("date", "date", expr="t.date"),
        Column("horse", "text", expr="r->>'horse'"),
        Column("number", "integer", expr=as_int("r->>'number'")),
        Column("draw", "integer", expr=as_int("r->>'draw'")),
        Column("lbs", "integer", expr=as_int("r->>'lbs'")),
        Column("ofr", "integer", expr=as_int("r->>'ofr'")),
        Column("rpr", "integer", expr=as_int("r->>'rpr'")),
        Column("ts", "integer", expr=as_int("r->>'ts'")),
        Column("form", "text", expr="r->>'form'"),
        Column("jockey_id", "text", expr="r->>'jockey_id'"),
        Column("trainer_id", "text", expr="r->>'trainer_id'"),
        Column("owner_id", "text", expr="r->>'owner_id'"),
        Column("odds_count", "integer", expr="jsonb_array_length(coalesce(r->'odds', '[]'))"),
    ),
    primary_key=("race_id", "horse_id"),
    partition_column="date",
    description="Each declared runner of each racecard, computed in PostgreSQL and replaced with its day.",
    derived_from=Derivation(RACECARDS, RUNNERS_FROM),
)

BOOKMAKERS = TableSpec(
    schema="racing",
    name="bookmakers",
    columns=(
        Column("name", "text", expr="o->>'bookmaker'"),
        Column("last_race_id", "text", expr="race_id"),
        Column("race_date", "date", expr="date"),
    ),
    primary_key=("name",),
    partition_column="race_date",
    write_mode="merge",
    newer_by="race_date",
    description="Every bookmaker quoting odds in a racecard (the API has no bookmakers endpoint), merged by name.",
    derived_from=Derivation(
        RACECARDS,
        "FROM latest_bookmakers",
        with_="latest_bookmakers AS (SELECT DISTINCT ON (o->>'bookmaker') t.race_id, t.date, o FROM {parent} t "
        "CROSS JOIN LATERAL jsonb_array_elements(coalesce(t.payload->'runners', '[]')) r "
        "CROSS JOIN LATERAL jsonb_array_elements(coalesce(r->'odds', '[]')) o "
        "WHERE t.date >= %(start)s AND t.date < %(end)s AND coalesce(o->>'bookmaker', '') <> '' "
        "ORDER BY o->>'bookmaker', t.off_dt DESC, t.race_id DESC)",
    ),
)

register(COURSES, REGIONS, RESULTS, RUNNERS, *ENTITIES, RACECARDS, RACECARD_RUNNERS, BOOKMAKERS)

"""Real client-shaped feeds cut from real datasets (see sources.py): what a new engagement sees in its first
months. Each scenario writes a reference file, a few sample batches (what the client sends before go-live,
given to `steward onboard --batches`), then one dated batch per night and label files landing some
nights later, all as the client's export would write them (booleans as True/False, integers with nulls
as empty cells, timestamps in ISO 8601).

Nightly sizes vary the way client feeds do; the order is the data's real time order where it has one.
A few nights carry a documented incident of the kind clients really send (a changed delimiter, a dropped
column, yesterday's file again): those, and only those, must be quarantined.

| scenario | data | nightly rows | labels | what it exercises |
|---|---|---|---|---|
| rain_weather | 50 years of daily weather, in time order | 6-80 (about 24) | 3 nights late | tiny batches, one-class label days, seasonal shift, column names with spaces |
| credit_scoring | loan applications, a stable stream | 8-120 (about 30) | 5 nights late | string classes (bad/good), booleans, integers with nulls, rare categories |
| flights_nyc | every NYC departure of 2013 with the hour's weather, by day | 500-1,000 | 1 night late | large batches, timestamps, high-cardinality text, an unseen carrier, winter storms |
| credit_volume | the loan applications resampled, a stable stream at volume | 1,500-2,500 | 5 nights late | monitoring budget: false alarms and versions when nothing changes |
| credit_channel | the loan applications; from night 35 a new channel brings only applicants under 30 | 8-120 (about 30) | 5 nights late | monitoring budget: detection delay on a real population shift, small nights |
| credit_faults | the loan applications resampled at about 165 a night, five data-quality faults planted in turn | 80-300 | 5 nights late | data-quality drift (issue 31): detection delay per fault, false alarms between them |
| hotel_rates | a resort hotel's bookings by arrival day, summer into the low season | 6-70 (about 35) | 2 nights late | a shift a refit can recover (issue 30) |

The last two are resampled (with replacement, fresh ids) from the real rows so they can run longer than
the data: they measure the monitoring budget (ADR 0012) and are not part of the CI run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.realdata import sources

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_NIGHTS = 5


@dataclass
class Night:
    day: dt.date
    frame: pd.DataFrame            # with the target; the batch file leaves it out
    incident: str | None = None    # what the client got wrong tonight (the batch must be quarantined)
    planted: str | None = None     # a planted fault that must quarantine the batch (its file is written as it is)


@dataclass
class Feed:
    reference: pd.DataFrame
    samples: list[Night]
    nights: list[Night]


@dataclass
class Scenario:
    id: str
    title: str
    client: str
    use_case: str
    target: str
    id_column: str
    label_delay: int
    nights: int
    incidents: dict[int, str] = field(default_factory=dict)   # night index -> incident kind
    ci_nights: int = 12                                       # nights run in CI (from the first); 0: not in CI
    # What the monitoring budget is measured against (scripts/realdata.py, ADR 0012): nights before
    # `shift_night` are stable when `stable` is set; None means the data has no known shift.
    stable: bool = False
    shift_night: int | None = None

    # --- the feed -------------------------------------------------------------------------------
    def feed(self, nights: int | None = None) -> Feed:
        raise NotImplementedError

    def stable_nights(self, count: int) -> set[int]:
        """The night indexes known to be stable (the monitoring budget's denominator)."""
        if not self.stable:
            return set()
        return set(range(self.shift_night if self.shift_night is not None else count))

    def planted(self) -> list[dict[str, Any]]:
        """Data-quality faults planted on top of the real feed (issue 31): none by default."""
        return []

    def write(self, workspace: Path, nights: int | None = None) -> dict[str, Any]:
        """Reference, sample batches, nightly batches and label files under `workspace` (data root: data/)."""
        feed = self.feed(nights)
        data = workspace / "data" / self.id
        incoming, labels, samples = data / "incoming", data / "labels", workspace / "samples"
        for folder in (incoming, labels, samples):
            folder.mkdir(parents=True, exist_ok=True)
        _csv(feed.reference, workspace / "reference.csv")
        for night in feed.samples:
            _csv(night.frame.drop(columns=[self.target]), samples / f"{night.day}.csv")
        previous: bytes | None = None
        for night in feed.nights:
            path = incoming / f"{night.day}.csv"
            _csv(night.frame.drop(columns=[self.target]), path)
            if night.incident:
                path.write_bytes(_apply_incident(night.incident, path.read_bytes(), previous))
            previous = path.read_bytes()
            known = night.frame[night.frame[self.target].notna()][[self.id_column, self.target]]
            _csv(known, labels / f"{night.day + dt.timedelta(days=self.label_delay)}.csv")
        return self._plan(feed)

    def plan(self, nights: int | None = None) -> dict[str, Any]:
        """What `write` returns, without writing anything (to measure an earlier run again)."""
        return self._plan(self.feed(nights))

    @staticmethod
    def _plan(feed: Feed) -> dict[str, Any]:
        return {"first": feed.nights[0].day, "last": feed.nights[-1].day,
                "expected_quarantine": {n.day.isoformat(): n.incident or n.planted for n in feed.nights
                                        if n.incident or n.planted},
                "rows": {n.day.isoformat(): len(n.frame) for n in feed.nights},
                "reference_rows": len(feed.reference)}

    def onboard_args(self, workspace: Path, first: dt.date) -> list[str]:
        return ["onboard", "--data", str(workspace / "reference.csv"), "--target", self.target, "--id", self.id,
                "--client", self.client, "--use-case", self.use_case, "--id-column", self.id_column,
                "--labels", f"{self.id}/labels", "--label-delay", str(self.label_delay),
                "--batches", str(workspace / "samples"), "--start-date", first.isoformat()]

    def _split(self, frames: list[tuple[dt.date, pd.DataFrame]], reference: pd.DataFrame) -> Feed:
        samples = [Night(d, f) for d, f in frames[:SAMPLE_NIGHTS]]
        nights = [Night(d, f, self.incidents.get(i)) for i, (d, f) in enumerate(frames[SAMPLE_NIGHTS:])]
        return Feed(reference, samples, nights)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def _apply_incident(kind: str, raw: bytes, previous: bytes | None) -> bytes:
    """What the client's export did wrong tonight, applied to the bytes of a clean batch."""
    if kind == "semicolon_delimiter":  # a changed export tool: ; instead of ,
        return raw.replace(b",", b";")
    if kind.startswith("dropped_column:"):  # a column vanished from the export
        import io

        import pandas as pd

        column = kind.split(":", 1)[1]
        return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False).drop(columns=[column]) \
            .to_csv(index=False).encode()
    if kind == "resent_yesterday":  # yesterday's file sent again under tonight's name
        assert previous is not None
        return previous
    raise ValueError(kind)


def _sizes(rng: Any, count: int, median: float, low: int, high: int) -> list[int]:
    """Nightly row counts that vary like a client's feed: log-normal around the median, clipped."""
    import numpy as np

    return [int(v) for v in np.clip(np.round(rng.lognormal(np.log(median), 0.55, count)), low, high)]


def _cut(frame: pd.DataFrame, start: dt.date, sizes: list[int]) -> list[tuple[dt.date, pd.DataFrame]]:
    out, at = [], 0
    for i, size in enumerate(sizes):
        if at + size > len(frame):
            break
        out.append((start + dt.timedelta(days=i), frame.iloc[at:at + size].reset_index(drop=True)))
        at += size
    return out


class RainWeather(Scenario):
    """Daily weather readings of 50 years, in time order, a few weeks of readings per night."""

    REFERENCE_ROWS = 1460  # four years: every season

    def feed(self, nights: int | None = None) -> Feed:
        import numpy as np
        import pandas as pd

        raw = pd.read_csv(sources.path_of("rainfall")).rename(columns={"Unnamed: 0": "day_index"})
        raw = raw.round(4)
        raw.insert(0, "reading_id", [f"R{i:05d}" for i in raw.pop("day_index")])
        reference = raw.iloc[: self.REFERENCE_ROWS].reset_index(drop=True)
        stream = raw.iloc[self.REFERENCE_ROWS:].reset_index(drop=True)
        count = SAMPLE_NIGHTS + (nights or self.nights)
        sizes = _sizes(np.random.default_rng(31), count, 24, 6, 80)
        return self._split(_cut(stream, dt.date(2026, 1, 1) - dt.timedelta(days=SAMPLE_NIGHTS), sizes), reference)


class CreditScoring(Scenario):
    """Loan applications (a stable stream: the data has no time order), scored as they come in."""

    REFERENCE_ROWS = 1200

    def feed(self, nights: int | None = None) -> Feed:
        import numpy as np

        frame = credit_frame()
        reference = frame.iloc[: self.REFERENCE_ROWS].reset_index(drop=True)
        stream = frame.iloc[self.REFERENCE_ROWS:].reset_index(drop=True)
        count = SAMPLE_NIGHTS + (nights or self.nights)
        sizes = _sizes(np.random.default_rng(23), count, 30, 8, 120)
        return self._split(_cut(stream, dt.date(2026, 1, 1) - dt.timedelta(days=SAMPLE_NIGHTS), sizes), reference)


def credit_frame() -> pd.DataFrame:
    """The credit applications as a lender's database export writes them (booleans, integers with nulls)."""
    import pandas as pd

    raw = pd.read_pickle(sources.path_of("credit"), compression="xz")  # verified pinned bytes only
    raw = raw.sample(frac=1.0, random_state=11).reset_index(drop=True)
    frame = pd.DataFrame({"application_id": [f"A{int(i):05d}" for i in raw["rownames"]]})
    for col in ("Seniority", "Home", "Time", "Age", "Marital"):
        frame[col.lower()] = raw[col]
    frame["records"] = raw["Records"].map({"yes": True, "no": False})  # a database export: a boolean
    frame["job"] = raw["Job"]
    for col in ("Expenses", "Income", "Assets", "Debt", "Amount", "Price"):
        frame[col.lower()] = raw[col].astype("Int64")  # integers, with empty cells where unknown
    frame["status"] = raw["Status"]
    return frame


class ResampledCredit(Scenario):
    """Real credit applications drawn with replacement (fresh ids) night by night; from `shift_night` on,
    only from the applicants under 30 (a new mobile-app channel): a real population shift that moves age,
    seniority, home, marital status, job, expenses, income and assets together."""

    REFERENCE_ROWS = 1200
    median_rows: int = 30
    low_rows: int = 8
    high_rows: int = 120

    def feed(self, nights: int | None = None) -> Feed:
        import numpy as np
        import pandas as pd

        frame = credit_frame()
        reference = frame.iloc[: self.REFERENCE_ROWS].reset_index(drop=True)
        pool = frame.iloc[self.REFERENCE_ROWS:].reset_index(drop=True)
        channel = pool[pool["age"] < 30].reset_index(drop=True)
        count = SAMPLE_NIGHTS + (nights or self.nights)
        rng = np.random.default_rng(sum(map(ord, self.id)))
        sizes = _sizes(rng, count, self.median_rows, self.low_rows, self.high_rows)
        start = dt.date(2026, 1, 1) - dt.timedelta(days=SAMPLE_NIGHTS)
        frames = []
        for i, size in enumerate(sizes):
            shifted = self.shift_night is not None and i - SAMPLE_NIGHTS >= self.shift_night
            source = channel if shifted else pool
            night = source.iloc[rng.integers(0, len(source), size)].reset_index(drop=True)
            night["application_id"] = [f"N{i:03d}-{k:05d}" for k in range(size)]
            frames.append((start + dt.timedelta(days=i), night))
        return self._split(frames, pd.DataFrame(reference))


class FaultyCredit(ResampledCredit):
    """The real loan applications, resampled (fresh ids) at about 165 a night (the volume of the car-loan feed
    whose four-week fault went unseen, issue 31), with data-quality faults planted one after another, each for
    FAULT_NIGHTS nights, on columns a lender's export really breaks: an empty-cell share creeping up over a
    week, a unit change (x1000), a renamed category, a stuck value and two columns swapped."""

    median_rows, low_rows, high_rows = 165, 80, 300

    FAULT_NIGHTS = 7
    # an unseen category fails the engagement's value-set check: the batch is quarantined, not flagged (ADR 0027)
    QUARANTINED = ("renamed_category",)
    SETTLE_NIGHTS = 4  # after a fault ends, its nights still sit in the pooled window and the persistence rule
    FAULTS = ((4, "null_creep", ("income",)), (15, "unit_change", ("amount",)), (26, "renamed_category", ("home",)),
              (37, "stuck_value", ("price",)), (48, "swapped_columns", ("expenses", "income")))

    def planted(self) -> list[dict[str, Any]]:
        return [{"kind": kind, "columns": list(columns), "first_night": start,
                 "last_night": start + self.FAULT_NIGHTS - 1} for start, kind, columns in self.FAULTS]

    def stable_nights(self, count: int) -> set[int]:
        faulty = {n for f in self.planted() for n in range(f["first_night"], f["last_night"] + self.SETTLE_NIGHTS + 1)}
        return set(range(count)) - faulty

    def feed(self, nights: int | None = None) -> Feed:
        import numpy as np

        feed = super().feed(nights)
        rng = np.random.default_rng(131)
        for fault in self.planted():
            for k, index in enumerate(range(fault["first_night"], fault["last_night"] + 1)):
                if index < len(feed.nights):
                    night = feed.nights[index]
                    night.frame = _plant(fault["kind"], fault["columns"], night.frame.copy(), k, rng)
                    if fault["kind"] in self.QUARANTINED:
                        night.planted = f"{fault['kind']}:{','.join(fault['columns'])}"
        return feed


def _plant(kind: str, columns: list[str], frame: pd.DataFrame, k: int, rng: Any) -> pd.DataFrame:
    """Fault `kind` on its `k`-th night (0 = the first)."""
    import pandas as pd

    col = columns[0]
    if kind == "null_creep":  # 5 more points of empty cells every night: 5% on the first, 35% on the seventh
        frame.loc[rng.random(len(frame)) < 0.05 * (k + 1), col] = pd.NA
    elif kind == "unit_change":  # euros became cents... of a thousand: x1000
        frame[col] = frame[col] * 1000
    elif kind == "renamed_category":  # an upstream system renamed a value
        frame[col] = frame[col].replace({"owner": "home_owner"})
    elif kind == "stuck_value":  # the field is filled with one value every night (a default left in the form)
        frame[col] = pd.array([1000] * len(frame), dtype=frame[col].dtype)
    elif kind == "swapped_columns":
        a, b = columns
        frame[a], frame[b] = frame[b].to_numpy(), frame[a].to_numpy()
    else:
        raise ValueError(kind)
    return frame


class CreditVolume(ResampledCredit):
    median_rows, low_rows, high_rows = 2000, 1500, 2500


class FlightsNyc(Scenario):
    """Every departure from New York's three airports, one day per night, with the departure hour's weather;
    late = arrived 15 minutes or more after schedule (cancelled flights never get a label)."""

    REFERENCE_DAYS = 10
    FIRST_DAY = dt.date(2013, 1, 1)

    def feed(self, nights: int | None = None) -> Feed:
        import pandas as pd

        count = SAMPLE_NIGHTS + (nights or self.nights)
        first_night = self.FIRST_DAY + dt.timedelta(days=self.REFERENCE_DAYS)
        last = first_night + dt.timedelta(days=count)
        flights = pd.read_pickle(sources.path_of("flights"), compression="xz")
        flights = flights[pd.to_datetime(flights[["year", "month", "day"]]).dt.date < last]
        weather = pd.read_pickle(sources.path_of("weather"), compression="xz")
        weather = weather[["origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "precip", "visib"]]
        frame = flights.merge(weather.drop_duplicates(["origin", "time_hour"]), on=["origin", "time_hour"], how="left")
        day = pd.to_datetime(frame[["year", "month", "day"]])
        frame = frame.assign(date=day.dt.date).sort_values(["date", "sched_dep_time", "carrier", "flight"])
        out = pd.DataFrame({
            "flight_id": [f"{d:%Y%m%d}-{c}{n}-{o}" for d, c, n, o in
                          zip(day.loc[frame.index], frame["carrier"], frame["flight"], frame["origin"], strict=True)],
            "sched_dep": [f"{d:%Y-%m-%d}T{t // 100:02d}:{t % 100:02d}:00" for d, t in
                          zip(day.loc[frame.index], frame["sched_dep_time"], strict=True)],
            "carrier": frame["carrier"].to_numpy(),
            "origin": frame["origin"].to_numpy(),
            "dest": frame["dest"].to_numpy(),
            "tailnum": frame["tailnum"].to_numpy(),
            "distance": frame["distance"].astype("Int64").to_numpy(),
            "sched_hour": frame["hour"].astype("Int64").to_numpy(),
            **{c: frame[c].round(2).to_numpy() for c in ("temp", "dewp", "humid", "wind_speed", "precip", "visib")},
            "late": (frame["arr_delay"] >= 15).where(frame["arr_delay"].notna()).astype("boolean").to_numpy(),
        })
        out = out.drop_duplicates("flight_id")
        out["_date"] = [dt.date.fromisoformat(s[:10]) for s in out["sched_dep"]]
        reference = out[out["_date"] < first_night].drop(columns=["_date"]).reset_index(drop=True)
        days = [first_night + dt.timedelta(days=i) for i in range(count)]
        frames = [(d, out[out["_date"] == d].drop(columns=["_date"]).reset_index(drop=True)) for d in days]
        return self._split(frames, reference)


class HotelRates(Scenario):
    """A resort hotel's bookings, one arrival day a night, the average price paid per room to forecast; the
    reference is the first weeks of summer 2016, and the nights run into the low season, when rooms sell
    for a third of the summer price: a real seasonal shift of the concept and the population that a model
    trained on summer cannot extrapolate, and a refit can learn."""

    REFERENCE_DAYS = 45

    def feed(self, nights: int | None = None) -> Feed:
        import pandas as pd

        raw = pd.read_pickle(sources.path_of("hotel_rates"), compression="xz")  # verified pinned bytes only
        raw = raw.sort_values(["arrival_date", "rownames"], kind="stable")
        frame = pd.DataFrame({"booking_id": [f"B{int(i):05d}" for i in raw["rownames"]]})
        frame["arrival_date"] = raw["arrival_date"].to_numpy()
        for col in ("lead_time", "stays_in_weekend_nights", "stays_in_week_nights", "adults", "children", "babies",
                    "meal", "country", "market_segment", "distribution_channel", "is_repeated_guest",
                    "previous_cancellations", "previous_bookings_not_canceled", "reserved_room_type",
                    "assigned_room_type", "booking_changes", "days_in_waiting_list", "customer_type",
                    "required_car_parking_spaces", "total_of_special_requests", "near_christmas", "near_new_years",
                    "historical_adr"):
            frame[col] = raw[col].to_numpy()
        frame["historical_adr"] = frame["historical_adr"].round(2)
        frame["avg_price_per_room"] = raw["avg_price_per_room"].round(2).to_numpy()
        day = pd.to_datetime(frame["arrival_date"]).dt.date
        first = day.min()
        go_live = first + dt.timedelta(days=self.REFERENCE_DAYS)
        reference = frame[day < go_live].reset_index(drop=True)
        count = SAMPLE_NIGHTS + (nights or self.nights)
        days = [go_live + dt.timedelta(days=i) for i in range(count)]
        frames = [(d, frame[day == d].reset_index(drop=True)) for d in days]
        return self._split([(d, f) for d, f in frames if len(f)], reference)


SCENARIOS: dict[str, Scenario] = {
    s.id: s for s in (
        RainWeather(id="rain_weather", title="Rain tomorrow from today's weather", client="Plains Agronomy",
                    use_case="rain forecast", target="rain", id_column="reading_id", label_delay=3, nights=92,
                    incidents={9: "semicolon_delimiter"}, ci_nights=10),
        CreditScoring(id="credit_scoring", title="Loan default at application", client="Iberia Credit",
                      use_case="credit scoring", target="status", id_column="application_id", label_delay=5,
                      nights=92, incidents={8: "dropped_column:assets"}, ci_nights=10, stable=True),
        FaultyCredit(id="credit_faults", title="Loan default with data-quality faults planted on the real feed",
                     client="Iberia Credit", use_case="credit scoring, faulty exports", target="status",
                     id_column="application_id", label_delay=5, nights=60, ci_nights=0, stable=True),
        CreditVolume(id="credit_volume", title="Loan default at volume, nothing changes", client="Iberia Credit",
                     use_case="credit scoring at volume", target="status", id_column="application_id", label_delay=5,
                     nights=60, ci_nights=0, stable=True),
        ResampledCredit(id="credit_channel", title="Loan default, a new channel of young applicants from night 35",
                        client="Iberia Credit", use_case="credit scoring, new channel", target="status",
                        id_column="application_id", label_delay=5, nights=75, ci_nights=0, stable=True,
                        shift_night=35),
        HotelRates(id="hotel_rates", title="Hotel room rates from summer into the low season",
                   client="Atlantic Resort Hotels", use_case="room rate forecast", target="avg_price_per_room",
                   id_column="booking_id", label_delay=2, nights=120, ci_nights=0, shift_night=1),
        FlightsNyc(id="flights_nyc", title="Late arrival of NYC departures", client="Hudson Ground Ops",
                   use_case="arrival delay", target="late", id_column="flight_id", label_delay=1, nights=92,
                   incidents={5: "resent_yesterday"}, ci_nights=9),
    )
}

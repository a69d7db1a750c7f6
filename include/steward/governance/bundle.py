"""The auditor bundle: a self-contained folder (and .zip) an auditor can read and verify offline.

    index.html            one row per run in the date range, links to the copied reports and model cards
    ledger.jsonl          the engagement's whole hash-chained ledger (the chain starts at genesis)
    ledger.head           seq + hash of the last entry
    artifacts.sha256      bundled files with the sha256 the ledger recorded for them (`sha256sum -c`)
    verify_chain.sh       checks the chain with sed + sha256sum only
    signatures/<seq>.sig  signed checkpoints of the ledger head (ADR 0017), SSHSIG format
    allowed_signers       the public key that signed them, for ssh-keygen -Y verify
    signing_keys.pub      the same key(s) as .pub lines: `ssh-keygen -l -f` prints the fingerprint to compare
    verify_signatures.sh  checks every signature with OpenSSH's `ssh-keygen -Y verify`
    VERIFY.md             how to check everything by hand
    lineage.jsonl         the OpenLineage events of the runs in range
    reports/<date>/       quality, drift and performance reports as recorded
    model_cards/v<N>/     model cards, feature importance plot, fairness table
    config_history/       every version of the engagement file the ledger saw, named by its hash
"""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steward.governance import ledger, lineage
from steward.settings import StewardPaths


class BundleInputError(ValueError):
    """Bad export request (unknown engagement, empty range ...): nothing is written."""


def _in_range(day: str | None, since: dt.date, until: dt.date) -> bool:
    return bool(day) and since.isoformat() <= str(day) <= until.isoformat()


def export(paths: StewardPaths, engagement_id: str, since: dt.date, until: dt.date, out: Path,
           sign_head: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Write the bundle to `out` (must not exist or be empty) and `out`.zip. Returns a summary. `sign_head`,
    called once the request is valid, checkpoints the ledger's head first, so entries appended since the
    last night (a rollback, a purge) are signed in the bundle too (ADR 0017)."""
    if since > until:
        raise BundleInputError(f"--since {since} is after --until {until}")
    entries = ledger.read_entries(paths, engagement_id)
    if not entries:
        raise BundleInputError(f"no ledger for engagement {engagement_id!r} under {paths.home / 'ledger'}")
    runs = [e for e in entries if e["type"] == "run" and _in_range(e["logical_date"], since, until)]
    if not runs:
        raise BundleInputError(f"no runs of {engagement_id} between {since} and {until}")
    if out.exists() and any(out.iterdir()):
        raise BundleInputError(f"{out} exists and is not empty")
    if sign_head is not None:
        sign_head()
    verification = ledger.verify(paths, engagement_id)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{engagement_id}-bundle-", dir=out.parent))
    try:
        src = ledger.ledger_path(paths, engagement_id)
        shutil.copyfile(src, staging / "ledger.jsonl")
        if src.with_suffix(".head").exists():
            shutil.copyfile(src.with_suffix(".head"), staging / "ledger.head")
        signed_through, unsigned_why = _copy_signatures(paths, engagement_id, staging)
        latest = {e["logical_date"]: e["seq"] for e in runs}
        checksums: dict[str, str] = {}
        rows = []
        for entry in runs:
            superseded = latest[entry["logical_date"]] != entry["seq"]
            links = {} if superseded else _copy_artifacts(paths, entry, staging, checksums)
            rows.append({**_row(entry, links, superseded), "signed": entry["seq"] <= signed_through,
                         "unsigned": unsigned_why.get(entry["seq"])})
        cards = _copy_model_cards(paths, engagement_id, runs, staging, checksums)
        cards += _copy_governance_documents(paths, entries, staging, checksums)
        configs = _write_config_history(entries, staging)
        events = [ev for ev in lineage.read_events(paths, engagement_id)
                  if _in_range(((ev["run"].get("facets") or {}).get("nominalTime") or {}).get("nominalStartTime", "")[:10],
                               since, until)]
        (staging / "lineage.jsonl").write_text("".join(json.dumps(ev, sort_keys=True) + "\n" for ev in events))
        (staging / "artifacts.sha256").write_text("".join(f"{h}  {p}\n" for p, h in sorted(checksums.items())))
        (staging / "verify_chain.sh").write_text(VERIFY_SH)
        (staging / "verify_chain.sh").chmod(0o755)
        (staging / "verify_signatures.sh").write_text(VERIFY_SIGNATURES_SH.replace("@ENGAGEMENT@", engagement_id))
        (staging / "verify_signatures.sh").chmod(0o755)
        (staging / "VERIFY.md").write_text(_verify_md(engagement_id, verification))
        (staging / "index.html").write_text(_index_html(engagement_id, since, until, rows, cards, configs, verification))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    archive = shutil.make_archive(str(out), "zip", root_dir=out)
    return {"out": str(out), "zip": archive, "runs": len(runs), "events": len(events), "files": len(checksums),
            "ledger_ok": verification.ok}


def _copy_signatures(paths: StewardPaths, engagement_id: str, staging: Path) -> tuple[int, dict[int, str]]:
    """Each signed checkpoint as signatures/<seq>.sig, the keys that signed them as allowed_signers. Returns
    the newest signed seq and, for heads checkpointed unsigned, why (the index says which entries)."""
    from steward.governance import signing

    points = ledger.read_checkpoints(paths, engagement_id)
    signed = [p for p in points if "signature" in p]
    (staging / "signatures").mkdir()
    for point in signed:
        (staging / "signatures" / f"{point['seq']}.sig").write_text(point["signature"])
    keys = sorted({p["public_key"] for p in signed})
    (staging / "allowed_signers").write_text("".join(signing.allowed_signers_line(k) + "\n" for k in keys))
    (staging / "signing_keys.pub").write_text("".join(k + "\n" for k in keys))
    return max((p["seq"] for p in signed), default=0), {p["seq"]: p["unsigned"] for p in points if "unsigned" in p}


def _copy_artifacts(paths: StewardPaths, entry: dict[str, Any], staging: Path, checksums: dict[str, str]) -> dict[str, str]:
    """Copy the reports an entry cites into reports/<date>/ and remember the ledger's hash for each."""
    links: dict[str, str] = {}
    wanted = ("quality_report.html", "drift_report.html", "performance_report.html", "reasons.json", "audit.json")
    for key, digest in entry["artifacts"].items():
        name = Path(key).name
        if name not in wanted:
            continue
        rel = f"reports/{entry['logical_date']}/{name}"
        if _copy_cited(paths, key, digest, rel, staging, checksums):
            links[name] = rel
    return links


def _copy_cited(paths: StewardPaths, key: str, digest: str, rel: str, staging: Path, checksums: dict[str, str]) -> bool:
    """Copy a file the ledger cites into the bundle at `rel`, keeping the ledger's hash for artifacts.sha256."""
    source = ledger.resolve_artifact(paths, key)
    if not source.exists():
        return False
    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, staging / rel)
    checksums[rel] = digest
    return True


def _copy_model_cards(paths: StewardPaths, engagement_id: str, runs: list[dict[str, Any]], staging: Path,
                      checksums: dict[str, str]) -> list[dict[str, str]]:
    cards = []
    for entry in runs:
        for key, digest in entry["artifacts"].items():
            p = Path(key)
            if p.parent.name.startswith("model_v") and p.name in {"model_card.html", "model_card.md",
                                                                  "feature_importance.png", "fairness.json",
                                                                  "feature_importance.json"}:
                rel = f"model_cards/{p.parent.name.removeprefix('model_')}/{p.name}"
                if _copy_cited(paths, key, digest, rel, staging, checksums) and p.name == "model_card.html":
                    cards.append({"version": p.parent.name.removeprefix("model_"), "night": entry["logical_date"],
                                  "href": rel})
    return sorted({c["href"]: c for c in cards}.values(), key=lambda c: int(c["version"][1:]))


def _copy_governance_documents(paths: StewardPaths, entries: list[dict[str, Any]], staging: Path,
                               checksums: dict[str, str]) -> list[dict[str, str]]:
    """Every version of the monitoring plan, every approval answer and every incident report the ledger cites
    (issue 35)."""
    docs = []
    for entry in entries:
        detail = entry["detail"]
        if entry["type"] == "plan":
            folder, what = f"monitoring_plan/v{detail['version']}", f"monitoring plan v{detail['version']}"
        elif entry["type"] == "incident_report":
            folder, what = f"incident_reports/{detail['incident']}-{entry['seq']}", f"incident report {detail['incident']}"
        elif entry["type"] == "approval":
            folder, what = f"approvals/{entry['seq']}", f"approval of model v{detail['version']}: {detail['outcome']}"
        else:
            continue
        for key, digest in entry["artifacts"].items():
            rel = f"{folder}/{Path(key).name}"
            if _copy_cited(paths, key, digest, rel, staging, checksums) and rel.endswith((".html", "approval.md")):
                docs.append({"version": what, "night": entry.get("logical_date") or "", "href": rel})
    return docs


def _write_config_history(entries: list[dict[str, Any]], staging: Path) -> list[dict[str, Any]]:
    history = []
    folder = staging / "config_history"
    folder.mkdir()
    for e in entries:
        if e["type"] != "config":
            continue
        detail = e["detail"]
        name = f"{e['seq']:05d}-{detail['sha256'][:12]}.yaml"
        (folder / name).write_text(detail["text"])
        row = {"seq": e["seq"], "at": e["at"], "sha256": detail["sha256"], "file": f"config_history/{name}"}
        for client in detail.get("client_files", []):  # the client defaults it inherited (steward.clients)
            client_name = f"{e['seq']:05d}-{detail['sha256'][:12]}.{client['path'].replace('/', '-')}"
            (folder / client_name).write_text(client["text"])
            row.setdefault("client_files", []).append(
                {"path": client["path"], "sha256": client["sha256"], "file": f"config_history/{client_name}"})
        history.append(row)
    return history


def _row(entry: dict[str, Any], links: dict[str, str], superseded: bool) -> dict[str, Any]:
    rec = entry["record"] or {}
    quality = rec.get("quality") or {}
    failed = [f"{c['expectation']}({c['column'] or ''})" for c in quality.get("checks", []) if not c["success"]]
    drift = rec.get("drift") or {}
    decision = rec.get("decision") or {}
    gate = rec.get("promotion") or {}
    batch = (rec.get("data") or {}).get("batch") or {}
    return {
        "seq": entry["seq"],
        "date": entry["logical_date"],
        "superseded": superseded,
        "outcome": rec.get("outcome", "?"),
        "fingerprint": batch.get("sha256", ""),
        "rows": ((rec.get("data") or {}).get("profile") or {}).get("rows"),
        "quality": "-" if not quality else ("pass" if quality.get("success") else "FAIL"),
        "failed": failed,
        "drift": None if not drift else f"{drift['drift_share']:.0%}" + (" (dataset drift)" if drift["dataset_drift"] else ""),
        "drifted": drift.get("drifted_features", []),
        "reasons": [*decision.get("reasons", []), *gate.get("reasons", [])],
        "before": (rec.get("models") or {}).get("champion_before"),
        "after": (rec.get("models") or {}).get("champion_after"),
        "links": links,
        "hash": entry.get("prev"),
    }


def _index_html(engagement_id: str, since: dt.date, until: dt.date, rows: list[dict[str, Any]],
                cards: list[dict[str, str]], configs: list[dict[str, Any]], verification: ledger.Verification) -> str:
    e = html.escape
    body = []
    for r in rows:
        links = " ".join(f"<a href='{e(href)}'>{e(name.split('.')[0].replace('_', ' '))}</a>"
                         for name, href in sorted(r["links"].items()))
        body.append(
            f"<tr class='{e(r['outcome'])}{' superseded' if r['superseded'] else ''}' data-date='{e(r['date'])}'>"
            f"<td>{e(r['date'])}{' <small>(superseded by a rerun)</small>' if r['superseded'] else ''}</td>"
            f"<td><code title='{e(r['fingerprint'])}'>{e(r['fingerprint'][:12])}</code><br>{r['rows'] or '-'} rows</td>"
            f"<td>{e(r['quality'])}{'<ul>' + ''.join(f'<li>{e(f)}</li>' for f in r['failed']) + '</ul>' if r['failed'] else ''}</td>"
            f"<td>{e(r['drift'] or '-')}<br><small>{e(', '.join(r['drifted']))}</small></td>"
            f"<td><b>{e(r['outcome'])}</b><ul>{''.join(f'<li>{e(x)}</li>' for x in r['reasons'])}</ul></td>"
            f"<td>v{r['before']} &rarr; v{r['after']}</td><td>{links}</td><td>{r['seq']}"
            + ("<br><span class='ok'>signed</span>" if r["signed"] else
               f"<br><span class='bad' title='{e(r['unsigned'] or 'no signed checkpoint covers this entry yet')}'>"
               "unsigned</span>") + "</td></tr>"
        )
    status = ("<p class='ok'>Ledger verified at export: "
              f"{verification.entries} entries, head <code>{verification.head}</code></p>") if verification.ok else (
        "<p class='bad'>LEDGER VERIFICATION FAILED at export: " + e("; ".join(verification.problems)) + "</p>")
    card_list = "".join(f"<li><a href='{e(c['href'])}'>model {e(c['version'])}</a> (trained for {e(c['night'])})</li>"
                        for c in cards if c["version"].startswith("v")) or "<li>none in range</li>"
    documents = "".join(f"<li><a href='{e(c['href'])}'>{e(c['version'])}</a> ({e(c['night'])})</li>"
                        for c in cards if not c["version"].startswith("v")) or "<li>none</li>"
    def inherited(c: dict[str, Any]) -> str:
        files = ", ".join(f"<a href='{e(f['file'])}'>{e(f['path'])}</a>" for f in c.get("client_files", []))
        return f"; inherits {files}" if files else ""

    config_list = "".join(f"<li><a href='{e(c['file'])}'>{e(c['sha256'])}</a> recorded {e(c['at'])} (ledger entry {c['seq']})"
                          f"{inherited(c)}</li>" for c in configs)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Audit bundle {e(engagement_id)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #bbb;padding:4px 6px;vertical-align:top}}th{{background:#eee}}ul{{margin:0;padding-left:1.2em}}
tr.quarantine td{{background:#fde2e2}}tr.promote td{{background:#e3f6e5}}tr.retrain td{{background:#fff6d6}}
tr.superseded td{{color:#777}}.ok{{color:#17702b}}.bad{{color:#b00;font-weight:bold}}</style></head><body>
<h1>Audit bundle: {e(engagement_id)}</h1>
<p>Runs from {since} to {until}. Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} by steward.
See <a href="VERIFY.md">VERIFY.md</a> to check that nothing was altered.</p>
{status}
<table id="runs"><thead><tr><th>night</th><th>data fingerprint</th><th>quality</th><th>drift</th>
<th>decision and reasons</th><th>champion</th><th>reports</th><th>ledger</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<h2>Model cards</h2><ul>{card_list}</ul>
<h2>Monitoring plan, approvals and incident reports</h2><ul id="governance-documents">{documents}</ul>
<h2>Engagement configuration history</h2><ul>{config_list}</ul>
<h2>Lineage</h2><p><a href="lineage.jsonl">lineage.jsonl</a>: OpenLineage run events of these nights.</p>
</body></html>
"""


VERIFY_SH = r"""#!/bin/sh
# Check the hash chain of ledger.jsonl with sed and sha256sum only. Exit 1 at the first broken line.
set -eu
prev=0000000000000000000000000000000000000000000000000000000000000000
n=0
while IFS= read -r line || { [ -n "$line" ] && echo "line $((n + 1)): truncated (no newline)" && exit 1; }; do
  n=$((n + 1))
  recorded=$(printf '%s' "$line" | sed -n 's/.*"prev":"\([0-9a-f]\{64\}\)".*/\1/p')
  if [ "$recorded" != "$prev" ]; then
    echo "line $n: prev is '$recorded', expected $prev (chain broken)"; exit 1
  fi
  prev=$(printf '%s' "$line" | sha256sum | cut -d' ' -f1)
done < ledger.jsonl
if [ -f ledger.head ] && ! grep -q "\"$prev\"" ledger.head; then
  echo "ledger.head does not name the last entry's hash $prev (entries removed from the end?)"; exit 1
fi
echo "chain ok: $n entries, head $prev"
sha256sum -c --quiet artifacts.sha256 && echo "artifacts ok: every bundled report matches the hash in the ledger"
"""


VERIFY_SIGNATURES_SH = r"""#!/bin/sh
# Check each signed checkpoint with OpenSSH only: the signature in signatures/<seq>.sig must be a
# "steward-ledger" signature, by a key in allowed_signers, of the line
#   steward ledger <engagement> seq <seq> head <sha256 of ledger line seq>
# where the hash is recomputed here from ledger.jsonl. Exit 1 at the first that does not verify.
set -eu
engagement=@ENGAGEMENT@
newest=0
for sig in signatures/*.sig; do
  [ -e "$sig" ] || { echo "UNSIGNED: no signed checkpoint in this bundle"; exit 1; }
  seq=$(basename "$sig" .sig)
  head=$(sed -n "${seq}p" ledger.jsonl | tr -d '
' | sha256sum | cut -d' ' -f1)
  if ! printf 'steward ledger %s seq %s head %s
' "$engagement" "$seq" "$head" |
      ssh-keygen -Y verify -f allowed_signers -I steward -n steward-ledger -s "$sig" >/dev/null 2>&1; then
    echo "entry $seq: the signature does not verify (the ledger changed after it was signed, or another key signed)"
    exit 1
  fi
  [ "$seq" -gt "$newest" ] && newest=$seq
done
total=$(wc -l < ledger.jsonl | tr -d ' ')
echo "signatures ok: entries 1..$newest of $total are signed by:"
ssh-keygen -l -f signing_keys.pub 2>/dev/null || cat signing_keys.pub
[ "$newest" -eq "$total" ] || echo "entries $((newest + 1))..$total are not covered by a signature yet"
"""


def _verify_md(engagement_id: str, verification: ledger.Verification) -> str:
    return f"""# How to verify this bundle ({engagement_id})

Everything here can be checked with standard tools; no steward installation is needed.

## 1. The ledger is an unbroken hash chain

`ledger.jsonl` has one JSON object per line. Each line's `prev` field is the SHA-256 of the exact bytes
of the line before it (without the newline); the first line's `prev` is 64 zeros. To check line N by hand:

    sed -n "$((N-1))p" ledger.jsonl | tr -d '\\n' | sha256sum      # hash of line N-1
    sed -n "${{N}}p" ledger.jsonl | grep -o '"prev":"[0-9a-f]*"'   # must be the same

`./verify_chain.sh` does this for every line, checks that `ledger.head` names the last line's hash (so
removing entries from the end is detected), then runs the artifact check below. Any edited byte in any
entry breaks the chain at the next line; a removed, inserted or swapped entry breaks the `seq` order and
the chain.

## 2. The bundled reports are the ones the ledger recorded

`artifacts.sha256` lists each copied file with the hash **taken from the ledger entry that cites it**
(not recomputed at export):

    sha256sum -c artifacts.sha256

To tie a line of `artifacts.sha256` to the ledger, search the ledger for that hash:
`grep -c <hash> ledger.jsonl` must be at least 1.

## 3. Nobody rewrote the chain: signed checkpoints

A chain proves order, not authorship: whoever can write the ledger file can rewrite every line and
recompute every hash. After each night steward signs "the ledger ended at entry N with hash H" with an
Ed25519 key that is kept outside the state volume (ADR 0017). Each signature is in `signatures/<N>.sig`,
in OpenSSH's format; the key that made them is in `allowed_signers`. First compare its fingerprint with
the one the operator gave you out of band:

    ssh-keygen -l -f signing_keys.pub

Then check a signature by hand (the hash is recomputed from the ledger, not taken from steward):

    N=7; H=$(sed -n "${{N}}p" ledger.jsonl | tr -d '\n' | sha256sum | cut -d' ' -f1)
    printf 'steward ledger {engagement_id} seq %s head %s\n' "$N" "$H" |
        ssh-keygen -Y verify -f allowed_signers -I steward -n steward-ledger -s signatures/$N.sig

`./verify_signatures.sh` does this for every signature and says which entries no signature covers yet.
When the signing key was rotated, a `"type":"key_rotation"` entry names the next key (`to_key`, its
fingerprint) and the checkpoint that covers it is signed by the previous key: the old key vouched for the
new one, and `allowed_signers` lists both.
A signature at entry N vouches for every entry up to N (the chain). `index.html` marks run entries that
no signature covers as unsigned, with the reason the night recorded (for example no key configured).
With steward installed: `steward audit verify ENGAGEMENT --allowed-signers YOUR_COPY`.

## 4. What each run entry contains

`"type":"run"` entries carry the complete audit record of a night in `record`: the data fingerprint
(sha256 of the raw batch), every data-quality check and its result, drift numbers per feature, the
decision and its reasons (who decided: `decided_by`), model versions before and after, MLflow run ids,
the configuration hash and the code version. `"type":"config"` entries carry each version of the
engagement file (also in `config_history/`, named by their hash) and, when it inherits client defaults, the
client files it was merged with (`client_files`; the configuration hash then covers every file). A
`"type":"plan"` entry cites the post-market monitoring plan generated from that configuration
(`monitoring_plan/v<N>/`, Markdown and HTML; `config_sha256` names the configuration): a change of policy is a
new plan version. An `"type":"approval"` entry records a person's answer to a promotion request: the version,
`outcome` (approved, rejected, timed_out, superseded), `answered_by` (the Airflow user; none on a timeout),
`answered_at`, `comment`, the approvers named and the champion before and after. An `"type":"incident_report"`
entry cites a drafted incident report (`incident_reports/`, with the regulatory clock chosen); a later entry
of the same type with `serious` set records a person's decision on whether the incident is serious. An
`"type":"adoption"` entry records a model adopted at onboarding (`steward onboard --model`): where it came from
(`source`), the sha256 of the file steward serves as version 1 (compare it with the version's
`steward.adopted_sha256` tag in MLflow), who adopted it, its metrics on the reference, and any type a person
reviewed and added to the repository's allow-list for it (`trusted_types_added`). A rerun of a night appends a new entry;
the older one is kept and marked superseded in `index.html`.

## Status at export

{"Verified by steward at export: " + str(verification.entries) + " entries, head " + str(verification.head)
 if verification.ok else "VERIFICATION FAILED at export: " + "; ".join(verification.problems)}
"""

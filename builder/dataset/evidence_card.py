"""The card's "Agreement evidence" section (manifest format 9 on): every agreement and quality figure with
its 95% interval and the n it rests on, Gwet's AC1 beside alpha and kappa, unitizing alpha beside span F1,
what the span disagreements are, and the diagnostics (builder.records.evidence)."""

from __future__ import annotations

from builder.project import Project
from builder.records.evidence import DOMINANT_SHARE, agreement_evidence
from builder.records.intervals import RESAMPLES, SEED


def evidence_of(project: Project, facts) -> dict:
    """builder.records.evidence.agreement_evidence of `facts.records`, computed once per build."""
    cached = getattr(facts, "evidence_figures", None)
    if cached is None:
        cached = agreement_evidence(facts.records, project.stance_values, project.entity_values)
        facts.evidence_figures = cached
    return cached


def _of_scheme(project: Project, figure: str) -> bool:
    """Whether a diagnostic's figure (builder.records.evidence.diagnostics) is of a half `project`'s scheme has:
    stance figures name stance, the others are of entity spans."""
    return project.has_stance if "stance" in figure else project.has_entities


def evidence_record(project: Project, facts) -> dict | None:
    """What a release's manifest records of the agreement evidence (manifest format 10 on), as the card states it:
    stance alpha, kappa and AC1, span F1 and unitizing alpha (all labels and per label), each {value, low, high,
    n}; the span disagreement counts; the diagnostics' kinds; the pooled quality figures; the bootstrap's
    resamples and seed. None where the card does not compute it (datasets over 100,000 sentences)."""
    total = sum(facts.counts[s]["records"] for s in facts.counts)
    if not (facts.records or total == 0):
        return None
    e = evidence_of(project, facts)
    stance = {"stance": {name: e["stance"][name] for name in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1")}}
    spans = {
        "span_f1": {"all": e["span_f1"]["f1"], "pairs": e["span_f1"]["pairs"], "per_label": e["span_f1"]["per_label"]},
        "unitizing_alpha": {"all": e["unitizing_alpha"]["overall"], "per_label": e["unitizing_alpha"]["per_label"]},
        "span_disagreements": e["span_disagreements"]["counts"],
    }
    return {  # a one-half scheme records only its own half's figures, as its card states them
        **(stance if project.has_stance else {}),
        **(spans if project.has_entities else {}),
        "diagnostics": sorted(
            {f"{d['kind']}: {d['figure']}" for d in e["diagnostics"] if _of_scheme(project, d["figure"])}
        ),
        "quality": {name: figure for name, figure, _ in getattr(facts, "quality_figures", [])},
        "resamples": e["resamples"],
        "seed": e["seed"],
    }


def interval_text(f: dict) -> str:
    """A figure's 95% interval as the card writes it ("n/a" where undefined)."""
    return "n/a" if f["low"] is None else f"{f['low']}–{f['high']}"


def _row(name: str, f: dict, based_on: str) -> str:
    value = "n/a" if f["value"] is None else f["value"]
    return f"| {name} | {value} | {interval_text(f)} | {based_on} |"


def evidence_text(project: Project, facts, quality_figures: list[tuple[str, dict, str]]) -> str:
    """The section's markdown. `quality_figures`: (name, figure, based on) rows of the quality control."""
    e = evidence_of(project, facts)
    s, f1, ua = e["stance"], e["span_f1"], e["unitizing_alpha"]
    m = ua["annotators_per_sentence"]
    stance_rows = [
        _row(
            "Krippendorff's alpha (nominal), stance",
            s["krippendorff_alpha"],
            f"{s['krippendorff_alpha']['n']} sentences",
        ),
        _row(
            "Fleiss' kappa, stance",
            s["fleiss_kappa"],
            f"{s['fleiss_kappa']['n']} sentences with {s['fleiss_kappa']['annotators_per_sentence']} annotators",
        ),
        _row("Gwet's AC1 (nominal), stance", s["gwet_ac1"], f"{s['gwet_ac1']['n']} sentences"),
    ]
    entity_rows = [
        _row(
            "pairwise exact-span F1, entities (all labels)", f1["f1"], f"{f1['f1']['n']} sentences, {f1['pairs']} pairs"
        ),
        *[
            _row(f"pairwise exact-span F1, {label}", f1["per_label"][label], f"{f1['per_label'][label]['spans']} spans")
            for label in project.entity_values
        ],
        _row(
            "Krippendorff's unitizing alpha, entities (all labels)",
            ua["overall"],
            f"{ua['sentences']} sentences with {m} annotators",
        ),
        *[
            _row(
                f"Krippendorff's unitizing alpha, {label}",
                ua["per_label"][label],
                f"{ua['per_label'][label]['units']} spans",
            )
            for label in project.entity_values
        ],
    ]
    rows = [
        "| measure | value | 95% interval | n |",
        "|---|---|---|---|",
        *(stance_rows if project.has_stance else []),  # a stance-only or entities-only scheme: its own half's
        *(entity_rows if project.has_entities else []),
        *[_row(name, figure, based_on) for name, figure, based_on in quality_figures],
    ]
    breakdown = e["span_disagreements"]
    if breakdown["disagreements"]:
        parts = ", ".join(
            f"{kind.replace('_', ' ')} {breakdown['counts'][kind]} ({breakdown['shares'][kind]:.0%})"
            for kind in breakdown["counts"]
        )
        disagreements = (
            f"Span disagreements ({breakdown['disagreements']}: each span one annotator of a pair marked and the other "
            f"did not mark exactly): {parts}. Boundary: the other marked an overlapping span with the same label; "
            "label: the same span with another label; boundary and label: only an overlapping span with another "
            "label; missing: nothing overlapping."
        )
    else:
        disagreements = "No span disagreements between annotators of the same sentence."
    stance_reading = f"""alpha and kappa correct for chance using how often each label is used; when one stance label
dominates (here {_dominant(s)}), their chance agreement approaches their observed agreement and they can be
low while annotators almost always agree (the prevalence paradox). Gwet's AC1 corrects for chance without
that dependence: read it beside them when one label holds {DOMINANT_SHARE:.0%} or more of the ratings. AC2 is
not given: the stance labels are nominal."""
    span_reading = """Span F1 counts only exact matches and is not chance-corrected;
unitizing alpha (Krippendorff 1995, 2004) is, and penalises a boundary off by a few characters less than a
missing span."""
    if project.has_stance and project.has_entities:
        which_to_read = f"Which to read: {stance_reading} {span_reading}\n\n{disagreements}"
    elif project.has_stance:  # a stance-only scheme: nothing of spans
        which_to_read = f"Which to read: {stance_reading}"
    else:  # an entities-only scheme: nothing of stance
        which_to_read = f"Which to read: {span_reading}\n\n{disagreements}"
    shown = [d for d in e["diagnostics"] if _of_scheme(project, d["figure"])]
    diagnostics = "\n".join(f"- {d['message']}." for d in shown) or "- None."
    return f"""
## Agreement evidence

Every figure with its 95% interval (a bootstrap over sentences, {RESAMPLES} resamples, seed {SEED}: the same
data always gives the same interval; Wilson's interval for shares) and the n it rests on.

{chr(10).join(rows)}

{which_to_read}

Diagnostics:

{diagnostics}
"""


def _dominant(stance: dict) -> str:
    shares = {k: v for k, v in stance["label_shares"].items() if v is not None}
    if not shares:
        return "no ratings"
    top = max(shares, key=lambda k: (shares[k], k))
    return f"'{top}' holds {shares[top]:.0%} of the ratings"

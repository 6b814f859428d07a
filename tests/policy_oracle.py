"""Independent reference implementation ("oracle") of decision policy v1.

Written from /work/shared/spec/decision-policy.md and /work/shared/spec/case-sheet.md only,
without looking at the package, so that the package can be checked against it.

Pure Python, standard library only. Three-valued (Kleene strong) logic throughout:
True / False / None (None = unknown). An absent key or a null value is unknown, never "no".

The explanation fields (`missing`, `exception`, `overridden_by`, the flags and the clinical risk score) were
added later from the policy's words and from the explanation contract (docs/explanations.md: which keys
each unknown fact names as `missing`, which facts an undetermined statement used), again without the code.

API: decide(case, policy=POLICY_V1) -> {"verdict": ..., "conditions": [...], "statements": {...},
"flags": [...], "clinical_risk_score": ...}. `policy` (a Policy) holds the readings an authoring group may
change: the adjuvant window (an amount in months, weeks or days), whether an unrecorded ablation counts as
"without", and which assessors can establish unresectability; the defaults are policy v1.
Command line: python policy_oracle.py cases.json  -> {"<id>": decision, ...} as JSON.
"""

import json
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from fractions import Fraction

# ---------------------------------------------------------------------------
# Kleene strong three-valued logic (None = unknown)
# ---------------------------------------------------------------------------


def not3(a):
    return None if a is None else (not a)


def and3(*args):
    """False if any conjunct is false, else unknown if any is unknown, else true."""
    if any(a is False for a in args):
        return False
    if any(a is None for a in args):
        return None
    return True


def or3(*args):
    """True if any disjunct is true, else unknown if any is unknown, else false.
    An empty disjunction is false."""
    if any(a is True for a in args):
        return True
    if any(a is None for a in args):
        return None
    return False


def status_of(value):
    return {True: "applies", False: "not-applicable", None: "undetermined"}[value]


# ---------------------------------------------------------------------------
# Value sets from the policy / case sheet
# ---------------------------------------------------------------------------

COLORECTAL_SITES = {"colon", "rectosigmoid", "rectum", "colorectal-unspecified"}
ADENOCARCINOMA_HISTOLOGIES = {"adenocarcinoma", "mucinous-adenocarcinoma", "signet-ring-cell"}
CHEST_STAGING = {"ct-chest", "pet-ct"}
ABDOMEN_PELVIS_STAGING = {"ct-abdomen-pelvis", "pet-ct"}
CENTRE_KEYS = (
    "centre_hpb_surgery",
    "centre_medical_oncology",
    "centre_interventional_radiology",
    "centre_nursing",
    "centre_nuclear_medicine",
)
SECONDS_PER = {"months": Fraction(2629800), "weeks": Fraction(604800), "days": Fraction(86400)}
"""Seconds in each unit of time: a month is the mean Julian month (365.25 / 12 days), as UCUM's `mo`."""


@dataclass(frozen=True)
class Policy:
    """The readings of policy v1 that an authoring group may change (defaults: policy v1)."""

    adjuvant_window: tuple = (3, "months")
    """(amount, unit): resected needs `months_since_liver_resection` at most this long; unit a key of
    SECONDS_PER. Compared exactly, in seconds, so 12 weeks is 12 weeks (about 2.7598 months)."""
    absent_ablation_means_without: bool = True
    """The oracle's author read "`none` without ablation" as ablation recorded false (see READING below);
    the project chose the literal reading, where an unrecorded ablation also counts as "without" (parallel
    to "`done` without a margin" in the policy, and docs/explanations.md). False: the author's reading."""
    qualified_assessors: frozenset = frozenset({"mdt", "hpb-surgeon"})
    """The `resectability_assessed_by` values whose "unresectable" settles the fact."""


POLICY_V1 = Policy()
_POLICY = ContextVar("policy", default=POLICY_V1)


def current_policy():
    """The policy the current decide() call decides under."""
    return _POLICY.get()


def exact(number):
    """A JSON number as the exact decimal it was written as."""
    return Fraction(str(number))


def past_adjuvant_window(months):
    amount, unit = current_policy().adjuvant_window
    return exact(months) * SECONDS_PER["months"] > exact(amount) * SECONDS_PER[unit]


CONDITION_ORDER = (
    "with-concurrent-systemic-chemotherapy",
    "in-complete-multidisciplinary-programme",
    "selected-patients-only",
    "within-clinical-trial-only",
    "refer-to-complete-programme",
)


def get(case, key):
    """Absent key and null value are the same thing: unknown (None)."""
    return case.get(key)


# ---------------------------------------------------------------------------
# Facts (one function each)
# ---------------------------------------------------------------------------


def fact_colorectal_primary(case):
    site = get(case, "primary_site")
    if site is None:
        return None
    return site in COLORECTAL_SITES


def fact_adenocarcinoma(case):
    histology = get(case, "histology")
    if histology is None:
        return None
    return histology in ADENOCARCINOMA_HISTOLOGIES


def fact_liver_metastases(case):
    flag = get(case, "liver_metastases")
    count = get(case, "liver_mets_count")
    resection = get(case, "liver_resection")
    margin = get(case, "resection_margin")
    other_evidence = (
        (count is not None and count >= 1) or resection in ("planned", "done") or margin is not None
    )
    if flag is False:
        # False unless another key says otherwise; if one does, that is a conflict.
        return None if other_evidence else False
    if flag is True or other_evidence:
        return True
    # READING: `liver_mets_count` 0 on its own does not make the fact false; only
    # `liver_metastases` false does ("False when `liver_metastases` is false ...").
    return None


def fact_in_scope(case):
    return and3(
        fact_colorectal_primary(case),
        fact_adenocarcinoma(case),
        fact_liver_metastases(case),
    )


def resectability_value(case):
    """The single recorded resectability value, or None (not recorded / disagreement)."""
    value = get(case, "resectability")
    if isinstance(value, list):
        distinct = set(value)
        # READING: a list whose items are all the same value is that value; a list with
        # different values is a disagreement (unknown); an empty list records nothing
        # (unknown).
        if len(distinct) != 1:
            return None
        return next(iter(distinct))
    return value


def fact_recorded_unresectable(case):
    value = resectability_value(case)
    if value == "resectable":
        return False  # from any assessor
    if value == "unresectable":
        if get(case, "resectability_assessed_by") in current_policy().qualified_assessors:
            return True
        return None  # another or an unrecorded assessor
    return None  # borderline, disagreement, not recorded


def fact_recorded_resected(case):
    margin = get(case, "resection_margin")
    resection = get(case, "liver_resection")
    ablation = get(case, "ablation")
    months = get(case, "months_since_liver_resection")
    recurrence = get(case, "recurrence_since_resection")

    # Any margin together with liver_resection none/planned is a conflict.
    # READING: the conflict is checked first ("Otherwise it is false when ..."), so it
    # wins over the false rules (e.g. R2 with `none` is unknown, not false).
    if margin is not None and resection in ("none", "planned"):
        return None

    # READING: "`liver_resection` `none` without ablation" needs `ablation` recorded
    # false; an unrecorded `ablation` is unknown, not "no" (open world), and `none` with
    # ablation true is the ablation-only case, which is unknown. Reading an absent
    # `ablation` as "without" would let adding `ablation: true` turn false into unknown,
    # which the policy's monotonicity rules out.
    if (
        margin == "R2"
        or (
            resection == "none"
            and (ablation is False or (ablation is None and current_policy().absent_ablation_means_without))
        )
        or recurrence is True
        or (months is not None and past_adjuvant_window(months))
    ):
        return False

    # READING: "`recurrence_since_resection` is not true" is taken literally: an
    # unrecorded recurrence does not block `true` (worked example demo-004 relies on it).
    if (
        margin in ("R0", "R1")
        and resection in ("done", None)
        and months is not None
        and not past_adjuvant_window(months)
        and recurrence is not True
    ):
        return True

    # planned; done without a margin; time since resection not recorded; ablation only.
    return None


def fact_unresectable_and_resected(case):
    """(unresectable, resected) after disjointness: they are disjoint populations."""
    unresectable = fact_recorded_unresectable(case)
    resected = fact_recorded_resected(case)
    if unresectable is True and resected is True:
        return None, None  # conflict: both unknown
    if resected is True:
        return False, True
    if unresectable is True:
        return True, False
    return unresectable, resected


def fact_unresectable(case):
    return fact_unresectable_and_resected(case)[0]


def fact_resected(case):
    return fact_unresectable_and_resected(case)[1]


def fact_regimen_progressed(line):
    progressed = line.get("progressed")
    response = line.get("response")
    if progressed is True:
        return True
    if response == "PD":
        # progressed false with response PD is a conflict; progressed unrecorded -> true
        return None if progressed is False else True
    if progressed is False:
        return False
    return None  # progressed not recorded, response CR/PR/SD/not recorded


def fact_regimen_metastatic(line):
    setting = line.get("setting")
    if setting is None:
        return None
    return setting == "metastatic"


def fact_progressed_on_first_line(case):
    lines = get(case, "systemic_lines")
    if lines is None:
        return None  # systemic_lines not recorded
    # Kleene OR over the regimens of (metastatic AND progressed); [] -> false.
    return or3(*[and3(fact_regimen_metastatic(line), fact_regimen_progressed(line)) for line in lines])


def fact_first_line_setting(case):
    return not3(fact_progressed_on_first_line(case))


def fact_extrahepatic_disease(case):
    status = get(case, "extrahepatic_disease")
    sites = get(case, "extrahepatic_sites")
    imaging = get(case, "staging_imaging")
    if status == "present":
        return True
    if status == "absent":
        # READING: "no sites listed" holds when `extrahepatic_sites` is absent, null or
        # an empty list; a non-empty list with `absent` is a conflict (unknown).
        if sites:
            return None
        if imaging is None:
            return None
        chest = any(study in CHEST_STAGING for study in imaging)
        abdomen_pelvis = any(study in ABDOMEN_PELVIS_STAGING for study in imaging)
        return False if (chest and abdomen_pelvis) else None
    # indeterminate (even with sites listed), or not recorded (even with sites listed)
    return None


def fact_in_haip_trial(case):
    # a trial_id alone does not settle it
    return get(case, "enrolled_in_haip_trial")


def fact_programme_complete(case):
    values = [get(case, key) for key in CENTRE_KEYS]
    if any(v == "no" for v in values):
        return False
    if all(v in ("yes", "affiliated") for v in values):
        return True
    return None


def fact_s1_met(case):
    if get(case, "planned_haip") is False:
        return None  # no HAIP plan to judge
    # READING: `planned_haip` true or unrecorded: the fact is `planned_concurrent_systemic`
    # (the policy only carves out `planned_haip` false; demo-002/005/006 agree).
    return get(case, "planned_concurrent_systemic")


# ---------------------------------------------------------------------------
# Statement conditions
# ---------------------------------------------------------------------------


def cond_s3a(case):
    return and3(fact_in_scope(case), fact_unresectable(case), fact_progressed_on_first_line(case))


def cond_s3b(case):
    return and3(fact_in_scope(case), fact_unresectable(case), fact_first_line_setting(case))


def cond_s5(case):
    return and3(fact_in_scope(case), fact_resected(case))


def cond_s4(case):
    return and3(fact_in_scope(case), fact_extrahepatic_disease(case), not3(fact_in_haip_trial(case)))


def cond_haip_live(case):
    """S1 and S2: in scope AND NOT(S4's condition) AND (unresectable OR resected)."""
    return and3(
        fact_in_scope(case),
        not3(cond_s4(case)),
        or3(fact_unresectable(case), fact_resected(case)),
    )


# ---------------------------------------------------------------------------
# Verdict and conditions
# ---------------------------------------------------------------------------


def verdict_of(case, s3a, s3b, s4, s5):
    scope = fact_in_scope(case)
    if scope is False:
        return "not-applicable"
    if scope is None:
        return "undetermined"
    if s4 is True:
        return "not-recommended"
    if s4 is None:
        return "undetermined"
    # READING: with disjointness at most one indication applies; should more than one
    # ever apply, the policy's listing order S3a, S3b, S5 is used.
    for value, level in ((s3a, "consider"), (s3b, "acceptable"), (s5, "option")):
        if value is True:
            return level
    if s3a is False and s3b is False and s5 is False:
        return "not-applicable"
    return "undetermined"


def conditions_of(case, verdict, s2):
    if verdict not in ("consider", "acceptable", "option"):
        return []
    conditions = [
        "with-concurrent-systemic-chemotherapy",
        "in-complete-multidisciplinary-programme",
    ]
    if verdict == "option":
        conditions.append("selected-patients-only")
    if fact_extrahepatic_disease(case) is True and fact_in_haip_trial(case) is True:
        conditions.append("within-clinical-trial-only")
    if s2 is True and fact_programme_complete(case) is False:
        conditions.append("refer-to-complete-programme")
    return [c for c in CONDITION_ORDER if c in conditions]


# ---------------------------------------------------------------------------
# Explanations: `missing`, exception, overridden_by, flags, score (docs/explanations.md)
# ---------------------------------------------------------------------------

RELAPSE_WINDOW_MONTHS = 12  # flag relapse-after-adjuvant: months_since_end < 12
SCORE_INTERVAL_MONTHS = 12  # Fong: disease-free interval < 12 months
SCORE_COUNT = 1  # Fong: more than one liver metastasis
SCORE_DIAMETER_CM = 5  # Fong: largest > 5 cm
SCORE_CEA = 200  # Fong: CEA > 200 ng/mL
CEA_UNITS = {"ng/mL", "ug/L"}


def missing_colorectal_primary(case):
    return set() if fact_colorectal_primary(case) is not None else {"primary_site"}


def missing_adenocarcinoma(case):
    return set() if fact_adenocarcinoma(case) is not None else {"histology"}


def missing_liver_metastases(case):
    if fact_liver_metastases(case) is not None or get(case, "liver_metastases") is False:
        return set()  # known, or unknown because of a conflict
    return {"liver_metastases"}


def _both_recorded(case):
    return fact_recorded_unresectable(case) is True and fact_recorded_resected(case) is True


def missing_unresectable(case):
    if fact_unresectable(case) is not None or _both_recorded(case):
        return set()
    if resectability_value(case) == "unresectable":
        return {"resectability_assessed_by"}  # from another or an unrecorded assessor
    return {"resectability"}  # not recorded, borderline, a disagreement


def missing_resected(case):
    if fact_resected(case) is not None or _both_recorded(case):
        return set()
    margin = get(case, "resection_margin")
    resection = get(case, "liver_resection")
    if margin is not None and resection in ("none", "planned"):
        return set()  # a conflict
    if resection == "none" and get(case, "ablation") is True and margin is None:
        return set()  # ablation alone, which the consensus does not address
    if resection == "none" and get(case, "ablation") is None and margin is None:
        return {"ablation"}  # "without ablation" needs it recorded (absent_ablation_means_without False)
    keys = set()
    if margin is None:
        keys.add("resection_margin")
    if get(case, "months_since_liver_resection") is None:
        keys.add("months_since_liver_resection")
    if resection is None and margin is None:
        keys.add("liver_resection")
    return keys


def missing_progressed_on_first_line(case):
    if fact_progressed_on_first_line(case) is not None:
        return set()
    lines = get(case, "systemic_lines")
    if lines is None:
        return {"systemic_lines"}
    keys = set()
    for index, line in enumerate(lines):
        metastatic = fact_regimen_metastatic(line)
        progressed = fact_regimen_progressed(line)
        if and3(metastatic, progressed) is not None:
            continue
        conflict = line.get("progressed") is False and line.get("response") == "PD"
        if metastatic is None and progressed is not False:
            keys.add(f"systemic_lines[{index}].setting")
        if progressed is None and not conflict and metastatic is not False:
            keys.add(f"systemic_lines[{index}].progressed")
    return keys


def missing_extrahepatic_disease(case):
    if fact_extrahepatic_disease(case) is not None:
        return set()
    if get(case, "extrahepatic_disease") == "absent":
        return set() if get(case, "extrahepatic_sites") else {"staging_imaging"}
    return {"extrahepatic_disease"}  # not recorded, or indeterminate


def missing_in_haip_trial(case):
    return set() if fact_in_haip_trial(case) is not None else {"enrolled_in_haip_trial"}


# Each statement's condition as clauses (ANDed) of literals (ORed): (fact, its missing keys, negated).
FACTS = {
    "colorectal-primary": (fact_colorectal_primary, missing_colorectal_primary),
    "adenocarcinoma": (fact_adenocarcinoma, missing_adenocarcinoma),
    "liver-metastases": (fact_liver_metastases, missing_liver_metastases),
    "unresectable": (fact_unresectable, missing_unresectable),
    "resected": (fact_resected, missing_resected),
    "progressed-on-first-line": (fact_progressed_on_first_line, missing_progressed_on_first_line),
    "extrahepatic-disease": (fact_extrahepatic_disease, missing_extrahepatic_disease),
    "in-haip-trial": (fact_in_haip_trial, missing_in_haip_trial),
}
SCOPE = [[("colorectal-primary", False)], [("adenocarcinoma", False)], [("liver-metastases", False)]]
NOT_S4 = [
    ("colorectal-primary", True),
    ("adenocarcinoma", True),
    ("liver-metastases", True),
    ("extrahepatic-disease", True),
    ("in-haip-trial", False),
]
CLAUSES = {
    "S3a": [*SCOPE, [("unresectable", False)], [("progressed-on-first-line", False)]],
    "S3b": [*SCOPE, [("unresectable", False)], [("progressed-on-first-line", True)]],
    "S4": [*SCOPE, [("extrahepatic-disease", False)], [("in-haip-trial", True)]],
    "S5": [*SCOPE, [("resected", False)]],
    "S1": [*SCOPE, NOT_S4, [("unresectable", False), ("resected", False)]],
    "S2": [*SCOPE, NOT_S4, [("unresectable", False), ("resected", False)]],
}


def missing_of(case, statement):
    """The `missing` keys of an undetermined statement: those of the unknown facts it used, that is, of
    the unknown literals of its unknown clauses (no clause being false)."""
    keys = set()
    for clause in CLAUSES[statement]:
        values = [(fact, negated, FACTS[fact][0](case)) for fact, negated in clause]
        literal_values = [not3(v) if negated else v for _fact, negated, v in values]
        if or3(*literal_values) is not None:
            continue  # a settled clause names no key
        for fact, _negated, value in values:
            if value is None:
                keys |= FACTS[fact][1](case)
    return sorted(keys)


def flags_of(case):
    flags = set()
    if get(case, "liver_resection") == "none" and get(case, "ablation") is True:
        flags.add("ablation-only")
    lines = get(case, "systemic_lines") or []
    progressed = [x for x in lines if and3(fact_regimen_metastatic(x), fact_regimen_progressed(x))]
    if len(progressed) >= 2:
        flags.add("beyond-second-line")
    for line in lines:
        months = line.get("months_since_end")
        adjuvant = line.get("setting") in ("adjuvant", "neoadjuvant")
        if adjuvant and months is not None and months < RELAPSE_WINDOW_MONTHS:
            flags.add("relapse-after-adjuvant")
    if fact_extrahepatic_disease(case) is False and get(case, "prior_extrahepatic_disease_treated") is True:
        flags.add("prior-extrahepatic-disease")
    if any(get(case, key) == "affiliated" for key in CENTRE_KEYS):
        flags.add("affiliated-service")
    return sorted(flags)


def clinical_risk_score(case):
    """The Fong score, one point per criterion; None unless all five are known."""
    cea = get(case, "cea")
    cea_value = cea.get("value") if isinstance(cea, dict) and cea.get("unit") in CEA_UNITS else None
    criteria = (
        get(case, "primary_node_positive"),
        get(case, "disease_free_interval_months"),
        get(case, "liver_mets_count"),
        get(case, "largest_liver_met_cm"),
        cea_value,
    )
    if any(value is None for value in criteria):
        return None
    node, interval, count, largest, cea_value = criteria
    return sum(
        (
            node is True,
            interval < SCORE_INTERVAL_MONTHS,
            count > SCORE_COUNT,
            largest > SCORE_DIAMETER_CM,
            cea_value > SCORE_CEA,
        )
    )


def decide(case, policy=POLICY_V1):
    token = _POLICY.set(policy)
    try:
        return _decide(case)
    finally:
        _POLICY.reset(token)


def _decide(case):
    s3a = cond_s3a(case)
    s3b = cond_s3b(case)
    s4 = cond_s4(case)
    s5 = cond_s5(case)
    live = cond_haip_live(case)  # S1 and S2 share this condition

    statements = {}
    for sid, met in (("S1", fact_s1_met(case)), ("S2", fact_programme_complete(case))):
        entry = {"status": status_of(live)}
        if live is not False:
            entry["met"] = met
        statements[sid] = entry
    statements["S3a"] = {"status": status_of(s3a)}
    statements["S3b"] = {"status": status_of(s3b)}
    statements["S4"] = {"status": status_of(s4)}
    statements["S5"] = {"status": status_of(s5)}
    for name, entry in statements.items():
        if entry["status"] == "undetermined":
            entry["missing"] = missing_of(case, name)
    # S4's exception: extrahepatic disease true and in a HAIP trial (S4 is then not-applicable).
    if fact_extrahepatic_disease(case) is True and fact_in_haip_trial(case) is True:
        statements["S4"]["exception"] = "clinical-trial"
    # An indication that applies while S4 applies is reported as applying, overridden by S4.
    for name in ("S3a", "S3b", "S5"):
        if statements[name]["status"] == "applies" and s4 is True:
            statements[name]["overridden_by"] = "S4"

    verdict = verdict_of(case, s3a, s3b, s4, s5)
    return {
        "verdict": verdict,
        "conditions": conditions_of(case, verdict, live),
        "statements": statements,
        "flags": flags_of(case),
        "clinical_risk_score": clinical_risk_score(case),
    }


def load_cases(path):
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if isinstance(data, dict) and isinstance(data.get("cases"), list):
        return data["cases"]
    if isinstance(data, dict):
        return [data]
    return data


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python policy_oracle.py CASES.json\n")
        sys.exit(2)
    decisions = {}
    for case in load_cases(sys.argv[1]):
        decisions[case.get("id")] = decide(case)
    json.dump(decisions, sys.stdout, indent=1)
    sys.stdout.write("\n")

"""Which case-sheet keys each rule reads, proven from its parsed query algebra, and the rule families that
decide alike for every patient who agrees on those keys (memo.py caches their results).

A rule's footprint is read off the rdflib SPARQL algebra of its query, never off its text: every triple
pattern of its WHERE clause, and every expression. A predicate is one of three kinds:

- an input predicate, written by the case-sheet converter (ontology/casesheet.ttl): it reads the keys
  that can write it (a node's link or class reads every key that makes the node);
- a conclusion, written by another rule's CONSTRUCT template: it reads what that rule reads (for a
  fact assessment, the rule that assesses the fact, when the pattern's subject is bound to one fact);
- a knowledge-base predicate (neither): it reads no patient data.

A pattern on a constant subject of the knowledge base (a parameter, a unit: `haipp:adjuvant-window
qudt:numericValue ?window`) whose predicate no rule writes reads the knowledge base alone too, whatever its
predicate: case-sheet data only has subjects under the patient's IRI (CASE_BASE).

The footprint cannot be proven, and the rule is decided per patient, when the rule reads a variable
predicate, a property path with `*`, `+`, `?` or `!`, an rdf:type it cannot attribute, a conclusion of a
stage that is not a family stage, or turns an IRI that may be under the patient's IRI into a string other
than to mint an IRI (`IRI(CONCAT(STR(?node), "..."))`): its results would then not be the same relative
to every patient's IRI.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path as FilePath
from typing import Any

from rdflib import OWL, RDF, RDFS, SKOS, Graph, Literal, URIRef, Variable
from rdflib.paths import AlternativePath, InvPath, MulPath, NegatedPath, Path, SequencePath
from rdflib.plugins.sparql import prepareQuery
from rdflib.plugins.sparql.parserutils import CompValue, Expr

from . import casesheet, engine, resources
from .namespaces import CASE_BASE, DCTERMS, HAIP

FAMILY_STAGES = ("record", "fact", "flag", "score")
"""The stages whose rules read the patient's own data and are grouped into families."""
NODE_STAGES = ("classify",)
"""Stages whose rules conclude about a patient one fact assessment at a time (checked: see
_per_assessment): run in every family, over that family's assessments only."""

_ASSESSED = HAIP.assessedFact


class Unprovable(ValueError):
    """A rule whose footprint cannot be proven; the message says why."""


@dataclass(frozen=True)
class Pattern:
    subject: Any
    predicate: URIRef
    obj: Any
    scope: int
    """Which (sub)query the pattern is in: a variable's name means something only within its scope."""
    required: bool
    """In a part of the query every solution must match (not under OPTIONAL, UNION, MINUS or EXISTS)."""
    group: int
    """Which basic graph pattern it is in: every solution matches all of a group's patterns at once."""


@dataclass(frozen=True)
class Parsed:
    """What a rule's algebra says about the data it reads and writes."""

    patterns: tuple[Pattern, ...]
    template: tuple[tuple[Any, Any, Any], ...]
    problems: tuple[str, ...]
    """Reasons its footprint cannot be proven, found while walking the algebra."""
    binds: tuple[tuple[Variable, Any], ...]
    """BIND and aggregate results with their expressions, innermost first; and each variable a subquery
    projects, with the same variable inside it (the expression is then that variable). Variables are
    named apart per (sub)query: `?x@3` (see _scoped)."""
    conditions: tuple[Any, ...]
    """FILTER and OPTIONAL conditions."""
    top: int
    """The scope of the outermost query (the template's variables are its)."""
    joins: tuple[tuple[Variable, Variable], ...] = ()
    """Variables (named apart per scope) that one triple pattern or property path links."""


def parse(text: str) -> Parsed:
    """Walk the algebra of one query (rdflib's SPARQL parser)."""
    query = prepareQuery(text)
    algebra = query.algebra
    patterns: list[Pattern] = []
    problems: list[str] = []
    binds: list[tuple[Variable, Any]] = []
    conditions: list[Any] = []
    scopes = iter(range(1, 1_000_000))
    top: list[int] = []
    joins: list[tuple[Variable, Variable]] = []

    def path_predicates(path: Any) -> Iterator[URIRef]:
        if isinstance(path, URIRef):
            yield path
        elif isinstance(path, SequencePath | AlternativePath):
            for part in path.args:
                yield from path_predicates(part)
        elif isinstance(path, InvPath):
            yield from path_predicates(path.arg)
        elif isinstance(path, MulPath | NegatedPath):
            problems.append(f"a property path that can reach unknown nodes: {path.n3()}")
        else:
            problems.append(f"an unsupported property path: {path!r}")

    def triples(node: CompValue, scope: int, required: bool) -> None:
        group = next(scopes)
        for s, p, o in node.get("triples") or ():
            if isinstance(s, Variable) and isinstance(o, Variable):
                joins.append((_scoped(s, scope), _scoped(o, scope)))
            if isinstance(p, Variable):
                problems.append(f"a variable predicate ?{p}")
            elif isinstance(p, Path):
                found = list(path_predicates(p))
                sequence = isinstance(p, SequencePath) and all(isinstance(a, URIRef) for a in p.args)
                for i, predicate in enumerate(
                    found
                ):  # a plain sequence: its ends are a subject and an object
                    subject = s if sequence and i == 0 else None
                    obj = o if sequence and i == len(found) - 1 else None
                    patterns.append(Pattern(subject, predicate, obj, scope, required and sequence, group))
            else:
                patterns.append(Pattern(s, p, o, scope, required, group))

    def expression(value: Any, scope: int | None = None) -> None:
        """Walk the graph patterns of EXISTS and NOT EXISTS inside an expression (plain triple patterns
        only: they read in the enclosing query's scope, never required) and note functions whose value
        differs from run to run."""
        if isinstance(value, Expr):
            if value.name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
                # rdflib keeps the translated pattern as an attribute (its item is the parse, emptied)
                graph = vars(value).get("graph")
                if not isinstance(graph, CompValue) or scope is None:
                    problems.append("an EXISTS pattern rdflib did not translate")
                else:
                    walk(graph, scope, False)  # it reads in the enclosing query's scope
                return
            if value.name in _NONDETERMINISTIC:
                problems.append(f"{value.name.removeprefix('Builtin_')}(), which differs from run to run")
            for key, child in value.items():
                if not key.startswith("_"):
                    expression(child, scope)
        elif isinstance(value, list | tuple):
            for child in value:
                expression(child, scope)

    def walk(node: Any, scope: int | None, required: bool) -> None:
        if isinstance(node, list | tuple):
            for child in node:
                walk(child, scope, required)
            return
        if not isinstance(node, CompValue) or isinstance(node, Expr):
            if isinstance(node, Expr):
                expression(node, scope)
            return
        name = node.name
        if name == "Project":  # a (sub)query: its variables are its own, but for those it projects
            inner = next(scopes)
            top.append(inner) if scope is None else None
            walk(node["p"], inner, required)
            if scope is not None:
                binds.extend((_scoped(v, scope), _scoped(v, inner)) for v in node.get("PV") or ())
            return
        if scope is None:
            scope = next(scopes)
        if name == "BGP":
            triples(node, scope, required)
            return
        if name == "Graph":
            problems.append("a GRAPH pattern")
        if name == "Extend":
            walk(node["p"], scope, required)
            expression(node["expr"], scope)
            binds.append((_scoped(node["var"], scope), _scoped(node["expr"], scope)))
            return
        if name == "AggregateJoin":
            walk(node["p"], scope, required)
            for aggregate in node.get("A") or ():
                expression(aggregate, scope)
                binds.append((_scoped(aggregate["res"], scope), _scoped(aggregate, scope)))
            return
        if name == "LeftJoin":
            walk(node["p1"], scope, required)
            walk(node["p2"], scope, False)
            expression(node.get("expr"), scope)
            conditions.append(_scoped(node.get("expr"), scope))
            return
        if name in ("Union", "Minus"):
            walk(node["p1"], scope, required and name == "Minus")
            walk(node["p2"], scope, False)
            return
        if name == "Filter":
            walk(node["p"], scope, required)
            expression(node["expr"], scope)
            conditions.append(_scoped(node["expr"], scope))
            return
        if name == "OrderBy":
            walk(node["p"], scope, required)
            for condition in node.get("expr") or ():
                expression(condition, scope)
                conditions.append(_scoped(condition, scope))
            return
        if name == "Slice":
            problems.append("LIMIT or OFFSET (which rows remain depends on every patient in the store)")
        for key, child in node.items():
            if key == "template" or key.startswith("_"):
                continue
            if isinstance(child, Expr):
                expression(child, scope)
            else:
                walk(child, scope, required)

    walk(algebra.get("p"), None, True)
    template = tuple(algebra.get("template") or ())
    return Parsed(
        tuple(patterns),
        template,
        tuple(problems),
        tuple(binds),
        tuple(conditions),
        top[0] if top else 0,
        tuple(joins),
    )


_NONDETERMINISTIC = frozenset(
    {"Builtin_NOW", "Builtin_RAND", "Builtin_UUID", "Builtin_STRUUID", "Builtin_BNODE"}
)


def _scoped(value: Any, scope: int) -> Any:
    """A copy of an expression whose variables are named apart per (sub)query: a name means one variable
    only within its query (rdflib even numbers aggregates `__agg_1__` again in every subquery)."""
    if isinstance(value, Variable):
        return Variable(f"{value}@{scope}")
    if isinstance(value, CompValue):
        return CompValue(
            value.name, **{k: _scoped(v, scope) for k, v in value.items() if not k.startswith("_")}
        )
    if isinstance(value, list | tuple):
        return [_scoped(v, scope) for v in value]
    return value


def _variables(value: Any) -> Iterator[Variable]:
    if isinstance(value, Variable):
        yield value
    elif isinstance(value, CompValue):
        for key, child in value.items():
            if not key.startswith("_"):
                yield from _variables(child)
    elif isinstance(value, list | tuple):
        for child in value:
            yield from _variables(child)


@dataclass(frozen=True)
class InputVocabulary:
    """What the case-sheet converter writes (ontology/casesheet.ttl), by predicate and class."""

    keys_of_predicate: dict[URIRef, frozenset[str]]
    """The keys whose values a predicate holds."""
    node_of_predicate: dict[URIRef, frozenset[str]]
    """For the predicates that make a node (its link, fixed property): the keys any of which makes it."""
    keys_of_class: dict[URIRef, frozenset[str]]
    node_of_class: dict[URIRef, frozenset[str]]
    patient_class: URIRef
    on_patient: frozenset[URIRef]
    """Predicates whose subject is the patient."""
    node_predicates: frozenset[URIRef]
    """Predicates whose subject is a node under the patient's IRI."""
    links: dict[URIRef, str]
    """Predicates whose object is a node under the patient's IRI, with the text its IRI starts with after
    the patient's."""
    code_predicates: frozenset[URIRef]
    """Predicates whose object is a code of the knowledge base."""


@cache
def input_vocabulary() -> InputVocabulary:
    """Which case-sheet keys can write each predicate and each node class. A node (its link from its
    parent, its class, its fixed property and its index) is written when any of its keys has a value, so
    reading any of them reads all of those keys."""
    table = casesheet.mapping()
    by_node: dict[URIRef, set[str]] = {}
    by_predicate: dict[URIRef, set[str]] = {DCTERMS.identifier: {"id"}}

    def under(node: URIRef | None, name: str) -> None:
        while node is not None:
            by_node.setdefault(node, set()).add(name)
            node = table.nodes[node].parent

    for name, key in table.keys.items():
        under(key.node, name)
        if key.prop is not None:
            by_predicate.setdefault(key.prop, set()).add(name)
        for field in table.sub_keys.get(name, {}).values():
            under(field.node, name)
            if field.prop is not None:
                by_predicate.setdefault(field.prop, set()).add(name)
    # a node made once per patient is there when any of its keys has a value; an indexed node (an item
    # of a list) is one of a key's values
    nodes: dict[URIRef, set[str]] = {}
    classes: dict[URIRef, set[str]] = {}
    node_classes: dict[URIRef, set[str]] = {}
    for iri, template in table.nodes.items():
        names = by_node.get(iri, set())
        indexed = template.index_property is not None
        for predicate in (template.link, template.fixed_property, template.index_property):
            if predicate is not None:
                (by_predicate if indexed else nodes).setdefault(predicate, set()).update(names)
        (classes if indexed else node_classes).setdefault(template.node_class, set()).update(names)
    definitions = list(table.keys.values()) + [
        f for fields in table.sub_keys.values() for f in fields.values()
    ]
    templates = table.nodes.values()
    return InputVocabulary(
        {p: frozenset(k) for p, k in by_predicate.items()},
        {p: frozenset(k) for p, k in nodes.items()},
        {c: frozenset(k) for c, k in classes.items()},
        {c: frozenset(k) for c, k in node_classes.items()},
        HAIP.Patient,
        frozenset(
            {DCTERMS.identifier}
            | {d.prop for d in definitions if d.prop is not None and d.node is None}
            | {t.link for t in templates if t.parent is None}
        ),
        frozenset(
            {d.prop for d in definitions if d.prop is not None and d.node is not None}
            | {t.link for t in templates if t.parent is not None}
            | {p for t in templates for p in (t.fixed_property, t.index_property) if p is not None}
        ),
        _link_paths(table),
        frozenset(d.prop for d in definitions if d.prop is not None and d.value_class is not None),
    )


def _link_paths(table: casesheet.CaseSheetMapping) -> dict[URIRef, str]:
    """Each node link with the text that the IRI of its object starts with after the patient's IRI (the
    converter names a node `<parent>/<slug>`, or `<parent>/<slug>/<index>`)."""

    def path(iri: URIRef) -> str:
        template = table.nodes[iri]
        return (path(template.parent) if template.parent is not None else "") + "/" + template.slug

    paths: dict[URIRef, str] = {}
    for iri, template in table.nodes.items():
        text = path(iri)
        common = paths.get(template.link, text)
        while not text.startswith(common):
            common = common[:-1]
        paths[template.link] = common
    return paths


@dataclass(frozen=True)
class Footprint:
    """What of a case sheet a rule reads: some keys' values, and for some nodes only whether they are
    there (whether any of their keys has a value)."""

    values: frozenset[str]
    presences: frozenset[frozenset[str]]

    def __or__(self, other: Footprint) -> Footprint:
        values = self.values | other.values
        return Footprint(values, frozenset(g for g in self.presences | other.presences if not g <= values))

    def keys(self) -> frozenset[str]:
        return self.values.union(*self.presences)


@dataclass(frozen=True)
class RuleFootprint:
    stage: str
    name: str
    footprint: Footprint | None
    """What the rule reads, directly and through the rules it reads (its family's); None: unprovable."""
    why: str | None
    """Why the footprint cannot be proven (None when it is)."""


@dataclass(frozen=True)
class Family:
    """Rules that read each other's conclusions, decided together over one stand-in per distinct input."""

    name: str
    rules: tuple[tuple[str, str], ...]
    """(stage, file name) in stage order."""
    footprint: Footprint | None
    """What its rules read. None: not proven; decided per patient."""
    why: str | None


@dataclass(frozen=True)
class Families:
    families: tuple[Family, ...]
    footprints: tuple[RuleFootprint, ...]
    node_rules: tuple[tuple[str, str], ...]
    """(stage, file name) of the per-assessment rules run in every family (classify)."""
    why_not: str | None
    """Why no rule can be memoized at all (the node or profile stages fail their check); None if they can."""


@dataclass(frozen=True)
class _Value:
    """What an expression's value is for every patient, as far as the rule's text can tell."""

    kind: str
    """"same": the same for every patient (whatever it is); "patient": the patient's IRI followed by
    `text` (as an IRI or a string); "relative": the patient's IRI followed by something, or the same for
    every patient; "leaky": depends on the patient's IRI in another way (a hash, a length, a substring)."""
    text: str = ""
    """For "patient": the text known to follow the patient's IRI (all of it when `exact`)."""
    exact: bool = False
    known: bool | None = None
    """A boolean known to be the same for every patient."""
    string: bool = False
    """For "patient" and "relative": a string (STR, CONCAT) rather than an IRI. A conclusion holding such
    a string holds the patient's IRI as text, which no IRI renaming can move to another patient."""


_SAME = _Value("same")
_LEAKY = _Value("leaky")
_PATIENT = _Value("patient", "", exact=True)
_UNDER = _Value("patient", "/")
_RELATIVE = _Value("relative")


def _may_equal(one: _Value, other: _Value) -> bool:
    """Whether two values (IRIs) could be the same IRI for some patient."""
    if one.kind != "patient" or other.kind != "patient":
        return True
    if one.exact and other.exact:
        return one.text == other.text
    if one.exact:
        return one.text.startswith(other.text)
    if other.exact:
        return other.text.startswith(one.text)
    return one.text.startswith(other.text) or other.text.startswith(one.text)


_BOOLEAN_FUNCTIONS = frozenset(
    {
        "Builtin_BOUND",
        "Builtin_isIRI",
        "Builtin_isBLANK",
        "Builtin_isLITERAL",
        "Builtin_isNUMERIC",
        "Builtin_LANG",
        "Builtin_DATATYPE",
        "Builtin_LANGMATCHES",
        "Builtin_sameTerm",
        "ConditionalAndExpression",
        "ConditionalOrExpression",
        "UnaryNot",
        "RelationalExpression",
        "InExpression",
    }
)
"""Functions whose value does not change when every IRI under the patient's moves to another patient's:
they test kinds and compare terms (two IRIs under the same patient compare as their suffixes do; an IRI
under a patient's never equals a knowledge-base term, since patient IRIs have their own base)."""


_COMPARISONS = frozenset({"RelationalExpression", "InExpression", "Builtin_sameTerm"})


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, CompValue):
        return [leaf for k, v in value.items() if not k.startswith("_") for leaf in _leaves(v)]
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _join(values: list[_Value]) -> _Value:
    if any(v.kind == "leaky" for v in values):
        return _LEAKY
    patients = [v for v in values if v.kind != "same"]
    if not patients:
        return _SAME
    string = any(v.string for v in patients)
    if len(patients) < len(values) or any(v.kind != "patient" for v in patients):
        return replace(_RELATIVE, string=string)
    if all(v == patients[0] for v in patients):
        return patients[0]
    common = patients[0].text
    for v in patients[1:]:
        while not v.text.startswith(common):
            common = common[:-1]
    return _Value("patient", common, string=string)


def _evaluate(expr: Any, env: dict[Variable, _Value]) -> _Value:
    """Evaluate an expression over the abstract values of its variables (see _Value)."""
    if isinstance(expr, Variable):
        return env.get(expr, _SAME)
    if not isinstance(expr, CompValue):  # an Expr, or an aggregate (a plain CompValue)
        if isinstance(expr, list | tuple):
            return _join([_evaluate(e, env) for e in expr])
        return _SAME
    name = expr.name
    args = [v for k, v in expr.items() if not k.startswith("_") and k not in ("op", "distinct", "separator")]
    if name in ("Builtin_STR", "Builtin_IRI", "Builtin_URI"):
        value = _evaluate(expr["arg"], env)
        if value.kind in ("patient", "relative"):
            return replace(value, string=name == "Builtin_STR")
        return value
    if name == "Builtin_CONCAT":
        parts = list(expr["arg"])
        values = [_evaluate(part, env) for part in parts]
        first, rest = values[0], values[1:]
        if all(v.kind == "same" for v in values):
            return _SAME
        if first.kind == "patient" and all(v.kind == "same" for v in rest):
            if not first.exact:
                return _Value("patient", first.text, string=True)
            text = first.text
            for part in parts[1:]:
                if not isinstance(part, Literal):
                    return _Value("patient", text, string=True)
                text += str(part)
            return _Value("patient", text, exact=True, string=True)
        if first.kind == "relative" and all(v.kind == "same" for v in rest):
            return replace(_RELATIVE, string=True)
        return _LEAKY
    if name == "Builtin_STRSTARTS":
        whole, start = _evaluate(expr["arg1"], env), _evaluate(expr["arg2"], env)
        if whole.kind == "same" and start.kind == "same":
            return _SAME
        if whole.kind == "patient" and start.kind == "patient" and start.exact:
            if whole.exact or whole.text.startswith(start.text):
                return _Value("same", known=whole.text.startswith(start.text))
            if not start.text.startswith(whole.text):
                return _Value("same", known=False)
        return _LEAKY
    if name == "Builtin_IF":
        condition = _evaluate(expr["arg1"], env)
        if condition.known is not None:
            return _evaluate(expr["arg2"] if condition.known else expr["arg3"], env)
        if condition.kind == "leaky":
            return _LEAKY
        return _join([_evaluate(expr["arg2"], env), _evaluate(expr["arg3"], env)])
    if name == "Builtin_COALESCE":
        return _join([_evaluate(a, env) for a in expr["arg"]])
    if name == "Aggregate_Count":
        return _SAME
    if name in ("Aggregate_Min", "Aggregate_Max", "Aggregate_Sample"):
        return _evaluate(expr["vars"], env)
    if name in ("Builtin_EXISTS", "Builtin_NOTEXISTS"):
        return _SAME  # its patterns are read as the rule's (see parse)
    values = [_evaluate(a, env) for a in args]
    if name in _COMPARISONS:
        # two IRIs under the same patient compare as their suffixes do, and an IRI under a patient's never
        # equals a constant outside the patients' base; a text holding the patient's IRI, or a constant
        # under the patients' base, could compare differently for another patient
        constants = [
            a for a in _leaves(args) if isinstance(a, URIRef | Literal) and str(a).startswith(CASE_BASE)
        ]
        relative = [v for v in values if v.kind in ("patient", "relative")]
        if (
            any(v.kind == "leaky" for v in values)
            or any(v.string for v in relative)
            or (relative and constants)
        ):
            return _LEAKY
        return _SAME
    if name in _BOOLEAN_FUNCTIONS:
        return _LEAKY if any(v.kind == "leaky" for v in values) else _SAME
    # any other function (hashes, lengths, substrings, GROUP_CONCAT, arithmetic) of a patient's IRI leaks
    return _SAME if all(v.kind == "same" for v in values) else _LEAKY


def _environment(parsed: Parsed) -> tuple[dict[Variable, _Value], list[str]]:
    """The abstract value of each variable of a rule (named apart per scope, see _scoped), and where its
    conclusions could depend on the patient's IRI other than by being named under it."""
    vocabulary = input_vocabulary()
    kb = _knowledge_base_only()
    literal = _literal_predicates()
    required: dict[Variable, _Value] = {}
    optional: dict[Variable, _Value] = {}

    def note(var: Any, scope: int, value: _Value, always: bool) -> None:
        """A variable in a pattern every solution matches is all its patterns say (`always`); one only in
        optional or alternative patterns is any of them."""
        if isinstance(var, Variable):
            var = _scoped(var, scope)
            if always:
                required[var] = _meet(required.get(var), value)
            else:
                known = optional.get(var)
                optional[var] = value if known is None else _join([known, value])

    for pattern in parsed.patterns:
        p, s, o, scope, always = (
            pattern.predicate,
            pattern.subject,
            pattern.obj,
            pattern.scope,
            pattern.required,
        )
        if p in kb or _on_knowledge_base(pattern):
            continue
        if (p == RDF.type and o == vocabulary.patient_class) or p in vocabulary.on_patient:
            note(s, scope, _PATIENT, always)
        elif p == HAIP.aboutPatient:
            note(o, scope, _PATIENT, always)
            note(s, scope, _UNDER, always)
        elif p in vocabulary.node_predicates:
            note(s, scope, _UNDER, always)
        else:
            note(s, scope, _RELATIVE, always)
        if p in vocabulary.links:
            note(o, scope, _Value("patient", vocabulary.links[p]), always)
        elif (
            p != HAIP.aboutPatient
            and p not in literal
            and p not in vocabulary.code_predicates
            and p != RDF.type
        ):
            note(o, scope, _RELATIVE, always)
    env = {**{v: x for v, x in optional.items() if v not in required}, **required}
    problems = []
    for var, expr in parsed.binds:
        value = _evaluate(expr, env)
        if value.kind == "leaky":
            problems.append(
                f"?{str(var).split('@')[0]} depends on the patient's IRI other than by naming under it"
            )
        known = env.get(var)
        env[var] = value if known is None else _join([known, value])
    for condition in parsed.conditions:
        if condition is not None and _evaluate(condition, env).kind == "leaky":
            problems.append("a condition depends on the patient's IRI")
    problems += _unlinked(parsed, env, kb)
    for _s, _p, o in parsed.template:
        concluded = env.get(_scoped(o, parsed.top)) if isinstance(o, Variable) else None
        if concluded is not None and concluded.string and concluded.kind in ("patient", "relative"):
            problems.append(f"?{o} concludes text that holds the patient's IRI")
    return env, problems


def _unlinked(parsed: Parsed, env: dict[Variable, _Value], kb: frozenset[URIRef]) -> list[str]:
    """A rule must read one patient only: every variable that a pattern outside the knowledge base reads
    from must be linked, pattern by pattern (and through the variables subqueries project), to one
    patient variable. A pattern on another patient, or on a node of no patient, could read data a
    stand-in does not have."""
    parent: dict[Variable, Variable] = {}

    def root(var: Variable) -> Variable:
        while parent.get(var, var) != var:
            var = parent[var]
        return var

    links = list(parsed.joins) + [(v, e) for v, e in parsed.binds if isinstance(e, Variable)]
    for one, other in links:
        parent[root(one)] = root(other)
    patients = {root(v) for v, value in env.items() if value == _PATIENT}
    if len(patients) > 1:
        return ["it reads more than one patient (patterns not linked to one patient variable)"]
    readers = {
        _scoped(p.subject, p.scope)
        for p in parsed.patterns
        if isinstance(p.subject, Variable) and p.predicate not in kb
    }
    if any(root(var) not in patients for var in readers):
        return ["it reads data not linked to the patient (a pattern on no patient's node)"]
    return []


def _meet(known: _Value | None, value: _Value) -> _Value:
    """What holds of a value that two descriptions both describe: the more precise; two that cannot both
    hold (a contradiction: the pattern never matches) give the safe "relative"."""
    if known is None:
        return value
    if known.kind == "patient" and value.kind == "patient":
        if not _may_equal(known, value):
            return _RELATIVE
        if known.exact or (not value.exact and len(known.text) >= len(value.text)):
            return known
        return value
    if "relative" in (known.kind, value.kind) and "patient" in (known.kind, value.kind):
        return known if known.kind == "patient" else value  # "relative" says less
    return known if known == value else _RELATIVE


@cache
def _literal_predicates() -> frozenset[URIRef]:
    """Predicates whose values are literals: declared datatype or annotation properties (and the built-in
    annotation properties)."""
    graph = engine.tbox_graph()
    declared = {
        p
        for kind in (OWL.DatatypeProperty, OWL.AnnotationProperty)
        for p in graph.subjects(RDF.type, kind)
        if isinstance(p, URIRef)
    }
    return frozenset(declared | {RDFS.label, RDFS.comment, SKOS.definition, SKOS.prefLabel})


@cache
def _knowledge_base_only() -> frozenset[URIRef]:
    """Predicates neither the converter nor any rule writes: they read the knowledge base alone."""
    written = set(input_vocabulary().keys_of_predicate)
    for _stage, _name, parsed in _all_rules():
        written |= {p for _s, p, _o in parsed.template if isinstance(p, URIRef)}
    graph = Graph()
    graph.parse(data=engine.knowledge_base_ntriples().decode("utf-8"), format="nt")
    return frozenset(p for p in set(graph.predicates()) if isinstance(p, URIRef) and p not in written)


@cache
def _rule_written() -> frozenset[URIRef]:
    """Predicates some rule's CONSTRUCT template writes."""
    return frozenset(
        p for _stage, _name, parsed in _all_rules() for _s, p, _o in parsed.template if isinstance(p, URIRef)
    )


@cache
def _knowledge_base_subjects() -> frozenset[URIRef]:
    """The IRIs the knowledge base says something about."""
    graph = Graph()
    graph.parse(data=engine.knowledge_base_ntriples().decode("utf-8"), format="nt")
    return frozenset(s for s in graph.subjects() if isinstance(s, URIRef) and not s.startswith(CASE_BASE))


def _on_knowledge_base(pattern: Pattern) -> bool:
    """A pattern that reads the knowledge base alone, whatever its predicate: its subject is a constant the
    knowledge base describes (never under CASE_BASE, where case-sheet data has all its subjects) and no
    rule writes its predicate."""
    return (
        isinstance(pattern.subject, URIRef)
        and pattern.subject in _knowledge_base_subjects()
        and pattern.predicate not in _rule_written()
    )


@cache
def _all_rules() -> tuple[tuple[str, str, Parsed], ...]:
    stages = engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING
    return tuple((stage, name, parse(text)) for stage in stages for name, text in engine.rules(stage))


@dataclass(frozen=True)
class _Node:
    """A node a rule reads or writes, as far as its text tells: the facts it is an assessment of (none
    known: any), and its IRI's abstract value."""

    facts: frozenset[URIRef]
    value: _Value


@dataclass(frozen=True)
class _Access:
    predicate: URIRef
    obj: URIRef | None
    """A constant object, or None (any)."""
    node: _Node


def _node_of(pattern: Pattern, patterns: tuple[Pattern, ...], env: dict[Variable, _Value]) -> _Node:
    """The node a pattern reads: an assessment of the facts that the patterns joined with it name (the
    required patterns of its scope and the patterns of its own group), with its variable's value."""
    facts = frozenset(
        other.obj
        for other in patterns
        if other.predicate == _ASSESSED
        and isinstance(other.obj, URIRef)
        and other.subject == pattern.subject
        and other.scope == pattern.scope
        and (other.required or other.group == pattern.group)
    )
    subject = pattern.subject
    if not isinstance(subject, Variable):
        return _Node(facts, _RELATIVE)
    return _Node(facts, env.get(_scoped(subject, pattern.scope), _RELATIVE))


def _writes(parsed: Parsed) -> list[_Access]:
    """What a rule's CONSTRUCT template writes."""
    env, _problems = _environment(parsed)
    top = parsed.top
    template = tuple(Pattern(s, p, o, top, True, 0) for s, p, o in parsed.template if isinstance(p, URIRef))
    return [
        _Access(t.predicate, t.obj if isinstance(t.obj, URIRef) else None, _node_of(t, template, env))
        for t in template
    ]


def _direct_reads(parsed: Parsed) -> tuple[Footprint, list[_Access], list[str]]:
    """The keys a rule reads directly, the conclusions it reads (to match against templates) and why its
    footprint cannot be proven, if it cannot."""
    vocabulary = input_vocabulary()
    kb = _knowledge_base_only()
    env, leaks = _environment(parsed)
    problems = list(parsed.problems) + leaks
    codes = {(p.obj, p.scope) for p in parsed.patterns if p.predicate in vocabulary.code_predicates}
    keys: set[str] = set()
    presences: set[frozenset[str]] = set()
    conclusions: list[_Access] = []
    for pattern in parsed.patterns:
        p, o = pattern.predicate, pattern.obj
        if _on_knowledge_base(pattern):
            continue
        if p == RDF.type:
            if (pattern.subject, pattern.scope) in codes:  # the type of a code: the knowledge base's
                continue
            if isinstance(o, URIRef) and o == vocabulary.patient_class:
                continue
            if isinstance(o, URIRef) and o in vocabulary.keys_of_class:
                keys |= vocabulary.keys_of_class[o]
                continue
            if isinstance(o, URIRef) and o in vocabulary.node_of_class:
                presences.add(vocabulary.node_of_class[o])
                continue
            if not isinstance(o, URIRef):
                problems.append("an rdf:type pattern with a variable class")
                continue
        elif p in vocabulary.keys_of_predicate:
            keys |= vocabulary.keys_of_predicate[p]
            continue
        elif p in vocabulary.node_of_predicate:
            presences.add(vocabulary.node_of_predicate[p])
            continue
        elif p in kb:
            continue
        node = _node_of(pattern, parsed.patterns, env)
        conclusions.append(_Access(p, o if isinstance(o, URIRef) else None, node))
    return (
        Footprint(frozenset(), frozenset(presences)) | Footprint(frozenset(keys), frozenset()),
        conclusions,
        problems,
    )


def _producers(read: _Access, writers: dict[tuple[str, str], list[_Access]]) -> set[tuple[str, str]]:
    """The rules (stage, name) whose writes a read may see. A read of a node known to be an assessment of
    given facts sees the rules that assess those facts, and any other rule writing the predicate whose
    subject could have the same IRI as one of those assessments."""
    assessors = [
        w.node
        for written in writers.values()
        for w in written
        if w.predicate == _ASSESSED and w.obj in read.node.facts
    ]
    found = set()
    for rule, written in writers.items():
        for w in written:
            if w.predicate != read.predicate:
                continue
            if read.obj is not None and w.obj is not None and read.obj != w.obj:
                continue
            if read.node.facts:
                if w.node.facts and not (w.node.facts & read.node.facts):
                    continue
                if not w.node.facts and not any(_may_equal(w.node.value, a.value) for a in assessors):
                    continue
            elif not _may_equal(w.node.value, read.node.value):
                continue
            found.add(rule)
    return found


def _per_assessment(parsed: Parsed) -> str | None:
    """None if the rule concludes about a patient from one fact assessment at a time (so that running it
    over each family's assessments and taking the union gives what it gives over all of them): one
    scope, no optional or alternative parts, and every pattern outside the knowledge base on one subject
    variable that is linked to the patient by haip:aboutPatient. Else why not."""
    kb = _knowledge_base_only()
    if parsed.problems:
        return "; ".join(parsed.problems)
    if any(not pattern.required for pattern in parsed.patterns):
        return "an optional or alternative pattern"
    if len({pattern.scope for pattern in parsed.patterns}) > 1:
        return "a subquery"
    subjects = {
        pattern.subject
        for pattern in parsed.patterns
        if pattern.predicate not in kb and not _on_knowledge_base(pattern)
    }
    if len(subjects) != 1:
        return f"patterns on {len(subjects)} subjects outside the knowledge base"
    (subject,) = subjects
    if not any(p.subject == subject and p.predicate == HAIP.aboutPatient for p in parsed.patterns):
        return "no haip:aboutPatient link"
    _env, leaks = _environment(parsed)
    return "; ".join(leaks) if leaks else None


GENERATED = "families.json"
"""queries/families.json: the analysis below, written by `python -m haip_kg.footprints --write` for the
rules and ontology it names by digest (parsing 28 rules with rdflib takes seconds: too long to do at
every start). A test fails when it is stale; at run time a stale file is ignored and the rules analysed
again."""


def inputs_digest() -> str:
    """SHA-256 over what the analysis reads: the rule files, the ontology files and this module."""
    digest = hashlib.sha256()
    paths = [FilePath(__file__), *resources.ontology_files()]
    paths += [
        p
        for stage in engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING
        for p in resources.rule_files(stage)
    ]
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _to_json(found: Families) -> dict[str, Any]:
    return {
        "digest": inputs_digest(),
        "families": [
            {
                "name": f.name,
                "rules": [list(rule) for rule in f.rules],
                "footprint": None
                if f.footprint is None
                else {
                    "values": sorted(f.footprint.values),
                    "presences": sorted(sorted(g) for g in f.footprint.presences),
                },
                "why": f.why,
            }
            for f in found.families
        ],
        "node_rules": [list(rule) for rule in found.node_rules],
        "why_not": found.why_not,
    }


def _from_json(document: dict[str, Any]) -> Families:
    out = []
    for f in document["families"]:
        footprint = f["footprint"]
        out.append(
            Family(
                f["name"],
                tuple((stage, name) for stage, name in f["rules"]),
                None
                if footprint is None
                else Footprint(
                    frozenset(footprint["values"]), frozenset(frozenset(g) for g in footprint["presences"])
                ),
                f["why"],
            )
        )
    footprints = tuple(RuleFootprint(s, n, f.footprint, f.why) for f in out for s, n in f.rules)
    return Families(
        tuple(out), footprints, tuple((s, n) for s, n in document["node_rules"]), document["why_not"]
    )


def generated_text(found: Families) -> str:
    return json.dumps(_to_json(found), indent=1, ensure_ascii=False) + "\n"


@cache
def families() -> Families:
    """The rule families of the knowledge base's rules with their proven footprints: from
    queries/families.json when it was made from these very rules (its digest), else analysed now."""
    path = resources.query_dir("") / GENERATED
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = None
    if document is not None and document.get("digest") == inputs_digest():
        return _from_json(document)
    return analyse()


def analyse() -> Families:
    """The rule families of the knowledge base's rules, with their proven footprints (rdflib's parser)."""
    rules = _all_rules()
    writes = {(stage, name): _writes(parsed) for stage, name, parsed in rules}
    family_rules = [(stage, name, parsed) for stage, name, parsed in rules if stage in FAMILY_STAGES]
    node_rules = tuple((stage, name) for stage, name, _p in rules if stage in NODE_STAGES)
    why_not: list[str] = []
    for stage, name, parsed in rules:
        if stage in NODE_STAGES:
            problem = _per_assessment(parsed)
            if problem:
                why_not.append(f"{name} is not decided one assessment at a time: {problem}")
        elif stage not in FAMILY_STAGES:  # profile stages: they must read no input
            read, _conclusions, _problems = _direct_reads(parsed)
            if read.keys():
                why_not.append(f"{name} ({stage}) reads case-sheet keys {sorted(read.keys())}")
    stages = engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING
    direct: dict[tuple[str, str], tuple[Footprint, set[str], list[str]]] = {}
    for stage, name, parsed in family_rules:
        footprint, conclusions, problems = _direct_reads(parsed)
        # a stage's rules run against what the stages before it concluded, never their own stage's
        earlier = {rule: w for rule, w in writes.items() if stages.index(rule[0]) < stages.index(stage)}
        producers: set[str] = set()
        for access in conclusions:
            found = _producers(access, earlier)
            outside = {f"{s}/{n}" for s, n in found if s not in FAMILY_STAGES}
            if outside:
                problems.append(
                    f"it reads {access.predicate.n3()}, concluded by {', '.join(sorted(outside))}"
                )
            producers |= {n for s, n in found if s in FAMILY_STAGES}
        direct[stage, name] = (footprint, producers, problems)
    # families: the connected parts of the graph of rules linked by reading each other's conclusions
    parent = {name: name for _s, name, _p in family_rules}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for (_stage, name), (_read, producers, _problems) in direct.items():
        for producer in producers:
            parent[root(producer)] = root(name)
    grouped: dict[str, list[tuple[str, str]]] = {}
    for stage, name, _parsed in family_rules:
        grouped.setdefault(root(name), []).append((stage, name))
    # families with the same footprint are decided as one: one cache lookup instead of several
    merged: dict[Footprint, list[tuple[str, str]]] = {}
    unproven: list[tuple[list[tuple[str, str]], str]] = []
    for members in grouped.values():
        union = Footprint(frozenset(), frozenset())
        reasons: list[str] = []
        for member in members:
            member_read, _read_from, member_problems = direct[member]
            union = union | member_read
            reasons += [f"{member[1]}: {p}" for p in member_problems]
        if reasons:
            unproven.append((members, "; ".join(reasons)))
        else:
            merged.setdefault(union, []).extend(members)
    order = {(stage, name): i for i, (stage, name, _p) in enumerate(rules)}
    out: list[Family] = []
    for proven, members in merged.items():
        members.sort(key=order.__getitem__)
        out.append(Family(members[0][1].removesuffix(".rq"), tuple(members), proven, None))
    for members, why in unproven:
        members.sort(key=order.__getitem__)
        out.append(Family(members[0][1].removesuffix(".rq"), tuple(members), None, why))
    out.sort(key=lambda family: order[family.rules[0]])
    footprints = [RuleFootprint(s, n, f.footprint, f.why) for f in out for s, n in f.rules]
    return Families(tuple(out), tuple(footprints), node_rules, "; ".join(why_not) or None)


def check_rule(stage: str, text: str) -> tuple[Footprint, list[str]]:
    """What a rule of a family stage would read directly, and why its footprint cannot be proven (empty
    if it can), against the conclusions of the knowledge base's own rules."""
    parsed = parse(text)
    read, conclusions, problems = _direct_reads(parsed)
    stages = engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING
    writes = {(s, n): _writes(p) for s, n, p in _all_rules() if stages.index(s) < stages.index(stage)}
    for access in conclusions:
        outside = {f"{s}/{n}" for s, n in _producers(access, writes) if s not in FAMILY_STAGES}
        if outside:
            problems.append(f"it reads {access.predicate.n3()}, concluded by {', '.join(sorted(outside))}")
    return read, problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Write or check queries/families.json (the rule families).")
    parser.add_argument("--write", action="store_true", help="write the file (else print it)")
    args = parser.parse_args()
    text = generated_text(analyse())
    if args.write:
        (resources.query_dir("") / GENERATED).write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()

"""The one place where prefixes are declared; every .ttl and .rq file must use the same pairs."""

from rdflib import Namespace

PREFIXES: dict[str, str] = {
    "haip": "https://w3id.org/haip/",
    "haipi": "https://w3id.org/haip/interpretation/",
    "haipx": "https://w3id.org/haip/fact/",
    "haipc": "https://w3id.org/haip/conflict/",
    "haipf": "https://w3id.org/haip/flag/",
    "haipk": "https://w3id.org/haip/key/",
    "haipp": "https://w3id.org/haip/parameter/",
    "haipsh": "https://w3id.org/haip/shapes/",
    "owl": "http://www.w3.org/2002/07/owl#",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "prov": "http://www.w3.org/ns/prov#",
    "qudt": "http://qudt.org/schema/qudt/",
    "sh": "http://www.w3.org/ns/shacl#",
}

HAIP = Namespace(PREFIXES["haip"])
HAIPK = Namespace(PREFIXES["haipk"])
HAIPSH = Namespace(PREFIXES["haipsh"])
DCTERMS = Namespace(PREFIXES["dcterms"])
PROV = Namespace(PREFIXES["prov"])
SH = Namespace(PREFIXES["sh"])

CASE_BASE = "https://w3id.org/haip/case/"
"""Patients read from case sheets get the IRI CASE_BASE + the percent-encoded id."""

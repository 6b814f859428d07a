# Decides: one alternative reading in force in the knowledge base of an evaluation (?reading, bound by the
# caller): its parameter values replace the interpretation's, the interpretation takes the reading's slug
# (so that every answer relying on it names the reading), and haip:readingInForce records which it is.
# Returns: nothing (SPARQL 1.1 Update on the knowledge base graph before it is loaded).
PREFIX haip: <https://w3id.org/haip/>
PREFIX qudt: <http://qudt.org/schema/qudt/>

DELETE {
  ?parameter qudt:numericValue ?number ; qudt:unit ?unit ; haip:valueText ?text ; haip:booleanValue ?flag ;
             haip:member ?member .
}
WHERE {
  ?reading haip:setsValue/haip:ofParameter ?parameter .
  OPTIONAL { ?parameter qudt:numericValue ?number }
  OPTIONAL { ?parameter qudt:unit ?unit }
  OPTIONAL { ?parameter haip:valueText ?text }
  OPTIONAL { ?parameter haip:booleanValue ?flag }
  OPTIONAL { ?parameter haip:member ?member }
} ;

INSERT { ?parameter ?property ?value }
WHERE {
  ?reading haip:setsValue ?setting .
  ?setting haip:ofParameter ?parameter ; ?property ?value .
  FILTER(?property != haip:ofParameter)
} ;

DELETE { ?interpretation haip:slug ?slug }
INSERT { ?interpretation haip:slug ?readingSlug ; haip:readingInForce ?reading }
WHERE {
  ?reading haip:alternativeOf ?interpretation ; haip:slug ?readingSlug .
  ?interpretation haip:slug ?slug .
}

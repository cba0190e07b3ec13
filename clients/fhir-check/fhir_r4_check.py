#!/usr/bin/env python3
"""Checks that a file holds a valid FHIR R4 (4.0.1) Bundle, with an implementation independent of
Varde's Rust code: the `fhir.resources` models (pydantic), which refuse unknown fields, missing
required fields, wrong types and primitives that do not match R4's patterns (instants, ids,
codes, uris), in the Bundle and in every resource inside it.

Usage: fhir_r4_check.py BUNDLE.json [--expect-resources N]

It then shows that it can fail: each of a few corrupted copies of the Bundle (an unknown field in
a resource, an instant without a time zone, a required field removed, an id too long) must be
refused. Exit code 0 when the Bundle is valid and every corruption is refused, 1 otherwise; the
last line of output is JSON with the resource counts by type.
"""

import copy
import json
import sys

import fhir.resources
from fhir.resources.bundle import Bundle


def validate(document):
    """The parsed Bundle, or raises (pydantic.ValidationError, ValueError)."""
    return Bundle.parse_obj(document)


def corruptions(document):
    """(name, corrupted copy) pairs, each of which a valid R4 checker must refuse."""
    entries = document.get("entry") or []
    if not entries:
        broken = copy.deepcopy(document)
        broken["grantee"] = "x"
        yield "an unknown field in the Bundle", broken
        return
    resource_paths = range(len(entries))
    for index in resource_paths:
        broken = copy.deepcopy(document)
        broken["entry"][index]["resource"]["varde"] = "unknown field"
        yield f"an unknown field in entry {index}", broken
    broken = copy.deepcopy(document)
    broken["entry"][0]["resource"]["id"] = "x" * 65
    yield "an id of 65 characters", broken
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        if "status" in resource:
            broken = copy.deepcopy(document)
            del broken["entry"][index]["resource"]["status"]
            yield f"no status in entry {index} ({resource['resourceType']})", broken
            break
    for index, entry in enumerate(entries):
        resource = entry["resource"]
        if resource["resourceType"] == "AuditEvent":
            broken = copy.deepcopy(document)
            broken["entry"][index]["resource"]["recorded"] = resource["recorded"].rstrip("Z")
            yield f"an instant without a time zone in entry {index}", broken
            break


def main(arguments):
    if len(arguments) not in (1, 3) or (len(arguments) == 3 and arguments[1] != "--expect-resources"):
        print(__doc__, file=sys.stderr)
        return 2
    if fhir.resources.__fhir_version__ != "4.0.1":
        print(f"fhir.resources models FHIR {fhir.resources.__fhir_version__}, not R4 4.0.1", file=sys.stderr)
        return 1
    with open(arguments[0], "rb") as file:
        document = json.load(file)
    try:
        bundle = validate(document)
    except Exception as error:  # pydantic.ValidationError lists every problem
        print(f"not a valid FHIR R4 Bundle: {error}", file=sys.stderr)
        return 1
    counts = {}
    for entry in bundle.entry or []:
        kind = entry.resource.resource_type
        counts[kind] = counts.get(kind, 0) + 1
    total = sum(counts.values())
    if len(arguments) == 3 and total != int(arguments[2]):
        print(f"expected {arguments[2]} resources, found {total}", file=sys.stderr)
        return 1
    for name, broken in corruptions(document):
        try:
            validate(broken)
        except Exception:
            continue
        print(f"the checker accepted a corrupted Bundle ({name}): it checks nothing", file=sys.stderr)
        return 1
    print(f"valid FHIR R4 {fhir.resources.__fhir_version__} Bundle: {total} resources; every corrupted copy refused")
    print(json.dumps({"resources": total, "by_type": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

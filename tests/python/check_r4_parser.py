"""Parses FHIR JSON files with an independent R4 implementation (fhir.resources 6.4.0, the
last release with R4 4.0.1 models, on pydantic 1) and fails if any file it should accept is
rejected.

Usage: python check_r4_parser.py DIR
"""

import json
import re
import pathlib
import sys

from fhir.resources import construct_fhir_element

# Defects of fhir.resources 6.4.0: errors it raises on valid R4. Each is matched on the
# error's location and message; every official example it rejects falls in one of these when
# parsed straight from the npm package, before Helse touches it.
KNOWN_PARSER_DEFECTS = [
    # R4 allows `_valueString` (id/extensions on a primitive) inside Extension.value[x];
    # the parser's Extension model has no such fields.
    ("primitive extension on Extension.value[x]", re.compile(r"-> _value[A-Za-z]+\s*$"), "extra fields not permitted"),
    # `url` values such as "library-cms146-example-content.cql" are relative URLs, which R4
    # permits; the parser insists on a scheme.
    ("relative url", re.compile(r"(url|address|nameUrl|relativePath)\s*$"), "invalid or missing URL scheme"),
    # The spec's string regex was written for JavaScript, where \s matches a no-break space;
    # Python's does too, so it rejects strings that contain one, which R4's prose allows.
    ("no-break space in a string", re.compile(r"-> (value|display|definition)\s*$"), 'does not match regex "[ \\r\\n\\t\\S]+"'),
]


def defect(error: Exception):
    """The known defect that explains every problem in `error`, or None."""
    lines = str(error).splitlines()[1:]
    pairs = list(zip(lines[0::2], lines[1::2]))
    names = set()
    for location, message in pairs:
        match = next((name for name, loc, msg in KNOWN_PARSER_DEFECTS if loc.search(location) and msg in message), None)
        if match is None:
            return None
        names.add(match)
    return ", ".join(sorted(names)) if names else None


def main(directory: str) -> int:
    files = sorted(pathlib.Path(directory).glob("*.json"))
    if not files:
        print(f"no JSON files in {directory}", file=sys.stderr)
        return 2
    failures = []
    tolerated = 0
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        try:
            construct_fhir_element(data["resourceType"], data)
        except Exception as e:  # the parser raises pydantic and its own errors
            if defect(e):
                tolerated += 1
                continue
            failures.append(f"{path.name}: {' / '.join(str(e).splitlines()[:3])}")
    print(f"fhir.resources parsed {len(files) - len(failures) - tolerated} of {len(files)} files; "
          f"{tolerated} known parser defects tolerated")
    for f in failures:
        print("REJECTED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

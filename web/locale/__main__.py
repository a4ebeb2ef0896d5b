"""`python -m web.locale update`: extract the admin's texts into the catalogues; `check`: list the untranslated."""

import sys

from web.locale import ROOT, untranslated, update


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "update":
        for path in update():
            print(f"updated {path.relative_to(ROOT)}")
        missing = untranslated()
    elif command == "check":
        missing = untranslated()
    else:
        print("usage: python -m web.locale update|check", file=sys.stderr)
        return 2
    for entry in missing:
        print(f"untranslated {entry}")
    return 1 if missing and command == "check" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The admin's message catalogues: one .po file per language, read and compiled in memory at start-up.

The .po files in git are the only form of a catalogue (no compiled .mo to drift from them). English is the
source language and has none. `python -m web.locale update` extracts the texts (babel.cfg says from where)
and merges them into every catalogue; `python -m web.locale check` lists what is not translated yet.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from gettext import GNUTranslations, NullTranslations
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from server.i18n import LOCALES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MAPPING = ROOT / "babel.cfg"
DOMAIN = "messages"
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
TRANSLATED = tuple(locale for locale in LOCALES if locale != "en")


def catalogue_path(locale: str) -> Path:
    return HERE / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(locale: str) -> Catalog:
    with catalogue_path(locale).open("rb") as po:
        return read_po(po, locale=locale, domain=DOMAIN)


def compiled(catalog: Catalog) -> NullTranslations:
    """The catalogue as gettext reads it; fuzzy entries are left out, as msgfmt does."""
    mo = BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return GNUTranslations(mo)


def load() -> dict[str, NullTranslations]:
    return {locale: compiled(read(locale)) for locale in TRANSLATED if catalogue_path(locale).exists()}


def extract() -> Catalog:
    """Every text the admin shows, with the files and lines it comes from."""
    with MAPPING.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg, filename=str(MAPPING))  # type: ignore[no-untyped-call]
    template = Catalog(domain=DOMAIN, project="pipewright", charset="utf-8")
    for filename, line, message, comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True,
    ):
        template.add(message, None, [(filename, line)], auto_comments=comments, context=context)
    return template


def update() -> list[Path]:
    """Merge the extracted texts into every catalogue: new ones come in untranslated, gone ones are dropped."""
    template = extract()
    written = []
    for locale in TRANSLATED:
        path = catalogue_path(locale)
        if path.exists():
            catalog = read(locale)
        else:
            catalog = Catalog(locale=locale, domain=DOMAIN, project="pipewright", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            write_po(po, catalog, width=120, sort_output=False, include_previous=False, include_lineno=False)
        written.append(path)
    return written


@dataclass(frozen=True)
class Untranslated:
    locale: str
    text: str
    where: tuple[str, ...]  # file:line

    def __str__(self) -> str:
        return f"{self.locale}: {self.text!r} ({', '.join(self.where)})"


def untranslated(template: Catalog | None = None) -> list[Untranslated]:
    """The extracted texts a catalogue has no (or only a fuzzy) translation for."""
    template = template or extract()
    missing = []
    for locale in TRANSLATED:
        catalog = read(locale) if catalogue_path(locale).exists() else Catalog(locale=locale)
        for message in _messages(template):
            found = catalog.get(message.id, message.context)
            strings = [] if found is None else (found.string if isinstance(found.string, tuple) else [found.string])
            if found is None or found.fuzzy or not all(strings):
                where = tuple(f"{name}:{line}" for name, line in message.locations)
                missing.append(Untranslated(locale, str(message.id if isinstance(message.id, str) else message.id[0]),
                                            where))
    return missing


def _messages(catalog: Catalog) -> Iterable[Message]:
    return (message for message in catalog if message.id)

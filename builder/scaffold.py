"""`builder init`: a new dataset project (builder.toml, guidelines.md, annotations/, .gitignore) in one call.

Every value is checked, and the project file is generated as text and loaded back through
`project_from_dict` (the schema and the rules it cannot say), before anything is written. Files are
created atomically and never over an existing file; when a later write fails, what this run created
is removed again, so a failed init leaves the folder as it was.
"""

from __future__ import annotations

import colorsys
import contextlib
import errno
import html
import os
import re
import shlex
import string
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import BuilderError, ConfigError
from builder.jsonio import _mode_for
from builder.labeling_config import keyboard_shortcuts
from builder.outputs import OutputError, write_error
from builder.project import NEAR_DUPLICATE_THRESHOLD, PROJECT_FILE, Project, project_from_dict
from builder.resources import DEFAULTS_DIR

GUIDELINES_FILE = "guidelines.md"
# server state and keys; build outputs; work/, where the README's steps write sentences (`split -o work/...`)
GITIGNORE_LINES = ("/.builder/", "/dist/", "/build/", "/work/")

DEFAULT_TARGET = "the topic of the article"
DEFAULT_QUESTION = "What stance does this sentence take towards the target?"
DEFAULT_STANCE_LABELS = ("favor", "against", "neutral")
DEFAULT_ENTITY_LABELS = ("PER", "ORG", "LOC", "MISC")
DEFAULT_LANGUAGE = "en"
DEFAULT_LICENSE = "cc-by-4.0"
DEFAULT_ANNOTATORS = 2
DEFAULT_SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,95}")  # schema/config.schema.json, dataset.name
STANCE_PATTERN = re.compile(r"[a-z][a-z_]*")
ENTITY_PATTERN = re.compile(r"[A-Z][A-Z_]*")
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}")
LICENSE_PATTERN = re.compile(r"[a-z0-9][a-z0-9.+_-]*")  # Hub licence ids: cc-by-4.0, apache-2.0, other
MAX_TARGET = 1000  # as an article's own `target`

# What the bundled default says about its labels; other labels get an empty description (no hint in Label Studio).
KNOWN_DESCRIPTIONS = {
    "favor": "The sentence supports, welcomes or argues for the target.",
    "against": "The sentence opposes, criticises or argues against the target.",
    "neutral": "The sentence reports facts without taking a side, or does not concern the target.",
    "PER": "A named person, including titles of address written as part of the name.",
    "ORG": "A named organisation: government bodies, agencies, companies, media, armed forces.",
    "LOC": "A named place: countries, cities, regions, geographic features.",
    "MISC": "Other named things: events, nationalities used as adjectives, titles of works.",
}
KNOWN_COLORS = {"PER": "#e4572e", "ORG": "#2e86ab", "LOC": "#3bb273", "MISC": "#f3a712"}
PALETTE = (
    "#e4572e",
    "#2e86ab",
    "#3bb273",
    "#f3a712",
    "#8e44ad",
    "#d81b60",
    "#00897b",
    "#6d4c41",
    "#546e7a",
    "#c0ca33",
    "#5e35b1",
    "#fb8c00",
)
# Label Studio binds `u` alone to "unselect region" in the labeling view: a label on it would fight that.
HOTKEYS = list("1234567890abcdefghijklmnopqrstvwxyz")


@dataclass(frozen=True)
class InitResult:
    """What `init_project` wrote: `created` files (relative to `folder`), and `gitignore_added` lines."""

    folder: Path
    project: Project
    created: tuple[str, ...]
    gitignore_added: tuple[str, ...]
    gitignore_linked: bool = False  # a .gitignore that is a link was left alone


def slug(text: str) -> str:
    """A dataset name made from `text` (a folder name): lowercase ASCII, runs of anything else as '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", ascii_text)
    name = re.sub(r"^[^a-z0-9]+", "", name)[:96]
    return re.sub(r"[._-]+$", "", name)


SCHEMES = ("both", "stance", "entities")  # `builder init --scheme`: what the project's annotators label
# The questions a scheme does not ask (`builder init` in a terminal): a stance-only one has no entity labels.
NOT_ASKED = {"both": (), "stance": ("entity_labels",), "entities": ("target", "stance_labels")}


def split_labels(text: str) -> list[str]:
    """A comma-separated list of labels (`favor,against,neutral`), each stripped; empty items kept (and refused)."""
    return [item.strip() for item in text.split(",")]


def check_name(name: str) -> str:
    """`name` if it is a valid dataset name, else a ConfigError saying what one looks like."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"dataset name {name!r} is not valid: use lowercase letters, digits, '.', '_' and '-', starting "
            "with a letter or digit, at most 96 characters (such as 'my-news-stance')"
        )
    return name


def check_labels(labels: Iterable[str], kind: str) -> list[str]:
    """Stance (`kind` 'stance') or entity ('entity') label values: none empty, none twice, of the schema's form."""
    labels = [label.strip() for label in labels]
    pattern, minimum, form, example = {
        "stance": (STANCE_PATTERN, 2, "lowercase letters and '_', starting with a letter", "favor"),
        "entity": (ENTITY_PATTERN, 1, "uppercase letters and '_', starting with a letter", "PER"),
    }[kind]
    for i, label in enumerate(labels, 1):
        if not label:
            raise ConfigError(f"{kind} label {i} is empty: give labels separated by commas, such as {example},...")
        if not pattern.fullmatch(label):
            raise ConfigError(f"{kind} label {label!r} is not valid: use {form} (such as {example})")
        if label in labels[: i - 1]:
            raise ConfigError(f"{kind} label {label!r} is given twice")
    if len(labels) < minimum:
        raise ConfigError(f"{kind} labels: give at least {minimum} (got {len(labels)})")
    return labels


def check_text(value: str, what: str, *, minimum: int = 1, maximum: int = MAX_TARGET) -> str:
    """A one-line text value (target, title), stripped, within its length bounds."""
    value = value.strip()
    if len(value) < minimum or len(value) > maximum:
        raise ConfigError(f"{what} must be {minimum} to {maximum} characters long (got {len(value)})")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ConfigError(f"{what} must be one line of text, without control characters: {value!r}")
    return value


def check_language(language: str) -> str:
    if not LANGUAGE_PATTERN.fullmatch(language):
        raise ConfigError(f"language {language!r} is not valid: use an ISO 639-1 or 639-3 code (such as en)")
    return language


def check_license(license: str) -> str:
    if not LICENSE_PATTERN.fullmatch(license):
        raise ConfigError(
            f"licence {license!r} is not valid: use a Hugging Face Hub licence id (such as cc-by-4.0, apache-2.0, "
            "other, unknown)"
        )
    return license


def check_annotators(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 20:
        raise ConfigError(f"annotators per sentence must be a whole number from 1 to 20 (got {n!r})")
    return n


def pretty(name: str) -> str:
    """A readable name from a dataset name: 'my-news_stance' -> 'My news stance'."""
    words = re.sub(r"[._-]+", " ", name).strip()
    return words[:1].upper() + words[1:]


def default_title(pretty_name: str) -> str:
    """A Label Studio project title (3 to 50 characters) from the pretty name."""
    title = pretty_name[:50].strip()
    return title if len(title) >= 3 else f"{title} dataset".strip()


def assign_hotkeys(stance: Sequence[str], entities: Sequence[str]) -> tuple[list[str], list[str]]:
    """One distinct one-key hotkey per label: stance labels 1, 2, 3...; entity labels a letter of their name."""
    if len(stance) + len(entities) > len(HOTKEYS):
        raise ConfigError(
            f"{len(stance)} stance and {len(entities)} entity labels: at most {len(HOTKEYS)} in all "
            "(each needs its own one-key hotkey)"
        )
    free = list(HOTKEYS)
    stance_keys: list[str | None] = [None] * len(stance)
    for i in range(min(len(stance), 10)):
        stance_keys[i] = free.pop(0)  # the digits
    entity_keys = []
    for value in entities:
        wanted = [c for c in value.lower() if c in free] or sorted(free, key=str.isdigit)  # letters first
        entity_keys.append(wanted[0])
        free.remove(wanted[0])
    for i, key in enumerate(stance_keys):
        if key is None:
            stance_keys[i] = free.pop(0)
    return stance_keys, entity_keys


def assign_colors(entities: Sequence[str]) -> list[str]:
    """A distinct colour per entity label: the default scheme's for PER/ORG/LOC/MISC, then a palette, then hues."""
    colors: list[str] = []
    palette = [c for c in PALETTE if c not in (KNOWN_COLORS.get(v) for v in entities)]
    step = 0
    for value in entities:
        color = KNOWN_COLORS.get(value)
        if color is None or color in colors:
            color = palette.pop(0) if palette else None
        while color is None or color in colors:
            r, g, b = colorsys.hsv_to_rgb((step * 0.618033988749895) % 1, 0.65, 0.8)
            color = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
            step += 1
        colors.append(color)
    return colors


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: backslash, quote and control characters escaped."""
    out = []
    for c in value:
        if c in '"\\':
            out.append("\\" + c)
        elif c in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def markdown_text(value: str) -> str:
    """`value` as literal text in markdown (no HTML, no emphasis, no table cell breaks)."""
    return re.sub(r"([\\`*_\[\]#|])", r"\\\1", html.escape(value, quote=False))


def _whole_number(value) -> int:
    try:
        return check_annotators(int(value))
    except (TypeError, ValueError):
        raise ConfigError(f"annotators per sentence must be a whole number from 1 to 20 (got {value!r})") from None


def _default_name(folder: Path, answers: dict) -> str | None:
    name = slug(Path(folder).resolve().name)
    return name if NAME_PATTERN.fullmatch(name) else None


@dataclass(frozen=True)
class Question:
    """One value `builder init` asks for in a terminal: `key` of init_project, a default from the answers so far,
    and the check (raising ConfigError) that turns the answer into the value."""

    key: str
    text: str
    default: Callable[[Path, dict], object]
    check: Callable[[object], object]


QUESTIONS = (
    Question("name", "Dataset name", _default_name, lambda v: check_name(str(v).strip())),
    Question(
        "target",
        "Stance target (what the stance is towards)",
        lambda folder, answers: DEFAULT_TARGET,
        lambda v: check_text(str(v), "the stance target"),
    ),
    Question(
        "stance_labels",
        "Stance labels",
        lambda folder, answers: ",".join(DEFAULT_STANCE_LABELS),
        lambda v: check_labels(split_labels(str(v)), "stance"),
    ),
    Question(
        "entity_labels",
        "Entity labels",
        lambda folder, answers: ",".join(DEFAULT_ENTITY_LABELS),
        lambda v: check_labels(split_labels(str(v)), "entity"),
    ),
    Question("language", "Language", lambda folder, answers: DEFAULT_LANGUAGE, lambda v: check_language(str(v))),
    Question("license", "Licence", lambda folder, answers: DEFAULT_LICENSE, lambda v: check_license(str(v))),
    Question(
        "annotators_per_sentence",
        "Annotators per sentence",
        lambda folder, answers: DEFAULT_ANNOTATORS,
        _whole_number,
    ),
    Question(
        "project_title",
        "Label Studio project title",
        lambda folder, answers: default_title(pretty(answers.get("name") or _default_name(folder, answers) or "")),
        lambda v: check_text(str(v), "the Label Studio project title", minimum=3, maximum=50),
    ),
)


def summary(result: InitResult) -> str:
    """What `init_project` wrote and the scheme it declared, in a few lines."""
    p = result.project
    lines = [f"wrote {', '.join(result.created) or 'nothing new'} in {result.folder}"]
    if result.gitignore_added and ".gitignore" not in result.created:
        lines.append(f"added {', '.join(result.gitignore_added)} to .gitignore")
    if result.gitignore_linked:
        lines.append(
            f"left .gitignore alone: it is a link (git does not read a linked .gitignore, and its target is not "
            f"builder's to change); .builder/ ignores itself, add {', '.join(GITIGNORE_LINES)} where you keep them"
        )
    halves = []
    if p.has_stance:
        halves.append(f"stance towards '{p.target}' ({', '.join(p.stance_values)})")
    if p.has_entities:
        halves.append(f"entities {', '.join(p.entity_values)}")
    lines.append(
        f"dataset '{p.name}': {', '.join(halves)}, {p.annotators_per_sentence} annotator(s) per sentence, "
        f"Label Studio project '{p.project_title}'"
    )
    return "\n".join(lines)


def next_steps(result: InitResult, folder: str | Path = ".") -> list[tuple[str, str]]:
    """The commands that come next, each with what it does (`folder`: as the user named it, for `cd`)."""
    steps = [] if result.folder.resolve() == Path.cwd().resolve() else [(f"cd {shlex.quote(str(folder))}", "")]
    from builder.sentences.articles import SUPPORTED_SUFFIXES  # what `builder split` reads, named once

    if not _in_git_work_tree(result.folder):
        steps.append(("git init", "releases are cut from what git holds (`builder release` needs it)"))
    return steps + [
        ("edit guidelines.md", "describe each label, with examples; annotators read it in Label Studio"),
        (
            "builder split ARTICLES -o work/sentences.jsonl",
            f"your articles ({', '.join(SUPPORTED_SUFFIXES)}) into sentences",
        ),
        ("builder server start", "a local Label Studio (or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)"),
        ("builder annotators add EMAIL...", "an account for each annotator, with a password to hand over"),
        ("builder push work/sentences.jsonl", "the project and its tasks in Label Studio; then label there"),
        ("builder pull", "the annotations into annotations/snapshot.jsonl"),
        ("builder validate", "check them"),
        ("builder build", f"the dataset in dist/{result.project.name}/"),
    ]


def _in_git_work_tree(folder: Path) -> bool:
    """Whether `folder` is inside a git work tree (False too when git cannot be run)."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True, text=True, check=False
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


@dataclass(frozen=True)
class _Scheme:
    name: str
    pretty_name: str
    target: str
    stance: list[str]
    stance_keys: list[str]
    entities: list[str]
    entity_keys: list[str]
    colors: list[str]
    language: str
    license: str
    annotators: int
    title: str


def _template(name: str) -> string.Template:
    """A text template of `builder init` (builder/defaults/init/NAME.template): the prose and comments live
    there, readable as the file they make; the code fills in the values and the per-label sections."""
    return string.Template((DEFAULTS_DIR / "init" / f"{name}.template").read_text(encoding="utf-8"))


def _appended(lines: list[str]) -> str:
    """`lines`, each on a line of its own after the template's line they follow."""
    return "".join("\n" + line for line in lines)


def project_toml(s: _Scheme) -> str:
    """The project file's text, commented like the bundled default."""
    q = toml_string
    stance_labels: list[str] = []
    for value, key in zip(s.stance, s.stance_keys):
        stance_labels += [
            "",
            "[[stance.labels]]",
            f"value = {q(value)}",
            f"hotkey = {q(key)}",
            "# Shown as a hint in Label Studio; say when to use this label.",
            f"description = {q(KNOWN_DESCRIPTIONS.get(value, ''))}",
        ]
    entity_labels: list[str] = []
    for value, key, color in zip(s.entities, s.entity_keys, s.colors):
        entity_labels += [
            "",
            "[[entities.labels]]",
            f"value = {q(value)}",
            f"hotkey = {q(key)}",
            f"color = {q(color)}",
            f"description = {q(KNOWN_DESCRIPTIONS.get(value, ''))}",
        ]
    text = _template("builder.toml").substitute(
        name=q(s.name),
        pretty_name=q(s.pretty_name),
        license=q(s.license),
        language=q(s.language),
        target=q(s.target),
        question=q(DEFAULT_QUESTION),
        stance_labels=_appended(stance_labels),
        entity_labels=_appended(entity_labels),
        annotators=s.annotators,
        guidelines=q(GUIDELINES_FILE),
        title=q(s.title),
        splits="\n".join(f"{split} = {share}" for split, share in DEFAULT_SPLITS),
        near_duplicate_threshold=NEAR_DUPLICATE_THRESHOLD,
    )
    # A stance-only or entities-only scheme: the project file leaves out the other half's section.
    if not s.stance:
        text = re.sub(r"\[stance\]\n.*?\n\n(?=# Entity labels)", "", text, count=1, flags=re.DOTALL)
    if not s.entities:
        text = re.sub(r"\n\n# Entity labels: [^\n]*\n", "\n\n", text, count=1)
    return text


# What the guidelines template leaves for the researcher to write (a label's description, a table cell, an example
# line); `builder release` refuses while any is left (`guideline_placeholders`), unless --allow-placeholders.
DESCRIBE_STANCE = "When to choose {}: describe it here."
DESCRIBE_ENTITY = "What counts as {}: describe it here."
DESCRIBE_CELL = "(describe)"
EXAMPLE_LINE = "- *...*"
_PLACEHOLDER = re.compile(r": describe it here\.|\(describe\)|^- \*\.\.\.\*[ \t]*$", re.MULTILINE)


def guideline_placeholders(text: str) -> list[tuple[int, str]]:
    """(line number, line) for each line of guidelines `text` still holding a placeholder of the template."""
    lines = text.splitlines()
    numbers = sorted({text.count("\n", 0, match.start()) + 1 for match in _PLACEHOLDER.finditer(text)})
    return [(number, lines[number - 1].strip()) for number in numbers]


def _label_sections(values, keys, placeholder: str, escape) -> list[str]:
    """One guidelines section per label: its key, its description (or `placeholder`), room for examples."""
    lines: list[str] = []
    for value, key in zip(values, keys):
        description = KNOWN_DESCRIPTIONS.get(value, placeholder.format(value))
        lines += [
            "",
            f"### {value} (key `{key}`)",
            "",
            escape(description),
            "",
            "Examples from your articles:",
            "",
            EXAMPLE_LINE,
        ]
    return lines


def guidelines_md(s: _Scheme) -> str:
    """The annotators' guidelines template: one section per label, how to use the context and the hotkeys."""
    m = markdown_text

    def table(values, keys) -> str:
        return "\n".join(
            f"| `{key}` | **{value}** | {m(KNOWN_DESCRIPTIONS.get(value, DESCRIBE_CELL))} |"
            for value, key in zip(values, keys)
        )

    text = _template("guidelines.md").substitute(
        pretty_name=m(s.pretty_name),
        question=m(DEFAULT_QUESTION),
        target=m(s.target),
        stance_table=table(s.stance, s.stance_keys),
        stance_sections=_appended(_label_sections(s.stance, s.stance_keys, DESCRIBE_STANCE, m)),
        entity_table=table(s.entities, s.entity_keys),
        entity_sections=_appended(_label_sections(s.entities, s.entity_keys, DESCRIBE_ENTITY, m)),
        shortcuts=keyboard_shortcuts(zip(map(m, s.stance), s.stance_keys), zip(map(m, s.entities), s.entity_keys)),
    )
    # A stance-only or entities-only scheme: the guidelines leave out the other half's section.
    if not s.entities:
        text = re.sub(r"## 2\. Entities\n.*?(?=## Pre-annotations)", "", text, count=1, flags=re.DOTALL)
        text = text.replace(  # a stance-only task shows a suggested stance, never a span
            "Spans already drawn when a sentence opens are suggestions learned from earlier annotations: fix or\n"
            "delete wrong ones, add missing ones, then submit.",
            "A stance already chosen when a sentence opens is a suggestion learned from earlier annotations:\n"
            "change it if it is wrong, then submit. It is shown only for targets labelled often enough before.",
            1,
        )
    if not s.stance:
        text = re.sub(r"## 1\. Stance \(required\)\n.*?(?=## 2\. Entities)", "", text, count=1, flags=re.DOTALL)
        text = text.replace("## 2. Entities", "## 1. Entities", 1)
    return text


def _scheme(
    folder: Path,
    name: str | None,
    target: str,
    stance_labels: Iterable[str],
    entity_labels: Iterable[str],
    language: str,
    license: str,
    annotators_per_sentence: int,
    project_title: str | None,
    scheme: str = "both",
) -> _Scheme:
    if name is None:
        name = slug(folder.name)
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"cannot make a dataset name from the folder name {folder.name!r}: pass --name")
    check_name(name)
    if scheme not in SCHEMES:
        raise ConfigError(f"scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    # a stance-only scheme has no entity labels, an entities-only one no stance labels (builder.toml leaves it out)
    stance = check_labels(stance_labels, "stance") if scheme != "entities" else []
    entities = check_labels(entity_labels, "entity") if scheme != "stance" else []
    stance_keys, entity_keys = assign_hotkeys(stance, entities)
    pretty_name = pretty(name)
    return _Scheme(
        name=name,
        pretty_name=pretty_name,
        target=check_text(target, "the stance target") if stance else "",
        stance=stance,
        stance_keys=stance_keys,
        entities=entities,
        entity_keys=entity_keys,
        colors=assign_colors(entities),
        language=check_language(language),
        license=check_license(license),
        annotators=check_annotators(annotators_per_sentence),
        title=check_text(
            default_title(pretty_name) if project_title is None else project_title,
            "the Label Studio project title",
            minimum=3,
            maximum=50,
        ),
    )


def _loaded(text: str, source: Path, s: _Scheme) -> Project:
    """The project `text` declares, validated, and checked to say exactly what was asked."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # a bug in project_toml, never the user's input
        raise BuilderError(f"builder init made an invalid {PROJECT_FILE} ({exc}); nothing was written") from None
    project = project_from_dict(raw, source)
    said = (
        project.name,
        project.target,
        project.stance_values,
        project.entity_values,
        project.language,
        project.license,
        project.annotators_per_sentence,
        project.project_title,
    )
    asked = (s.name, s.target, s.stance, s.entities, s.language, s.license, s.annotators, s.title)
    if said != asked:
        raise BuilderError(f"builder init made a {PROJECT_FILE} that does not say what was asked; nothing was written")
    return project


def _gitignore_lines(path: Path) -> tuple[bytes | None, list[str]]:
    """The current .gitignore's bytes (None when there is none) and the lines to append."""
    if not os.path.lexists(path):
        return None, list(GITIGNORE_LINES)
    if path.is_symlink():  # its target may be anywhere, and git does not read a linked .gitignore
        return None, []
    if not path.is_file():
        raise ConfigError(f"{path} is not a file: cannot add builder's lines to it; nothing was written")
    try:
        data = path.read_bytes()  # kept byte for byte (line ends, encoding): only lines are added
    except OSError as exc:
        raise ConfigError(f"cannot read {path} ({exc.strerror or exc}); nothing was written") from None
    present = {line.strip().strip(b"/") for line in data.splitlines()}
    return data, [line for line in GITIGNORE_LINES if line.strip("/").encode() not in present]


def _refuse_existing(folder: Path) -> None:
    for name in (PROJECT_FILE, GUIDELINES_FILE):
        if os.path.lexists(folder / name):
            raise ConfigError(
                f"{folder / name} already exists: builder init never replaces a file; "
                f"{'edit it' if name == PROJECT_FILE else 'move it away'}, or init another folder"
            )
    annotations = folder / "annotations"
    if os.path.lexists(annotations) and not annotations.is_dir():
        raise ConfigError(f"{annotations} is not a folder; builder keeps its annotations there; nothing was written")


class _Writes:
    """The files and folders this run created, removed again (newest first) when a later step fails."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []
        self.folders: list[Path] = []

    def mkdir(self, path: Path) -> None:
        missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
        for p in reversed(missing):
            try:
                p.mkdir()
            except OSError as exc:
                raise self.failed(p, exc) from None
            self.folders.append(p)

    def create(self, path: Path, data: bytes, replace: bool = False) -> None:
        """Write `path` atomically (temp file, then link or rename); never over an existing file unless `replace`."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), _mode_for(path))  # mkstemp makes 0600
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(tmp, path)
            else:
                _link_new(tmp, path)
        except FileExistsError:
            raise ConfigError(f"{path} appeared while builder init ran: it was kept; nothing was written") from None
        except OSError as exc:
            raise self.failed(path, exc) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        if not replace:
            self.files.append(path)

    def failed(self, path: Path, exc: OSError) -> OutputError:
        reason = write_error(path, exc).reason
        return OutputError(f"cannot write {path} ({reason}); {self.undone()}", reason)

    def undone(self) -> str:
        made = sorted([f"{p}/" for p in self.folders] + [str(p) for p in self.files])
        return f"removed what this run had made ({', '.join(made)})" if made else "nothing was written"

    def rollback(self) -> None:
        for path in reversed(self.files):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        for path in reversed(self.folders):
            with contextlib.suppress(OSError):  # a folder someone else wrote into meanwhile stays
                path.rmdir()


def _link_new(tmp: str, path: Path) -> None:
    """Put the complete `tmp` at `path` only if nothing is there (rename would replace a file made meanwhile)."""
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)


def init_project(
    folder: str | Path = ".",
    *,
    name: str | None = None,
    target: str = DEFAULT_TARGET,
    stance_labels: Iterable[str] = DEFAULT_STANCE_LABELS,
    entity_labels: Iterable[str] = DEFAULT_ENTITY_LABELS,
    language: str = DEFAULT_LANGUAGE,
    license: str = DEFAULT_LICENSE,
    annotators_per_sentence: int = DEFAULT_ANNOTATORS,
    project_title: str | None = None,
    scheme: str = "both",
) -> InitResult:
    """Start a dataset project in `folder` (made if missing): builder.toml, guidelines.md, annotations/, .gitignore.

    `name` defaults to a slug of the folder's name, `project_title` (Label Studio's) to the readable
    name. Refuses (ConfigError, nothing written) an invalid value, or a folder that already has a
    builder.toml or guidelines.md; a failed write removes what this run created (OutputError). `scheme`: what
    annotators label, "both" (stance and entities), "stance" or "entities" (the labels of the other are ignored).
    """
    folder = Path(folder).absolute()
    if os.path.lexists(folder) and not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; nothing was written")
    scheme = _scheme(
        folder.resolve(),
        name,
        target,
        stance_labels,
        entity_labels,
        language,
        license,
        annotators_per_sentence,
        project_title,
        scheme,
    )
    toml_text = project_toml(scheme)
    project = _loaded(toml_text, folder / PROJECT_FILE, scheme)
    guidelines = guidelines_md(scheme)
    _refuse_existing(folder)
    gitignore_text, gitignore_added = _gitignore_lines(folder / ".gitignore")

    writes = _Writes(folder)
    try:
        writes.mkdir(folder)
        annotations = folder / "annotations"
        writes.mkdir(annotations)
        if not any(annotations.iterdir()):
            writes.create(annotations / ".gitkeep", b"")
        writes.create(folder / GUIDELINES_FILE, guidelines.encode("utf-8"))
        writes.create(folder / PROJECT_FILE, toml_text.encode("utf-8"))
        if gitignore_added:
            old = gitignore_text or b""
            eol = b"\r\n" if b"\r\n" in old else b"\n"
            separator = b"" if not old or old.endswith(b"\n") else eol
            new = old + separator + b"".join(line.encode() + eol for line in gitignore_added)
            gitignore = folder / ".gitignore"
            if gitignore_text is None:
                writes.create(gitignore, new)
            else:  # the user's file, with lines added
                writes.create(gitignore, new, replace=True)
    except BaseException:
        writes.rollback()
        raise
    created = tuple(str(p.relative_to(folder)) for p in writes.files)
    linked = (folder / ".gitignore").is_symlink()
    return InitResult(folder, project, created, tuple(gitignore_added), gitignore_linked=linked)

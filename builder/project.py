"""The project file: the one place where the label scheme is declared.

Everything else (Label Studio's labeling config, the JSON Schemas of tasks and records, the
`datasets` features) is generated from a `Project` loaded here.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema

from builder.errors import ConfigError
from builder.resources import DEFAULTS_DIR, load_schema, schema_validator

PROJECT_FILE = "builder.toml"
NEAR_DUPLICATE_THRESHOLD = 0.8  # the default of `[splits] near_duplicate_threshold`
SUGGESTION_HOLDOUT = 0.1  # the default of `[annotation] suggestion_holdout`
DATA_STATEMENT_MIN_GROUP = 5  # the default of `[dataset.data_statement] annotator_min_group_size`


@dataclass(frozen=True)
class StanceLabelConfig:
    """One `[[stance.labels]]` entry of the project file (the value a record holds is `builder.model.StanceLabel`)."""

    value: str
    hotkey: str
    description: str = ""


@dataclass(frozen=True)
class EntityLabelConfig:
    """One `[[entities.labels]]` entry of the project file (the value a span holds is `builder.model.EntityLabel`)."""

    value: str
    hotkey: str
    color: str
    description: str = ""


@dataclass(frozen=True)
class BoilerplateRule:
    name: str
    pattern: str


@dataclass(frozen=True)
class Project:
    """A loaded, validated project file. `root` is the folder relative paths are resolved against."""

    root: Path
    source: Path
    raw: dict
    name: str
    pretty_name: str
    license: str
    language: str
    target: str
    stance_question: str
    stance_labels: tuple[StanceLabelConfig, ...]
    entity_labels: tuple[EntityLabelConfig, ...]
    annotators_per_sentence: int
    guidelines_path: Path
    entity_agreement: float
    project_title: str
    boilerplate_rules: tuple[BoilerplateRule, ...] = ()
    split_proportions: dict = field(default_factory=dict)
    near_duplicate_threshold: float = (
        NEAR_DUPLICATE_THRESHOLD  # articles whose word shingles' Jaccard index reaches it share a split
    )
    # `[splits] allow_uneven`: a split empty or far off its share is meant (no build warning, no release refusal)
    allow_uneven_splits: bool = False
    citation: str = ""
    sources: tuple = ()
    annotations_creators: tuple = ("expert-generated",)
    source_datasets: tuple = ("original",)
    aggregation: str = "majority"
    keep_unresolved_entities: bool = False  # unresolved spans also in `entities` (status "unresolved")
    gold_path: Path | None = None
    gold_rate: float = 0.0
    min_gold_accuracy: float = 0.7
    # `[annotation] suggestion_holdout`: share of pushed tasks given no suggestion (the control arm)
    suggestion_holdout: float = SUGGESTION_HOLDOUT
    # `[input] <field>_field`: the input key or column `builder split` reads each article field from, as given
    # (e.g. {"id": "doc_id"}); fields not given are read under their own names. `split --<field>-field` overrides.
    input_fields: dict = field(default_factory=dict)
    # `[annotation] blind`: "auto", True or False (builder/labelstudio/blind_push.py says what each means)
    blind: str | bool = "auto"
    # `[dataset.data_statement]`: the card's data statement (builder.dataset.data_statement), as given
    data_statement: dict = field(default_factory=dict)

    @property
    def has_stance(self) -> bool:
        """The scheme labels stance (`[stance]` is declared): a project may label stance, entities or both."""
        return bool(self.stance_labels)

    @property
    def has_entities(self) -> bool:
        """The scheme labels named entities (`[entities]` is declared)."""
        return bool(self.entity_labels)

    @property
    def scheme(self) -> str:
        """ "both", "stance" or "entities": what the project's annotators label (`builder init --scheme`)."""
        return "both" if self.has_stance and self.has_entities else "stance" if self.has_stance else "entities"

    def labels(self, part: str | None) -> bool:
        """Whether the scheme has `part` ("stance", "entities"; None, a field of every scheme, always)."""
        return part is None or (self.has_stance if part == "stance" else self.has_entities)

    @property
    def stance_values(self) -> list[str]:
        return [label.value for label in self.stance_labels]

    @property
    def entity_values(self) -> list[str]:
        return [label.value for label in self.entity_labels]

    @property
    def bio_tags(self) -> list[str]:
        """conll2003-style tag names: O, then B- and I- for each entity label in scheme order."""
        tags = ["O"]
        for value in self.entity_values:
            tags += [f"B-{value}", f"I-{value}"]
        return tags

    @property
    def bundled(self) -> bool:
        """True for the bundled default project file (no builder.toml was found): its root is inside the package."""
        return self.source.resolve() == default_project_file().resolve()

    @property
    def annotations_dir(self) -> Path:
        return self.root / "annotations"

    @property
    def snapshot_path(self) -> Path:
        """The snapshot `builder pull` writes and a release is built from: annotations/snapshot.jsonl."""
        return self.annotations_dir / "snapshot.jsonl"

    @property
    def records_path(self) -> Path:
        """Where `builder validate` writes records by default: build/records.jsonl."""
        return self.root / "build" / "records.jsonl"

    @property
    def validation_report_path(self) -> Path:
        """Where `builder validate` writes its report by default: build/validation-report.json."""
        return self.root / "build" / "validation-report.json"

    @property
    def dataset_path(self) -> Path:
        """The dataset folder `builder build` and `builder run` write by default: dist/<dataset name>."""
        return self.root / "dist" / self.name

    @property
    def schema_dir(self) -> Path:
        """The task and record schemas `builder schema` writes: schema/."""
        return self.root / "schema"

    def guidelines(self) -> str:
        """The annotation guidelines (markdown)."""
        try:
            return self.guidelines_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{self.source}: annotation.guidelines: cannot read {self.guidelines_path} ({exc.strerror})"
            ) from None

    def scheme_hash(self) -> str:
        """sha256 of the label scheme (labels, target, question), for manifests and the card; a scheme without
        stance or entities hashes without that half's keys (a both-scheme hash is unchanged)."""
        scheme = {
            "target": self.target,
            "question": self.stance_question,
            "stance": [vars(label) for label in self.stance_labels],
            "entities": [vars(label) for label in self.entity_labels],
        }
        if not self.has_stance:
            scheme = {"entities": scheme["entities"]}
        elif not self.has_entities:
            del scheme["entities"]
        return hashlib.sha256(json.dumps(scheme, sort_keys=True).encode()).hexdigest()


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest builder.toml in `start` or its parents, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def default_project_file() -> Path:
    return DEFAULTS_DIR / PROJECT_FILE


def no_project_file_error() -> ConfigError:
    """The refusal of a command that would write under the bundled default's root (the installed package)."""
    return ConfigError(
        f"no {PROJECT_FILE} in {Path.cwd()} or above: run this in your project folder, or pass --config "
        "(to start a project here, run `builder init`)"
    )


def load_project(path: str | Path | None = None) -> Project:
    """Load and validate a project file; without a path, the nearest builder.toml, else the bundled default."""
    if path is None:
        path = find_project_file() or default_project_file()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: project file not found; pass --config the path of your {PROJECT_FILE} "
            "(to start a project, run `builder init` in its folder)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read project file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return project_from_dict(raw, path)


def _key_path(error: jsonschema.ValidationError) -> str:
    parts: list[str] = []
    for part in error.absolute_path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "(top level)"


def project_from_dict(raw: dict, source: Path) -> Project:
    """Validate `raw` against schema/config.schema.json and the rules a schema cannot say."""
    where = _non_finite(raw)
    if where:  # TOML allows nan and inf; JSON Schema's minimum and maximum let NaN through
        raise ConfigError(f"{source}: {where}: must be a finite number, not nan or inf")
    if isinstance(raw, dict) and "stance" not in raw and "entities" not in raw:
        raise ConfigError(
            f"{source}: (top level): declare [stance], [entities] or both: the scheme must label something"
        )
    validator = schema_validator(load_schema("config"))
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    if error is not None:
        raise ConfigError(f"{source}: {_key_path(error)}: {error.message}")

    # A scheme may leave out [stance] or [entities] (not both): that half then has no labels.
    stance_table = raw.get("stance", {"target": "", "labels": []})
    stance = tuple(StanceLabelConfig(**label) for label in stance_table["labels"])
    entities = tuple(EntityLabelConfig(**label) for label in raw.get("entities", {"labels": []})["labels"])
    _check_unique(source, "stance.labels", [label.value for label in stance], "value")
    _check_unique(source, "entities.labels", [label.value for label in entities], "value")
    hotkeys = [(f"stance.labels[{i}]", label.hotkey) for i, label in enumerate(stance)]
    hotkeys += [(f"entities.labels[{i}]", label.hotkey) for i, label in enumerate(entities)]
    seen: dict[str, str] = {}
    for where, key in hotkeys:
        if key in seen:
            raise ConfigError(f"{source}: {where}.hotkey: '{key}' is already the hotkey of {seen[key]}")
        seen[key] = where

    split_table = raw.get("splits", {"train": 0.8, "validation": 0.1, "test": 0.1})
    splits = {name: split_table[name] for name in ("train", "validation", "test")}
    if abs(sum(splits.values()) - 1.0) > 1e-9:
        raise ConfigError(f"{source}: splits: proportions add up to {sum(splits.values())}, not 1")

    root = source.resolve().parent
    guidelines = Path(raw["annotation"]["guidelines"])
    quality = raw.get("quality", {})
    gold = Path(quality["gold"]) if "gold" in quality else None
    if quality.get("gold_rate", 0) > 0 and gold is None:
        raise ConfigError(f"{source}: quality.gold_rate: set quality.gold, the file of gold questions, as well")
    dataset = raw["dataset"]
    input_fields = {key.removesuffix("_field"): value for key, value in raw.get("input", {}).items()}
    for role, key in input_fields.items():
        other = next((r for r, k in input_fields.items() if k == key and r != role), None)
        if other is not None:
            raise ConfigError(f"{source}: input: '{key}' is given as both {role}_field and {other}_field")
    return Project(
        root=root,
        source=source,
        raw=raw,
        name=dataset["name"],
        pretty_name=dataset.get("pretty_name", dataset["name"]),
        license=dataset["license"],
        language=dataset["language"],
        citation=dataset.get("citation", ""),
        sources=tuple(dataset.get("sources", [])),
        annotations_creators=tuple(dataset.get("annotations_creators", ["expert-generated"])),
        source_datasets=tuple(dataset.get("source_datasets", ["original"])),
        target=stance_table["target"],
        stance_question=stance_table.get("question", "What stance does this sentence take towards the target?"),
        stance_labels=stance,
        entity_labels=entities,
        annotators_per_sentence=raw["annotation"]["annotators_per_sentence"],
        guidelines_path=guidelines if guidelines.is_absolute() else root / guidelines,
        entity_agreement=raw["annotation"].get("entity_agreement", 0.5),
        project_title=raw["label_studio"]["project_title"],
        boilerplate_rules=tuple(BoilerplateRule(**rule) for rule in raw.get("ingest", {}).get("boilerplate", [])),
        split_proportions=dict(splits),
        near_duplicate_threshold=float(split_table.get("near_duplicate_threshold", NEAR_DUPLICATE_THRESHOLD)),
        allow_uneven_splits=bool(split_table.get("allow_uneven", False)),
        aggregation=raw["annotation"].get("aggregation", "majority"),
        keep_unresolved_entities=bool(raw["annotation"].get("keep_unresolved_entities", False)),
        gold_path=None if gold is None else gold if gold.is_absolute() else root / gold,
        gold_rate=float(quality.get("gold_rate", 0.0)),
        min_gold_accuracy=float(quality.get("min_gold_accuracy", 0.7)),
        suggestion_holdout=float(raw["annotation"].get("suggestion_holdout", SUGGESTION_HOLDOUT)),
        input_fields=input_fields,
        blind=raw["annotation"].get("blind", "auto"),
        data_statement=dict(dataset.get("data_statement", {})),
    )


def _non_finite(value, path: str = "") -> str:
    """The key path of the first nan or inf in `value` (nested dicts and lists), or ""."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return path or "(top level)"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key))
        if found:
            return found
    return ""


def _check_unique(source: Path, where: str, values: list[str], key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{source}: {where}[{i}].{key}: '{value}' is declared twice")
        seen.add(value)

"""Cutting a release (`builder release`): the dataset built from the committed snapshot, the manifest and the
changelog entry, written into releases/<VERSION>/ all or nothing; and `build_project_dataset`, the one way
every command builds a dataset, so that a build puts every article where a release would.

`builder release` holds an exclusive `flock` on the project folder while it checks and writes, so two
releases at once run one after the other (the second then finds the version taken); the lock goes
with the process. It also holds the snapshot lock `builder pull` holds (builder.locks.snapshot_lock), so
a pull never replaces the snapshot while a release checks and reads it, and it builds from a private copy
of the snapshot whose bytes it has checked against HEAD: the manifest hashes exactly what was checked.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from builder import __version__
from builder.dataset.card import LABELLED_UNDER, labelled_under, splitter_record
from builder.dataset.release.diff import changelog_entry
from builder.dataset.release.manifest import (
    CHANGELOG,
    MANIFEST,
    MANIFEST_FORMAT,
    RELEASES_DIR,
    _dataset_format_for,
    dataset_format_of,
    file_hashes,
    format_of,
    load_manifest,
    releases,
    version_key,
)
from builder.dataset.release.provenance import (
    INPUT_FILES,
    _committed_copy,
    _git_refusal,
    committed_version,
    input_paths,
)
from builder.dataset.release.summary import frozen_test_articles, release_summary
from builder.dataset.release.verify import verify_release
from builder.dataset.splits import ARTICLE_HASH, SENTENCE_SHARES, SPLITS
from builder.errors import BuilderError
from builder.jsonio import sha256_file
from builder.project import Project


def build_project_dataset(project: Project, snapshot: Path, output: Path, version: str | None = None, **options):
    """The one way `build` (with `--push-to-hub`), `run` and `release` build a dataset, so `export` of a build
    too puts every article where a release would: `builder.dataset.build.build_dataset` with the test articles of
    the releases before `version` (of every release: None) kept in test (`frozen_test_articles`, read before
    any work, once the output folder is checked). `options` go to `build_dataset`."""
    from builder.dataset.build import build_dataset
    from builder.outputs import DATASET_COMMANDS, check_output_folder

    check_output_folder(output, project, fresh=version is not None, commands=DATASET_COMMANDS)  # a wrong -o first
    frozen = frozen_test_articles(project, version)
    return build_dataset(project, snapshot, output, frozen_test=frozen, version=version, **options)


def split_method_for(manifest_format: int) -> str:
    """The split method a release of `manifest_format` is cut with (builder.dataset.splits)."""
    return SENTENCE_SHARES if manifest_format >= 6 else ARTICLE_HASH


# --- building ----------------------------------------------------------------------------------


def build_release_folder(
    project: Project,
    version: str,
    output: Path,
    snapshot: Path | None = None,
    manifest_format: int | None = None,
    inputs: dict[str, Path] | None = None,
) -> dict:
    """Build the release into `output` (a fresh folder) and write its manifest; returns the manifest.

    The manifest format is `manifest_format`, else that of the existing release `version` (a rebuild
    stays byte-identical), else the current one. `inputs`: the withheld suggestions and gold file to read
    (provenance.INPUT_FILES, by manifest hash name; `builder release` passes its copies checked against
    HEAD); by default, a rebuild of a format-7 release reads them as the commit holding the bytes its
    manifest hashes holds them (a BuilderError naming the field when none does), anything else the
    project's files as they are.
    """
    key = version_key(version)
    snapshot = snapshot or project.snapshot_path
    if not snapshot.is_file():
        raise BuilderError(f"{snapshot}: no snapshot to release; run `builder pull` and commit it")
    existing = project.root / RELEASES_DIR / version / MANIFEST
    old = load_manifest(existing) if existing.is_file() else None
    if manifest_format is None:
        manifest_format = format_of(old) if old is not None else MANIFEST_FORMAT
    earlier = [v for v in releases(project) if version_key(v) < key]  # rebuilding an old release sees only its past
    with tempfile.TemporaryDirectory(prefix=".builder-release-inputs.") as scratch:
        if inputs is None and old is not None and format_of(old) >= 7:
            inputs = _recorded_inputs(project, old, Path(scratch))
        elif inputs is None:
            inputs = input_paths(project)
        facts = _build_from(
            project,
            inputs,
            Path(scratch),
            snapshot,
            output,
            version=version,
            strict=True,
            # a rebuild keeps the release's own dataset format (its shape and the aggregation of its time)
            dataset_format=dataset_format_of(old) if old is not None else _dataset_format_for(manifest_format),
            notes_predictions=manifest_format >= 4,
            current_splitter=manifest_format >= 5,
            # format 8 on, the card names the splitter the release was cut with, as its manifest records it
            splitter=old.get("splitter") if old is not None else None,
            # and the labeling config and guidelines its annotators labelled under, as its manifest records them
            labelled_under={k: old["hashes"][k] for k in LABELLED_UNDER} if old is not None else None,
            croissant=manifest_format >= 5,
            research_notes=manifest_format >= 9,
            near_duplicates=manifest_format >= 5,
            split_method=split_method_for(manifest_format),
            evidence=manifest_format >= 9,
            intervals=manifest_format >= 10,
        )
        input_hashes = {name: sha256_file(path) for name, path in inputs.items()}
    summary = release_summary(output, project.stance_values, project.entity_values)
    manifest = {
        "dataset": project.name,
        "version": version,
        "builder_version": __version__,
        "hashes": {
            "label_scheme": project.scheme_hash(),
            **labelled_under(project, facts),
            "snapshot": sha256_file(snapshot),
        },
        "split_proportions": project.split_proportions,
        "frozen_test_articles": facts.frozen_test,
        "splits": summary["splits"],
        "agreement": summary["agreement"],
        "files": file_hashes(output),
    }
    if manifest_format >= 2:
        previous = earlier[-1] if earlier else None
        manifest["manifest_format"] = manifest_format
        manifest["hashes"]["project_file"] = sha256_file(project.source)
        manifest["pseudonym_scheme"] = summary["pseudonym_scheme"]
        manifest["previous"] = (
            {"version": previous, "manifest_sha256": sha256_file(project.root / RELEASES_DIR / previous / MANIFEST)}
            if previous
            else None
        )
    if manifest_format >= 3:
        manifest["dataset_format"] = facts.dataset_format
        manifest["aggregation"] = project.aggregation
        manifest["gold"] = {"rate": project.gold_rate, "questions_left_out": facts.gold_questions}
        manifest["quality"] = facts.quality
    if manifest_format >= 4:
        manifest["predictions"] = facts.predictions
    if manifest_format >= 6:
        manifest["split_method"] = facts.split_method
    if manifest_format >= 7:
        manifest["hashes"].update(input_hashes)
    if manifest_format >= 8:
        manifest["splitter"] = splitter_record(facts)
    if manifest_format >= 10:
        from builder.dataset.evidence_card import evidence_record

        evidence = evidence_record(project, facts)  # numpy scalars, if any, as plain JSON values
        manifest["agreement_evidence"] = json.loads(json.dumps(evidence, default=lambda o: o.tolist()))
    (output / MANIFEST).write_text(
        json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def _recorded_inputs(project: Project, manifest: dict, scratch: Path) -> dict[str, Path]:
    """The INPUT_FILES a format-7 release hashes, copied into `scratch` as git history holds those bytes."""
    from builder.records.steering import withheld_path

    where = {"withheld_suggestions": withheld_path(project), "gold": project.gold_path}
    inputs = {}
    for name in INPUT_FILES:
        recorded = manifest["hashes"].get(name)
        if recorded is not None and where[name] is not None:
            inputs[name] = scratch / f"{name}-{where[name].name}"
            committed_version(name, where[name], recorded, inputs[name])
    return inputs


def _build_from(project: Project, inputs: dict[str, Path], scratch: Path, snapshot: Path, output: Path, **options):
    """`build_project_dataset` reading the withheld suggestions and the gold file from `inputs` only (one
    absent there: none); a message names the project's file, never a private copy."""
    from builder.records.steering import withheld_at, withheld_path

    real = {"withheld_suggestions": withheld_path(project), "gold": project.gold_path}
    withheld = inputs.get("withheld_suggestions", scratch / "no-withheld-suggestions")
    try:
        with withheld_at(withheld) if withheld != real["withheld_suggestions"] else nullcontext():
            return build_project_dataset(
                dataclasses.replace(project, gold_path=inputs.get("gold")), snapshot, output, **options
            )
    except BuilderError as exc:
        message = str(exc)
        for name, path in inputs.items():
            message = message.replace(str(path), str(real[name]))
        raise type(exc)(message) from None


@contextmanager
def _release_lock(project: Project):
    """An exclusive flock on the project folder (released on exit, and by the kernel if the process dies)."""
    fd = os.open(project.root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def uneven_release_splits(project: Project, manifest: dict) -> list[str]:
    """The splits of a new release that are empty or far off their share (builder.dataset.splits.uneven_splits),
    unless the project says they are meant (`[splits] allow_uneven = true`): `builder release` refuses them."""
    from builder.dataset.splits import uneven_splits

    if project.allow_uneven_splits:
        return []
    sentences = {split: manifest["splits"][split]["records"] for split in SPLITS}
    return uneven_splits(sentences, manifest["split_proportions"])


@dataclass
class ReleaseResult:
    version: str
    folder: Path
    manifest: dict
    previous: str | None
    changelog_entry: str
    to_commit: tuple[Path, ...] = ()  # what the release wrote, for git (the release folder, CHANGELOG.md)


def _check_guidelines(project: Project, allow_placeholders: bool) -> None:
    """Refuse guidelines that still hold what `builder init`'s template left to fill in (unless allowed)."""
    from builder.scaffold import guideline_placeholders

    left = guideline_placeholders(project.guidelines())
    if left and not allow_placeholders:
        number, line = left[0]
        more = f" and {len(left) - 1} more line(s)" if len(left) > 1 else ""
        raise BuilderError(
            f"{project.guidelines_path}:{number}: still the template's placeholder ({line!r}){more}; "
            "describe each label (with examples) first, or pass --allow-placeholders to release them as they are"
        )


def cut_release(
    project: Project,
    version: str,
    log: Callable[[str], None] = lambda message: None,
    allow_placeholders: bool = False,
) -> ReleaseResult:
    """Guarded release: refuses, writing nothing, on a bad or taken version, an invalid snapshot, a
    project file, guidelines, snapshot, withheld suggestions or gold file not committed in git, a
    previous release that does not verify, or guidelines still holding the template's placeholders
    (`builder.scaffold.guideline_placeholders`; `allow_placeholders` lets them through: the card then
    publishes them).

    It holds the snapshot lock that `builder pull` holds (builder.locks.snapshot_lock), so a pull waits
    for it and it for a pull, and it builds from private copies of the snapshot, the withheld suggestions
    and the gold file, each checked against HEAD."""
    from builder.locks import snapshot_lock

    key = version_key(version)
    parent = project.root / RELEASES_DIR
    folder = parent / version
    snapshot = project.snapshot_path
    pulling = lambda pid: log(f"waiting for a builder pull or release that is using {snapshot} (pid {pid})")  # noqa: E731
    with _release_lock(project), snapshot_lock(snapshot, on_wait=pulling):
        existing = releases(project)
        if folder.exists():
            raise BuilderError(f"release {version} exists already ({folder}); choose a new version")
        if existing and key <= version_key(existing[-1]):
            raise BuilderError(f"version {version} is not greater than the last release {existing[-1]}")
        if not snapshot.is_file():
            raise BuilderError(f"{snapshot}: no snapshot to release; run `builder pull` and commit it")
        _check_guidelines(project, allow_placeholders)  # a missing guidelines file is a ConfigError naming the setting
        inputs = input_paths(project)  # the withheld suggestions and the gold file, released as committed too
        if "gold" in inputs and not inputs["gold"].is_file():
            raise BuilderError(f"{project.source}: quality.gold: {inputs['gold']} is not a file")
        for path in (project.source, project.guidelines_path, snapshot, *inputs.values()):
            refusal = _git_refusal(Path(path))
            if refusal:
                raise BuilderError(refusal)
        previous = existing[-1] if existing else None
        if previous:
            problems = verify_release(project, previous)
            if problems:
                raise BuilderError(
                    f"release {previous} does not verify ({len(problems)} problem(s), first: {problems[0]}); "
                    f"run `builder verify {previous}` and restore it from git before releasing on top of it"
                )
        created_parent = not parent.exists()
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=parent))
        tmp_changelog: Path | None = None
        done = False
        try:
            target = staging / version
            copy = staging / snapshot.name
            _committed_copy(snapshot, copy)
            copies = {name: staging / f"{name}-{path.name}" for name, path in inputs.items()}
            for name, path in inputs.items():
                _committed_copy(path, copies[name], what=path.name)
            try:
                manifest = build_release_folder(
                    project, version, target, copy, manifest_format=MANIFEST_FORMAT, inputs=copies
                )
            except BuilderError as exc:  # a message names the snapshot, never the private copy
                raise type(exc)(str(exc).replace(str(copy), str(snapshot))) from None
            uneven = uneven_release_splits(project, manifest)
            if uneven:
                raise BuilderError(
                    f"{uneven[0]}; set `[splits] allow_uneven = true` in {project.source} if that is meant"
                )
            entry = changelog_entry(project, previous, version, manifest, target)
            changelog = project.root / CHANGELOG
            old = (
                changelog.read_text(encoding="utf-8")
                if changelog.is_file()
                else "# Changelog\n\nGenerated by `builder release`; do not edit by hand.\n"
            )
            head, _, rest = old.partition("\n## ")
            new_text = head.rstrip("\n") + "\n\n" + entry + ("\n## " + rest if rest else "")
            fd, name = tempfile.mkstemp(prefix=f".{CHANGELOG}.", suffix=".tmp", dir=project.root)
            tmp_changelog = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(new_text)
            os.chmod(tmp_changelog, (changelog.stat().st_mode & 0o777) if changelog.is_file() else 0o644)
            os.chmod(target, 0o755)
            os.replace(target, folder)
            try:
                os.replace(tmp_changelog, changelog)
            except BaseException:
                os.replace(folder, target)  # no release without its changelog entry
                raise
            done = True
            return ReleaseResult(version, folder, manifest, previous, entry, (folder, changelog))
        except OSError as exc:
            raise BuilderError(f"cannot write release {version} ({exc}); nothing was released") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if tmp_changelog is not None:
                tmp_changelog.unlink(missing_ok=True)
            if created_parent and not done and not any(parent.iterdir()):
                parent.rmdir()
